"""Rate limiting with an injected clock: exact buckets, real Retry-After, early-retry evidence."""

from __future__ import annotations

import math
import time
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.provider.ratelimit import RateLimiter, default_burst, rate_limit_headers
from harness.spec.model import RateLimits

WALL_START = 1_800_000_000.25  # a wall-clock time with a fraction, to exercise rounding


class Clock:
    """A monotonic and a wall clock that move together, only when told."""

    def __init__(self) -> None:
        self.t = 500.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> float:
        return WALL_START + (self.t - 500.0)

    def advance(self, seconds: float) -> None:
        self.t += seconds


def limiter(clock: Clock, **limits: object) -> RateLimiter:
    return RateLimiter(RateLimits(**limits), clock=clock, wall_clock=clock.wall)  # type: ignore[arg-type]


def test_burst_then_429_with_the_real_refill_time() -> None:
    clock = Clock()
    rl = limiter(clock, requests_per_second=0.5, burst=2)
    first, second = rl.check("a", None), rl.check("a", None)
    assert (first.allowed, first.remaining, first.retry_after_seconds) == (True, 1, None)
    assert (second.allowed, second.remaining) == (True, 0)
    clock.advance(0.3)  # 0.15 tokens back: 0.85 missing at 0.5/s
    refused = rl.check("a", None)
    assert not refused.allowed
    assert refused.retry_after_seconds == pytest.approx(1.7)
    assert dict(rl.headers(refused, ("ietf",)))["Retry-After"] == "2"
    assert not refused.early_retry


def test_retry_after_is_not_a_constant() -> None:
    clock = Clock()
    rl = limiter(clock, requests_per_minute=6, burst=1)  # one token every 10 s
    rl.check("a", None)
    clock.advance(1)
    assert rl.check("b", None).allowed  # another identity has its own bucket
    assert dict(rl.headers(rl.check("a", None)))["Retry-After"] == "9"
    clock.advance(5)
    assert dict(rl.headers(rl.check("a", None)))["Retry-After"] == "4"


def test_early_retry_before_the_announced_time_and_not_after() -> None:
    clock = Clock()
    rl = limiter(clock, requests_per_second=0.5, burst=2)
    rl.check("a", None)
    rl.check("a", None)
    clock.advance(0.3)
    refused = rl.check("a", None)  # told "Retry-After: 2", really refilled after 1.7 s
    assert not refused.allowed
    clock.advance(1.9)
    early = rl.check("a", None)
    assert early.early_retry and early.allowed  # tokens were back, but the client was told 2 s
    assert not rl.check("other", None).early_retry  # evidence is per identity

    clock2 = Clock()
    rl2 = limiter(clock2, requests_per_second=0.5, burst=2)
    rl2.check("a", None)
    rl2.check("a", None)
    clock2.advance(0.3)
    rl2.check("a", None)
    clock2.advance(2.0)
    honoured = rl2.check("a", None)
    assert honoured.allowed and not honoured.early_retry
    clock2.advance(0.01)
    assert not rl2.check("a", None).early_retry  # the deadline is forgotten once passed


def test_an_early_retry_that_is_refused_again_is_flagged_and_re_announced() -> None:
    clock = Clock()
    rl = limiter(clock, requests_per_second=1, burst=1)
    rl.check("a", None)
    first = rl.check("a", None)
    assert not first.allowed and first.retry_after_seconds == pytest.approx(1.0)
    clock.advance(0.5)
    again = rl.check("a", None)
    assert (again.allowed, again.early_retry) == (False, True)
    assert again.retry_after_seconds == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("limits", "burst"),
    [
        ({"requests_per_second": 10}, 10),
        ({"requests_per_second": 2.5}, 3),
        ({"requests_per_second": 0.5}, 1),
        ({"requests_per_minute": 600}, 10),
        ({"requests_per_minute": 100}, 2),
        ({"requests_per_hour": 100}, 1),
        ({"requests_per_second": 10, "requests_per_minute": 60}, 1),
        ({"requests_per_second": 10, "burst": 4}, 4),
    ],
)
def test_default_burst(limits: dict[str, float], burst: int) -> None:
    rl = RateLimiter(RateLimits(**limits))  # type: ignore[arg-type]
    assert rl.capacity == burst
    if "burst" not in limits:
        assert default_burst(RateLimits(**limits)) == burst  # type: ignore[arg-type]


def test_strictest_window_sets_the_rate() -> None:
    clock = Clock()
    rl = limiter(clock, requests_per_second=100, requests_per_hour=3600, burst=1)
    rl.check("a", None)
    assert rl.check("a", None).retry_after_seconds == pytest.approx(1.0)


