"""Retries, Retry-After, rate-limit compliance and timeouts, judged from the traffic log.

Timing is judged with lower bounds, orderings and tolerances only: a loaded machine makes
things slower, never faster, so nothing here fails because a sleep overran. Upper bounds are
the declared caps plus a generous slack.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from harness.scenarios.judgement import (
    Judgement,
    at,
    both_sides,
    failed,
    faulted_operations,
    passed,
    plural,
    skipped,
    target_operation,
)
from harness.scenarios.observe import (
    Observation,
    describe_request,
    episodes,
    failed_attempt,
    retry_after_seconds,
)
from harness.scenarios.policy import (
    LOWER_TOLERANCE_SECONDS,
    ms,
    retry_policy,
    timeout_tolerance,
    upper_slack,
)


def judge_retries(observation: Observation, params: Mapping[str, Any]) -> Judgement:
    """Failed attempts are retried as many times as declared, with waits inside the backoff."""
    name = params["policy"]
    policy = retry_policy(observation.spec, name)
    declared = policy.describe()
    operation = target_operation(observation, params)
    targets = {operation} if operation is not None else faulted_operations(observation)
    calls = [r for r in both_sides(observation) if r.operation_id in targets]
    runs = [run for run in episodes(observation, calls) if failed_attempt(observation, run[0])]
    if not runs:
        return Judgement(
            "retries",
            "error",
            declared,
            f"no failed attempt on {', '.join(sorted(map(str, targets)))}: nothing to judge",
        )
    problems: list[str] = []
    marks: dict[int, str] = {}
    summaries: list[str] = []
    notes: list[str] = []
    budget = policy.max_retries
    for run in runs:
        failures = sum(1 for r in run if failed_attempt(observation, r))
        succeeded = not failed_attempt(observation, run[-1])
        retries = len(run) - 1
        what = describe_request(run[0])
        waits = [b.started_monotonic - a.ended_monotonic for a, b in itertools.pairwise(run)]
        shown = ", ".join(ms(w) for w in waits)
        summary = f"{what}: {len(run)} attempt{'s' if len(run) != 1 else ''}"
        summary += f" (waits {shown})" if waits else ", no retry"
        summary += ", then success" if succeeded else ", then gave up"
        summaries.append(summary)
        for number, (wait, record) in enumerate(zip(waits, run[1:], strict=False), start=1):
            marks[record.seq] = f"retry {number} after {ms(wait)}"
        if retries > budget:
            problems.append(
                f"{what}: {plural(retries, 'retry', 'retries')}, more than the declared {budget}"
            )
        elif not succeeded and failures < budget + 1 and observation.process.ended_on_its_own:
            made = ", no retry" if len(run) == 1 else f" ({plural(retries, 'retry', 'retries')})"
            problems.append(
                f"{what}: {plural(len(run), 'attempt', 'attempts')}{made}, then gave up"
            )
        if policy.backoff is not None:
            first_cap = policy.backoff.cap(1)
            for number, wait in enumerate(waits, start=1):
                low, high = policy.backoff.bounds(number)
                if (
                    number == 1
                    and policy.backoff.jitter == "none"
                    and first_cap
                    and wait < first_cap - LOWER_TOLERANCE_SECONDS
                ):
                    notes.append("first retry came at once (tolerated: common library behaviour)")
                if wait < low - LOWER_TOLERANCE_SECONDS:
                    problems.append(
                        f"{what}: retry {number} after {ms(wait)}, sooner than the {ms(low)} the backoff allows"
                    )
                if high is not None and wait > high + upper_slack(high):
                    problems.append(
                        f"{what}: retry {number} after {ms(wait)}, longer than the backoff's"
                        f" {ms(high)} (+{ms(upper_slack(high))} tolerance)"
                    )
    observed = "; ".join(summaries[:4]) + (
        f"; +{len(summaries) - 4} more" if len(summaries) > 4 else ""
    )
    details = {"episodes": summaries, "notes": sorted(set(notes))}
    if problems:
        return failed("retries", declared, "; ".join(problems[:3]), details=details, marks=marks)
    return passed("retries", declared, observed, details=details, marks=marks)


def judge_retry_after(observation: Observation, params: Mapping[str, Any]) -> Judgement:
    """After a 429 with Retry-After, the same request comes back no sooner than told."""
    rate = observation.spec.error_handling.rate_limit if observation.spec.error_handling else None
    if rate is None:
        return skipped("retry_after", "no error_handling.rate_limit declared")
    if not rate.honour_retry_after:
        return skipped(
            "retry_after", "the policy does not honour Retry-After (honour_retry_after: false)"
        )
    declared = "the next attempt comes no sooner than Retry-After"
    operation = target_operation(observation, params)
    ordered = sorted(observation.provider, key=lambda r: r.started_monotonic)
    problems: list[str] = []
    seen: list[str] = []
    marks: dict[int, str] = {}
    for index, record in enumerate(ordered):
        if record.early_retry:
            problems.append(
                f"{describe_request(record)} at {at(observation, record.started_monotonic)} came back"
                " before the provider's Retry-After (flagged by the provider)"
            )
            marks[record.seq] = "early retry (before Retry-After)"
        if record.status != 429 or (operation is not None and record.operation_id != operation):
            continue
        told = retry_after_seconds(record)
        if told is None:
            continue
        retry = next(
            (
                r
                for r in ordered[index + 1 :]
                if r.operation_id == record.operation_id and r.query == record.query
            ),
            None,
        )
        if retry is None:
            seen.append(f"429 (Retry-After {ms(told)}), not retried")
            continue
        waited = retry.started_monotonic - record.ended_monotonic
        seen.append(f"429 (Retry-After {ms(told)}), retried after {ms(waited)}")
        if waited < told - LOWER_TOLERANCE_SECONDS:
            problems.append(
                f"{describe_request(retry)} retried after {ms(waited)}; Retry-After said {ms(told)}"
            )
            marks[retry.seq] = f"early: {ms(waited)} after a 429 with Retry-After {ms(told)}"
        else:
            marks[retry.seq] = f"{ms(waited)} after a 429 with Retry-After {ms(told)}"
    if problems:
        return failed("retry_after", declared, "; ".join(problems[:3]), marks=marks)
    observed = "; ".join(seen[:3]) + (
        f"; +{len(seen) - 3} more like these" if len(seen) > 3 else ""
    )
    return passed("retry_after", declared, observed or "no 429 was answered", marks=marks)


def peak_in_window(times: Sequence[float], window: float) -> tuple[int, float]:
    """(most requests in any window of ``window`` seconds starting at a request, its start)."""
    ordered = sorted(times)
    best, at = 0, ordered[0] if ordered else 0.0
    end = 0
    for start_index, start in enumerate(ordered):
        while end < len(ordered) and ordered[end] < start + window:
            end += 1
        if end - start_index > best:
            best, at = end - start_index, start
    return best, at


def judge_rate_compliance(observation: Observation, params: Mapping[str, Any]) -> Judgement:
    """The provider's limiter never refused the client; the declared client rate holds."""
    window = float(params.get("window_seconds", 1.0))
    limits = observation.spec.rate_limits
    handling = observation.spec.error_handling
    client_rate = (
        handling.rate_limit.client_requests_per_second if handling and handling.rate_limit else None
    )
    parts = []
    if limits is not None:
        burst = f", burst {limits.burst}" if limits.burst else ""
        parts.append(f"within the provider's limit ({limits.per_second:g}/s{burst})")
    if client_rate is not None:
        parts.append(f"at most {client_rate:g} requests/s from the client's own limiter")
    if not parts:
        return skipped("rate_compliance", "no rate_limits and no client rate declared")
    declared = " and ".join(parts)
    calls = observation.provider
    refused = [r for r in calls if r.status == 429 and r.fault is None]
    early = [r for r in calls if r.early_retry]
    times = [r.started_monotonic for r in calls]
    peak, peak_at = peak_in_window(times, window)
    rate_text = f"peak {peak} requests in {window:g} s (at {at(observation, peak_at)}) over {len(calls)} requests"
    problems = []
    marks = {r.seq: "refused by the provider's rate limiter" for r in refused}
    if refused:
        problems.append(
            f"the provider's limiter refused {len(refused)} request{'s' if len(refused) != 1 else ''} (429)"
        )
    if early:
        problems.append(f"{len(early)} came back before Retry-After")
    if client_rate is not None:
        allowed = math.floor(client_rate * window + 1e-9) + 1
        if peak > allowed:
            problems.append(f"{rate_text}; the client limiter allows {allowed}")
    if problems:
        return failed(
            "rate_compliance",
            declared,
            "; ".join(problems),
            marks=marks,
            details={"peak": peak, "window_seconds": window},
        )
    return passed(
        "rate_compliance",
        declared,
        f"no 429 from the limiter; {rate_text}",
        details={"peak": peak, "window_seconds": window},
    )


