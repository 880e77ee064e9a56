"""`harness contract`: the contract stage, plus `harness contract diff`.

`harness contract SPEC` runs the stage; `harness contract diff OLD NEW` compares two documents.
A group whose unknown first word is taken as SPEC gives both forms without a `run` subcommand.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from harness.commands import default_out_dir, run_and_write

if TYPE_CHECKING:
    from harness.results.model import StageResult


class _SpecOrSubcommand(click.Group):
    """`contract SPEC ...` runs the stage; `contract diff ...` the subcommand."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in self.commands:
            return super().resolve_command(ctx, args)
        return "run", self.commands["run"], args

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(
    name="contract",
    cls=_SpecOrSubcommand,
    short_help="Contract tests from the provider's OpenAPI document.",
)
def command() -> None:
    """Contract tests derived from the provider's OpenAPI document (schemathesis), checks of
    what the integration relies on, and drift against recorded cassettes.

    \b
      harness contract SPEC [OPTIONS]        run the contract stage
      harness contract diff OLD NEW [--spec SPEC]   breaking changes between two documents

    The stage's options: harness contract run --help (or harness contract SPEC --help).
    """


def _operations(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    """``--operations a,b --operations c`` -> ``("a", "b", "c")``."""
    return tuple(part.strip() for item in value for part in item.split(",") if part.strip())


@command.command(name="run", short_help="Run the contract stage (the default).")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path), metavar="SPEC")
@click.option(
    "--target",
    type=click.Choice(["simulated", "live", "cassettes"]),
    help="Default: the spec's provider.mode. simulated: the harness serves the provider"
    " document itself; live: the spec's"
    " provider.live.base_url (allow-listed hosts only, under the spec's rate limit, no unsafe"
    " methods unless allowed); cassettes: recorded responses validated against the document.",
)
@click.option(
    "--max-examples",
    type=click.IntRange(1, 100_000),
    help="Generated cases per operation and phase (default: the spec's contract.max_examples, else 25).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for every generated case."
)
@click.option(
    "--operations",
    multiple=True,
    callback=_operations,
    metavar="ID[,ID...]",
    help="Only these operationIds (repeat the option or separate with commas). Default: all.",
)
@click.option(
    "--base-url",
    metavar="URL",
    help="With --target live: send here instead of provider.live.base_url (the host must be on"
    " provider.live.allowed_hosts).",
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False, path_type=Path, exists=True),
    help="Known findings to accept (each with reason, owner and expiry date).",
)
@click.option(
    "--cassettes",
    "cassettes_dir",
    type=click.Path(path_type=Path),
    help="With --target cassettes: the cassette file or folder (default: cassettes/).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: reports/<integration>/<UTC timestamp>/).",
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write JUnit XML here (one test case per operation x check).",
)
def run(
    spec: Path,
    target: str | None,
    max_examples: int | None,
    seed: int,
    operations: tuple[str, ...],
    base_url: str | None,
    baseline: Path | None,
    cassettes_dir: Path | None,
    out_dir: Path | None,
    junit: Path | None,
) -> None:
    """Test the provider of SPEC against its OpenAPI document.

    schemathesis derives cases from the document - examples, boundary values, positive and
    negative requests, stateful sequences along its links - and every response meets all of
    schemathesis' checks plus the harness's own (body schema with formats, documented status,
    content type and headers, the spec's rate-limit header contract, accepted credentials).
    Auth comes from the spec (OAuth2 tokens are fetched and refreshed). What the integration
    relies on in the document and its data mapping are checked too.

    Writes contract.json and contract/requests.jsonl to the output folder. Exit 0 when every
    judged check passed, 1 when one failed, 2 on bad input or when nothing could be tested.

    \b
      harness contract contracts/petstore/integration.yaml
      harness contract SPEC --max-examples 50 --seed 7 --operations listPets,getPet
      harness contract SPEC --target live --base-url https://sandbox.petstore.example/v1
      harness contract SPEC --target cassettes --cassettes cassettes/
    """
    sys.exit(
        _run(
            spec,
            target=target,
            max_examples=max_examples,
            seed=seed,
            operations=operations,
            base_url=base_url,
            baseline=baseline,
            cassettes_dir=cassettes_dir,
            out_dir=out_dir,
            junit=junit,
        )
    )


