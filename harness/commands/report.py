"""`harness report`: re-render a run's report from its results.json, or compare two runs."""

from __future__ import annotations

from pathlib import Path

import click

from harness.problems import InputError, Problem

# The CLI's exit-code contract (harness/cli.py); not imported from there: cli imports us.
EXIT_OK, EXIT_FAILED = 0, 1

_RUN_PATH = click.Path(path_type=Path)


@click.command(
    name="report",
    short_help="Re-render readiness.html from results.json, or compare two runs.",
)
@click.argument("directory", required=False, type=_RUN_PATH, metavar="[DIR]")
@click.option(
    "--compare",
    "compare",
    nargs=2,
    type=_RUN_PATH,
    metavar="OLD NEW",
    help="Compare two runs (folders or results.json files) instead: exit 1 if NEW regressed.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(0, 1000),
    default=10.0,
    show_default=True,
    help="With --compare: percent by which p95 and error rate may worsen before it counts.",
)
def command(directory: Path | None, compare: tuple[Path, Path] | None, tolerance: float) -> int:
    """Re-render DIR/readiness.html and DIR/junit.xml from DIR/results.json.

    The monitoring section is re-aggregated from the traffic logs listed in results.json when
    they are still in DIR. Exit 0 when written.

    With --compare OLD NEW, print what regressed from OLD to NEW: the verdict, success
    criteria that now fail, p95 and error rate worse than --tolerance, scenarios and checks
    that now fail, and contract findings that are new. Exit 1 if anything regressed, 0 if not.

    \b
      harness report reports/petstore-inventory-sync/20261120-100000
      harness report --compare reports/petstore/OLD reports/petstore/NEW

    Bad input (no results.json, not JSON, not matching its schema): one line per problem, exit 2.
    """
    from harness.results.schema import read_results

    if compare is not None:
        if directory is not None:
            raise InputError(
                [Problem(str(directory), None, "", "give either DIR or --compare OLD NEW")]
            )
        from harness.report.compare import compare_runs, format_comparison

        old, new = (read_results(path) for path in compare)
        changes = compare_runs(old, new, tolerance=tolerance / 100)
        click.echo(format_comparison(old, new, changes))
        return EXIT_FAILED if any(c.direction == "regressed" for c in changes) else EXIT_OK
    if directory is None:
        raise click.UsageError("give DIR (a run's output folder) or --compare OLD NEW")
    from harness.report.html import write_html
    from harness.report.junit import write_junit

    run = read_results(directory)
    folder = directory if directory.is_dir() else directory.parent
    page = write_html(run, folder)
    write_junit(
        folder / "junit.xml",
        run.stages,
        suite_name=run.integration,
        criteria=run.criteria,
        checklist=run.checklist,
    )
    verdict = {"ready": "READY", "not_ready": "NOT READY", "error": "ERROR"}[run.verdict]
    click.echo(f"{page} ({verdict}{', incomplete' if run.incomplete else ''})")
    click.echo(f"{folder / 'junit.xml'}")
    return EXIT_OK
