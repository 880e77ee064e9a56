"""`harness report`: placeholder until its stage lands."""

from __future__ import annotations

import click


@click.command(name="report", short_help="(not available yet)")
def command() -> None:
    """Not available yet."""
    raise click.ClickException("harness report is not available yet")
