"""Fixtures for the report's tests: the example project and realistic synthetic runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.project import Project, load_project
from harness.results.gate import assemble_run
from harness.results.model import RunResult, StageResult

from ..conftest import EXAMPLE_SPEC
from .synthetic import all_stages, write_traffic

NO_SECRETS: dict[str, str] = {}


@pytest.fixture(scope="session")
def project() -> Project:
    return load_project(EXAMPLE_SPEC)


def make_run(
    project: Project,
    stages: list[StageResult],
    out_dir: Path | None = None,
    *,
    environ: dict[str, str] | None = None,
    incomplete: bool = False,
) -> RunResult:
    return assemble_run(
        project,
        stages,
        spec_path=EXAMPLE_SPEC,
        seed=42,
        started_at="2026-11-20T10:00:00Z",
        duration_seconds=118.5,
        incomplete=incomplete,
        out_dir=out_dir,
        environ=NO_SECRETS if environ is None else environ,
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Callable[..., Path]:
    """A run folder with traffic logs where the synthetic stages say they are."""

    def build(records: int = 500) -> Path:
        out = tmp_path / "run"
        for index, stage in enumerate(("contract", "scenarios", "load")):
            write_traffic(out / stage / "traffic.jsonl", records, seed=index)
        (out / "load" / "locust.html").write_text("<html><body>Locust report</body></html>")
        return out

    return build


__all__ = ["all_stages", "make_run"]
