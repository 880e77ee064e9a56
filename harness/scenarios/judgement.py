"""What a judge returns, and the small helpers every judge shares.

A ``Judgement`` says, in the spec's terms, what was declared and what was observed
("declared: 4 retries, exponential backoff from 100 ms; observed: 1 attempt, no retry"), plus
notes for the request timeline. Crash detection lives here too: every judge that reads an exit
status must tell a decision to fail from an unhandled error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.provider.traffic import TrafficRecord
from harness.scenarios.observe import (
    Observation,
)

JudgementStatus = Literal["passed", "failed", "skipped", "error"]


CODES = {
    "no_crash": "HC500",
    "outcome": "HC501",
    "retries": "HC502",
    "retry_after": "HC503",
    "rate_compliance": "HC504",
    "reauth": "HC505",
    "auth_bounded": "HC506",
    "token_reuse": "HC507",
    "timeout": "HC508",
    "invalid_data": "HC509",
    "sync_accuracy": "HC510",
    "alert": "HC511",
}
"""Stable finding codes for the scenario checks (``HC5xx``)."""


CRASH_MARKERS = (
    re.compile(r"^Traceback \(most recent call last\):", re.M),  # Python
    re.compile(r"^panic: ", re.M),  # Go
    re.compile(r"^Exception in thread \"", re.M),  # Java
    re.compile(r"^Uncaught \w*(Error|Exception)", re.M),  # Node.js
    re.compile(r"^thread '.*' panicked at", re.M),  # Rust
)
"""Output that means the process died of an unhandled error, not a decision to fail."""


DEFAULT_AUTH_ATTEMPTS = 3


@dataclass(frozen=True)
class Judgement:
    """The verdict on one expectation, with the evidence in words."""

    check: str
    status: JudgementStatus
    declared: str
    observed: str
    details: Mapping[str, Any] = field(default_factory=dict)
    marks: Mapping[int, str] = field(default_factory=dict)
    """Traffic-record seq -> a note for the request timeline ("retry 2 after 0.21 s")."""

    @property
    def line(self) -> str:
        return f"declared: {self.declared}; observed: {self.observed}"


Judge = Callable[[Observation, Mapping[str, Any]], Judgement]


def passed(check: str, declared: str, observed: str, **extra: Any) -> Judgement:
    return Judgement(check, "passed", declared, observed, **extra)


def failed(check: str, declared: str, observed: str, **extra: Any) -> Judgement:
    return Judgement(check, "failed", declared, observed, **extra)


def skipped(check: str, why: str) -> Judgement:
    return Judgement(check, "skipped", why, "not judged")


def at(observation: Observation, moment: float) -> str:
    return f"{observation.at(moment):.2f} s"


def target_operation(observation: Observation, params: Mapping[str, Any]) -> str | None:
    operation = params.get("operation")
    placeholders = {
        "$source": observation.operations.source,
        "$token": observation.operations.token,
        "$destination": observation.operations.destination,
    }
    if isinstance(operation, str):
        return placeholders.get(operation, operation)
    return None


def faulted_operations(observation: Observation) -> set[str | None]:
    """Operations the scenario's fault rules fired on, on either side."""
    return {r.operation_id for r in both_sides(observation) if r.fault is not None}


def both_sides(observation: Observation) -> tuple[TrafficRecord, ...]:
    return (*observation.provider, *observation.destination_traffic)


def crash_evidence(observation: Observation) -> str | None:
    """Why the run counts as a crash, or None."""
    process = observation.process
    if process.exit_code is not None and process.exit_code < 0 and process.ended_on_its_own:
        return f"killed by signal {-process.exit_code}"
    for marker in CRASH_MARKERS:
        match = marker.search(process.stderr) or marker.search(process.stdout)
        if match is not None:
            tail = [line for line in process.stderr.strip().splitlines() if line.strip()]
            last = tail[-1].strip() if tail else match.group(0)
            return f"crashed with an unhandled error ({last[:160]})"
    return None


def plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def count_phrase(n: float, noun: str) -> str:
    if math.isinf(n):
        return f"persistent {noun}s"
    return f"{int(n)} {noun}{'s' if n != 1 else ''}"


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""