def judge_timeout(observation: Observation, params: Mapping[str, Any]) -> Judgement:
    """A request the provider never answers is abandoned within the declared timeout."""
    handling = observation.spec.error_handling
    declared_timeout = handling.request_timeout if handling else None
    if declared_timeout is None:
        return skipped("timeout", "no error_handling.request_timeout declared")
    seconds = declared_timeout.seconds
    tolerance = timeout_tolerance(seconds)
    declared = f"a request without an answer is abandoned within {ms(seconds)} (+{ms(tolerance)} tolerance)"
    operation = target_operation(observation, params)
    hung = [
        r
        for r in observation.provider
        if observation.fault_kind(r) == "hang"
        and (operation is None or r.operation_id == operation)
    ]
    if not hung:
        if observation.process.stopped:
            return failed("timeout", declared, observation.process.stopped)
        return Judgement(
            "timeout", "error", declared, "no request was held: the hang fault never fired"
        )
    marks: dict[int, str] = {}
    worst = max(hung, key=lambda r: r.ended_monotonic - r.started_monotonic)
    held = worst.ended_monotonic - worst.started_monotonic
    for record in hung:
        marks[record.seq] = (
            f"provider hung; the client gave up after {record.ended_monotonic - record.started_monotonic:.1f} s"
        )
    if held > seconds + tolerance:
        why = (
            "; the harness stopped the integration"
            if not observation.process.ended_on_its_own
            else ""
        )
        return failed(
            "timeout",
            declared,
            f"{describe_request(worst)} held open for {held:.1f} s{why}",
            marks=marks,
        )
    return passed(
        "timeout", declared, f"{describe_request(worst)} abandoned after {held:.1f} s", marks=marks
    )
