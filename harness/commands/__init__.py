"""Stage commands of the CLI, one module per command, registered by ``harness/cli.py``.

They are faces (the top layer): each parses its options, runs its stage and maps the stage's
result onto the exit-code contract. Keeping them apart from ``cli.py`` lets each stage own its
command without the CLI module growing with every stage.
"""

from datetime import UTC, datetime
from pathlib import Path


def default_out_dir(integration_name: str) -> Path:
    """``reports/<integration>/<UTC timestamp>/``: one folder per run, never overwritten, the
    same for every command so a stage run alone lands where `harness run` would put it."""
    from harness.scaffold import slugify

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path("reports") / slugify(integration_name) / stamp
