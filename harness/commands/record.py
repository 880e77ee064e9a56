"""`harness record SPEC`: record live interactions as vcrpy cassettes. (placeholder)"""

from __future__ import annotations

import click


@click.command(name="record", short_help="(not available yet)")
def command() -> None:
    """Not available yet."""
    raise click.ClickException("harness record is not available yet")
