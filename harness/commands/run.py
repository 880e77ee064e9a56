"""`harness run`: every stage of the spec, the readiness report, and the CI gate's exit code."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console

from harness.commands import default_out_dir
from harness.results.model import RunResult, StageName, StageResult

STAGE_NAMES: tuple[StageName, ...] = ("contract", "scenarios", "load")
VERDICT_EXIT = {"ready": 0, "not_ready": 1, "error": 2}


def _parse_stages(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [name for name in names if name not in STAGE_NAMES]
    if unknown or not names:
        raise click.BadParameter(
            f"{', '.join(unknown) or 'nothing'} is not a stage; choose from {', '.join(STAGE_NAMES)}"
        )
    return names


@click.command(name="run", short_help="Run every stage and write the readiness report.")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path), metavar="SPEC")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: reports/<integration>/<timestamp>/).",
)
@click.option(
    "--stages",
    default=",".join(STAGE_NAMES),
    show_default=True,
    callback=_parse_stages,
    help="Comma-separated stages to run, in pipeline order.",
)
@click.option(
    "--profile",
    type=click.Choice(["smoke", "expected"]),
    default="smoke",
    show_default=True,
    help="Load profile for the load stage.",
)
@click.option(
    "--integration",
    metavar="COMMAND",
    help="Judge this command instead of the spec's integration_under_test.command.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="One seed for every stage.")
@click.option("--gate", is_flag=True, help="Print a short summary for CI logs at the end.")
def command(
    spec: Path,
    out_dir: Path | None,
    stages: tuple[StageName, ...],
    profile: str,
    integration: str | None,
    seed: int,
    gate: bool,
) -> None:
    """Run validate -> contract -> scenarios -> load on SPEC and write the readiness report.

    Writes results.json, readiness.html (one self-contained file) and junit.xml, plus each
    stage's own artifacts, to the output folder. The provider and destination are simulated
    on 127.0.0.1; only a spec whose provider.mode is live sends the contract stage to its
    sandbox (allow-listed hosts only, under its declared rate limit).

    \b
    Exit codes: 0 ready, 1 not ready, 2 bad input / harness error / nothing tested,
    130 interrupted (the partial report is still written, marked incomplete).

    \b
    Example:
      harness run contracts/petstore/integration.yaml
      harness run contracts/petstore/integration.yaml --stages contract,scenarios --gate
    """
    from harness.pipeline import RunOptions, run_pipeline
    from harness.project import load_project

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    project = load_project(spec, display=str(spec))
    out = out_dir or default_out_dir(project.spec.spec.name)
    options = RunOptions(  # stages hand paths to subprocesses with other working folders
        out_dir=out.resolve(), stages=stages, profile=profile, integration=integration, seed=seed
    )
    started = time.monotonic()

    def progress(line: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim] {line}")

    def on_stage(result: StageResult) -> None:
        colour = {"passed": "green", "failed": "red"}.get(result.status, "yellow")
        console.print(
            f"[bold {colour}]{result.stage}: {result.status}[/] - {result.summary}"
            f" ({result.duration_seconds:.1f}s)"
        )

    console.print(f"harness run: {project.spec.spec.name} -> {out}")
    outcome = run_pipeline(project, spec, options, progress, on_stage=on_stage)
    _print_summary(console, outcome.result, out, gate=gate)
    if outcome.interrupted:
        console.print("[yellow]interrupted: the report holds what finished (incomplete)[/]")
        sys.exit(130)
    sys.exit(VERDICT_EXIT[outcome.result.verdict])


def _print_summary(console: Console, run: RunResult, out: Path, *, gate: bool) -> None:
    """The verdict first, then why, then where the evidence is."""
    label = {"ready": "READY", "not_ready": "NOT READY", "error": "ERROR"}[run.verdict]
    colour = {"ready": "green", "not_ready": "red", "error": "yellow"}[run.verdict]
    suffix = " (incomplete)" if run.incomplete else ""
    console.print(f"[bold {colour}]verdict: {label}{suffix}[/]")
    reasons = run.reasons if gate else run.reasons[:10]
    for reason in reasons:
        console.print(f"  - {reason}")
    if len(run.reasons) > len(reasons):
        console.print(f"  ... and {len(run.reasons) - len(reasons)} more (see the report)")
    if gate:
        for stage in run.stages:
            console.print(f"  {stage.stage}: {stage.status} - {stage.summary}")
    console.print(f"report: {out / 'readiness.html'}")
    console.print(f"results: {out / 'results.json'}  junit: {out / 'junit.xml'}")