def _run(
    spec: Path,
    *,
    target: str | None,
    max_examples: int | None,
    seed: int,
    operations: tuple[str, ...],
    base_url: str | None,
    baseline: Path | None,
    cassettes_dir: Path | None,
    out_dir: Path | None,
    junit: Path | None,
) -> int:
    """Load, run, write contract.json (and JUnit), print the summary; the exit code."""
    # Imports and documents live until exit: no collection while they load, and none of
    # them walked by the collections of the run (the servers do the same).
    gc.disable()
    try:
        from harness.contract.options import TARGETS, ContractOptions
        from harness.contract.runner import run_contract
        from harness.project import load_project

        project = load_project(spec, display=str(spec))
    finally:
        gc.freeze()
        gc.enable()
    options = ContractOptions(
        target=next((t for t in TARGETS if t == target), None),
        max_examples=max_examples,
        seed=seed,
        operations=operations,
        base_url=base_url,
        baseline=baseline,
        cassettes_dir=cassettes_dir,
    )
    out = out_dir if out_dir is not None else default_out_dir(project.spec.spec.name)

    def progress(line: str) -> None:
        click.echo(line, err=True)

    done = run_and_write(
        lambda: run_contract(project, options, out, progress),
        out,
        junit=junit,
        suite_name=f"contract: {project.spec.spec.name}",
    )
    if done.interrupted:
        click.echo(f"harness: interrupted; partial results in {done.written}", err=True)
        return 130
    result = done.result
    _print_summary(result, out, junit)
    # Everything is written and the process is about to exit: keep the collector from walking
    # every object schemathesis and hypothesis built on the way out (~0.3 s of a 4 s run).
    gc.freeze()
    return result.exit_code


def _print_summary(result: StageResult, out: Path, junit: Path | None) -> None:
    """One screen: a table per operation, the failing checks with their first finding."""
    from collections import Counter, defaultdict

    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=False)
    per_op: dict[str, Counter[str]] = defaultdict(Counter)
    for check in result.checks:
        op = str(check.attributes.get("operation") or check.id.split("/")[1])
        per_op[op][check.status] += 1
    table = Table(title=f"contract: {result.status.upper()}", title_justify="left")
    for column in ("operation", "passed", "failed", "skipped", "not judged"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for op, counts in per_op.items():
        table.add_row(
            op,
            str(counts["passed"]),
            f"[red]{counts['failed']}[/red]" if counts["failed"] else "0",
            str(counts["skipped"]),
            str(counts["not_run"] + counts["error"]),
        )
    console.print(table)
    failing = [c for c in result.checks if c.status in ("failed", "error")]
    for check in failing[:12]:
        first = check.findings[0] if check.findings else None
        code = f"[{first.code}] " if first is not None and first.code else ""
        console.print(
            f"[bold]{check.status.upper()}[/bold] {check.id}: {code}{check.summary}", markup=True
        )
        if first is not None and first.request:
            console.print(f"    request: {first.request.splitlines()[0]}", markup=False)
        if first is not None and first.json_path:
            console.print(f"    at: {first.json_path}", markup=False)
    if len(failing) > 12:
        console.print(f"... and {len(failing) - 12} more in contract.json", markup=False)
    console.print(result.summary, markup=False)
    if result.error:
        console.print(f"error: {result.error}", markup=False)
    console.print(
        f"results: {out / 'contract.json'}" + (f", JUnit: {junit}" if junit else ""), markup=False
    )


def _register_diff() -> None:
    from harness.commands.contract_diff import command as diff

    command.add_command(diff, "diff")


_register_diff()
