"""The gate: from the spec and whatever stages ran to one verdict with its reasons.

This is where the template's checklists are ticked. Stages judge (checks, criteria); the gate
only *collects*: it never re-judges a check, it maps checks to checklist items by documented
rules (docs/report.md, "Checklist mapping"), adds the spec's success criteria that nobody
measured as unmeasured, and orders the reasons so the most important failure comes first.

Verdict rules:

* ``not_ready`` - something automated failed: a check, a success criterion, or an automated
  checklist item (a secret leaked, a plaintext live target, a literal credential);
* ``error`` - nothing failed, but the harness could not judge everything it ran (a stage or a
  check in ``error``, an incomplete run) or nothing was tested at all;
* ``ready`` - everything that ran passed. Stages that did not run show as ``not_run`` and
  unmeasured criteria as ``passed: null``; they do not make a run not ready by themselves.

Manual items (approvals, rollback steps, firewall rules...) never change the verdict: they are
listed with what the spec says so a person can tick them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness import __version__
from harness.project import Project
from harness.redact import Redactor
from harness.report.security import scrub_text, scrubber, security_items
from harness.results.model import (
    ChecklistItem,
    ChecklistStatus,
    CheckResult,
    Criterion,
    RunResult,
    StageName,
    StageResult,
    Verdict,
)
from harness.results.serialize import from_data, to_data
from harness.spec.model import IntegrationSpec

STAGE_ORDER: tuple[StageName, ...] = ("validate", "contract", "scenarios", "load")

ERROR_HANDLING = "Error Handling"
TESTING = "Testing Strategy"
SECURITY = "Security & Compliance"
MONITORING = "Monitoring & Alerting"
DEPENDENCIES = "Dependencies"
DOCUMENTATION = "Documentation Requirements"
APPROVALS = "Stakeholder Approval"
ROLLBACK = "Rollback Plan"
SECTIONS = (
    ERROR_HANDLING,
    TESTING,
    SECURITY,
    MONITORING,
    DEPENDENCIES,
    DOCUMENTATION,
    APPROVALS,
    ROLLBACK,
)

MAX_REASONS_PER_KIND = 25
"""Longer lists end in "... and N more" (every item is still in the checks and the checklist)."""

# -- which checks tick which item -----------------------------------------------------------

ERROR_HANDLING_ITEMS: tuple[tuple[str, str], ...] = (
    ("connection_failures", "Connection failures (retry logic)"),
    ("rate_limit", "Rate limit exceeded (backoff strategy)"),
    ("invalid_data", "Invalid data format (validation and logging)"),
    ("authentication_failures", "Authentication failures (re-auth flow)"),
    ("service_unavailable", "Service unavailable (graceful degradation)"),
    ("request_timeout", "Request timeouts (timeout handling)"),
)

# Fallback when a scenario names no policy: keywords in its name (first match wins).
_SCENARIO_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("monitoring.alerts", ("alert",)),
    ("data_sync", ("data-sync", "data_sync", "sync-accuracy", "accuracy", "clean-run")),
    ("error_handling.rate_limit", ("rate-limit", "rate_limit", "ratelimit", "429", "retry-after")),
    ("error_handling.authentication_failures", ("auth", "token", "401", "credential")),
    ("error_handling.request_timeout", ("timeout", "hang", "slow")),
    ("error_handling.service_unavailable", ("unavailable", "503", "circuit", "outage")),
    ("error_handling.invalid_data", ("invalid", "malformed", "schema-violat", "bad-data")),
    ("error_handling.connection_failures", ("connection", "reset", "network", "refused")),
)

CATEGORY_TOPICS = {
    "connection_failures": "error_handling.connection_failures",
    "rate_limit": "error_handling.rate_limit",
    "invalid_data": "error_handling.invalid_data",
    "authentication": "error_handling.authentication_failures",
    "service_unavailable": "error_handling.service_unavailable",
    "timeouts": "error_handling.request_timeout",
    "data_sync": "data_sync",
    "alerts": "monitoring.alerts",
}
"""A scenario's ``category`` (scenarios/*.yaml; ``attributes["category"]``) -> checklist topic."""

