"""A project: a valid spec with its provider and destination documents, loaded together.

Every stage starts from one of these. Loading collects *every* problem across the spec, its
documents and the references between them, so ``harness validate`` can list them all at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from harness.openapi.document import OpenAPIDocument, load_document
from harness.openapi.references import reference_problems
from harness.problems import InputError, PathPart, Problem
from harness.spec.loader import LoadedSpec, load_spec


@dataclass(frozen=True)
class Project:
    spec: LoadedSpec
    provider: OpenAPIDocument
    destination: OpenAPIDocument | None


def _is_url(ref: str) -> bool:
    return urlsplit(ref).scheme in ("http", "https")


def _load_named_document(
    loaded: LoadedSpec, ref: str, where: list[PathPart], problems: list[Problem]
) -> OpenAPIDocument | None:
    if not _is_url(ref) and not loaded.resolve(ref).is_file():
        problems.append(
            loaded.source.problem(
                where, f"OpenAPI document '{ref}' not found (looked in {loaded.base_dir.name}/)"
            )
        )
        return None
    display = ref if _is_url(ref) else _display_path(loaded.resolve(ref))
    try:
        return load_document(ref, loaded.base_dir, display=display)
    except InputError as error:
        problems.extend(error.problems)
        return None


def _display_path(path: Path) -> str:
    """Paths relative to the working directory when possible: what the user typed, roughly."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _file_problems(loaded: LoadedSpec) -> list[Problem]:
    problems: list[Problem] = []
    iut = loaded.spec.integration_under_test
    if (
        iut is not None
        and iut.working_dir is not None
        and not loaded.resolve(iut.working_dir).is_dir()
    ):
        problems.append(
            loaded.source.problem(
                ["integration_under_test", "working_dir"], f"folder '{iut.working_dir}' not found"
            )
        )
    return problems


def load_project(spec_path: Path | str, display: str | None = None) -> Project:
    """Load the spec and its documents; ``InputError`` carries every problem in all of them."""
    return project_from_loaded(load_spec(spec_path, display))


def project_from_loaded(loaded: LoadedSpec) -> Project:
    """Load the documents a valid spec names (used for specs that came from Markdown, too)."""
    problems = _file_problems(loaded)
    provider = _load_named_document(
        loaded, loaded.spec.provider.openapi, ["provider", "openapi"], problems
    )
    destination = None
    dest = loaded.spec.destination
    if dest is not None and dest.openapi is not None:
        destination = _load_named_document(
            loaded, dest.openapi, ["destination", "openapi"], problems
        )
    if provider is not None:
        problems.extend(reference_problems(loaded, provider, destination))
    if problems or provider is None:
        raise InputError(
            sorted(problems, key=lambda p: (p.file != loaded.source.file, p.file, p.line or 0))
        )
    return Project(loaded, provider, destination)
