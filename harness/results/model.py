"""The one results model every stage reports in, and that results.json is written from.

It sits *below* the stages (they build these values) and above nothing but the standard
library, so contract, scenarios and load can share it without importing each other; gate
evaluation, the results.json schema and the report live above the stages and only read it.

Everything is a frozen dataclass of JSON-friendly values: a stage's result can be written the
moment it ends (partial results survive an interrupted run) and read back unchanged by
``harness report``. Evidence is part of the data, never recomputed by the report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

RESULTS_FORMAT_VERSION = 1

Status = Literal["passed", "failed", "error", "skipped", "not_run"]
"""``error``: the harness could not judge (the integration never started, a tool crashed).
``skipped``: deliberately not judged (switched off, not applicable to this spec)."""

StageName = Literal["validate", "contract", "scenarios", "load"]
Verdict = Literal["ready", "not_ready", "error"]
ChecklistStatus = Literal["automated-pass", "automated-fail", "manual", "not-run"]


@dataclass(frozen=True)
class TimelineEntry:
    """One exchange in a request timeline, as the reader of a verdict needs to see it."""

    at_seconds: float
    """Seconds since the start of the scenario/stage (monotonic clock)."""
    side: str
    method: str
    path: str
    status: int | None = None
    """``None`` when no response arrived (reset, hang, client gave up)."""
    operation: str | None = None
    fault: str | None = None
    latency_ms: float | None = None
    note: str = ""
    """E.g. ``early retry (Retry-After 2s, came back after 0.4s)``."""


@dataclass(frozen=True)
class Acceptance:
    """A baseline entry that accepted a known finding: it is shown but does not fail the gate."""

    reason: str
    owner: str
    expires: str
    """ISO date; an expired acceptance no longer accepts."""


@dataclass(frozen=True)
class Finding:
    """One violated expectation, with everything needed to believe and reproduce it."""

    check: str
    """Machine name of the check, e.g. ``not_a_server_error`` or ``response_schema``."""
    message: str
    """The violated expectation in one line, in the spec's or the document's terms."""
    code: str | None = None
    """Stable code: schemathesis' ``ST1xx``-``ST4xx`` where it found it, else the harness' ``HCxxx``."""
    operation: str | None = None
    request: str | None = None
    """``METHOD URL`` plus a redacted body excerpt."""
    response_excerpt: str | None = None
    """Status line and the first part of the body, redacted."""
    json_path: str | None = None
    reproduce: str | None = None
    """A curl command, or ``harness scenarios SPEC --only NAME --seed N``."""
    seed: int | None = None
    accepted: Acceptance | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    """One judged item - a test case in JUnit terms.

    contract: one per operation x check; scenarios: one per scenario; load: one per threshold.
    """

    id: str
    """Stable across runs: ``contract/listPets/response_schema``, ``scenarios/rate-limit-429``."""
    name: str
    status: Status
    summary: str
    """One line, verdict first: ``declared: 4 retries, exponential; observed: 1 attempt``."""
    findings: tuple[Finding, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()
    duration_seconds: float = 0.0
    attributes: Mapping[str, Any] = field(default_factory=dict)
    """Stage-specific keys (operation, check, scenario, policy, seed, stdout/stderr paths)."""


@dataclass(frozen=True)
class Criterion:
    """A success criterion or performance requirement measured against its target."""

    id: str
    """E.g. ``performance.response_time.p95_ms`` - the spec path it comes from."""
    name: str
    target: str
    """Human form: ``<= 800 ms``."""
    measured: str | None
    """Human form, ``None`` when not measured."""
    passed: bool | None
    """``None``: not measured in this run."""
    target_value: float | None = None
    measured_value: float | None = None
    comparison: Literal["<=", ">=", "=="] | None = None
    unit: str | None = None
    source: str | None = None
    """Which stage measured it."""
    evidence: str = ""


@dataclass(frozen=True)
class Series:
    """A time series or distribution for the report's charts: ``points`` are (x, y) pairs."""

    name: str
    x_unit: str
    y_unit: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class StageResult:
    """What one stage found. ``incomplete`` marks a stage cut short (Ctrl-C, crash, timeout)."""

    stage: StageName
    status: Status
    summary: str
    started_at: str = ""
    """ISO 8601, UTC."""
    duration_seconds: float = 0.0
    checks: tuple[CheckResult, ...] = ()
    criteria: tuple[Criterion, ...] = ()
    series: tuple[Series, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    """Aggregates for the report's monitoring section: ``requests``, ``rps``, ``p95_ms``..."""
    artifacts: Mapping[str, str] = field(default_factory=dict)
    """Name -> path relative to the run's output folder (Locust's HTML report, traffic log...)."""
    seed: int | None = None
    incomplete: bool = False
    error: str | None = None

    @property
    def exit_code(self) -> int:
        """The CLI contract for a single stage: 0 passed, 1 failed, 2 error / nothing tested."""
        if self.status == "passed":
            return 0
        if self.status == "failed":
            return 1
        return 2


@dataclass(frozen=True)
class ChecklistItem:
    """One checklist line of the template (error handling, testing strategy, security...)."""

    id: str
    """The spec path, e.g. ``error_handling.rate_limit``."""
    section: str
    label: str
    status: ChecklistStatus
    evidence: str = ""
    check_ids: tuple[str, ...] = ()
    """The ``CheckResult.id`` values that decided it."""


@dataclass(frozen=True)
class RunResult:
    """The whole of results.json."""

    integration: str
    verdict: Verdict
    reasons: tuple[str, ...]
    """Why not ready (or why error), most important first; empty when ready."""
    started_at: str
    duration_seconds: float
    spec_path: str
    spec_sha256: str
    seed: int
    stages: tuple[StageResult, ...]
    criteria: tuple[Criterion, ...] = ()
    checklist: tuple[ChecklistItem, ...] = ()
    versions: Mapping[str, str] = field(default_factory=dict)
    incomplete: bool = False
    format_version: int = RESULTS_FORMAT_VERSION


Progress = Callable[[str], None]
"""How a stage reports progress while it runs: one short line per step (the face shows it)."""


class StageInterrupted(Exception):
    """Raised by a stage cut short by Ctrl-C, carrying what it finished (``incomplete=True``).

    The face writes ``partial`` like any other result, then exits 130: nothing is lost.
    """

    def __init__(self, partial: StageResult) -> None:
        super().__init__(f"{partial.stage} interrupted")
        self.partial = partial
