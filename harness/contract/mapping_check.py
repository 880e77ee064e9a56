"""Data mapping checks: generated provider records through the integration's transformation. (stub)"""

from __future__ import annotations

from harness.project import Project
from harness.results.model import CheckResult


def check_data_mapping(
    project: Project, *, seed: int, max_examples: int
) -> tuple[CheckResult, ...]:
    """One CheckResult per mapping row plus one for destination-schema validity."""
    return ()
