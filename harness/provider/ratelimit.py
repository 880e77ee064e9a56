"""The provider's rate limit: a token bucket per client identity, built from the spec's ``RateLimits``.

Why a token bucket: it is O(1) in time and memory per identity whatever the limit (a sliding log
would grow with the limit, and a high limit must cost next to nothing per request), it allows the
declared burst, and it tells exactly *when* enough tokens will be back, so ``Retry-After`` is the
real refill time rather than a made-up constant an integration could learn to rely on.

The limiter also keeps, per identity, the moment the last 429 told the client it could retry.
A request arriving before that moment is flagged ``early_retry``: the limiter does not judge it,
it records the evidence for the scenario stage (did the integration honour ``Retry-After``?).

Everything runs on the engine's event loop thread: no locks, no blocking, no sleeping; the clock
is injectable so tests are exact.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Literal

from harness.provider.messages import Headers
from harness.spec.model import RateLimits

HeaderFamily = Literal["ietf", "x-ratelimit"]
RetryAfterFormat = Literal["seconds", "http-date"]

# Float arithmetic on refill times must not turn "exactly 2 seconds" into "3 seconds" when
# rounded up for a header, nor refuse a request that has exactly enough tokens (the token
# tolerance covers the seconds tolerance times any sane rate).
_EPSILON = 1e-9
_TOKEN_EPSILON = 1e-6


def _ceil(value: float) -> int:
    """Round up to whole seconds, forgiving float noise (2.0000000000000004 -> 2)."""
    return max(0, math.ceil(value - _EPSILON))


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The limiter's verdict on one request, plus what the rate-limit headers report.

    ``limit`` is the bucket size (requests allowed back to back); ``remaining`` the whole tokens
    left after this request; ``reset_seconds`` the exact time until the bucket is full again;
    ``retry_after_seconds`` the exact time until enough tokens are back for this request (``None``
    when allowed). ``retry_at_wall`` is that moment on the wall clock, so an HTTP-date
    ``Retry-After`` names the same instant. ``early_retry`` marks a request that arrived before
    the retry time the previous 429 announced to this identity.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    retry_after_seconds: float | None
    early_retry: bool
    cost: int = 1
    retry_at_wall: float | None = None


class _Bucket:
    """Mutable per-identity state; a slotted class keeps the hot path to attribute access."""

    __slots__ = ("retry_at", "tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated
        self.retry_at: float | None = None


def default_burst(limits: RateLimits) -> int:
    """The bucket size when the spec gives no ``burst``.

    A per-second limit allows its whole count back to back (at least 1); a per-minute or per-hour
    limit allows one second's worth, rounded up - a provider that allows 600/minute does not
    accept 600 requests in the first second. Both come to ``ceil`` of the strictest rate per second.
    """
    return max(1, _ceil(limits.per_second))


def retry_after_value(decision: RateDecision, retry_after_format: RetryAfterFormat) -> str | None:
    """The ``Retry-After`` header value for a refused request (``None`` when it was allowed).

    Seconds are rounded up so a client that waits exactly as told finds enough tokens; the
    HTTP-date is the refill instant on the wall clock, rounded up to the next whole second
    (an IMF-fixdate has no fractions).
    """
    if decision.allowed or decision.retry_after_seconds is None:
        return None
    if retry_after_format == "http-date":
        assert decision.retry_at_wall is not None  # always set on a refusal
        return formatdate(_ceil(decision.retry_at_wall), usegmt=True)
    return str(max(1, _ceil(decision.retry_after_seconds)))


_HEADER_NAMES: dict[str, tuple[str, str, str]] = {
    family: (f"{prefix}-Limit", f"{prefix}-Remaining", f"{prefix}-Reset")
    for family, prefix in (("ietf", "RateLimit"), ("x-ratelimit", "X-RateLimit"))
}
_X_NAMES = _HEADER_NAMES["x-ratelimit"]


def rate_limit_headers(
    decision: RateDecision,
    families: Iterable[HeaderFamily] = ("ietf",),
    retry_after_format: RetryAfterFormat = "seconds",
) -> Headers:
    """Response headers describing ``decision`` in the requested header families.

    ``ietf``: ``RateLimit-Limit/Remaining/Reset`` as in the IETF httpapi draft (reset in delta
    seconds). ``x-ratelimit``: the same three values under ``X-RateLimit-*`` names; note that
    reset is delta seconds here too (some providers send an epoch time instead). ``Retry-After``
    is added on a refusal whatever the families.
    """
    limit = str(decision.limit)
    remaining = str(decision.remaining)
    reset = str(_ceil(decision.reset_seconds))
    out: list[tuple[str, str]] = []
    for family in families:
        limit_name, remaining_name, reset_name = _HEADER_NAMES.get(family, _X_NAMES)
        out.append((limit_name, limit))
        out.append((remaining_name, remaining))
        out.append((reset_name, reset))
    retry_after = retry_after_value(decision, retry_after_format)
    if retry_after is not None:
        out.append(("Retry-After", retry_after))
    return tuple(out)


class RateLimiter:
    """Token buckets per identity, refilled continuously at the strictest declared rate.

    ``check`` both decides and spends: call it once per request. Refused requests spend nothing
    (a client hammering a 429 is not pushed further back, as with most real providers). An
    operation whose cost exceeds the bucket size is charged the bucket size, otherwise it could
    never succeed at all.
    """

    def __init__(
        self,
        limits: RateLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits
        self.rate: float = limits.per_second
        self.capacity: int = limits.burst if limits.burst is not None else default_burst(limits)
        self.retry_after_format: RetryAfterFormat = limits.retry_after_format
        self.families: tuple[HeaderFamily, ...] = (
            limits.headers if limits.headers is not None else ("ietf", "x-ratelimit")
        )
        self._costs: dict[str, int] = dict(limits.operation_costs or {})
        self._clock = clock
        self._wall_clock = wall_clock
        self._buckets: dict[str, _Bucket] = {}

    def cost(self, operation_id: str | None) -> int:
        """What one call of ``operation_id`` costs in tokens (1 unless the spec says otherwise)."""
        if operation_id is None or not self._costs:
            return 1
        return self._costs.get(operation_id, 1)

    def check(
        self, identity: str, operation_id: str | None, now: float | None = None
    ) -> RateDecision:
        """Decide one request from ``identity``; spends its cost when allowed."""
        t = self._clock() if now is None else now
        capacity = self.capacity
        rate = self.rate
        bucket = self._buckets.get(identity)
        if bucket is None:
            bucket = self._buckets[identity] = _Bucket(float(capacity), t)
        elif t > bucket.updated:
            tokens = bucket.tokens + (t - bucket.updated) * rate
            bucket.tokens = tokens if tokens < capacity else float(capacity)
            bucket.updated = t

        early = False
        if bucket.retry_at is not None:
            if t < bucket.retry_at:
                early = True
            else:
                bucket.retry_at = None

        costs = self._costs
        cost = costs.get(operation_id, 1) if costs and operation_id is not None else 1
        need = cost if cost < capacity else capacity
        tokens = bucket.tokens
        if tokens + _TOKEN_EPSILON >= need:
            tokens = tokens - need if tokens > need else 0.0
            bucket.tokens = tokens
            # Positional arguments: a frozen dataclass built by keyword costs twice as much,
            # and this is the per-request hot path.
            return RateDecision(
                True,
                capacity,
                int(tokens + _TOKEN_EPSILON),
                (capacity - tokens) / rate,
                None,
                early,
                cost,
            )

        wait = (need - tokens) / rate
        wall = self._wall_clock() + wait
        # Remember what the client is being told, in the format it is told in: that moment,
        # not the exact refill time, is what an honouring client waits for.
        if self.retry_after_format == "http-date":
            bucket.retry_at = t + (_ceil(wall) - (wall - wait))
        else:
            bucket.retry_at = t + max(1, _ceil(wait))
        return RateDecision(
            False,
            capacity,
            int(tokens + _TOKEN_EPSILON),
            (capacity - tokens) / rate,
            wait,
            early,
            cost,
            wall,
        )

    def headers(
        self,
        decision: RateDecision,
        families: Iterable[HeaderFamily] | None = None,
        retry_after_format: RetryAfterFormat | None = None,
    ) -> Headers:
        """Headers for ``decision``; families and ``Retry-After`` format default to the spec's.

        The spec's ``headers`` left out means it does not say which families the provider sends;
        the simulator then sends both, so either convention in the integration can be exercised.
        Pass the limiter's own ``retry_after_format`` (the default): early-retry detection uses it.
        """
        return rate_limit_headers(
            decision,
            self.families if families is None else families,
            self.retry_after_format if retry_after_format is None else retry_after_format,
        )

    def reset(self) -> None:
        """Forget every identity: full buckets and no pending retry times (between scenarios)."""
        self._buckets.clear()

    @property
    def identities(self) -> int:
        """How many identities have a bucket (for the traffic log and for spotting leaks)."""
        return len(self._buckets)
