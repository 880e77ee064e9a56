"""Helpers for the scenario stage's tests: spec variants, clients, running the stage.

The stage runs for real here - simulators on 127.0.0.1, the integration as a subprocess - and
the tests read the verdicts from the ``StageResult`` it returns, as ``harness run`` does.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.project import load_project
from harness.results.model import CheckResult, StageResult
from harness.scenarios.stage import ScenariosOptions, run_scenarios
from harness.yamlsource import load_file

from ..conftest import EXAMPLE_SPEC, REPO

CLIENTS = Path(__file__).resolve().parent / "clients"
EXAMPLES = REPO / "examples"


def client(name: str, *args: str) -> str:
    """The --integration command for a fixture client."""
    return " ".join(["{python}", str(CLIENTS / f"{name}.py"), *args])


def example(variant: str) -> str:
    return "{python} -m petstore_sync." + variant


def spec_variant(folder: Path, change: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """A copy of the example spec (and its documents) in ``folder``, changed by ``change``."""
    folder.mkdir(parents=True, exist_ok=True)
    for document in ("provider.openapi.yaml", "destination.openapi.yaml"):
        shutil.copy(EXAMPLE_SPEC.parent / document, folder / document)
    data = load_file(EXAMPLE_SPEC).data
    data["integration_under_test"]["working_dir"] = str(EXAMPLES)
    if change is not None:
        change(data)
    path = folder / "integration.yaml"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def run(
    spec: Path,
    out: Path,
    *,
    only: tuple[str, ...] = (),
    integration: str | None = None,
    records: int | None = 60,
    scenario_dirs: tuple[Path, ...] = (),
    repeat: int = 1,
) -> StageResult:
    """Run the stage through its Python API, quietly."""
    options = ScenariosOptions(
        only=only,
        integration=integration,
        records=records,
        scenario_dirs=scenario_dirs,
        repeat=repeat,
    )
    return run_scenarios(load_project(spec), options, out, lambda line: None)


def verdicts(result: StageResult) -> dict[str, str]:
    return {check.id.split("/", 1)[1]: check.status for check in result.checks}


def check(result: StageResult, name: str) -> CheckResult:
    return next(c for c in result.checks if c.id == f"scenarios/{name}")


def expectation(result: StageResult, name: str, which: str) -> dict[str, Any]:
    """One judged expectation of a scenario (``declared``, ``observed``, ``status``)."""
    found: dict[str, Any] = next(
        e for e in check(result, name).attributes["expectations"] if e["check"] == which
    )
    return found


def explain(result: StageResult) -> str:
    """Every verdict with its summary, for assertion messages."""
    return "\n".join(f"{c.id}: {c.status}: {c.summary}" for c in result.checks)


PYTHON = sys.executable