ALERTS: tuple[tuple[str, str], ...] = (
    ("integration_failure", "Integration failure alert"),
    ("high_error_rate", "High error rate alert"),
    ("rate_limit_threshold", "Rate limit threshold alert"),
    ("service_availability", "Service availability alert"),
)

METRICS: tuple[tuple[str, str], ...] = (
    ("success_failure_rates", "Request success/failure rates"),
    ("response_times", "Response times"),
    ("rate_limit_usage", "Rate limit usage"),
    ("data_sync_accuracy", "Data sync accuracy"),
    ("error_frequencies", "Error frequencies by type"),
)


def _values(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return []


def check_topics(check: CheckResult) -> set[str]:
    """The checklist topics a check speaks to (see docs/report.md, "Checklist mapping").

    Explicit first: ``attributes["checklist"]`` (item ids) and ``attributes["policy"]`` (an
    ``error_handling`` key, with or without the prefix, or any item id); ``attributes["alert"]``
    names an alert. Only when none is given, keywords in the scenario's name decide.
    """
    topics: set[str] = set()
    attributes = check.attributes
    for key in ("checklist", "policy"):
        for value in _values(attributes.get(key)):
            if value in dict(ERROR_HANDLING_ITEMS):
                value = f"error_handling.{value}"
            topics.add(value)
    for category in _values(attributes.get("category")):
        if category in CATEGORY_TOPICS:
            topics.add(CATEGORY_TOPICS[category])
    alerts = _values(attributes.get("alert"))
    for alert in alerts:
        topics.add(alert if alert.startswith("monitoring.") else f"monitoring.alerts.{alert}")
    if "monitoring.alerts" in topics:  # the category alone: which alert, from the name
        topics.discard("monitoring.alerts")
        if not alerts:
            topics.add(_alert_topic(check.id.lower()))
    expectations = _values(attributes.get("checks")) + _values(attributes.get("expectations"))
    if "rate_compliance" in expectations:
        topics.add("rate_limit_compliance")
    if topics:
        return topics
    name = " ".join(
        [
            check.id.split("/", 1)[-1],
            *_values(attributes.get("scenario")),
            *_values(attributes.get("profile")),
        ]
    ).lower()
    for topic, words in _SCENARIO_KEYWORDS:
        if any(word in name for word in words):
            topics.add(_alert_topic(name) if topic == "monitoring.alerts" else topic)
            break
    if "compliance" in name:
        topics.add("rate_limit_compliance")
    return topics


def _alert_topic(name: str) -> str:
    """``monitoring.alerts.<key>`` for the alert a scenario's name mentions, if any."""
    keys = [k for k, _ in ALERTS if k in name or k.replace("_", "-") in name]
    return f"monitoring.alerts.{keys[0]}" if keys else "monitoring.alerts"


def _is_mapping_check(check: CheckResult) -> bool:
    """The contract stage's data-mapping checks (``contract/mapping/...``)."""
    return check.id.startswith("contract/mapping/") or "data_mapping" in _values(
        check.attributes.get("check")
    )


# -- checklist ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    spec: IntegrationSpec
    stages: Mapping[str, StageResult]

    def ran(self, stage: str) -> bool:
        result = self.stages.get(stage)
        return result is not None and result.status != "not_run"

    def checks(self, stage: str) -> tuple[CheckResult, ...]:
        result = self.stages.get(stage)
        return () if result is None else result.checks


def _from_checks(
    item_id: str,
    section: str,
    label: str,
    checks: Sequence[CheckResult],
    *,
    ran: bool,
    stage: str,
    declared: str,
    nothing: ChecklistStatus = "not-run",
    nothing_evidence: str = "",
) -> ChecklistItem:
    """Tick an item from the checks that decide it: any failed -> fail, all judged passed -> pass."""
    ids = tuple(c.id for c in checks)
    failed = [c for c in checks if c.status == "failed"]
    errors = [c for c in checks if c.status == "error"]
    passed = [c for c in checks if c.status == "passed"]
    suffix = f" ({declared})" if declared else ""
    if failed:
        shown = "; ".join(f"{c.id}: {c.summary}" for c in failed[:3])
        more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
        return ChecklistItem(
            item_id, section, label, "automated-fail", f"failed: {shown}{more}{suffix}", ids
        )
    if errors:
        shown = "; ".join(f"{c.id}: {c.summary}" for c in errors[:3])
        return ChecklistItem(
            item_id, section, label, "not-run", f"could not judge: {shown}{suffix}", ids
        )
    if passed:
        first = passed[0]
        more = f" (+{len(passed) - 1} more passed)" if len(passed) > 1 else ""
        return ChecklistItem(
            item_id,
            section,
            label,
            "automated-pass",
            f"{first.id}: {first.summary}{more}{suffix}",
            ids,
        )
    if not ran:
        return ChecklistItem(
            item_id, section, label, "not-run", f"the {stage} stage did not run{suffix}", ids
        )
    text = nothing_evidence or f"no {stage} check judged this"
    return ChecklistItem(item_id, section, label, nothing, f"{text}{suffix}", ids)


def describe_policy(spec: IntegrationSpec, key: str) -> str:
    """What the spec declares for one error-handling policy, in its own terms."""
    eh = spec.error_handling
    policy = getattr(eh, key, None) if eh is not None else None
    if policy is None:
        return "declared: no policy"
    parts = []
    for name, value in vars(policy).items():
        if value is None:
            continue
        shown = {True: "yes", False: "no"}.get(value, value) if isinstance(value, bool) else value
        if isinstance(shown, float):
            shown = f"{shown:g}"
        parts.append(f"{name.replace('_', ' ')}: {shown}")
    return "declared: " + ", ".join(parts)


def _error_handling(
    ctx: _Context, by_topic: Mapping[str, list[CheckResult]]
) -> list[ChecklistItem]:
    items = []
    for key, label in ERROR_HANDLING_ITEMS:
        declared = describe_policy(ctx.spec, key)
        checks = by_topic.get(f"error_handling.{key}", [])
        if key == "request_timeout" and not checks and declared == "declared: no policy":
            continue  # not one of the template's five; shown only when the spec or a scenario has it
        items.append(
            _from_checks(
                f"error_handling.{key}",
                ERROR_HANDLING,
                label,
                checks,
                ran=ctx.ran("scenarios"),
                stage="scenarios",
                declared=declared,
                nothing_evidence="no scenario judged this policy",
            )
        )
    return items


def _flag(value: bool | None, yes: str = "planned", no: str = "not planned") -> str:
    return {True: f"spec: {yes}", False: f"spec: {no}", None: "spec: not stated"}[value]


def _testing(ctx: _Context, by_topic: Mapping[str, list[CheckResult]]) -> list[ChecklistItem]:
    ts = ctx.spec.testing_strategy
    unit = ts.unit if ts else None
    integ = ts.integration if ts else None
    perf = ts.performance if ts else None
    contract = ctx.checks("contract")
    load = ctx.checks("load")
    error_scenarios = [
        c
        for c in ctx.checks("scenarios")
        if any(t.startswith("error_handling.") for t in check_topics(c))
    ]

    def topic(name: str) -> list[CheckResult]:
        return by_topic.get(name, [])

    compliance = [
        c
        for c in (*ctx.checks("scenarios"), *load)
        if "rate_limit_compliance" in check_topics(c)
        or "testing_strategy.performance.rate_limit_compliance" in check_topics(c)
    ]
    timeouts = topic("error_handling.request_timeout") + [
        c for c in load if "error_handling.request_timeout" in check_topics(c)
    ]

    def item(
        item_id: str,
        label: str,
        checks: Sequence[CheckResult],
        stage: str,
        declared: bool | None,
    ) -> ChecklistItem:
        return _from_checks(
            f"testing_strategy.{item_id}",
            TESTING,
            label,
            checks,
            ran=ctx.ran(stage),
            stage=stage,
            declared=_flag(declared),
        )

    def manual(item_id: str, label: str, declared: bool | None) -> ChecklistItem:
        return ChecklistItem(
            f"testing_strategy.{item_id}",
            TESTING,
            label,
            "manual",
            f"the team's own unit tests ({_flag(declared)})",
        )

    return [
        item(
            "unit.data_transformation",
            "Data transformation logic",
            [c for c in contract if _is_mapping_check(c)],
            "contract",
            unit.data_transformation if unit else None,
        ),
        manual(
            "unit.error_handling", "Error handling scenarios", unit.error_handling if unit else None
        ),
        manual(
            "unit.authentication_flows",
            "Authentication flows",
            unit.authentication_flows if unit else None,
        ),
        item(
            "integration.end_to_end",
            "End-to-end data flow",
            topic("data_sync"),
            "scenarios",
            integ.end_to_end if integ else None,
        ),
        item(
            "integration.error_scenarios",
            "Error scenarios with actual API",
            error_scenarios,
            "scenarios",
            integ.error_scenarios if integ else None,
        ),
        item(
            "integration.rate_limiting",
            "Rate limiting behavior",
            topic("error_handling.rate_limit"),
            "scenarios",
            integ.rate_limiting if integ else None,
        ),
        item(
            "integration.authentication_renewal",
            "Authentication renewal",
            topic("error_handling.authentication_failures"),
            "scenarios",
            integ.authentication_renewal if integ else None,
        ),
        item(
            "performance.load_testing",
            "Load testing with expected volume",
            list(load),
            "load",
            perf.load_testing if perf else None,
        ),
        item(
            "performance.rate_limit_compliance",
            "Rate limit compliance testing",
            compliance,
            "scenarios",
            perf.rate_limit_compliance if perf else None,
        ),
        item(
            "performance.timeout_handling",
            "Timeout handling",
            timeouts,
            "scenarios",
            perf.timeout_handling if perf else None,
        ),
    ]


def _security(
    ctx: _Context, automated: Sequence[ChecklistItem], by_topic: Mapping[str, list[CheckResult]]
) -> list[ChecklistItem]:
    sec = ctx.spec.security
    found = {item.id: item for item in automated}
    items: list[ChecklistItem] = []
    if "security.credentials_stored_securely" in found:
        items.append(found.pop("security.credentials_stored_securely"))
    if "security.encryption_in_transit" in found:
        items.append(found.pop("security.encryption_in_transit"))
    items.append(
        ChecklistItem(
            "security.encryption_at_rest",
            SECURITY,
            "Data encryption at rest (if applicable)",
            "manual",
            _flag(sec.encryption_at_rest if sec else None, "yes", "no"),
        )
    )
    items.append(
        ChecklistItem(
            "security.audit_logging",
            SECURITY,
            "Audit logging implemented",
            "manual",
            _flag(sec.audit_logging if sec else None, "yes", "no"),
        )
    )
    pii = ", ".join(sec.pii_fields) if sec and sec.pii_fields else "none listed"
    items.append(
        ChecklistItem(
            "security.privacy_reviewed",
            SECURITY,
            "GDPR/privacy compliance reviewed",
            "manual",
            f"{_flag(sec.privacy_reviewed if sec else None, 'reviewed', 'not reviewed')}; PII fields: {pii}",
        )
    )
    compliance = [
        c
        for c in (*ctx.checks("scenarios"), *ctx.checks("load"))
        if "rate_limit_compliance" in check_topics(c)
    ]
    items.append(
        _from_checks(
            "security.rate_limiting",
            SECURITY,
            "Rate limiting implemented (client stays under the provider's limit)",
            compliance,
            ran=ctx.ran("scenarios") or ctx.ran("load"),
            stage="scenarios",
            declared=_flag(sec.rate_limiting if sec else None, "yes", "no"),
            nothing="manual",
            nothing_evidence="no rate-limit compliance check ran",
        )
    )
    items.extend(found.values())  # the redaction scan, and anything a caller added
    return items


def _metric_evidence(ctx: _Context, key: str) -> str:
    metrics: dict[str, float] = {}
    for stage in ctx.stages.values():
        for name, value in stage.metrics.items():
            metrics.setdefault(name, value)
    words = {
        "success_failure_rates": ("requests", "failures", "error_rate", "fail_ratio"),
        "response_times": ("p50_ms", "p95_ms", "p99_ms", "avg_ms"),
        "rate_limit_usage": ("rate_limited", "429"),
        "data_sync_accuracy": ("records", "sync", "loss", "duplicate"),
        "error_frequencies": ("errors", "fault", "5xx", "4xx"),
    }[key]
    shown = [f"{n} {v:g}" for n, v in sorted(metrics.items()) if any(w in n for w in words)]
    return (
        f"measured in this run: {', '.join(shown[:6])}" if shown else "see the monitoring section"
    )


def _monitoring(ctx: _Context, by_topic: Mapping[str, list[CheckResult]]) -> list[ChecklistItem]:
    mon = ctx.spec.monitoring
    items = []
    for key, label in METRICS:
        declared = getattr(mon.metrics, key) if mon and mon.metrics else None
        items.append(
            ChecklistItem(
                f"monitoring.metrics.{key}",
                MONITORING,
                label,
                "manual",
                f"tracked in production is the team's call ({_flag(declared, 'tracked', 'not tracked')}); {_metric_evidence(ctx, key)}",
            )
        )
    channel = mon.alert_channel if mon else None
    for key, label in ALERTS:
        declared = getattr(mon.alerts, key) if mon and mon.alerts else None
        checks = by_topic.get(f"monitoring.alerts.{key}", [])
        nothing = (
            "no scenario observed this alert"
            if channel is not None
            else "no alert channel the harness can observe (monitoring.alert_channel)"
        )
        items.append(
            _from_checks(
                f"monitoring.alerts.{key}",
                MONITORING,
                label,
                checks,
                ran=ctx.ran("scenarios"),
                stage="scenarios",
                declared=_flag(declared, "set up", "not set up"),
                nothing="manual",
                nothing_evidence=nothing,
            )
        )
    return items


def _manual_flags(
    prefix: str, section: str, values: object, labels: Sequence[tuple[str, str]]
) -> list[ChecklistItem]:
    return [
        ChecklistItem(
            f"{prefix}.{key}",
            section,
            label,
            "manual",
            _flag(getattr(values, key) if values is not None else None, "done", "not done"),
        )
        for key, label in labels
    ]


def _approvals(spec: IntegrationSpec) -> list[ChecklistItem]:
    if not spec.approvals:
        return [
            ChecklistItem(
                f"approvals.{role.lower()}", APPROVALS, role, "manual", "not stated in the spec"
            )
            for role in ("Product", "Engineering", "Security", "DevOps")
        ]
    items = []
    for approval in spec.approvals:
        who = approval.name or "no name given"
        if approval.approved:
            evidence = f"spec: approved by {who}" + (
                f" on {approval.date}" if approval.date else ""
            )
        else:
            evidence = f"spec: not approved yet ({who})"
        slug = re.sub(r"[^a-z0-9]+", "_", approval.role.lower()).strip("_")
        items.append(
            ChecklistItem(f"approvals.{slug}", APPROVALS, approval.role, "manual", evidence)
        )
    return items


def _rollback(spec: IntegrationSpec) -> list[ChecklistItem]:
    rollback = spec.rollback
    scenarios = rollback.failure_scenarios if rollback and rollback.failure_scenarios else ()
    items = [
        ChecklistItem(
            "rollback.failure_scenarios",
            ROLLBACK,
            "Failure scenarios",
            "manual",
            "spec: " + "; ".join(scenarios) if scenarios else "not stated in the spec",
        )
    ]
    steps = rollback.steps if rollback and rollback.steps else ()
    if not steps:
        items.append(
            ChecklistItem(
                "rollback.steps", ROLLBACK, "Rollback steps", "manual", "none in the spec"
            )
        )
    for index, step in enumerate(steps):
        items.append(
            ChecklistItem(
                f"rollback.steps[{index}]",
                ROLLBACK,
                f"Step {index + 1}",
                "manual",
                f"spec: {step} (rehearse it; the harness cannot)",
            )
        )
    return items


def build_checklist(
    spec: IntegrationSpec,
    stages: Sequence[StageResult],
    security: Sequence[ChecklistItem] = (),
) -> tuple[ChecklistItem, ...]:
    """Every checklist line of the template, ticked from the stages' checks where it can be.

    ``security`` are the automated security items (:func:`harness.report.security.security_items`);
    they are placed in the security section.
    """
    ctx = _Context(spec, {s.stage: s for s in stages})
    by_topic: dict[str, list[CheckResult]] = {}
    for stage in stages:
        if stage.stage != "scenarios":
            continue
        for check in stage.checks:
            for topic in check_topics(check):
                by_topic.setdefault(topic, []).append(check)
    return (
        *_error_handling(ctx, by_topic),
        *_testing(ctx, by_topic),
        *_security(ctx, security, by_topic),
        *_monitoring(ctx, by_topic),
        *_manual_flags(
            "dependencies",
            DEPENDENCIES,
            spec.dependencies,
            (
                ("credentials_obtained", "API access credentials obtained"),
                ("firewall_rules_configured", "Network firewall rules configured"),
                ("database_schema_deployed", "Database schema changes deployed"),
                ("monitoring_setup_complete", "Monitoring/alerting setup complete"),
            ),
        ),
        *_manual_flags(
            "documentation",
            DOCUMENTATION,
            spec.documentation,
            (
                ("integration_guide", "API integration guide"),
                ("troubleshooting_runbook", "Troubleshooting runbook"),
                ("data_mapping_documentation", "Data mapping documentation"),
                ("monitoring_dashboard", "Monitoring dashboard created"),
            ),
        ),
        *_approvals(spec),
        *_rollback(spec),
    )


# -- criteria -------------------------------------------------------------------------------


def _declared_criteria(spec: IntegrationSpec) -> list[Criterion]:
    """The spec's success criteria and performance requirements, none measured yet."""
    out: list[Criterion] = []

    def add(
        cid: str,
        name: str,
        value: float | None,
        comparison: str,
        unit: str,
        source: str,
    ) -> None:
        if value is None:
            return
        shown = f"{value:g} {unit}".strip()
        out.append(
            Criterion(
                id=cid,
                name=name,
                target=f"{comparison} {shown}",
                measured=None,
                passed=None,
                target_value=float(value),
                comparison="<=" if comparison == "<=" else ">=",
                unit=unit,
                source=source,
            )
        )

    launch = spec.launch.success_criteria if spec.launch else None
    if launch is not None:
        prefix = "launch.success_criteria"
        add(
            f"{prefix}.records_synced",
            "Successful data sync",
            launch.records_synced,
            ">=",
            "records",
            "scenarios",
        )
        add(
            f"{prefix}.max_error_rate_percent",
            "Error rate",
            launch.max_error_rate_percent,
            "<=",
            "%",
            "load",
        )
        add(
            f"{prefix}.max_response_time_seconds",
            "Response time",
            launch.max_response_time_seconds,
            "<=",
            "s",
            "load",
        )
        add(
            f"{prefix}.max_data_loss_incidents",
            "Data loss incidents",
            launch.max_data_loss_incidents,
            "<=",
            "incidents",
            "scenarios",
        )
    perf = spec.performance
    if perf is not None and perf.response_time is not None:
        rt = perf.response_time
        for key, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
            add(
                f"performance.response_time.{key}",
                f"Response time {label}",
                getattr(rt, key),
                "<=",
                "ms",
                "load",
            )
    if perf is not None and perf.throughput is not None:
        tp = perf.throughput
        for key, unit in (
            ("requests_per_second", "requests/s"),
            ("requests_per_minute", "requests/min"),
            ("requests_per_hour", "requests/h"),
        ):
            add(f"performance.throughput.{key}", "Throughput", getattr(tp, key), ">=", unit, "load")
    return out


def _bare_id(criterion_id: str) -> str:
    """``load/performance.response_time.p95_ms`` -> ``performance.response_time.p95_ms``."""
    head, sep, rest = criterion_id.partition("/")
    return rest if sep and head in STAGE_ORDER else criterion_id


def collect_criteria(spec: IntegrationSpec, stages: Sequence[StageResult]) -> tuple[Criterion, ...]:
    """The spec's criteria in spec order, each as measured by a stage when one did.

    A criterion measured by several stages keeps the failing measurement (else the first);
    criteria a stage measured that the spec does not declare follow, in stage order.
    """
    measured: dict[str, Criterion] = {}
    order: list[str] = []
    for stage in stages:
        for criterion in stage.criteria:
            key = _bare_id(criterion.id)
            if criterion.source is None:
                criterion = replace(criterion, source=stage.stage)
            known = measured.get(key)
            if known is None:
                measured[key] = criterion
                order.append(key)
            elif known.passed is None or (criterion.passed is False and known.passed is not False):
                measured[key] = criterion
    ran = {s.stage for s in stages if s.status != "not_run"}
    result: list[Criterion] = []
    for declared in _declared_criteria(spec):
        found = measured.pop(declared.id, None)
        if found is None:
            # A stage may name the section only (``performance.throughput`` for whichever of
            # requests_per_second/minute/hour the spec declares).
            parent = next((key for key in order if declared.id.startswith(f"{key}.")), None)
            found = measured.pop(parent, None) if parent else None
        if found is not None:
            result.append(found)
            continue
        source = declared.source or "load"
        why = (
            f"not measured: the {source} stage did not run"
            if source not in ran
            else f"not measured by the {source} stage"
        )
        result.append(replace(declared, evidence=why))
    result.extend(measured[key] for key in order if key in measured)
    return tuple(result)


# -- verdict --------------------------------------------------------------------------------


def _capped(lines: list[str], what: str) -> list[str]:
    if len(lines) <= MAX_REASONS_PER_KIND:
        return lines
    extra = len(lines) - MAX_REASONS_PER_KIND
    return [*lines[:MAX_REASONS_PER_KIND], f"... and {extra} more {what}"]


def _criterion_covers(check: CheckResult, failed_criteria: Iterable[Criterion]) -> bool:
    named = set(_values(check.attributes.get("criterion")))
    for criterion in failed_criteria:
        if criterion.id in named or check.id.endswith(criterion.id):
            return True
    return False


def compute_verdict(
    stages: Sequence[StageResult],
    criteria: Sequence[Criterion],
    checklist: Sequence[ChecklistItem],
    *,
    incomplete: bool = False,
) -> tuple[Verdict, tuple[str, ...]]:
    """The verdict and its reasons, most important first (see the module docstring)."""
    failures: list[str] = []
    security_fail = [
        f"security: {item.label}: {item.evidence}"
        for item in checklist
        if item.status == "automated-fail" and not item.check_ids
    ]
    failures += security_fail
    failed_criteria = [c for c in criteria if c.passed is False]
    failures += _capped(
        [
            f"success criterion {c.id}: measured {c.measured}, target {c.target}"
            + (f" ({c.source})" if c.source else "")
            for c in failed_criteria
        ],
        "failed criteria",
    )
    by_stage: dict[str, StageResult] = {s.stage: s for s in stages}
    for name, label in (
        ("scenarios", "scenario"),
        ("contract", "contract check"),
        ("load", "load check"),
        ("validate", "validation"),
    ):
        stage = by_stage.get(name)
        if stage is None:
            continue
        failed = [
            c
            for c in stage.checks
            if c.status == "failed" and not _criterion_covers(c, failed_criteria)
        ]
        lines = [f"{label} {c.id} failed: {c.summary}" for c in failed]
        if (
            stage.status == "failed"
            and not failed
            and not any(c.source == name for c in failed_criteria)
        ):
            lines.append(f"{name} stage failed: {stage.summary}")
        failures += _capped(lines, f"failed {label}s")
    problems: list[str] = []
    for stage in stages:
        if stage.status == "error":
            problems.append(f"{stage.stage} stage error: {stage.error or stage.summary}")
        errored = [c for c in stage.checks if c.status == "error"]
        problems += _capped(
            [f"{c.id} could not be judged: {c.summary}" for c in errored], "checks in error"
        )
    for stage in stages:
        if stage.incomplete:
            problems.append(f"{stage.stage} stage incomplete: cut short before it finished")
    if incomplete and not any(s.incomplete for s in stages):
        problems.append("run incomplete: cut short before every stage finished")
    judged = [s for s in stages if s.stage != "validate" and s.status not in ("not_run", "skipped")]
    if not judged and not failures:
        problems.append("nothing was tested: no contract, scenario or load stage ran")
    if failures:
        return "not_ready", tuple(failures + problems)
    if problems:
        return "error", tuple(problems)
    return "ready", ()


# -- the run --------------------------------------------------------------------------------

VERSIONED_PACKAGES = ("integration-harness", "schemathesis", "hypothesis", "locust", "jsonschema")


def tool_versions() -> dict[str, str]:
    """Versions of the harness and the engines it drives, read from package metadata only
    (locust must never be imported into the harness's process: it monkey-patches with gevent)."""
    versions = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    if versions["integration-harness"] == "not installed":
        versions["integration-harness"] = __version__
    versions["harness"] = versions.pop("integration-harness")
    return dict(sorted(versions.items()))


def spec_sha256(path: Path) -> str:
    """SHA-256 of the spec file's bytes; empty when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def complete_stages(stages: Sequence[StageResult]) -> tuple[StageResult, ...]:
    """``stages`` in the canonical order, with a ``not_run`` placeholder for each missing one.

    A missing ``validate`` becomes ``passed``: a :class:`Project` only exists once the spec and
    its documents loaded and validated.
    """
    given = {s.stage: s for s in stages}
    out: list[StageResult] = []
    for name in STAGE_ORDER:
        if name in given:
            out.append(given[name])
        elif name == "validate":
            out.append(
                StageResult(
                    stage="validate",
                    status="passed",
                    summary="spec and its OpenAPI documents loaded and validated",
                )
            )
        else:
            out.append(StageResult(stage=name, status="not_run", summary="not run"))
    return tuple(out)


def _scrub_data(node: Any, redactor: Redactor) -> Any:
    if isinstance(node, str):
        return scrub_text(node, redactor)
    if isinstance(node, dict):
        return {_scrub_data(k, redactor): _scrub_data(v, redactor) for k, v in node.items()}
    if isinstance(node, list):
        return [_scrub_data(v, redactor) for v in node]
    return node


def scrub_stages(stages: Sequence[StageResult], redactor: Redactor) -> tuple[StageResult, ...]:
    """Every string in the stage results (keys too) with known secrets replaced."""
    return tuple(from_data(_scrub_data(to_data(s), redactor), StageResult) for s in stages)


def assemble_run(
    project: Project,
    stages: Sequence[StageResult],
    *,
    spec_path: Path,
    seed: int,
    started_at: str,
    duration_seconds: float,
    incomplete: bool,
    out_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunResult:
    """The whole of results.json from the spec and whatever stages ran.

    ``out_dir``: the run's output folder; when given, the secrets-redaction scan covers every
    file in it plus the results about to be written (call this after the stages wrote their
    artifacts, before :func:`harness.report.html.write_outputs`). ``environ`` defaults to
    ``os.environ`` (where the spec's ``${VAR}`` credentials resolve).
    """
    spec = project.spec.spec
    ordered = complete_stages(stages)
    # Scanned as they came from the stages: a secret in them is the stages' leak, and is named.
    pending = {
        "stage results (scrubbed before results.json is written)": json.dumps(
            [to_data(s) for s in ordered], ensure_ascii=False
        )
    }
    automated = security_items(spec, out_dir, environ=environ, extra_texts=pending)
    # Redacted by construction: whatever a stage let through never reaches an output file.
    ordered = scrub_stages(ordered, scrubber(spec, environ))
    criteria = collect_criteria(spec, ordered)
    checklist = build_checklist(spec, ordered, automated)
    run_incomplete = incomplete or any(s.incomplete for s in ordered)
    verdict, reasons = compute_verdict(ordered, criteria, checklist, incomplete=run_incomplete)
    return RunResult(
        integration=spec.name,
        verdict=verdict,
        reasons=reasons,
        started_at=started_at,
        duration_seconds=round(duration_seconds, 3),
        spec_path=str(spec_path),
        spec_sha256=spec_sha256(spec_path),
        seed=seed,
        stages=ordered,
        criteria=criteria,
        checklist=checklist,
        versions=tool_versions(),
        incomplete=run_incomplete,
    )
