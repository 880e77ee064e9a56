"""What one scenario run produced, gathered once, judged many times.

An ``Observation`` holds the evidence every check reads: the traffic of both sides, how the
process ended and what it printed, the destination's contents, the alerts, and the *source
ledger* - for every record of the source collection, whether the provider delivered it intact,
only broken (malformed page, schema-violating record), or not at all. The ledger is what lets
"nothing lost" mean "nothing the integration could have had was lost".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.provider.faults import FaultPlan, RuleCount
from harness.provider.traffic import TrafficRecord
from harness.scenarios.alerts import Alert
from harness.scenarios.destination import DestinationContents
from harness.scenarios.mapping import Expected, Unmappable, map_record
from harness.scenarios.model import Scenario
from harness.scenarios.process import ProcessOutcome
from harness.spec.model import DataMapping, IntegrationSpec

BROKEN_NOTES = frozenset(
    {"reset", "truncated", "closed after headers", "client closed the connection", "server stopped"}
)
"""Traffic-record notes that mean the client got no usable answer, whatever the status line."""

BROKEN_BODY_FAULTS = frozenset({"malformed_json", "truncate", "close_after_headers"})


@dataclass(frozen=True)
class Operations:
    """The spec's operations a scenario talks about, resolved for one project."""

    source: str | None
    token: str | None
    token_path: str | None
    destination: str | None

    def is_token(self, record: TrafficRecord) -> bool:
        if record.side != "provider":
            return False
        if self.token is not None and record.operation_id == self.token:
            return True
        return self.token_path is not None and record.path.endswith(self.token_path)


@dataclass(frozen=True)
class SourceLedger:
    """The source collection and what the provider delivered of it.

    Keys are destination keys (the mapped value of the key field), so they compare directly
    with the destination's records.
    """

    expected: Mapping[str, Expected] = field(default_factory=dict)
    """Every deliverable source record (mappable, and acceptable to the destination)."""
    undeliverable: Mapping[str, str] = field(default_factory=dict)
    """Source records the destination would reject even when mapped right: key -> why."""
    delivered_ok: frozenset[str] = frozenset()
    delivered_bad: Mapping[str, str] = field(default_factory=dict)
    """Keys delivered only broken (never intact): key -> what was wrong. Excused from loss."""
    must_not_write: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Keys delivered as invalid records (and never intact): key -> the record as delivered."""
    may_write: Mapping[str, Expected] = field(default_factory=dict)
    """Keys delivered schema-invalid only outside mapped fields: the mapping of that variant."""
    total: int = 0
    problem: str | None = None


@dataclass(frozen=True)
class Observation:
    """Everything one run of one scenario produced."""

    scenario: Scenario
    spec: IntegrationSpec
    operations: Operations
    plan: FaultPlan
    process: ProcessOutcome
    provider: tuple[TrafficRecord, ...]
    destination_traffic: tuple[TrafficRecord, ...]
    fault_counts: tuple[RuleCount, ...]
    destination: DestinationContents | None
    ledger: SourceLedger
    alerts: tuple[Alert, ...]
    output_dir: Path
    records: int
    token_ttl_seconds: float | None
    repeat: int = 1

    @property
    def t0(self) -> float:
        return self.process.started

    def at(self, moment: float) -> float:
        """Seconds since the integration was started."""
        return moment - self.process.started

    def fault_kind(self, record: TrafficRecord) -> str | None:
        """The action kind of the fault rule applied to ``record`` (``reset``, ``status``...)."""
        if record.fault is None:
            return None
        for rule in self.plan.rules:
            if rule.name == record.fault:
                return rule.action.kind
        return None

    def api_calls(self) -> list[TrafficRecord]:
        """Provider requests other than the token endpoint."""
        return [r for r in self.provider if not self.operations.is_token(r)]

    def token_calls(self) -> list[TrafficRecord]:
        return [r for r in self.provider if self.operations.is_token(r)]

    def fired(self) -> int:
        return sum(count.fired for count in self.fault_counts)


def failed_attempt(observation: Observation, record: TrafficRecord) -> bool:
    """Whether the client got nothing usable from this exchange (and may rightly retry it)."""
    if record.status is None or record.note in BROKEN_NOTES:
        return True
    if record.status == 429 or record.status >= 500:
        return True
    return observation.fault_kind(record) in BROKEN_BODY_FAULTS


def request_key(record: TrafficRecord) -> tuple[str, str, str, str]:
    """Attempts of the same request share this: retries of page 2 are page 2 again."""
    return (record.side, record.method, record.path, record.query)


def describe_request(record: TrafficRecord) -> str:
    query = f"?{record.query}" if record.query else ""
    return f"{record.method} {record.path}{query}"


def episodes(
    observation: Observation, records: Sequence[TrafficRecord]
) -> list[list[TrafficRecord]]:
    """Runs of attempts at one request: failed attempts, then the success that ends the run
    (if any). A later, separate read of the same request starts a new episode."""
    by_key: dict[tuple[str, str, str, str], list[list[TrafficRecord]]] = {}
    for record in sorted(records, key=lambda r: r.started_monotonic):
        runs = by_key.setdefault(request_key(record), [])
        if runs and failed_attempt(observation, runs[-1][-1]):
            runs[-1].append(record)
        else:
            runs.append([record])
    found = [run for runs in by_key.values() for run in runs]
    return sorted(found, key=lambda run: run[0].started_monotonic)


def retry_after_seconds(record: TrafficRecord) -> float | None:
    """The Retry-After a response carried, in seconds (delta-seconds or an HTTP date)."""
    value = record.response_header("retry-after")
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - record.ended_wall)


# --- the source ledger ---------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One answer of the source operation, as the ledger needs it."""

    body: str | None
    truncated_log: bool
    intended: Sequence[Any] | None
    """The page the provider meant to send (for answers a fault changed), else None."""
    faulted: bool


