"""Read an ``integration.yaml`` into a validated ``IntegrationSpec``, or say everything wrong with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.problems import InputError
from harness.spec.checks import consistency_problems
from harness.spec.convert import spec_from_data
from harness.spec.model import IntegrationSpec
from harness.spec.schema import schema_problems
from harness.yamlsource import LoadedDocument, SourceMap, load_file, parse_text


@dataclass(frozen=True)
class LoadedSpec:
    """A valid spec together with where it came from: relative paths in it resolve against ``base_dir``."""

    spec: IntegrationSpec
    data: dict[str, Any]
    source: SourceMap
    path: Path

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        """A path named in the spec, made absolute against the spec's own folder."""
        return (self.base_dir / relative).resolve()


def _from_document(document: LoadedDocument, path: Path) -> LoadedSpec:
    data = document.data
    if not isinstance(data, dict):
        from harness.problems import Problem

        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise InputError(
            [
                Problem(
                    document.source.file, 1, "", f"expected a mapping of spec sections, got {got}"
                )
            ]
        )
    problems = schema_problems(data, document.source)
    if problems:
        raise InputError(problems)
    spec = spec_from_data(data)
    problems = consistency_problems(spec, document.source)
    if problems:
        raise InputError(problems)
    return LoadedSpec(spec, data, document.source, path)


def load_spec(path: Path | str, display: str | None = None) -> LoadedSpec:
    """Load and validate a spec file. Raises ``InputError`` listing every problem found."""
    path = Path(path)
    return _from_document(load_file(path, display), path.resolve())


def load_spec_text(text: str, path: Path | str, display: str | None = None) -> LoadedSpec:
    """Like :func:`load_spec` for text already in memory (Markdown import, tests)."""
    path = Path(path)
    return _from_document(parse_text(text, display or str(path)), path.resolve())
