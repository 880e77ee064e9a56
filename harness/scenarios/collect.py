"""Running one scenario's integration and gathering the evidence while the simulators run.

The integration's environment (URLs, credentials, output folder, webhook), the watcher that
stops a run whose verdict is already known, and the reads that need the simulators' threads:
fault counts, the source ledger, the destination's contents and the alerts.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from harness.project import Project
from harness.provider.api import RunningProvider
from harness.provider.engine import ProviderEngine
from harness.provider.faults import (
    FaultPlan,
    RuleCount,
)
from harness.scenarios.alerts import WEBHOOK_ENV, Alert, WebhookReceiver, log_alerts
from harness.scenarios.destination import DestinationContents, collection_of, from_files, from_store
from harness.scenarios.observe import (
    Delivery,
    Operations,
    SourceLedger,
    build_ledger,
    records_at,
)
from harness.scenarios.policy import timeout_tolerance
from harness.scenarios.prepare import Integration
from harness.scenarios.process import (
    ProcessOutcome,
)

LOG_BODY_LIMIT = 1024 * 1024
"""Bytes of each body the traffic log keeps: whole pages, for the source ledger."""
SETTLE_SECONDS = 0.2
SETTLE_MAX_SECONDS = 3.0
"""After the process ends, wait until the traffic logs are quiet this long (at most the max):
the servers log resets and abandoned hangs when they notice the closed connection."""
HAMMER_MARGIN = 1000
"""Provider requests beyond ``HAMMER_MARGIN + 2 x records`` stop the run: no policy explains them."""


def revoke(engine: ProviderEngine) -> None:
    """Make the token endpoint refuse the integration's credentials (``credentials: revoked``)."""
    if engine.auth is not None:
        engine.auth.revoke_credentials()


def environment(
    project: Project,
    target: Integration,
    provider: RunningProvider,
    sink: RunningProvider | None,
    webhook: WebhookReceiver | None,
    output_dir: Path,
) -> dict[str, str]:
    """The integration's environment: ours, the spec's ``env``, its credentials (the values the
    simulator accepts, under the spec's ``${VAR}`` names) and the harness's URLs and folder."""
    iut = project.spec.spec.integration_under_test
    names = iut.env_names if iut is not None else None
    env = dict(os.environ)
    env.update(target.env)
    env.update(provider.credentials.by_env)
    env[names.provider_url if names else "PROVIDER_URL"] = provider.url
    if sink is not None:
        env[names.destination_url if names else "DESTINATION_URL"] = sink.url
    env[names.output_dir if names else "HARNESS_OUTPUT_DIR"] = str(output_dir.resolve())
    if webhook is not None:
        env[WEBHOOK_ENV] = webhook.url
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class Watch:
    """Stops the integration early once the verdict is known: a hung request held well past
    the declared timeout, or far more provider requests than any policy could explain."""

    def __init__(self, provider: RunningProvider, plan: FaultPlan, spec: Any, records: int) -> None:
        self._provider = provider
        self._hang_rules = [i for i, rule in enumerate(plan.rules) if rule.action.kind == "hang"]
        self._hang_names = {plan.rules[i].name for i in self._hang_rules}
        timeout = spec.error_handling.request_timeout if spec.error_handling else None
        self._limit = (
            timeout.seconds + timeout_tolerance(timeout.seconds) + 1.0 if timeout else None
        )
        self._fired: list[float] = []
        self._cap = HAMMER_MARGIN + 2 * records

    def __call__(self) -> str | None:
        provider = self._provider
        if provider.traffic.count > self._cap:
            return f"more than {self._cap} provider requests (hammering)"
        if not self._hang_rules or self._limit is None:
            return None
        counts = provider.call(lambda engine: engine.faults.counts())
        fired = sum(counts[i].fired for i in self._hang_rules)
        now = time.monotonic()
        self._fired.extend([now] * (fired - len(self._fired)))
        if not self._fired:
            return None
        answered = sum(1 for r in provider.records() if r.fault in self._hang_names)
        waiting = self._fired[answered:] if answered < len(self._fired) else []
        if waiting and now - waiting[0] > self._limit:
            return f"a request the provider never answered was still open after {now - waiting[0]:.1f} s"
        return None


def settle(provider: RunningProvider, sink: RunningProvider | None, plan: FaultPlan) -> None:
    """Let the servers log exchanges that end with the process (hung requests, resets)."""
    deadline = time.monotonic() + SETTLE_MAX_SECONDS
    last = (-1, -1)
    stable_since = time.monotonic()
    hangs = [i for i, rule in enumerate(plan.rules) if rule.action.kind == "hang"]
    hang_names = {plan.rules[i].name for i in hangs}
    while time.monotonic() < deadline:
        now = (provider.traffic.count, sink.traffic.count if sink is not None else 0)
        if now != last:
            last, stable_since = now, time.monotonic()
        pending = False
        if hangs:
            counts = provider.call(lambda engine: engine.faults.counts())
            fired = sum(counts[i].fired for i in hangs)
            closed = sum(1 for r in provider.records() if r.fault in hang_names)
            pending = closed < fired
        if not pending and time.monotonic() - stable_since >= SETTLE_SECONDS:
            return
        time.sleep(0.05)