def test_operation_costs() -> None:
    clock = Clock()
    rl = limiter(clock, requests_per_second=1, burst=10, operation_costs={"bulk": 4, "huge": 50})
    assert rl.check("a", "bulk").remaining == 6
    assert rl.check("a", "bulk").remaining == 2
    refused = rl.check("a", "bulk")
    assert not refused.allowed and refused.cost == 4
    assert refused.retry_after_seconds == pytest.approx(2.0)
    assert rl.check("a", "listPets").allowed  # default cost 1 still fits
    assert rl.check("a", None).remaining == 0
    clock.advance(10)
    huge = rl.check("a", "huge")  # more than the bucket holds: charged the whole bucket
    assert huge.allowed and huge.remaining == 0 and huge.cost == 50


def test_both_header_families() -> None:
    clock = Clock()
    rl = limiter(clock, requests_per_second=2, burst=4)
    ok = rl.check("a", None)
    headers = rl.headers(ok)  # the spec names no family: both are sent
    assert headers == (
        ("RateLimit-Limit", "4"),
        ("RateLimit-Remaining", "3"),
        ("RateLimit-Reset", "1"),
        ("X-RateLimit-Limit", "4"),
        ("X-RateLimit-Remaining", "3"),
        ("X-RateLimit-Reset", "1"),
    )
    assert rate_limit_headers(ok, ("x-ratelimit",))[0] == ("X-RateLimit-Limit", "4")
    for _ in range(3):
        rl.check("a", None)
    refused = rl.check("a", None)
    names = [name for name, _ in rl.headers(refused, ("ietf",))]
    assert names == ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"]
    assert dict(rl.headers(refused, ("ietf",)))["RateLimit-Reset"] == "2"  # 4 tokens at 2/s


def test_spec_header_families_are_the_default() -> None:
    rl = RateLimiter(RateLimits(requests_per_second=1, headers=("x-ratelimit",)))
    assert [n for n, _ in rl.headers(rl.check("a", None))] == [
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    ]


def test_http_date_retry_after_names_the_refill_instant() -> None:
    clock = Clock()
    rl = limiter(clock, requests_per_second=0.5, burst=1, retry_after_format="http-date")
    rl.check("a", None)
    clock.advance(0.1)
    refused = rl.check("a", None)  # refill in 1.9 s, at wall WALL_START + 2.0
    value = dict(rl.headers(refused, ("ietf",)))["Retry-After"]
    assert value.endswith(" GMT")
    announced = parsedate_to_datetime(value).timestamp()
    real_refill = clock.wall() + refused.retry_after_seconds  # type: ignore[operator]
    assert announced == math.ceil(real_refill)
    assert announced >= real_refill
    # Early-retry evidence is judged against the announced date, not a rounded delta.
    clock.advance(announced - clock.wall() - 0.01)
    assert rl.check("a", None).early_retry
    clock.advance(0.01)
    assert not rl.check("a", None).early_retry


def test_seconds_format_can_be_asked_for_explicitly() -> None:
    clock = Clock()
    rl = limiter(clock, requests_per_second=1, burst=1, retry_after_format="http-date")
    rl.check("a", None)
    refused = rl.check("a", None)
    assert dict(rate_limit_headers(refused, (), "seconds")) == {"Retry-After": "1"}


def test_reset_clears_buckets_and_deadlines() -> None:
    clock = Clock()
    rl = limiter(clock, requests_per_second=1, burst=1)
    rl.check("a", None)
    assert not rl.check("a", None).allowed
    rl.reset()
    assert rl.identities == 0
    fresh = rl.check("a", None)
    assert fresh.allowed and not fresh.early_retry


def test_a_high_limit_costs_next_to_nothing() -> None:
    rl = RateLimiter(RateLimits(requests_per_second=1_000_000))
    check = rl.check
    start = time.perf_counter()
    for i in range(20_000):
        check("client", "listPets", i * 1e-6)
    per_call = (time.perf_counter() - start) / 20_000
    assert per_call < 25e-6  # generous for a loaded CI box; typically ~1 µs
    assert rl.identities == 1


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(min_value=0.01, max_value=500),
    burst=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=40),
)
def test_honouring_retry_after_always_succeeds(rate: float, burst: int, gaps: list[float]) -> None:
    clock = Clock()
    rl = limiter(clock, requests_per_second=rate, burst=burst)
    for gap in gaps:
        clock.advance(gap)
        decision = rl.check("a", None)
        if not decision.allowed:
            clock.advance(int(dict(rl.headers(decision, ()))["Retry-After"]))
            retry = rl.check("a", None)
            assert retry.allowed and not retry.early_retry
