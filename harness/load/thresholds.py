"""Thresholds, k6-style: every number the spec states, judged against the run's raw samples.

Each criterion has a target, a measured value and a verdict, and becomes one ``Criterion`` and
one ``CheckResult`` (``load/<profile>/<criterion id>``). Which criteria apply follows the
profile's ``judge`` families:

* **latency** - ``performance.response_time`` p50/p95/p99 and
  ``launch.success_criteria.max_response_time_seconds``, over every request of the judged
  stages (not the stages that go over the rate limit on purpose);
* **errors** - ``launch.success_criteria.max_error_rate_percent``, a *rate*, so one transient
  failure in thousands does not fail the gate (timeouts a profile provokes are not errors);
* **throughput** - the achieved *arrival* rate against the planned one: a target too slow for
  the rate makes users fall behind, and the requests that could not be sent on time are
  reported as the shortfall rather than hidden in a slower, smaller run;
* **timeouts** - ``error_handling.request_timeout.seconds``: no request outlives the declared
  timeout (the client cuts it), and the timeout rate;
* **rate_limit** - over the limit the provider answers 429 with a valid ``Retry-After``; behind
  the client-side limiter it answers none;
* **degradation** - soak: p95 of the last fifth of the run against the first fifth.

``load.thresholds`` add more, per operation. A threshold about an operation or a metric the run
never produced is an error, never a silent pass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

from harness.load.plan import LoadPlan
from harness.load.samples import Sample, Summary, summarize
from harness.project import Project
from harness.results.model import CheckResult, Criterion, Status
from harness.spec.model import LoadThreshold

ARRIVAL_TOLERANCE = 0.05
"""The achieved arrival rate may fall this far short of the planned one (start-up, scheduling)."""
SOURCE = "load"

Comparison = Literal["<=", ">=", "=="]


@dataclass(frozen=True)
class Evaluation:
    criteria: tuple[Criterion, ...]
    checks: tuple[CheckResult, ...]


def _ms(value: float) -> str:
    return f"{value:.1f} ms"


def _pct(value: float) -> str:
    return f"{value:.2f} %"


def _rps(value: float) -> str:
    return f"{value:.2f} req/s"


def _s(value: float) -> str:
    return f"{value:.3f} s"


def _count(value: float) -> str:
    return f"{value:g}"


def _ratio(value: float) -> str:
    return f"{value:.2f}x"


_FORMATS: dict[str, Callable[[float], str]] = {
    "x": _ratio,
    "ms": _ms,
    "%": _pct,
    "req/s": _rps,
    "s": _s,
    "requests": _count,
}


class _Judge:
    """Collects criteria and their checks for one profile's run."""

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self.criteria: list[Criterion] = []
        self.checks: list[CheckResult] = []

    def add(
        self,
        cid: str,
        name: str,
        target: float,
        measured: float | None,
        comparison: Comparison,
        unit: str,
        evidence: str,
        *,
        target_text: str | None = None,
        unmeasured: str | None = None,
        force_status: Status | None = None,
    ) -> None:
        fmt = _FORMATS[unit]
        target_words = target_text or f"{comparison} {fmt(target)}"
        if measured is None:
            passed: bool | None = None
            measured_words: str | None = None
        else:
            passed = (
                measured <= target
                if comparison == "<="
                else measured >= target
                if comparison == ">="
                else math.isclose(measured, target)
            )
            measured_words = fmt(measured)
        status: Status = force_status or (
            "error" if passed is None else "passed" if passed else "failed"
        )
        if status == "error":
            passed = None
        self.criteria.append(
            Criterion(
                id=cid,
                name=name,
                target=target_words,
                measured=measured_words,
                passed=passed,
                target_value=target,
                measured_value=measured,
                comparison=comparison,
                unit=unit,
                source=SOURCE,
                evidence=evidence,
            )
        )
        verdict = {"passed": "ok", "failed": "FAILED", "error": "not measured"}.get(status, status)
        if status == "error":
            summary = f"{verdict}: {name}: {unmeasured or 'the run produced nothing to measure'}"
        else:
            summary = f"{verdict}: {name}: measured {measured_words}, target {target_words}"
        self.checks.append(
            CheckResult(
                id=f"load/{self.profile}/{cid}",
                name=name,
                status=status,
                summary=summary,
                attributes={"profile": self.profile, "criterion": cid, "evidence": evidence},
            )
        )


