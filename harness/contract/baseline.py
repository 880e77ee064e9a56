"""Known, accepted findings (each with a reason, an owner and an expiry date). (stub)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from harness.results.model import CheckResult


@dataclass(frozen=True)
class Baseline:
    """Accepted findings, loaded from a YAML file."""

    path: str
    entries: tuple[object, ...] = ()


def load_baseline(path: Path) -> Baseline:
    """Read and validate a baseline file (InputError on bad input)."""
    return Baseline(path=str(path))


def apply_baseline(
    checks: Sequence[CheckResult], baseline: Baseline, today: date
) -> tuple[CheckResult, ...]:
    """Mark accepted findings; checks failing only on accepted findings pass; expired ones fail."""
    return tuple(checks)
