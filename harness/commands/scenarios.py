"""`harness scenarios`: run the integration under fault-injection scenarios and judge it."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from harness.commands import default_out_dir, run_and_write
from harness.results.model import StageResult

if TYPE_CHECKING:
    from harness.scenarios.model import Scenario

STATUS_STYLE = {"passed": "green", "failed": "red", "error": "yellow", "skipped": "dim"}


@click.command(
    name="scenarios",
    short_help="Fault-injection scenarios: judge the integration's error handling.",
)
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path), metavar="SPEC")
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="NAME",
    help="Run only this scenario (repeatable; see --list).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed for the simulated data and probabilistic faults (a run reproduces for a seed).",
)
@click.option(
    "--integration",
    metavar="COMMAND",
    help="Judge this command instead of the spec's integration_under_test "
    "(runs in its working_dir; {python} is this interpreter).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: reports/<integration>/<timestamp>/).",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write JUnit XML here (one test case per scenario).",
)
@click.option(
    "--repeat",
    type=click.IntRange(1, 100),
    default=1,
    show_default=True,
    help="Run each scenario N times (a flakiness check): the worst verdict counts and "
    "differing verdicts are reported as inconsistent.",
)
@click.option(
    "--scenarios",
    "scenario_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Also load scenario files (*.yaml) from DIR (repeatable). scenarios/ next to the "
    "spec (or the repository's, for contracts/<name>/) is always loaded.",
)
@click.option(
    "--records",
    type=click.IntRange(1, 100_000),
    help="N, the record count of the 'auto' scenarios (default: the spec's "
    "launch.success_criteria.records_synced x --scale).",
)
@click.option(
    "--scale",
    type=click.FloatRange(0, min_open=True),
    help="Scale the spec's records_synced for N (default: $HARNESS_SCALE, else 1), e.g. 0.1 in CI.",
)
@click.option("--list", "list_only", is_flag=True, help="List the scenarios available and exit.")
def command(
    spec: Path,
    only: tuple[str, ...],
    seed: int,
    integration: str | None,
    out_dir: Path | None,
    junit_path: Path | None,
    repeat: int,
    scenario_dirs: tuple[Path, ...],
    records: int | None,
    scale: float | None,
    list_only: bool,
) -> None:
    """Run SPEC's integration under each fault scenario and judge it against the spec's
    error_handling policy: retries and backoff, Retry-After, rate-limit compliance,
    re-authentication, invalid data, timeouts, degradation, alerts and data-sync accuracy.

    Each scenario starts a simulated provider with a fault plan (and a simulated destination),
    runs the integration as a subprocess with PROVIDER_URL, DESTINATION_URL, HARNESS_OUTPUT_DIR
    and its ${VAR} credentials in the environment (names as integration_under_test.env_names
    maps them), and judges the run from the traffic of both sides, the exit status, the output
    and the destination's contents. Verdicts: passed, failed (with the expectation in the
    spec's terms and a request timeline), error (could not judge), skipped (not applicable).

    Scenarios: the built-ins, scenarios/*.yaml next to SPEC (and <repo>/scenarios/ for a
    spec in <repo>/contracts/<name>/, as harness init lays it out), and --scenarios DIR.
    See docs/scenarios.md for each scenario and how to write your own.
    Results: scenarios.json in the output folder, plus per scenario its stdout, stderr,
    traffic logs and output folder.

    \b
    Exit codes: 0 all judged scenarios passed, 1 one failed, 2 bad input / harness error /
    nothing judged, 130 interrupted (partial results are written, marked incomplete).

    \b
    Examples:
      harness scenarios contracts/petstore/integration.yaml
      harness scenarios contracts/petstore/integration.yaml --only rate-limit-429 --seed 7
      harness scenarios contracts/petstore/integration.yaml \\
          --integration "{python} -m petstore_sync.naive" --scale 0.1
      harness scenarios contracts/petstore/integration.yaml --list
    """
    from harness.project import load_project
    from harness.scenarios.stage import ScenariosOptions, list_scenarios, run_scenarios

    console = Console(stderr=True, highlight=False)
    project = load_project(spec, display=str(spec))
    options = ScenariosOptions(
        only=only,
        seed=seed,
        integration=integration,
        scenario_dirs=scenario_dirs,
        records=records,
        scale=scale,
        repeat=repeat,
    )
    if list_only:
        _print_list(list_scenarios(project, options))
        return
    out = out_dir or default_out_dir(project.spec.spec.name)
    started = time.monotonic()

    def progress(line: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim] {line}", soft_wrap=True)

    console.print(f"harness scenarios: {project.spec.spec.name} -> {out}")
    done = run_and_write(
        lambda: run_scenarios(project, options, out, progress),
        out,
        junit=junit_path,
        suite_name=f"{project.spec.spec.name}: scenarios",
    )
    result = done.result
    _print_summary(console, result, out)
    if done.interrupted:
        console.print("[yellow]interrupted: scenarios.json holds what finished (incomplete)[/]")
        sys.exit(130)
    sys.exit(result.exit_code)


def _print_list(entries: Sequence[tuple[Scenario, str | None]]) -> None:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("scenario")
    table.add_column("category")
    table.add_column("from")
    table.add_column("for this spec")
    table.add_column("title")
    for scenario, skip in entries:
        origin = "built-in" if scenario.builtin else str(scenario.path)
        table.add_row(
            scenario.name,
            scenario.category,
            origin,
            f"skipped: {skip}" if skip else "runs",
            scenario.title,
        )
    Console(highlight=False, width=160).print(table)


def _print_summary(console: Console, result: StageResult, out: Path) -> None:
    """One line per scenario, verdict first, then where the evidence is."""
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("verdict")
    table.add_column("scenario")
    table.add_column("time", justify="right")
    table.add_column("evidence", overflow="fold")
    for check in result.checks:
        style = STATUS_STYLE.get(check.status, "")
        table.add_row(
            f"[{style}]{check.status}[/]",
            check.id.split("/", 1)[-1],
            f"{check.duration_seconds:.1f}s",
            check.summary,
        )
    console.print(table)
    colour = STATUS_STYLE.get(result.status, "")
    console.print(
        f"[bold {colour}]scenarios: {result.status}[/] - {result.summary} ({result.duration_seconds:.1f}s)"
    )
    console.print(f"results: {out / 'scenarios.json'}  evidence: {out / 'scenarios'}/")