def _retry_after_ok(value: str | None, fmt: str) -> bool:
    if value is None:
        return False
    text = value.strip()
    if re.fullmatch(r"\d+", text):
        return fmt == "seconds"
    if fmt != "http-date":
        return False
    try:
        parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return False
    return True


def evaluate(project: Project, plan: LoadPlan, samples: Sequence[Sample]) -> Evaluation:
    spec = project.spec.spec
    profile = plan.profile
    judge = _Judge(profile.name)
    stages = plan.stages
    last = len(stages) - 1

    def stage_of(sample: Sample) -> int:
        return min(max(sample.stage, 0), last)

    judged = [s for s in samples if not stages[stage_of(s)].expect_429]
    slow = plan.slow_share is not None
    summary = summarize(judged)
    n = summary.requests
    evidence_base = f"profile {profile.name}, {n} requests judged, raw durations"

    criteria = spec.launch.success_criteria if spec.launch is not None else None
    response_time = spec.performance.response_time if spec.performance is not None else None

    if "latency" in profile.judge:
        if response_time is not None:
            for key, value in (
                ("p50_ms", response_time.p50_ms),
                ("p95_ms", response_time.p95_ms),
                ("p99_ms", response_time.p99_ms),
            ):
                if value is None:
                    continue
                judge.add(
                    f"performance.response_time.{key}",
                    f"Response time {key[:3]}",
                    value,
                    getattr(summary, key),
                    "<=",
                    "ms",
                    evidence_base,
                )
        if criteria is not None and criteria.max_response_time_seconds is not None:
            judge.add(
                "launch.success_criteria.max_response_time_seconds",
                "Slowest response",
                criteria.max_response_time_seconds,
                None if summary.max_ms is None else summary.max_ms / 1000,
                "<=",
                "s",
                evidence_base,
            )

    if (
        "errors" in profile.judge
        and criteria is not None
        and criteria.max_error_rate_percent is not None
    ):
        errors = summary.failures - (summary.timeouts if slow else 0)
        rate = 100.0 * errors / n if n else None
        judge.add(
            "launch.success_criteria.max_error_rate_percent",
            "Error rate" + (" (timeouts the profile provokes excluded)" if slow else ""),
            criteria.max_error_rate_percent,
            rate,
            "<=",
            "%",
            f"{evidence_base}; {errors} failed"
            + (f", statuses {dict(summary.status)}" if n else ""),
        )

    if "throughput" in profile.judge:
        _throughput(judge, project, plan, samples)

    if "timeouts" in profile.judge:
        _timeouts(judge, project, plan, summary, slow)

    if "rate_limit" in profile.judge:
        _rate_limit(judge, project, plan, samples, stage_of)

    if "degradation" in profile.judge:
        _degradation(judge, plan, judged)

    _extra(judge, project, plan, samples, judged)
    return Evaluation(tuple(judge.criteria), tuple(judge.checks))


def _throughput(judge: _Judge, project: Project, plan: LoadPlan, samples: Sequence[Sample]) -> None:
    paced = [s for s in plan.stages if s.send_rps is not None and not s.expect_429]
    if not paced:
        return
    mix = {op.id for op in plan.operations}
    planned = 0
    sent = 0
    seconds = 0.0
    for stage in paced:
        assert stage.send_rps is not None
        planned += math.ceil(stage.duration * stage.send_rps - 1e-9)
        seconds += stage.duration
        sent += sum(1 for s in samples if s.name in mix and stage.start <= s.t < stage.end)
    target = planned / seconds
    achieved = sent / seconds
    shortfall = max(0, planned - sent)
    spec = project.spec.spec
    throughput = spec.performance.throughput if spec.performance is not None else None
    # Only a run offered at least the declared rate measures the spec's throughput: a smoke run
    # capped below it proves its own arrival rate, not the requirement.
    declared = (
        throughput is not None
        and plan.profile.basis == "throughput"
        and target >= throughput.per_second * (1 - ARRIVAL_TOLERANCE)
    )
    cid = "performance.throughput" if declared else "load.arrival_rate"
    judge.add(
        cid,
        "Arrival rate achieved",
        target * (1 - ARRIVAL_TOLERANCE),
        achieved if samples else None,
        ">=",
        "req/s",
        f"rate from {plan.rate_basis}: planned {planned} requests in {seconds:g} s "
        f"({target:.2f} req/s), sent {sent} on time; shortfall {shortfall} requests",
        target_text=f">= {target:.2f} req/s (-{ARRIVAL_TOLERANCE:.0%})",
    )


