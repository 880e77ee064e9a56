"""`harness contract diff OLD NEW [--spec SPEC]`. (placeholder)"""

from __future__ import annotations

import click


@click.command(name="diff", short_help="Breaking changes between two provider documents.")
def command() -> None:
    """Not available yet."""
    raise click.ClickException("harness contract diff is not available yet")
