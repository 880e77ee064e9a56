"""`harness run`: placeholder until its stage lands."""

from __future__ import annotations

import click


@click.command(name="run", short_help="(not available yet)")
def command() -> None:
    """Not available yet."""
    raise click.ClickException("harness run is not available yet")
