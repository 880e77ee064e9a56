"""What regressed between two runs: ``harness report --compare OLD NEW``.

Compared, in this order: the verdict, every success criterion (pass -> fail), the p95 response
time and the error rate (worse by more than the tolerance), scenario verdicts and other checks
(passed -> failed / error, or a new check that fails), and contract findings that are new in
NEW (not accepted by a baseline). Improvements are listed too but never change the exit code:
a CI job that runs ``--compare`` fails on regressions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.results.model import CheckResult, Finding, RunResult

P95_ID = "performance.response_time.p95_ms"
ERROR_RATE_ID = "launch.success_criteria.max_error_rate_percent"
P95_FLOOR_MS = 1.0
"""A p95 change smaller than this is noise, whatever the percentage."""
ERROR_RATE_FLOOR = 0.05
"""Percentage points of error rate below which a change is noise."""


@dataclass(frozen=True)
class Change:
    kind: str
    item: str
    detail: str
    direction: Literal["regressed", "improved"]


def _criterion_word(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "not measured"}[passed]


def _metric(run: RunResult, criterion_id: str, metric: str) -> tuple[float | None, str]:
    """A figure from the criterion when measured, else from the load stage's metrics
    (``metric``, or ``metric_percent``)."""
    for criterion in run.criteria:
        if criterion.id == criterion_id and criterion.measured_value is not None:
            return criterion.measured_value, criterion.unit or ""
    for stage in run.stages:
        for name, unit in ((metric, ""), (f"{metric}_percent", "%")):
            if stage.stage == "load" and name in stage.metrics:
                return stage.metrics[name], unit
    return None, ""


def _numeric(
    kind: str,
    old: RunResult,
    new: RunResult,
    criterion_id: str,
    metric: str,
    *,
    tolerance: float,
    floor: float,
) -> list[Change]:
    before, unit = _metric(old, criterion_id, metric)
    after, unit_new = _metric(new, criterion_id, metric)
    if before is None or after is None:
        return []
    unit = unit or unit_new
    delta = after - before
    limit = max(floor, abs(before) * tolerance)
    if abs(delta) <= limit:
        return []
    share = f" ({delta / before:+.0%})" if before else ""
    detail = f"{before:g} -> {after:g} {unit}".rstrip() + share
    return [Change(kind, metric, detail, "regressed" if delta > 0 else "improved")]


def _finding_key(check: CheckResult, finding: Finding) -> tuple[str | None, ...]:
    return (
        check.id,
        finding.check,
        finding.code,
        finding.operation,
        finding.json_path,
        finding.message,
    )


def _checks(run: RunResult) -> dict[str, tuple[str, CheckResult]]:
    return {check.id: (stage.stage, check) for stage in run.stages for check in stage.checks}


def compare_runs(old: RunResult, new: RunResult, *, tolerance: float = 0.10) -> list[Change]:
    """Every regression and improvement from ``old`` to ``new``, regressions first."""
    changes: list[Change] = []
    if old.verdict != new.verdict:
        worse = new.verdict != "ready" and (old.verdict == "ready" or new.verdict == "not_ready")
        changes.append(
            Change(
                "verdict",
                "verdict",
                f"{old.verdict} -> {new.verdict}",
                "regressed" if worse else "improved",
            )
        )
    before = {c.id: c for c in old.criteria}
    for criterion in new.criteria:
        earlier = before.get(criterion.id)
        passed_before = earlier.passed if earlier else None
        if passed_before == criterion.passed:
            continue
        shown = f"{_criterion_word(passed_before)} -> {_criterion_word(criterion.passed)}"
        measured = f"{earlier.measured if earlier else 'absent'} -> {criterion.measured}"
        detail = f"{shown} ({measured}, target {criterion.target})"
        if criterion.passed is False:
            changes.append(Change("criterion", criterion.id, detail, "regressed"))
        elif criterion.passed is True and passed_before is False:
            changes.append(Change("criterion", criterion.id, detail, "improved"))
    changes += _numeric("p95", old, new, P95_ID, "p95_ms", tolerance=tolerance, floor=P95_FLOOR_MS)
    changes += _numeric(
        "error rate",
        old,
        new,
        ERROR_RATE_ID,
        "error_rate",
        tolerance=tolerance,
        floor=ERROR_RATE_FLOOR,
    )
    old_checks = _checks(old)
    for check_id, (stage, check) in _checks(new).items():
        kind = "scenario" if stage == "scenarios" else f"{stage} check"
        previous = old_checks.get(check_id)
        was = previous[1].status if previous else "absent"
        bad = check.status in ("failed", "error")
        if bad and was not in ("failed", "error"):
            changes.append(
                Change(kind, check_id, f"{was} -> {check.status}: {check.summary}", "regressed")
            )
        elif not bad and check.status == "passed" and was in ("failed", "error"):
            changes.append(Change(kind, check_id, f"{was} -> passed", "improved"))
    known = {
        _finding_key(check, finding)
        for _, check in old_checks.values()
        for finding in check.findings
    }
    for result in new.stages:
        if result.stage != "contract":
            continue
        for check in result.checks:
            for finding in check.findings:
                if finding.accepted is not None or _finding_key(check, finding) in known:
                    continue
                where = f" at {finding.json_path}" if finding.json_path else ""
                code = f"[{finding.code}] " if finding.code else ""
                changes.append(
                    Change(
                        "new contract finding",
                        check.id,
                        f"{code}{finding.message}{where}",
                        "regressed",
                    )
                )
    changes.sort(key=lambda change: change.direction != "regressed")
    return changes


def format_comparison(old: RunResult, new: RunResult, changes: list[Change]) -> str:
    """The text ``--compare`` prints: regressions first, then improvements."""
    lines = [
        f"old: {old.integration}, {old.started_at or 'unknown start'}, verdict {old.verdict}",
        f"new: {new.integration}, {new.started_at or 'unknown start'}, verdict {new.verdict}",
    ]
    regressed = [c for c in changes if c.direction == "regressed"]
    improved = [c for c in changes if c.direction == "improved"]
    if regressed:
        lines.append(f"REGRESSED ({len(regressed)}):")
        lines += [f"  {c.kind} {c.item}: {c.detail}" for c in regressed]
    else:
        lines.append("no regressions")
    if improved:
        lines.append(f"improved ({len(improved)}):")
        lines += [f"  {c.kind} {c.item}: {c.detail}" for c in improved]
    return "\n".join(lines)
