"""Recorded responses (cassettes) validated against the current document: drift. (stub)"""

from __future__ import annotations

from pathlib import Path

from harness.project import Project
from harness.results.model import CheckResult


def check_cassettes(project: Project, cassettes: Path) -> tuple[CheckResult, ...]:
    """One CheckResult per operation x check over every recorded interaction."""
    return ()
