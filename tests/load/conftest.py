"""Helpers for the load stage's tests: spec variants, and a watch for leftover Locust processes."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from ..conftest import EXAMPLE_SPEC, REPO


def spec_variant(tmp_path: Path, edit: Callable[[str], str] = lambda text: text) -> Path:
    """A copy of the bundled example (its documents beside it) with ``edit`` applied."""
    folder = tmp_path / "spec"
    folder.mkdir(exist_ok=True)
    for document in EXAMPLE_SPEC.parent.glob("*.openapi.yaml"):
        shutil.copy(document, folder / document.name)
    text = EXAMPLE_SPEC.read_text(encoding="utf-8").replace(
        "working_dir: ../../examples", f"working_dir: {REPO / 'examples'}"
    )
    edited = edit(text)
    path = folder / "integration.yaml"
    path.write_text(edited, encoding="utf-8")
    return path


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def locust_processes(root: Path) -> list[psutil.Process]:
    """Locust processes started for runs under ``root`` (their working folder is in it)."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or ())
            cwd = process.info["cwd"] or ""
        except (psutil.Error, OSError):
            continue
        if "locust" in cmdline and cwd.startswith(str(root)):
            found.append(process)
    return found


@pytest.fixture()
def no_leftovers(tmp_path: Path) -> Iterator[Path]:
    """The test's folder; after the test, no Locust process started under it may remain."""
    yield tmp_path
    left = locust_processes(tmp_path)
    for process in left:  # do not leave them to the next test either
        process.kill()
    assert not left, f"Locust processes left behind: {[p.pid for p in left]}"
