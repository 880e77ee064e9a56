"""`harness contract`: placeholder until its stage lands."""

from __future__ import annotations

import click


@click.command(name="contract", short_help="(not available yet)")
def command() -> None:
    """Not available yet."""
    raise click.ClickException("harness contract is not available yet")
