"""`harness load`: run a Locust load profile derived from the spec and judge it by the spec."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import click

from harness.commands import default_out_dir, run_and_write
from harness.problems import InputError, Problem

if TYPE_CHECKING:
    from harness.results.model import StageResult

EXIT_INTERRUPTED = 130
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h30m``, ``2.5`` -> seconds; ``InputError`` otherwise."""
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise InputError(
            [Problem("--duration", None, "", f"not a duration: {text!r} (90, 90s, 5m, 1h30m)")]
        )
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise InputError([Problem("--duration", None, "", "must be more than 0 seconds")])
    return total


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> ``(host, port)``; ``InputError`` otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError([Problem("--master-bind", None, "", f"not HOST:PORT: {text!r}")])
    return host.strip("[]"), int(port)


@click.command(
    name="load", short_help="Locust load profiles from the spec, judged by its criteria."
)
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path), metavar="SPEC")
@click.option(
    "--profile",
    default="smoke",
    show_default=True,
    metavar="NAME|FILE",
    help="smoke, expected, peak, soak, rate-limit, timeouts; a profile of the spec's "
    "load.profiles or loadtests/profiles/NAME.yaml; or a profile file.",
)
@click.option(
    "--users", type=click.IntRange(1, 100_000), help="Concurrent users (default: derived)."
)
@click.option(
    "--duration",
    metavar="D",
    help="Run time: 90, 90s, 5m, 1h30m (default: the profile's).",
)
@click.option(
    "--workers",
    type=click.IntRange(0, 256),
    default=0,
    show_default=True,
    help="Locust workers on this machine (a master plus N worker processes); 0: one process.",
)
@click.option(
    "--remote-workers",
    type=click.IntRange(0, 1024),
    default=0,
    show_default=True,
    help="Workers started on other machines (docs/distributed.md) that connect to "
    "--master-bind; the run waits up to 300 s for them.",
)
@click.option(
    "--master-bind",
    metavar="HOST:PORT",
    help="Where the Locust master listens for workers (required with --remote-workers; "
    "default 127.0.0.1 on a free port).",
)
@click.option(
    "--target",
    type=click.Choice(["simulated", "live", "integration"]),
    default="simulated",
    show_default=True,
    help="simulated: the embedded simulator; live: provider.live (allowed hosts only, never "
    "above the declared rate limit); integration: the service at load.integration.url.",
)
@click.option(
    "--base-url",
    metavar="URL",
    help="live: another base URL on provider.live.allowed_hosts; integration: the service URL.",
)
@click.option(
    "--allow-over-limit",
    is_flag=True,
    help="Allow a profile above the provider's declared rate limit (refused for live targets).",
)
@click.option(
    "--locustfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your own locustfile instead of the generic one (see loadtests/README.md).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: reports/<integration>/<UTC time>/).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed for request data, the simulator and injected faults.",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write JUnit XML here (one test case per threshold).",
)
def command(
    spec: Path,
    profile: str,
    users: int | None,
    duration: str | None,
    workers: int,
    remote_workers: int,
    master_bind: str | None,
    target: str,
    base_url: str | None,
    allow_over_limit: bool,
    locustfile: Path | None,
    out_dir: Path | None,
    seed: int,
    junit_path: Path | None,
) -> int:
    """Run a load profile against SPEC's provider and judge it by SPEC's own numbers.

    The operation mix, request data, auth and arrival rate come from the spec; the thresholds
    are its response-time percentiles, error rate, slowest response, declared throughput and
    request timeout (plus load.thresholds). Locust runs headless in subprocesses; its CSV
    statistics, stats history and HTML report land in OUT/load/, the verdict in OUT/load.json.

    \b
    Examples:
      harness load contracts/petstore/integration.yaml
      harness load contracts/petstore/integration.yaml --profile expected --workers 2
      harness load contracts/petstore/integration.yaml --profile rate-limit --duration 20s
      harness load contracts/petstore/integration.yaml --profile expected --target live

    Exit 0 when every threshold passed, 1 when one failed, 2 on bad input or a run the harness
    could not judge (Locust crashed, a worker died, the traffic log disagrees), 130 on Ctrl-C
    (partial results are written).
    """
    from harness.load import LoadOptions, run_load
    from harness.project import load_project

    seconds = parse_duration(duration) if duration is not None else None
    bind = parse_bind(master_bind) if master_bind is not None else None
    if remote_workers and bind is None:
        raise InputError(
            [Problem("--remote-workers", None, "", "needs --master-bind HOST:PORT to listen on")]
        )
    project = load_project(spec, display=str(spec))
    out = out_dir or default_out_dir(project.spec.spec.name)
    options = LoadOptions(
        profile=profile,
        users=users,
        duration_seconds=seconds,
        workers=workers,
        remote_workers=remote_workers,
        master_bind=bind,
        target=cast(Literal["simulated", "live", "integration"], target),
        allow_over_limit=allow_over_limit,
        base_url=base_url,
        locustfile=locustfile.resolve() if locustfile is not None else None,
        seed=seed,
    )

    def progress(line: str) -> None:
        click.echo(line, err=True)

    done = run_and_write(
        lambda: run_load(project, options, out, progress),
        out,
        junit=junit_path,
        suite_name=f"{project.spec.spec.name}: load",
    )
    result = done.result
    _print_summary(result, out)
    if done.interrupted:
        click.echo(f"harness: interrupted; partial results in {out}", err=True)
        return EXIT_INTERRUPTED
    return result.exit_code


def _print_summary(result: StageResult, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    table = Table(title=f"harness load - {result.status.upper()}", title_justify="left")
    table.add_column("criterion")
    table.add_column("target", justify="right")
    table.add_column("measured", justify="right")
    table.add_column("verdict")
    for criterion in result.criteria:
        verdict = (
            "not measured" if criterion.passed is None else "ok" if criterion.passed else "FAILED"
        )
        table.add_row(criterion.name, criterion.target, criterion.measured or "-", verdict)
    for check in result.checks:
        if check.id.endswith(("traffic-cross-check", "locustfile-exceptions")):
            table.add_row(check.name, "", "", "ok" if check.status == "passed" else "ERROR")
    console.print(table)
    console.print(result.summary)
    report = result.artifacts.get("locust_html_report")
    console.print(
        f"results: {out / 'load.json'}" + (f"  Locust report: {out / report}" if report else "")
    )