def _timeouts(
    judge: _Judge, project: Project, plan: LoadPlan, summary: Summary, slow: bool
) -> None:
    spec = project.spec.spec
    handling = spec.error_handling
    declared = handling is not None and handling.request_timeout is not None
    if declared or plan.profile.timeout_seconds is not None:
        limit_ms = plan.timeout_seconds * 1000
        tolerance = max(250.0, 0.1 * limit_ms)
        cid = "error_handling.request_timeout.seconds" if declared else "load.timeout_seconds"
        force: Status | None = None
        unmeasured = None
        if slow and summary.timeouts == 0 and (summary.max_ms or 0) <= limit_ms + tolerance:
            force = "error"
            unmeasured = (
                f"no request was held past the timeout in {summary.requests} requests: the "
                "slow provider was never slow enough to test it"
            )
        judge.add(
            cid,
            "Requests cut at the declared timeout",
            limit_ms + tolerance,
            summary.max_ms,
            "<=",
            "ms",
            f"timeout {plan.timeout_seconds:g} s (+{tolerance:.0f} ms scheduling allowance); "
            f"{summary.timeouts} timed out, the longest after "
            + (_ms(summary.max_timeout_ms) if summary.max_timeout_ms is not None else "-"),
            target_text=f"<= {plan.timeout_seconds:g} s (+{tolerance:.0f} ms)",
            unmeasured=unmeasured,
            force_status=force,
        )
    criteria = spec.launch.success_criteria if spec.launch is not None else None
    if slow and plan.slow_share is not None:
        allowed = plan.slow_share * 100 + 2
        judge.add(
            "load.timeout_rate_percent",
            "Timeouts only where the provider was slow",
            allowed,
            summary.timeout_rate_percent if summary.requests else None,
            "<=",
            "%",
            f"every {round(1 / plan.slow_share)}th request held past the timeout by the simulator; "
            f"{summary.timeouts} of {summary.requests} timed out",
        )
    elif criteria is not None and criteria.max_error_rate_percent is not None:
        judge.add(
            "load.timeout_rate_percent",
            "Timeout rate",
            criteria.max_error_rate_percent,
            summary.timeout_rate_percent if summary.requests else None,
            "<=",
            "%",
            f"{summary.timeouts} of {summary.requests} timed out (budget: the error rate)",
        )


def _rate_limit(
    judge: _Judge,
    project: Project,
    plan: LoadPlan,
    samples: Sequence[Sample],
    stage_of: Callable[[Sample], int],
) -> None:
    spec = project.spec.spec
    limits = spec.rate_limits
    declared = f"{plan.declared_limit_rps:g} req/s" if plan.declared_limit_rps else "undeclared"
    over = [s for s in samples if plan.stages[stage_of(s)].expect_429]
    over_stages = [s for s in plan.stages if s.expect_429]
    if over_stages:
        refused = [s for s in over if s.status == 429]
        offered = over_stages[0].rps
        judge.add(
            "rate_limits",
            "Provider answers 429 above its declared limit",
            1,
            float(len(refused)),
            ">=",
            "requests",
            f"offered {offered or 0:g} req/s against a declared {declared} for "
            f"{sum(s.duration for s in over_stages):g} s: {len(refused)} of {len(over)} refused",
            target_text=">= 1 response 429",
        )
        fmt = limits.retry_after_format if limits is not None else "seconds"
        valid = sum(1 for s in refused if _retry_after_ok(s.retry_after, fmt))
        judge.add(
            "rate_limits.retry_after_format",
            f"Every 429 carries Retry-After ({fmt})",
            float(len(refused)),
            float(valid) if refused else None,
            ">=",
            "requests",
            f"{valid} of {len(refused)} 429 responses carried a valid Retry-After",
            target_text=f"all {len(refused)} responses 429",
            unmeasured="no 429 to inspect",
        )
    limited_stages = [i for i, s in enumerate(plan.stages) if s.limiter_rps]
    if limited_stages:
        limited = [s for s in samples if stage_of(s) in limited_stages]
        refused = [s for s in limited if s.status == 429]
        seconds = sum(plan.stages[i].duration for i in limited_stages)
        rate = plan.stages[limited_stages[0]].limiter_rps or 0.0
        judge.add(
            "error_handling.rate_limit.client_requests_per_second",
            "Client-side limiter keeps under the limit (no 429)",
            0,
            float(len(refused)) if limited else None,
            "<=",
            "requests",
            f"limiter at {rate:g} req/s (declared limit {declared}); {len(limited)} requests in "
            f"{seconds:g} s ({len(limited) / seconds if seconds else 0:.2f} req/s), "
            f"{len(refused)} answered 429",
            target_text="no response 429",
        )


