"""What the integration relies on, checked statically between the spec and the document. (stub)"""

from __future__ import annotations

from harness.project import Project
from harness.results.model import CheckResult


def check_relies_on(project: Project) -> tuple[CheckResult, ...]:
    """One CheckResult per (operation or mapping row) x check: fields, enums, operations, params."""
    return ()