def fault_counts(provider: RunningProvider, sink: RunningProvider | None) -> tuple[RuleCount, ...]:
    mine = provider.call(lambda engine: engine.faults.counts())
    if sink is None:
        return mine
    theirs = sink.call(lambda engine: engine.faults.counts())
    return tuple(
        RuleCount(a.name, a.matched + b.matched, a.fired + b.fired)
        for a, b in zip(mine, theirs, strict=True)
    )


def source_ledger(
    project: Project,
    provider: RunningProvider,
    sink: RunningProvider | None,
    ops: Operations,
    traffic: Sequence[Any],
) -> SourceLedger:
    """The source collection and what of it was delivered, read on the simulators' threads."""
    mapping = project.spec.spec.data_mapping
    if mapping is None or ops.source is None:
        return SourceLedger(problem="no data_mapping: nothing to compare with")
    source_calls = [
        r
        for r in traffic
        if r.operation_id == ops.source
        and r.status is not None
        and 200 <= r.status < 300
        and r.note not in ("truncated", "closed after headers")
    ]
    identities = [r.auth_identity for r in source_calls if r.auth_identity]
    identity = identities[0] if identities else "harness-reader"

    def read(
        engine: ProviderEngine,
    ) -> tuple[list[Any], list[Delivery], Callable[[Any], list[tuple[str, str]]]]:
        op = next((o for o in engine.operations if o.operation_id == ops.source), None)
        if op is None:
            return [], [], lambda body: []
        collection = op.operation.path
        items = json.loads(json.dumps(engine.store.items(identity, collection)))
        deliveries: list[Delivery] = []
        for record in source_calls:
            intended = None
            faulted = record.fault is not None
            if faulted:
                routed = engine.route(record.method, record.path)
                params = routed[1] if routed else {}
                query = parse_qs(record.query, keep_blank_values=True)
                answer = engine.store.answer(
                    op, params, query, None, record.auth_identity or identity
                )
                if answer is not None:
                    intended = json.loads(json.dumps(records_at(answer.body, mapping.records_path)))
            deliveries.append(
                Delivery(record.response_body, record.response_body_truncated, intended, faulted)
            )
        success = op.success()
        schema = success.body if success is not None else None

        def page_errors(body: Any) -> list[tuple[str, str]]:
            if schema is None or schema.is_valid(body):
                return []
            return schema.messages(body)

        return items, deliveries, page_errors

    items, deliveries, page_errors = provider.call(read)
    refusals = _destination_check(sink, ops)
    return build_ledger(
        mapping, items, deliveries, page_errors=page_errors, destination_problems=refusals
    )


def _destination_check(
    sink: RunningProvider | None, ops: Operations
) -> Callable[[Mapping[str, Any]], str | None]:
    """Why the destination API would refuse a correctly mapped record (its request schema)."""
    if sink is None or ops.destination is None:
        return lambda values: None
    op = next((o for o in sink.engine.operations if o.operation_id == ops.destination), None)
    body = None
    if op is not None:
        body = op.bodies.get("application/json") or next(
            (b for b in op.bodies.values() if b is not None), None
        )
    if body is None:
        return lambda values: None
    schema = body

    def refused(values: Mapping[str, Any]) -> str | None:
        if schema.is_valid(dict(values)):
            return None
        path, message = schema.messages(dict(values))[0]
        return f"the destination's schema refuses it ({path}: {message})"

    return refused


def destination_contents(
    project: Project, sink: RunningProvider | None, output_dir: Path
) -> DestinationContents | None:
    """What reached the destination: the simulated sink's store, or the files the spec names."""
    destination = project.spec.spec.destination
    if destination is None:
        return None
    if destination.kind != "api":
        return from_files(destination, output_dir)
    if sink is None or destination.operation is None:
        return None
    op = project.destination.operations.get(destination.operation) if project.destination else None
    if op is None:
        return None
    snapshot = sink.call(lambda engine: json.loads(json.dumps(engine.store.snapshot())))
    return from_store(
        snapshot,
        collection_of(op.path),
        f"simulated {project.destination.title if project.destination else 'destination'}",
    )


def observed_alerts(
    channel: Any,
    webhook: WebhookReceiver | None,
    outcome: ProcessOutcome,
    redact: Callable[[str], str],
) -> tuple[Alert, ...]:
    """Alerts seen on the declared channel (log lines are redacted already; webhook bodies here)."""
    if channel is None:
        return ()
    if channel.kind == "log_pattern" and channel.pattern:
        return tuple(log_alerts(channel.pattern, outcome.output))
    if webhook is not None:
        return tuple(Alert(a.channel, redact(a.text)) for a in webhook.received())
    return ()
