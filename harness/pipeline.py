"""`harness run` as a library: validate -> contract -> scenarios -> load -> report.

The pipeline owns what no single stage can: the order, one seed for all, one output folder,
and the guarantee that whatever happens - a failing stage, a crash, Ctrl-C - results.json and
the report are written for what finished. After every stage the partial results are written
(marked incomplete), so even a killed run leaves its evidence behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
        except Exception as error:  # a stage crash must not lose the other stages' evidence
            stages.append(_crashed(name, error, stage_started))
            crashed = True
        else:
            stages.append(result)
        if interrupted:
            break
        if on_stage is not None:
            on_stage(stages[-1])
        write_outputs(assemble(incomplete=True), options.out_dir)
    run = assemble(incomplete=interrupted or crashed, scan=True)
    write_outputs(run, options.out_dir)
    return RunOutcome(result=run, interrupted=interrupted)


def _ordered(stages: Sequence[StageName]) -> list[StageName]:
    return [name for name in STAGE_ORDER if name in stages]
