"""`harness load`: placeholder until its stage lands."""

from __future__ import annotations

import click


@click.command(name="load", short_help="(not available yet)")
def command() -> None:
    """Not available yet."""
    raise click.ClickException("harness load is not available yet")
