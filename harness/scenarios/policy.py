"""The spec's error-handling policy, turned into the bounds a judge can check.

The judge never asks "did the client wait 200 ms?"; it asks "is this wait inside what the
declared policy allows?". Full jitter allows anything from zero to the current cap, so single
waits may go up and down; well-known libraries (urllib3's ``Retry``, for one) retry the first
time without waiting, which no policy in the spec forbids, so the first retry's lower bound is
waived. Lower bounds get a small tolerance (timestamps are taken on the server side, which can
only make waits look longer); upper bounds get a generous slack, because a loaded machine makes
every sleep longer and the policy's cap is about not hammering, not about punctuality.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.scenarios.model import PolicyName
from harness.spec.model import IntegrationSpec, ServiceUnavailable

LOWER_TOLERANCE_SECONDS = 0.05
"""How much shorter than a declared lower bound a measured wait may look (timer granularity)."""


def upper_slack(bound: float) -> float:
    """Extra time an upper bound allows on a loaded 2-core machine."""
    return max(1.0, 0.5 * bound)


def timeout_tolerance(seconds: float) -> float:
    """How late a client may abandon a hung request and still count as within its timeout."""
    return max(2.0, 0.5 * seconds)


def ms(seconds: float) -> str:
    """``0.1`` -> ``100 ms``, ``2.0`` -> ``2 s``: how evidence states durations."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.3g} s"


@dataclass(frozen=True)
class Backoff:
    """A declared backoff: the cap of the n-th wait and how jitter spreads it."""

    kind: Literal["none", "constant", "linear", "exponential"]
    initial: float | None
    maximum: float | None
    jitter: Literal["none", "full", "equal"]

    def cap(self, retry: int) -> float | None:
        """The un-jittered wait before retry ``retry`` (1-based), capped; None when unknown."""
        if self.kind == "none":
            return 0.0
        if self.initial is None:
            return self.maximum
        if self.kind == "constant":
            base = self.initial
        elif self.kind == "linear":
            base = self.initial * retry
        else:
            base = self.initial * 2 ** (retry - 1)
        return base if self.maximum is None else min(base, self.maximum)

    def bounds(self, retry: int) -> tuple[float, float | None]:
        """(lowest, highest) wait the policy allows before retry ``retry``; highest None = no cap.

        The first retry may always come at once (see the module docstring).
        """
        cap = self.cap(retry)
        if cap is None:
            return 0.0, None
        if retry == 1 or self.jitter == "full":
            low = 0.0
        elif self.jitter == "equal":
            low = cap / 2
        else:
            low = cap
        return low, cap

    def describe(self) -> str:
        if self.kind == "none":
            return "no backoff"
        parts = [f"{self.kind} backoff"]
        if self.initial is not None:
            parts.append(f"from {ms(self.initial)}")
        if self.maximum is not None:
            parts.append(f"capped at {ms(self.maximum)}")
        if self.jitter != "none":
            parts.append(f"{self.jitter} jitter")
        return " ".join(parts)


@dataclass(frozen=True)
class RetryPolicy:
    """What one part of the policy declares about retrying: a budget, a backoff, Retry-After."""

    name: PolicyName
    declared: bool
    max_retries: int
    backoff: Backoff | None
    honour_retry_after: bool = False

    def describe(self) -> str:
        if not self.declared:
            return f"no {self.name} policy (not handled: no retries)"
        retries = "no retries" if self.max_retries == 0 else _retries(self.max_retries)
        parts = [retries]
        if self.max_retries and self.backoff is not None:
            parts.append(self.backoff.describe())
        if self.honour_retry_after:
            parts.append("honouring Retry-After")
        return ", ".join(parts)


def _retries(n: int) -> str:
    return f"{n} retr{'y' if n == 1 else 'ies'}"


DEFAULT_RATE_LIMIT_RETRIES = 3
"""Retries assumed for 429 when the policy honours Retry-After but names no maximum."""


def retry_policy(spec: IntegrationSpec, name: PolicyName) -> RetryPolicy:
    """The retry budget and backoff that apply to failures of kind ``name``.

    Timeouts are connection failures (the request got no answer), with their budget and
    backoff. ``service_unavailable`` declares how many retries a 5xx gets but no waits, so only
    the count is judged there; 429s are paced by Retry-After when the policy honours it.
    """
    handling = spec.error_handling
    connection = handling.connection_failures if handling else None
    backoff = (
        Backoff(
            connection.backoff,
            None if connection.initial_delay_ms is None else connection.initial_delay_ms / 1000,
            None if connection.max_delay_ms is None else connection.max_delay_ms / 1000,
            connection.jitter,
        )
        if connection is not None
        else None
    )
    if name in ("connection_failures", "timeouts"):
        if connection is None:
            return RetryPolicy(name, False, 0, None)
        return RetryPolicy(name, True, connection.max_retries, backoff)
    if name == "service_unavailable":
        unavailable = handling.service_unavailable if handling else None
        if unavailable is None:
            return RetryPolicy(name, False, 0, None)
        # The waits between 5xx retries are not declared separately: judge only the count.
        return RetryPolicy(name, True, unavailable.max_retries or 0, None)
    rate = handling.rate_limit if handling else None
    if rate is None:
        return RetryPolicy(name, False, 0, None)
    retries = rate.max_retries
    if retries is None:
        retries = DEFAULT_RATE_LIMIT_RETRIES if rate.honour_retry_after else 0
    return RetryPolicy(name, True, retries, None, honour_retry_after=rate.honour_retry_after)


def degradation(spec: IntegrationSpec) -> ServiceUnavailable:
    """What the integration declares it does when the provider stays down (fail fast if silent)."""
    handling = spec.error_handling
    if handling is not None and handling.service_unavailable is not None:
        return handling.service_unavailable
    return ServiceUnavailable(strategy="fail_fast", max_retries=0)


def describe_degradation(declared: ServiceUnavailable) -> str:
    if declared.strategy == "circuit_breaker":
        threshold = declared.failure_threshold or 1
        return (
            f"circuit breaker (opens after {threshold} failure{'s' if threshold != 1 else ''}"
            f" for {ms(declared.circuit_open_seconds or 0)})"
        )
    return {
        "fail_fast": "fail fast (exit non-zero, no crash)",
        "queue": "queue the work (finish without crashing)",
        "cached": "serve cached data (finish without crashing)",
    }[declared.strategy]
