"""`harness run` as a library: validate -> contract -> scenarios -> load -> report.

The pipeline owns what no single stage can: the order, one seed for all, one output folder,
and the guarantee that whatever happens - a failing stage, a crash, Ctrl-C - results.json and
the report are written for what finished. After every stage the partial results are written
(marked incomplete), so even a killed run leaves its evidence behind.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from harness.problems import InputError
from harness.project import Project
from harness.results.model import (
    Progress,
    RunResult,
    StageInterrupted,
    StageName,
    StageResult,
)

STAGE_ORDER: tuple[StageName, ...] = ("contract", "scenarios", "load")


@dataclass(frozen=True)
class RunOptions:
    """What `harness run` was asked to do."""

    out_dir: Path
    stages: tuple[StageName, ...] = STAGE_ORDER
    profile: str = "smoke"
    integration: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class RunOutcome:
    """The run's results, and whether Ctrl-C cut it short (the face exits 130 then).

    A crashed stage is in ``result`` as an ``error`` stage, and the run as ``incomplete``.
    """

    result: RunResult
    interrupted: bool


StageRunner = Callable[[Project, RunOptions, Path, Progress], StageResult]


def _run_contract(
    project: Project, options: RunOptions, out: Path, progress: Progress
) -> StageResult:
    from harness.contract.options import ContractOptions
    from harness.contract.stage import run_contract

    return run_contract(project, ContractOptions(seed=options.seed), out, progress)


def _run_scenarios(
    project: Project, options: RunOptions, out: Path, progress: Progress
) -> StageResult:
    from harness.scenarios.stage import ScenarioOptions, run_scenarios

    return run_scenarios(
        project, ScenarioOptions(seed=options.seed, integration=options.integration), out, progress
    )


def _run_load(project: Project, options: RunOptions, out: Path, progress: Progress) -> StageResult:
    from harness.load.stage import LoadOptions, run_load

    return run_load(project, LoadOptions(profile=options.profile, seed=options.seed), out, progress)


RUNNERS: dict[StageName, StageRunner] = {
    "contract": _run_contract,
    "scenarios": _run_scenarios,
    "load": _run_load,
}


def validation_result(project: Project) -> StageResult:
    """The validate stage: the spec and its documents loaded cleanly (else InputError earlier)."""
    operations = len(project.provider.operations)
    return StageResult(
        stage="validate",
        status="passed",
        summary=f"spec and documents valid; provider document has {operations} operations",
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _crashed(stage: StageName, error: Exception, started: float) -> StageResult:
    return StageResult(
        stage=stage,
        status="error",
        summary=f"the {stage} stage crashed: {type(error).__name__}: {error}",
        started_at=_now(),
        duration_seconds=time.monotonic() - started,
        incomplete=True,
        error=f"{type(error).__name__}: {error}",
    )


def run_pipeline(
    project: Project,
    spec_path: Path,
    options: RunOptions,
    progress: Progress,
    *,
    on_stage: Callable[[StageResult], None] | None = None,
) -> RunOutcome:
    """Run the selected stages in order and write results.json, readiness.html and junit.xml.

    A stage that fails does not stop the next (the report needs all the evidence); a stage
    that crashes is recorded as ``error`` and the run goes on; Ctrl-C stops the run, keeps
    what finished (the interrupted stage's partial result included) and marks it incomplete.
    """
    from harness.report.html import write_outputs
    from harness.results.gate import assemble_run

    started_at = _now()
    started = time.monotonic()
    options.out_dir.mkdir(parents=True, exist_ok=True)
    stages: list[StageResult] = [validation_result(project)]
    interrupted = crashed = False

    def assemble(incomplete: bool, *, scan: bool = False) -> RunResult:
        """``scan``: also scan every file written so far for secrets (the final assembly)."""
        return assemble_run(
            project,
            stages,
            spec_path=spec_path,
            seed=options.seed,
            started_at=started_at,
            duration_seconds=time.monotonic() - started,
            incomplete=incomplete,
            out_dir=options.out_dir if scan else None,
        )

    for name in _ordered(options.stages):
        progress(f"{name}: starting")
        stage_started = time.monotonic()
        try:
            result = RUNNERS[name](project, options, options.out_dir, progress)
        except StageInterrupted as stop:
            stages.append(stop.partial)
            interrupted = True
        except KeyboardInterrupt:
            interrupted = True
        except InputError as error:  # found late (e.g. --integration): bad input, not a crash
            problems = "; ".join(str(problem) for problem in error.problems) or "invalid input"
            stages.append(
                StageResult(
                    stage=name,
                    status="error",
                    summary=f"bad input: {problems}",
                    started_at=_now(),
                    duration_seconds=time.monotonic() - stage_started,
                    error=f"bad input: {problems}",
                )
            )
        except Exception as error:  # a stage crash must not lose the other stages' evidence
            stages.append(_crashed(name, error, stage_started))
            crashed = True
        else:
            if name == "contract" and result.status in ("passed", "failed"):
                result = _with_pytest_html(project, result, spec_path, options, progress)
            stages.append(result)
        if interrupted:
            break
        if on_stage is not None:
            on_stage(stages[-1])
        write_outputs(assemble(incomplete=True), options.out_dir)
    run = assemble(incomplete=interrupted or crashed, scan=True)
    write_outputs(run, options.out_dir)
    return RunOutcome(result=run, interrupted=interrupted)


def _with_pytest_html(
    project: Project,
    result: StageResult,
    spec_path: Path,
    options: RunOptions,
    progress: Progress,
) -> StageResult:
    """The contract cases once more as pytest items, for pytest-html's report of them.

    The contract stage runs schemathesis as a library; teams who live in pytest read the same
    cases in pytest-html, so the run keeps that report too (the plugin is ``harness.pytest_plugin``,
    the same seed gives the same cases). It costs a few seconds; a failure to produce it is
    shown, never fatal: the stage's verdict does not depend on it. Only against the simulated
    provider: a live sandbox is not sent the same cases twice.
    """
    if project.spec.spec.provider.mode == "live":
        # Replaying would send every case to the real sandbox a second time.
        progress(
            "contract: no pytest-html report against a live provider (it would resend every case)"
        )
        return result
    folder = options.out_dir / "contract" / "pytest-html"
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "report.html"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--integration-spec",
        str(spec_path.resolve()),
        "--integration-only",
        "--integration-seed",
        str(options.seed),
        "--integration-out",
        str((folder / "stage").resolve()),
        f"--html={report.resolve()}",
        "--self-contained-html",
    ]
    progress("contract: writing the pytest-html report of the same cases")
    try:
        done = subprocess.run(
            command, cwd=folder, capture_output=True, text=True, timeout=600, check=False
        )
    except subprocess.TimeoutExpired:
        progress("contract: pytest-html report timed out (not written)")
        return result
    if done.returncode not in (0, 1) or not report.exists():
        progress(f"contract: pytest-html report not written (pytest exit {done.returncode})")
        return result
    relative = str(report.relative_to(options.out_dir))
    return replace(result, artifacts={**result.artifacts, "pytest-html": relative})


def _ordered(stages: Sequence[StageName]) -> list[StageName]:
    return [name for name in STAGE_ORDER if name in stages]
