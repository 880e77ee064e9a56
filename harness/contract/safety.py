"""What keeps a contract run polite to a real provider: the allow-list, the rate limit, safe
methods only, and stopping when every request is refused.

A contract run generates hundreds of odd requests. Against a live sandbox that must never mean
a typo'd production URL, a burst over the provider's rate limit, a DELETE the spec did not
allow, or a thousand 401s from expired credentials. Each rule here is enforced before anything
is sent, with a located, one-line reason when the input is wrong.
"""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from harness.problems import InputError, Problem
from harness.project import Project
from harness.spec.model import RateLimits

if TYPE_CHECKING:
    from pyrate_limiter import Limiter
    from schemathesis import Case, HookContext

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
RATE_MARGIN = 0.9
"""Send at most this share of the declared rate: clocks and networks are not exact."""


def live_base_url(project: Project, override: str | None) -> str:
    """The live base URL (``--base-url`` or ``provider.live.base_url``), on the allow-list."""
    spec = project.spec.spec
    live = spec.provider.live
    if live is None:
        raise InputError(
            [
                project.spec.source.problem(
                    ["provider"],
                    "--target live needs provider.live (base_url and allowed_hosts)",
                )
            ]
        )
    url = override or live.base_url
    where = "--base-url" if override else None
    parts = urlsplit(url)
    try:
        port_ok = (parts.port or 0) >= 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        message = f"not an http:// or https:// URL: {url!r}"
        if where:
            raise InputError([Problem(where, None, "", message)])
        raise InputError([project.spec.source.problem(["provider", "live", "base_url"], message)])
    check_allowed_host(project, url, where or "provider.live.base_url")
    return url.rstrip("/")


def check_allowed_host(project: Project, url: str, what: str) -> None:
    """Refuse a URL whose host is not on ``provider.live.allowed_hosts`` (no exceptions:
    a local stand-in must be listed too, so the spec says where traffic may go)."""
    live = project.spec.spec.provider.live
    allowed = {h.lower() for h in (live.allowed_hosts if live else ())}
    host = (urlsplit(url).hostname or "").lower()
    if host not in allowed:
        listed = ", ".join(sorted(allowed)) or "none"
        raise InputError(
            [
                project.spec.source.problem(
                    ["provider", "live", "allowed_hosts"],
                    f"{what}: host '{host}' is not allowed (allowed_hosts: {listed})",
                )
            ]
        )


def check_reachable(url: str, timeout: float = 5.0) -> None:
    """A TCP connection to the URL's host and port, or a one-line ``InputError``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InputError(
            [Problem(url, None, "", f"cannot reach {host}:{port}: {reason}")]
        ) from None


SMOOTH_WINDOW_SECONDS = 0.005
"""Below this spacing a limiter cannot sleep precisely: count requests per window instead."""


@dataclass(frozen=True)
class RatePlan:
    """At most ``per_window`` requests in any ``window_seconds``: under the declared rate and
    never more at once than the declared burst. Slow limits space every request evenly
    (``per_window`` 1); only very high ones allow small groups."""

    per_window: int
    window_seconds: float
    declared_per_second: float

    @property
    def interval_seconds(self) -> float:
        """The average spacing of requests."""
        return self.window_seconds / self.per_window

    def describe(self) -> str:
        per_minute = 60 / self.interval_seconds
        return (
            f"at most {per_minute:.1f} requests/min"
            f" (declared {self.declared_per_second * 60:.1f}/min, {RATE_MARGIN:.0%} of it)"
        )


def rate_plan(limits: RateLimits) -> RatePlan:
    """The pace for ``limits``: the strictest declared rate times the margin, every request
    assumed to cost as much as the costliest operation."""
    cost = max([1, *(limits.operation_costs or {}).values()])
    per_second = limits.per_second
    rate = per_second * RATE_MARGIN / cost
    per_window = max(1, math.floor(rate * SMOOTH_WINDOW_SECONDS))
    if limits.burst is not None:
        per_window = max(1, min(per_window, limits.burst // cost))
    return RatePlan(per_window, per_window / rate, per_second)


def build_limiter(plan: RatePlan) -> Limiter:
    """schemathesis' own limiter (pyrate-limiter), configured from the plan; it sleeps at most a
    couple of milliseconds past the moment a request may go."""
    from pyrate_limiter import Limiter, Rate

    window_ms = max(1, math.ceil(plan.window_seconds * 1000))
    return Limiter(Rate(plan.per_window, window_ms), buffer_ms=2)


# --- no unsafe methods unless the spec allows them -----------------------------------------------

_GUARDED: dict[int, object] = {}
_GUARD_LOCK = threading.Lock()
_HOOK_INSTALLED = False


class UnsafeMethodRefused(Exception):
    """A request with an unsafe method was about to go to a provider that does not allow it."""


def _refuse_unsafe(context: HookContext, case: Case[Any], kwargs: dict[str, Any]) -> None:
    config = case.operation.schema.config
    if _GUARDED.get(id(config)) is config and case.method.upper() not in SAFE_METHODS:
        raise UnsafeMethodRefused(
            f"{case.method.upper()} {case.operation.path} not sent:"
            " provider.live.allow_unsafe_methods is false"
        )


@contextmanager
def refuse_unsafe_methods(config: object) -> Iterator[None]:
    """While the block runs, schemathesis refuses to send unsafe methods for this config.

    The run's configuration already leaves unsafe operations and probes out; this is the last
    line, a process-wide ``before_call`` hook that only acts on guarded configurations.
    """
    global _HOOK_INSTALLED
    with _GUARD_LOCK:
        if not _HOOK_INSTALLED:
            import schemathesis

            schemathesis.hook("before_call")(_refuse_unsafe)
            _HOOK_INSTALLED = True
        _GUARDED[id(config)] = config
    try:
        yield
    finally:
        with _GUARD_LOCK:
            _GUARDED.pop(id(config), None)


# --- stop when every authenticated request is refused -------------------------------------------


class AuthMonitor:
    """Counts consecutive 401/403 answers to requests that carried credentials.

    ``tripped`` once ``limit`` came in a row: the credentials are wrong, revoked or lack access,
    and sending more only hammers the provider. Any other answer resets the count.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.consecutive = 0
        self.tripped = False
        self.last_status: int | None = None
        self.on_trip: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def observe(self, status: int) -> None:
        with self._lock:
            if status in (401, 403):
                self.consecutive += 1
                self.last_status = status
                if self.consecutive >= self.limit and not self.tripped:
                    self.tripped = True
                    if self.on_trip is not None:
                        self.on_trip()
            else:
                self.consecutive = 0
