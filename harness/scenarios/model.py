"""Scenarios as data: a fault plan, a little set-up, and the expectations to judge the run by.

A scenario never states numbers that belong to the integration ("3 retries", "2 s backoff"):
its expectations name *which part of the spec's error-handling policy* applies, and the judge
reads the numbers from the spec. That is what lets one scenario judge a client declared as
"4 retries, exponential" differently from one declared as "fail fast".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.yamlsource import SourceMap

Category = Literal[
    "connection_failures",
    "rate_limit",
    "invalid_data",
    "authentication",
    "service_unavailable",
    "timeouts",
    "data_sync",
    "alerts",
    "custom",
]

CATEGORY_ORDER: tuple[str, ...] = (
    "data_sync",
    "connection_failures",
    "timeouts",
    "rate_limit",
    "service_unavailable",
    "authentication",
    "invalid_data",
    "alerts",
    "custom",
)
"""The order scenarios run and are reported in: the template's Error Handling list, after the
clean run that everything else is compared with."""

PolicyName = Literal["connection_failures", "service_unavailable", "rate_limit", "timeouts"]
"""Which retry budget and backoff of the spec's ``error_handling`` a ``retries`` check uses
(``timeouts`` are connection failures whose failed attempt ended by the client giving up)."""

OutcomeKind = Literal["success", "failure", "recovers", "degrades"]
"""``recovers``: success when every injected failure fit the declared retry budget, else the
declared degradation. ``degrades``: what ``service_unavailable.strategy`` declares
(``fail_fast`` by default)."""

CHECK_NAMES = (
    "outcome",
    "retries",
    "retry_after",
    "rate_compliance",
    "reauth",
    "auth_bounded",
    "token_reuse",
    "timeout",
    "invalid_data",
    "sync_accuracy",
    "alert",
)
"""Every expectation a scenario file can name, in the order they are judged and reported."""

PLACEHOLDERS = {
    "$source": "data_mapping.source_operation",
    "$token": "authentication.token_operation",
    "$destination": "destination.operation",
}
"""Operation placeholders a scenario's fault rules may use, so one file fits any spec."""


@dataclass(frozen=True)
class Expectation:
    """One named check with its parameters (``{}`` when the file said ``true``)."""

    check: str
    params: Mapping[str, Any] = field(default_factory=dict)
    line: int | None = None


@dataclass(frozen=True)
class Setup:
    """How the simulated world starts for this scenario.

    ``records``: the source collection's size; ``"auto"`` is the run's N (from the spec's
    ``launch.success_criteria.records_synced``, scaled). ``token_ttl_seconds`` shortens access
    tokens. ``credentials="revoked"`` makes the token endpoint refuse the integration's
    credentials from the start. ``timeout_seconds`` caps this scenario's run (the spec's
    ``integration_under_test.timeout_seconds`` applies when it is lower).
    """

    records: int | Literal["auto"] = 120
    token_ttl_seconds: float | None = None
    credentials: Literal["valid", "revoked"] = "valid"
    timeout_seconds: float | None = None


@dataclass(frozen=True)
class Scenario:
    """One scenario file, loaded and validated (placeholders still unresolved)."""

    name: str
    title: str
    category: Category
    description: str
    requires: tuple[str, ...]
    setup: Setup
    faults: Mapping[str, Any] | None
    """The fault plan as data (``rules`` and optional ``seed``), validated by the fault-plan
    schema; operation placeholders are resolved against a spec at run time."""
    expect: tuple[Expectation, ...]
    path: Path | None = None
    builtin: bool = False
    source: SourceMap | None = field(default=None, compare=False, repr=False)

    def expectation(self, check: str) -> Expectation | None:
        """The expectation of that name, if the scenario states one."""
        return next((e for e in self.expect if e.check == check), None)
