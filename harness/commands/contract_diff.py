"""`harness contract diff OLD_DOC NEW_DOC [--spec SPEC] [--format text|json]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from harness.contract.diff import Change, DiffReport


@click.command(name="diff", short_help="Breaking changes between two provider documents.")
@click.argument("old_doc", metavar="OLD_DOC")
@click.argument("new_doc", metavar="NEW_DOC")
@click.option(
    "--spec",
    "spec_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="SPEC",
    help="Integration spec: mark the changes the integration relies on, fail only on those.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: every change with its classification, for CI.",
)
def command(old_doc: str, new_doc: str, spec_path: Path | None, output_format: str) -> None:
    """List the changes from OLD_DOC to NEW_DOC (two versions of the provider's OpenAPI
    document, files or URLs; Swagger 2.0, OpenAPI 3.0 or 3.1), each breaking or non-breaking.

    \b
    Breaking for a client: a removed operation, parameter, field, response code, media type or
    response header; a type change other than a widened request / narrowed response type; a
    newly required request field or parameter; a narrowed request enum or a widened response
    enum; a changed security scheme or security requirement; a moved base path.

    With --spec, changes are marked [used] when they touch what the integration relies on: the
    operations it calls (authentication.token_operation, data_mapping.source_operation), the
    fields its mapping reads and the fields it sends. A widened response enum then breaks only
    a field the mapping translates (transformation kind: enum).

    Exit 1 when a used part breaks (with --spec) or when anything breaks (without); 0
    otherwise; 2 for unreadable or invalid documents. docs/contract-static.md has the rules.
    """
    from harness.contract.diff import diff_documents
    from harness.openapi.document import load_document
    from harness.spec.loader import load_spec

    spec = load_spec(spec_path, display=str(spec_path)).spec if spec_path is not None else None
    old = load_document(old_doc, Path.cwd(), display=old_doc)
    new = load_document(new_doc, Path.cwd(), display=new_doc)
    report = diff_documents(old, new, spec, spec_name=None if spec_path is None else str(spec_path))
    if output_format == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _print(report)
    raise SystemExit(report.exit_code)


def _print(report: DiffReport) -> None:
    click.echo(f"{report.old} -> {report.new}")
    if not report.changes:
        click.echo("  no changes a client could notice")
    for change in report.changes:
        click.echo("  " + _line(change, with_usage=report.spec is not None))
    breaking = len(report.breaking)
    summary = (
        f"{len(report.changes)} change{'s' if len(report.changes) != 1 else ''}: "
        f"{breaking} breaking, {len(report.changes) - breaking} non-breaking"
    )
    if report.spec is not None:
        summary += f"; {len(report.used_breaking)} breaking change(s) in what {report.spec} uses"
    click.echo(summary)


def _line(change: Change, *, with_usage: bool) -> str:
    label = "BREAKING    " if change.breaking else "non-breaking"
    target = change.operation if change.operation != "*" else "(document)"
    if change.method:
        target += f" {change.method} {change.path}"
    lines = []
    if change.old_line is not None:
        lines.append(f"old:{change.old_line}")
    if change.new_line is not None:
        lines.append(f"new:{change.new_line}")
    text = f"{label}  {target}  {change.where}: {change.message}"
    if with_usage:
        text += "  [used]" if change.used else "  [unused]"
    if lines:
        text += f"  ({' '.join(lines)})"
    if change.note and not change.note.startswith("serves:"):
        text += f"  - {change.note}"
    return text
