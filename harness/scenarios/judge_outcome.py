"""How the run ended: no crash, the declared outcome or degradation, and the alerts.

``recovers`` reads the fault plan to count the failures a persistent client meets in a row and
compares them with the declared retry budget: within it the run must complete, beyond it the
integration must degrade as ``service_unavailable.strategy`` declares (fail fast by default;
a circuit breaker must then stay open for its interval).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from harness.scenarios.judgement import (
    Judgement,
    at,
    count_phrase,
    crash_evidence,
    failed,
    last_line,
    passed,
    skipped,
)
from harness.scenarios.observe import (
    Observation,
    describe_request,
    failed_attempt,
)
from harness.scenarios.policy import (
    LOWER_TOLERANCE_SECONDS,
    degradation,
    describe_degradation,
    ms,
    retry_policy,
)


def judge_no_crash(observation: Observation, params: Mapping[str, Any]) -> Judgement:
    """The process ends on its own, within the scenario's time, without an unhandled error."""
    process = observation.process
    declared = "the integration ends on its own without crashing (no unhandled error)"
    if process.timed_out:
        return failed(
            "no_crash",
            declared,
            f"still running after {process.duration:.1f} s (the scenario's limit); stopped",
        )
    if process.stopped:
        return failed("no_crash", declared, f"stopped by the harness: {process.stopped}")
    crash = crash_evidence(observation)
    if crash is not None:
        return failed("no_crash", declared, f"{crash}; exit status {process.exit_code}")
    return passed(
        "no_crash", declared, f"exit status {process.exit_code} after {process.duration:.1f} s"
    )


def planned_failures(observation: Observation, operation: str | None) -> float:
    """How many consecutive failures the fault plan gives a request that keeps retrying.

    The failing counts of every rule on the operation are merged (a reset on the first
    request and a closed connection on the second make two failures in a row); a rule that
    keeps firing (``always``, ``after``, a window) is persistent.
    """
    failing: set[int] = set()
    for rule in observation.plan.rules:
        action = rule.action
        if action.kind not in FAILING_ACTIONS:
            continue
        if action.kind == "status" and not _is_failure_status(getattr(action, "status", 0)):
            continue
        operations = rule.match.operations
        if operation is not None and operations is not None and operation not in operations:
            continue
        when = rule.when
        if when.kind == "nth":
            counts = sorted(getattr(when, "counts", ()))
        elif when.kind == "every":
            step = getattr(when, "n", 1)
            if step == 1:
                return math.inf
            counts = list(range(step, PLAN_HORIZON, step))
        elif when.kind == "probability":
            counts = [1]
        else:
            return math.inf
        if rule.times is not None:
            counts = counts[: rule.times]
        failing.update(counts)
    longest = run = 0
    for count in range(1, PLAN_HORIZON):
        run = run + 1 if count in failing else 0
        longest = max(longest, run)
    return longest


FAILING_ACTIONS = frozenset(
    {"reset", "hang", "close_after_headers", "truncate", "malformed_json", "status"}
)


PLAN_HORIZON = 1000


def _is_failure_status(status: int) -> bool:
    return status == 429 or status >= 500


def judge_outcome(observation: Observation, params: Mapping[str, Any]) -> Judgement:
    """How the run ends: success, failure, recovery within budget, or the declared degradation."""
    expect = str(params.get("expect", "success"))
    process = observation.process
    spec = observation.spec
    if process.timed_out:
        exit_text = f"still running at the scenario's limit ({process.duration:.0f} s)"
    elif process.stopped:
        exit_text = f"stopped by the harness ({process.stopped})"
    else:
        exit_text = f"exit status {process.exit_code}"
    if expect == "recovers":
        name = params.get("policy") or _category_policy(observation)
        policy = retry_policy(spec, name)
        planned = planned_failures(observation, observation.operations.source)
        if planned <= policy.max_retries:
            declared = (
                f"{policy.describe()}: {count_phrase(planned, 'injected failure')} fit the budget,"
                " so the run completes (exit 0)"
            )
            return _exit_is(observation, "outcome", declared, success=True, exit_text=exit_text)
        expect = "degrades"
        prefix = f"{policy.describe()}: {count_phrase(planned, 'injected failure')} exceed the budget, then "
    else:
        prefix = ""
    if expect == "success":
        return _exit_is(
            observation, "outcome", "the run completes (exit 0)", success=True, exit_text=exit_text
        )
    if expect == "failure":
        return _exit_is(
            observation,
            "outcome",
            "a clear failure (exit non-zero, no crash)",
            success=False,
            exit_text=exit_text,
        )
    declared_policy = degradation(spec)
    declared = prefix + describe_degradation(declared_policy)
    if declared_policy.strategy == "fail_fast":
        return _exit_is(observation, "outcome", declared, success=False, exit_text=exit_text)
    crash = crash_evidence(observation)
    if not process.ended_on_its_own or crash is not None:
        return failed("outcome", declared, crash or exit_text)
    if declared_policy.strategy == "circuit_breaker":
        return _circuit(observation, declared)
    return passed("outcome", declared, f"{exit_text}, no crash")


