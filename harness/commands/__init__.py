"""Stage commands of the CLI, one module per command, registered by ``harness/cli.py``.

They are faces (the top layer): each parses its options, runs its stage and maps the stage's
result onto the exit-code contract. Keeping them apart from ``cli.py`` lets each stage own its
command without the CLI module growing with every stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.results.model import StageInterrupted, StageResult


def default_out_dir(integration_name: str) -> Path:
    """``reports/<integration>/<UTC timestamp>/``: one folder per run, never overwritten, the
    same for every command so a stage run alone lands where `harness run` would put it."""
    from harness.scaffold import slugify

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path("reports") / slugify(integration_name) / stamp


@dataclass(frozen=True)
class StageRun:
    """What a stage command ran: the result (partial when ``interrupted``) and where it went."""

    result: StageResult
    interrupted: bool
    written: Path


def run_and_write(
    run: Callable[[], StageResult],
    out: Path,
    *,
    junit: Path | None,
    suite_name: str,
) -> StageRun:
    """Run one stage and write ``<stage>.json`` (and JUnit) whatever happens.

    Ctrl-C inside the stage arrives as ``StageInterrupted`` with the partial result, which is
    written like a whole one (marked incomplete): every stage command keeps what it finished.
    """
    from harness.results.serialize import write_json

    try:
        result, interrupted = run(), False
    except StageInterrupted as stop:
        result, interrupted = stop.partial, True
    written = out / f"{result.stage}.json"
    write_json(written, result)
    if junit is not None:
        from harness.report.junit import write_junit

        write_junit(junit, stages=[result], suite_name=suite_name)
    return StageRun(result, interrupted, written)
