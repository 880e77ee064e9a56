"""The generic locustfile of `harness load`: the plan's operation mix, paced by its stages.

Every operation of the mix is a task whose weight is its share; each task sends one request
(a variant generated from the operation's request schemas by the harness) through
``harness_hooks.send``, which applies the client-side limiter and the spec's auth. Users are
``FastHttpUser`` (geventhttpclient: several times the requests per second of ``HttpUser`` per
core), with the spec's request timeout and no retries, so every request the provider saw is one
Locust counted, and TLS certificates verified (FastHttpUser's default is not to). Redirects
are not followed (they could lead off the allowed hosts). ``HarnessShape`` follows the plan's
stages and ends the run.

Copy it as a starting point for your own locustfile (see ``loadtests/README.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from locust import FastHttpUser

if TYPE_CHECKING:
    from harness.load.assets import harness_hooks as hooks
else:  # Locust puts this file's folder on sys.path while it imports it
    import harness_hooks as hooks


def _task(operation: hooks.Operation) -> Callable[[Any], None]:
    def run(user: Any) -> None:
        hooks.send(user, operation)

    run.__name__ = operation.id
    return run


class HarnessUser(FastHttpUser):
    host = hooks.BASE_URL
    network_timeout = hooks.TIMEOUT
    connection_timeout = hooks.TIMEOUT
    max_retries = 0
    insecure = False  # verify TLS certificates (FastHttpUser does not by default)
    # What Locust makes of a {task: weight} dict: each task listed weight times.
    tasks = [t for op in hooks.OPERATIONS for t in [_task(op)] * op.weight]  # noqa: RUF012

    def on_start(self) -> None:
        hooks.stagger(self)

    def wait_time(self) -> float:
        return hooks.pacing(self)


class HarnessShape(hooks.PlanShape):
    """The plan's stages (users, spawn rate, duration): the run ends when the last one does."""