def records_at(body: Any, records_path: str | None) -> list[Any] | None:
    """The record list inside a page body (``records_path``, or the body itself if a list)."""
    if records_path:
        node = body
        for part in records_path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node if isinstance(node, list) else None
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        lists = [v for v in body.values() if isinstance(v, list)]
        return lists[0] if len(lists) == 1 else None
    return None


def build_ledger(
    mapping: DataMapping,
    source_records: Sequence[Any],
    deliveries: Sequence[Delivery],
    *,
    page_errors: Callable[[Any], list[tuple[str, str]]],
    destination_problems: Callable[[Mapping[str, Any]], str | None],
) -> SourceLedger:
    """Classify every source record: delivered intact, only broken, or invalid as delivered.

    ``page_errors(body)`` gives ``(json path, message)`` for each way a page body breaks the
    provider's schema (empty when valid); ``destination_problems(values)`` says why the
    destination would refuse a correctly mapped record (None when it would accept it).
    """
    expected: dict[str, Expected] = {}
    undeliverable: dict[str, str] = {}
    for record in source_records:
        try:
            mapped = map_record(mapping, record)
        except Unmappable as error:
            undeliverable[_fallback_key(record)] = f"the source record cannot be mapped: {error}"
            continue
        refused = destination_problems(mapped.values)
        if refused is not None:
            undeliverable[mapped.key] = refused
        else:
            expected[mapped.key] = mapped
    mapped_fields = {re.split(r"[.\[]", row.source, maxsplit=1)[0] for row in mapping.fields}
    ok: set[str] = set()
    bad: dict[str, str] = {}
    invalid: dict[str, Mapping[str, Any]] = {}
    variants: dict[str, Expected] = {}
    for delivery in deliveries:
        if delivery.truncated_log:
            continue  # the log kept too little of this body to judge it
        intended = list(delivery.intended) if delivery.intended is not None else None
        intended_keys = [_key_of(mapping, r) for r in intended] if intended is not None else []
        try:
            body = json.loads(delivery.body or "")
        except ValueError:
            body = None
        items = records_at(body, mapping.records_path) if body is not None else None
        if items is None:
            for key in intended_keys:
                if key is not None:
                    bad.setdefault(
                        key, "delivered in a page that is not valid JSON or has no records"
                    )
            continue
        errors = (
            _errors_by_item(page_errors(body), mapping.records_path) if delivery.faulted else {}
        )
        for index, item in enumerate(items):
            original = intended[index] if intended is not None and index < len(intended) else None
            if not delivery.faulted or (original is not None and item == original):
                key = _key_of(mapping, item)
                if key is not None:
                    ok.add(key)
                continue
            key = intended_keys[index] if index < len(intended_keys) else _key_of(mapping, item)
            if key is None:
                continue
            fields = errors.get(index, {})
            broken = sorted(name for name in fields if name in mapped_fields)
            try:
                variant = map_record(mapping, item)
            except Unmappable as error:
                bad.setdefault(key, f"delivered invalid: {error}")
                invalid.setdefault(key, item if isinstance(item, Mapping) else {"value": item})
                continue
            if broken:
                reason = "; ".join(f"{name}: {fields[name]}" for name in broken)
                bad.setdefault(key, f"delivered invalid: {reason}")
                invalid.setdefault(key, item if isinstance(item, Mapping) else {"value": item})
            else:
                ok.add(key)
                if variant.key == key:
                    variants[key] = variant
    for key in ok:
        bad.pop(key, None)
        invalid.pop(key, None)
    return SourceLedger(
        expected=expected,
        undeliverable=undeliverable,
        delivered_ok=frozenset(ok),
        delivered_bad=bad,
        must_not_write=invalid,
        may_write=variants,
        total=len(source_records),
    )


def _key_of(mapping: DataMapping, record: Any) -> str | None:
    try:
        return map_record(mapping, record).key
    except Unmappable:
        return None


def _fallback_key(record: Any) -> str:
    if isinstance(record, Mapping):
        for name in ("id", "key", "uuid"):
            if name in record:
                return str(record[name])
    return json.dumps(record, default=str)[:40]


_JSON_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']*)'\]")


def _errors_by_item(
    errors: list[tuple[str, str]], records_path: str | None
) -> dict[int, dict[str, str]]:
    """index -> {top-level field: message} from ``$.items[3].status``-style error paths."""
    prefix = records_path.split(".") if records_path else []
    out: dict[int, dict[str, str]] = {}
    for json_path, message in errors:
        parts: list[str | int] = []
        for name, index, quoted in _JSON_PATH_PART.findall(json_path):
            parts.append(int(index) if index else (name or quoted))
        if parts[: len(prefix)] != prefix or len(parts) <= len(prefix):
            continue
        rest = parts[len(prefix) :]
        if not isinstance(rest[0], int):
            continue
        field_name = str(rest[1]) if len(rest) > 1 else "(record)"
        out.setdefault(rest[0], {}).setdefault(field_name, message)
    return out
