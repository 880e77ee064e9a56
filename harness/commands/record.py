"""`harness record SPEC`: record live interactions as vcrpy cassettes, secrets filtered."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="record", short_help="Record live provider responses as VCR cassettes.")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path), metavar="SPEC")
@click.option(
    "--base-url",
    metavar="URL",
    help="Live provider to record from (default: provider.live.base_url); its host must be "
    "on provider.live.allowed_hosts.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("cassettes"),
    show_default=True,
    help="Folder for the cassettes (where `harness contract --target cassettes` looks by "
    "default). One file per operation, replaced on every recording.",
)
@click.option(
    "--operations",
    "operations",
    multiple=True,
    metavar="OP[,OP...]",
    help="operationIds to record (repeat or comma-separate; default: every GET operation). "
    "Unsafe methods need provider.live.allow_unsafe_methods.",
)
@click.option(
    "--timeout",
    "timeout_seconds",
    type=click.FloatRange(0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds each request may take.",
)
def command(
    spec: Path,
    base_url: str | None,
    out_dir: Path,
    operations: tuple[str, ...],
    timeout_seconds: float,
) -> None:
    """Call SPEC's live provider once per operation and record each exchange as a vcrpy
    cassette, for `harness contract SPEC --target cassettes` (drift against today's
    document) and for replay (`harness simulate --cassettes`, pytest-recording).

    Auth comes from the spec: the ${VAR} credentials must be set in the environment; an OAuth2
    token is fetched first (and recorded, with the token filtered out). Requests are paced to
    the spec's rate limit. Secrets never reach a cassette: Authorization, cookies, API keys,
    client secrets, Set-Cookie, tokens in response bodies and every credential value of the
    spec are replaced by [REDACTED], and each cassette is checked for leaks before it is
    written.

    Exit 0 when recorded; 2 for bad input (host not allowed, credentials unset, unreachable
    host, token refused); 130 when interrupted (finished cassettes are kept).
    """
    from harness.contract.record import RecordOptions, record
    from harness.project import load_project

    project = load_project(spec, display=str(spec))
    names = tuple(n.strip() for item in operations for n in item.split(",") if n.strip())
    target = out_dir
    result = record(
        project,
        RecordOptions(
            out_dir=target,
            base_url=base_url,
            operations=names,
            timeout_seconds=timeout_seconds,
        ),
        progress=lambda line: click.echo(f"  {line}", err=True),
    )
    for cassette in result.cassettes:
        statuses = ", ".join(str(s) for s in cassette.statuses)
        click.echo(f"recorded {cassette.operation} ({statuses}) -> {cassette.path}")
    for operation, reason in result.skipped:
        click.echo(f"skipped {operation}: {reason}")
    click.echo(f"{len(result.cassettes)} cassette(s) from {result.base_url} in {target}")