def _category_policy(observation: Observation) -> Any:
    category = observation.scenario.category
    return (
        category
        if category in ("connection_failures", "service_unavailable", "rate_limit", "timeouts")
        else "connection_failures"
    )


def _exit_is(
    observation: Observation, check: str, declared: str, *, success: bool, exit_text: str
) -> Judgement:
    process = observation.process
    if not process.ended_on_its_own:
        return failed(check, declared, exit_text)
    crash = crash_evidence(observation)
    if success and process.exit_code == 0:
        return passed(check, declared, f"exit status 0 after {process.duration:.1f} s")
    if not success and process.exit_code not in (0, None) and crash is None:
        return passed(
            check, declared, f"exit status {process.exit_code} after {process.duration:.1f} s"
        )
    observed = exit_text
    if crash is not None:
        observed = f"{crash}; {exit_text}"
    elif not success:
        observed = "exit status 0: the failure was not reported as one"
    last = last_line(process.stderr)
    if last and process.exit_code != 0 and crash is None:
        observed += f" ({last})"
    return failed(check, declared, observed)


def _circuit(observation: Observation, declared: str) -> Judgement:
    """After ``failure_threshold`` failures in a row, no provider call for ``circuit_open_seconds``."""
    policy = degradation(observation.spec)
    threshold = policy.failure_threshold or 1
    open_for = policy.circuit_open_seconds or 0.0
    calls = sorted(observation.provider, key=lambda r: r.started_monotonic)
    streak = 0
    for index, record in enumerate(calls):
        streak = streak + 1 if failed_attempt(observation, record) else 0
        if streak >= threshold and index + 1 < len(calls):
            nxt = calls[index + 1]
            gap = nxt.started_monotonic - record.ended_monotonic
            if gap < open_for - LOWER_TOLERANCE_SECONDS:
                return failed(
                    "outcome",
                    declared,
                    f"called again {ms(gap)} after failure {streak} ({describe_request(nxt)} at"
                    f" {at(observation, nxt.started_monotonic)}): the circuit did not stay open",
                    marks={
                        nxt.seq: f"circuit should be open (only {ms(gap)} after failure {streak})"
                    },
                )
            streak = 0
    return passed("outcome", declared, "no call while the circuit was open")


def judge_alert(observation: Observation, params: Mapping[str, Any]) -> Judgement:
    """An alert fires on the declared channel (or, for ``expect: none``, none does)."""
    monitoring = observation.spec.monitoring
    channel = monitoring.alert_channel if monitoring else None
    if channel is None:
        return skipped("alert", "no monitoring.alert_channel declared")
    kinds = list(params.get("kinds") or [])
    checklist = monitoring.alerts if monitoring else None
    if checklist is not None and kinds:
        kinds = [k for k in kinds if getattr(checklist, k) is not False]
        if not kinds:
            return skipped(
                "alert",
                f"the spec switches off the alerts this scenario raises ({', '.join(params['kinds'])})",
            )
    where = (
        f"log pattern {channel.pattern!r}"
        if channel.kind == "log_pattern"
        else f"webhook {channel.path}"
    )
    alerts = observation.alerts
    if params.get("expect", "fired") == "none":
        declared = f"no alert on {where} in a healthy run"
        if alerts:
            return failed("alert", declared, f"false alarm: {alerts[0].text[:160]!r}")
        return passed("alert", declared, "no alert")
    wanted = f" ({' or '.join(kinds)})" if kinds else ""
    declared = f"an alert on {where}{wanted}"
    if not alerts:
        return failed("alert", declared, "no alert")
    named = [a for a in alerts if a.kinds]
    if kinds and named and not any(set(a.kinds) & set(kinds) for a in named):
        return failed("alert", declared, f"only other alerts: {named[0].text[:160]!r}")
    chosen = next((a for a in alerts if set(a.kinds) & set(kinds)), alerts[0])
    return passed(
        "alert",
        declared,
        f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''}: {chosen.text[:160]!r}",
    )
