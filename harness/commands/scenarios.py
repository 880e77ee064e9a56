"""`harness scenarios`: placeholder until its stage lands."""

from __future__ import annotations

import click


@click.command(name="scenarios", short_help="(not available yet)")
def command() -> None:
    """Not available yet."""
    raise click.ClickException("harness scenarios is not available yet")
