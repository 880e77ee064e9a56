"""`harness contract`: the contract stage, plus `harness contract diff`.

`harness contract SPEC` runs the stage; `harness contract diff OLD NEW` compares two documents.
A group whose unknown first word is taken as SPEC gives both forms without a `run` subcommand.
"""

from __future__ import annotations

import click


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
    """


@command.command(name="run", short_help="Run the contract stage (the default).")
def run() -> None:
    """Not available yet."""
    raise click.ClickException("harness contract is not available yet")


def _register_diff() -> None:
    from harness.commands.contract_diff import command as diff

    command.add_command(diff, "diff")


_register_diff()
