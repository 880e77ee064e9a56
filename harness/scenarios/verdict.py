"""From judgements to a ``CheckResult``: the verdict, its one-line summary, findings, timeline.

A scenario's verdict is ``error`` when the harness could not judge at all (the integration did
not start, made no request, or the fault never fired), ``failed`` when any expectation failed,
``passed`` otherwise. The summary leads with the first failed expectation in the spec's terms;
the timeline shows every provider exchange and enough of the destination's to read the story.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.provider.traffic import TrafficRecord
from harness.results.model import CheckResult, Finding, Status, TimelineEntry
from harness.scenarios.checks import CODES, Judgement
from harness.scenarios.observe import Observation, failed_attempt, retry_after_seconds
from harness.scenarios.policy import ms

PROVIDER_TIMELINE_LIMIT = 300
DESTINATION_HEAD = 10
DESTINATION_TAIL = 3


def unjudgeable(observation: Observation) -> str | None:
    """Why the harness cannot judge this run at all, or None."""
    process = observation.process
    if process.start_error is not None:
        return f"the integration did not start: {process.start_error}"
    if not observation.provider:
        last = _last_line(process.stderr)
        how = f"exit status {process.exit_code}" if process.ended_on_its_own else "stopped"
        return (
            f"the integration made no request to the provider ({how} after {process.duration:.1f} s)"
            + (f": {last}" if last else "")
        )
    if observation.plan.rules and observation.fired() == 0:
        names = ", ".join(rule.name for rule in observation.plan.rules)
        return (
            f"the fault plan never fired (no request matched {names}): the scenario tested nothing"
        )
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def verdict_status(judgements: Sequence[Judgement]) -> Status:
    statuses = {j.status for j in judgements}
    if "failed" in statuses:
        return "failed"
    if "error" in statuses:
        return "error"
    if "passed" in statuses:
        return "passed"
    return "skipped"


def summary_line(status: Status, judgements: Sequence[Judgement], reason: str | None = None) -> str:
    if reason is not None:
        return f"error: {reason}"
    failed = sorted((j for j in judgements if j.status == "failed"), key=_lead)
    if failed:
        more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
        return f"{failed[0].check}: {failed[0].line}{more}"
    errors = [j for j in judgements if j.status == "error"]
    if errors:
        return f"error: {errors[0].check}: {errors[0].observed}"
    judged = [j.check for j in judgements if j.status == "passed"]
    return f"passed: {len(judged)} expectations held ({', '.join(judged)})"


SUMMARY_ORDER = (
    "retries",
    "retry_after",
    "reauth",
    "auth_bounded",
    "token_reuse",
    "timeout",
    "invalid_data",
    "rate_compliance",
    "outcome",
    "alert",
    "sync_accuracy",
    "no_crash",
)
"""Which failed expectation leads the summary: the most specific evidence first."""


def _lead(judgement: Judgement) -> int:
    return SUMMARY_ORDER.index(judgement.check) if judgement.check in SUMMARY_ORDER else 0


def findings(
    observation: Observation, judgements: Sequence[Judgement], reproduce: str, seed: int
) -> tuple[Finding, ...]:
    out = []
    for judgement in judgements:
        if judgement.status != "failed":
            continue
        out.append(
            Finding(
                check=f"scenario.{judgement.check}",
                message=judgement.line,
                code=CODES.get(judgement.check),
                operation=observation.operations.source,
                reproduce=reproduce,
                seed=seed,
                details=dict(judgement.details),
            )
        )
    return tuple(out)


def timeline(
    observation: Observation, judgements: Sequence[Judgement]
) -> tuple[TimelineEntry, ...]:
    """Every provider exchange, and the head, the failures and the tail of the destination's."""
    marks: dict[tuple[str, int], list[str]] = {}
    for judgement in judgements:
        for seq, note in judgement.marks.items():
            marks.setdefault(("provider", seq), []).append(note)
    provider = sorted(observation.provider, key=lambda r: r.started_monotonic)
    entries = [
        _entry(observation, r, marks.get(("provider", r.seq), []))
        for r in provider[:PROVIDER_TIMELINE_LIMIT]
    ]
    if len(provider) > PROVIDER_TIMELINE_LIMIT:
        last = provider[PROVIDER_TIMELINE_LIMIT - 1]
        entries.append(
            TimelineEntry(
                observation.at(last.started_monotonic),
                "provider",
                "...",
                "",
                note=f"{len(provider) - PROVIDER_TIMELINE_LIMIT} more provider requests in the traffic log",
            )
        )
    writes = sorted(observation.destination_traffic, key=lambda r: r.started_monotonic)
    keep = set(range(min(DESTINATION_HEAD, len(writes))))
    keep |= set(range(max(0, len(writes) - DESTINATION_TAIL), len(writes)))
    keep |= {i for i, r in enumerate(writes) if r.status is None or r.status >= 300}
    skipped = 0
    for index, record in enumerate(writes):
        if index in keep:
            if skipped:
                entries.append(_gap(observation, record, skipped))
                skipped = 0
            entries.append(_entry(observation, record, []))
        else:
            skipped += 1
    return tuple(sorted(entries, key=lambda e: e.at_seconds))


def _gap(observation: Observation, before: TrafficRecord, skipped: int) -> TimelineEntry:
    return TimelineEntry(
        observation.at(before.started_monotonic) - 1e-6,
        "destination",
        "...",
        "",
        note=f"{skipped} more successful writes (see the destination traffic log)",
    )


def _entry(observation: Observation, record: TrafficRecord, notes: list[str]) -> TimelineEntry:
    extra: list[str] = []
    kind = observation.fault_kind(record)
    if record.status == 429 or (record.status == 503 and record.response_header("retry-after")):
        told = retry_after_seconds(record)
        if told is not None:
            extra.append(f"Retry-After {ms(told)}")
    if record.note and record.note not in ("replayed",):
        extra.append(record.note)
    if record.early_retry:
        extra.append("early retry (before Retry-After)")
    if kind == "hang":
        extra.append(
            f"no answer; connection closed after {record.ended_monotonic - record.started_monotonic:.1f} s"
        )
    elif failed_attempt(observation, record) and record.status is None:
        extra.append("no response")
    query = f"?{record.query}" if record.query else ""
    return TimelineEntry(
        at_seconds=round(observation.at(record.started_monotonic), 4),
        side=record.side,
        method=record.method,
        path=record.path + query,
        status=record.status,
        operation=record.operation_id,
        fault=f"{record.fault} ({kind})" if record.fault and kind else record.fault,
        latency_ms=round(record.latency_ms, 1),
        note="; ".join([*extra, *notes]),
    )


def check_result(
    observation: Observation,
    judgements: Sequence[Judgement],
    *,
    reproduce: str,
    seed: int,
    attributes: dict[str, Any],
) -> CheckResult:
    reason = unjudgeable(observation)
    status: Status = "error" if reason is not None else verdict_status(judgements)
    scenario = observation.scenario
    return CheckResult(
        id=f"scenarios/{scenario.name}",
        name=scenario.title,
        status=status,
        summary=summary_line(status, judgements, reason),
        findings=() if reason is not None else findings(observation, judgements, reproduce, seed),
        timeline=timeline(observation, judgements),
        duration_seconds=round(observation.process.duration, 3),
        attributes={
            **attributes,
            "expectations": [
                {
                    "check": j.check,
                    "status": j.status,
                    "declared": j.declared,
                    "observed": j.observed,
                    **({"details": dict(j.details)} if j.details else {}),
                }
                for j in judgements
            ],
        },
    )