def _degradation(judge: _Judge, plan: LoadPlan, judged: Sequence[Sample]) -> None:
    window = plan.duration / 5
    first = summarize(s for s in judged if s.t < window)
    last = summarize(s for s in judged if s.t >= plan.duration - window)
    factor = plan.profile.degradation_factor
    ratio: float | None = None
    if first.requests >= 5 and last.requests >= 5 and first.p95_ms and last.p95_ms is not None:
        ratio = last.p95_ms / first.p95_ms
    judge.add(
        "load.degradation",
        "p95 of the last fifth vs the first fifth",
        factor,
        ratio,
        "<=",
        "x",
        f"first {window:g} s: p95 "
        + (_ms(first.p95_ms) if first.p95_ms is not None else "-")
        + f" ({first.requests} requests); last {window:g} s: p95 "
        + (_ms(last.p95_ms) if last.p95_ms is not None else "-")
        + f" ({last.requests} requests)",
        target_text=f"<= {factor:g}x",
        unmeasured="fewer than 5 requests in the first or last fifth of the run",
    )


_DURATION_METRICS = {"p50_ms": 50, "p90_ms": 90, "p95_ms": 95, "p99_ms": 99}


def _extra(
    judge: _Judge,
    project: Project,
    plan: LoadPlan,
    samples: Sequence[Sample],
    judged: Sequence[Sample],
) -> None:
    load = project.spec.spec.load
    thresholds: Sequence[LoadThreshold] = (load.thresholds or ()) if load is not None else ()
    produced = {s.name for s in samples}
    for index, threshold in enumerate(thresholds):
        if threshold.profile is not None and threshold.profile != plan.profile.name:
            continue
        op = threshold.operation
        population = list(samples if threshold.metric == "status_429" else judged)
        if op is not None:
            population = [s for s in population if s.name == op]
        name = threshold.metric + (f" of {op}" if op else "")
        measured, unit = _measure(threshold.metric, population, plan)
        unmeasured = None
        if op is not None and op not in produced:
            measured = None
            unmeasured = (
                f"names operation '{op}', which this run never produced "
                f"(produced: {', '.join(sorted(produced)) or 'nothing'})"
            )
        elif measured is None:
            unmeasured = f"no request to measure {threshold.metric} on"
        both = threshold.min is not None and threshold.max is not None
        bounds: tuple[tuple[Comparison, float | None, str], ...] = (
            ("<=", threshold.max, ".max" if both else ""),
            (">=", threshold.min, ".min" if both else ""),
        )
        for comparison, bound, suffix in bounds:
            if bound is None:
                continue
            judge.add(
                f"load.thresholds[{index}]{suffix}",
                name,
                bound,
                measured,
                comparison,
                unit,
                f"{len(population)} requests" + (f" of {op}" if op else ""),
                unmeasured=unmeasured,
            )


def _measure(metric: str, population: Sequence[Sample], plan: LoadPlan) -> tuple[float | None, str]:
    if metric in _DURATION_METRICS or metric == "max_ms":
        summary = summarize(population)
        value = summary.max_ms if metric == "max_ms" else getattr(summary, metric)
        return value, "ms"
    if metric == "error_rate_percent":
        summary = summarize(population)
        return (summary.error_rate_percent if population else None), "%"
    if metric == "timeout_rate_percent":
        summary = summarize(population)
        return (summary.timeout_rate_percent if population else None), "%"
    if metric == "rps":
        return (len(population) / plan.duration if population else None), "req/s"
    if metric == "requests":
        return float(len(population)), "requests"
    return float(sum(1 for s in population if s.status == 429)), "requests"
