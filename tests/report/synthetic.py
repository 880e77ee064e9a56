"""Realistic synthetic stage results and traffic logs for the report's tests and benchmark.

They follow the stage conventions (ids, attributes, criteria ids, series, artifacts) so the
report is exercised the way real stages will feed it; the numbers are made up but plausible.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson

from harness.results.model import (
    Acceptance,
    CheckResult,
    Criterion,
    Finding,
    Series,
    StageResult,
    TimelineEntry,
)

OPERATIONS = ("listPets", "getPet", "createToken")
CONTRACT_CHECKS = ("not_a_server_error", "response_schema", "status_code_conformance")


def contract_stage(*, failing: bool = False) -> StageResult:
    checks = []
    for operation in OPERATIONS:
        for check in CONTRACT_CHECKS:
            bad = failing and operation == "getPet" and check == "response_schema"
            findings = ()
            if bad:
                findings = (
                    Finding(
                        check="response_schema",
                        code="ST201",
                        message="Response violates schema: 'weight_kg' is not of type 'number'",
                        operation="getPet",
                        request="GET http://127.0.0.1:5555/pets/7",
                        response_excerpt='200 OK\n{"id": 7, "name": "Rex", "weight_kg": "heavy"}',
                        json_path="$.weight_kg",
                        reproduce="curl -X GET 'http://127.0.0.1:5555/pets/7' -H 'Authorization: Bearer [REDACTED]'",
                        seed=42,
                    ),
                )
            checks.append(
                CheckResult(
                    id=f"contract/{operation}/{check}",
                    name=f"{operation} {check}",
                    status="failed" if bad else "passed",
                    summary="1 of 25 cases failed" if bad else "25 cases passed",
                    findings=findings,
                    duration_seconds=0.4,
                    attributes={"operation": operation, "check": check},
                )
            )
    checks.append(
        CheckResult(
            id="contract/relies/field/listPets",
            name="relies on field: listPets",
            status="passed",
            summary="6 of 6 mapping source fields found in listPets' response schema",
            attributes={"check": "field", "subject": "listPets"},
            findings=(
                Finding(
                    check="relies",
                    message="tags[].name is optional in the document; the mapping marks it optional too",
                    accepted=Acceptance("known and fine", "dana", "2027-01-31"),
                ),
            ),
        )
    )
    checks.append(
        CheckResult(
            id="contract/mapping/row/state",
            name="mapping row status -> state",
            status="passed",
            summary="enum mapping holds for 200 generated records",
            attributes={"check": "row", "row": "state", "source": "status"},
        )
    )
    return StageResult(
        stage="contract",
        status="failed" if failing else "passed",
        summary=f"{len(checks)} checks on {len(OPERATIONS)} operations"
        + (", 1 failed" if failing else ", all passed"),
        started_at="2026-11-20T10:00:01Z",
        duration_seconds=12.5,
        checks=tuple(checks),
        seed=42,
        artifacts={"traffic": "contract/traffic.jsonl"},
    )


def _timeline(retries: int, waits: float) -> tuple[TimelineEntry, ...]:
    entries = []
    at = 0.0
    for attempt in range(retries):
        entries.append(
            TimelineEntry(
                at_seconds=round(at, 3),
                side="provider",
                method="GET",
                path="/pets?page=1",
                status=None,
                operation="listPets",
                fault="reset",
                note=f"attempt {attempt + 1}",
            )
        )
        at += waits * (2**attempt)
    entries.append(
        TimelineEntry(at, "provider", "GET", "/pets?page=1", 200, "listPets", None, 12.0, "")
    )
    entries.append(TimelineEntry(at + 0.05, "destination", "PUT", "/items/1", 200, "upsertItem"))
    return tuple(entries)


SCENARIOS = (
    ("connection-reset-recovers", "connection_failures"),
    ("rate-limit-429-retry-after", "rate_limit"),
    ("invalid-data-malformed-json", "invalid_data"),
    ("auth-token-expiry", "authentication_failures"),
    ("service-unavailable-window", "service_unavailable"),
    ("timeout-hang", "request_timeout"),
    ("rate-limit-compliance", None),
    ("data-sync-accuracy", None),
    ("alert-high-error-rate", None),
)


def scenarios_stage(*, failing: bool = False) -> StageResult:
    checks = []
    for name, policy in SCENARIOS:
        bad = failing and name in ("rate-limit-429-retry-after", "connection-reset-recovers")
        attributes: dict[str, object] = {"scenario": name, "seed": 7}
        if policy:
            attributes["policy"] = f"error_handling.{policy}"
        checks.append(
            CheckResult(
                id=f"scenarios/{name}",
                name=name,
                status="failed" if bad else "passed",
                summary=(
                    "declared: 4 retries, exponential; observed: 1 attempt, no retry"
                    if bad
                    else "behaved as declared"
                ),
                findings=(
                    (
                        Finding(
                            check=name,
                            message="came back 0.4 s after a 429 with Retry-After: 2",
                            request="GET http://127.0.0.1:5555/pets?page=1",
                            response_excerpt="429 Too Many Requests\nRetry-After: 2",
                            reproduce=f"harness scenarios contracts/petstore/integration.yaml --only {name} --seed 7",
                            seed=7,
                        ),
                    )
                    if bad
                    else ()
                ),
                timeline=_timeline(2 if bad else 3, 0.1),
                duration_seconds=3.2,
                attributes=attributes,
            )
        )
    criteria = (
        Criterion(
            id="launch.success_criteria.records_synced",
            name="Successful data sync",
            target=">= 1000 records",
            measured="1000 records",
            passed=True,
            target_value=1000,
            measured_value=1000,
            comparison=">=",
            unit="records",
        ),
        Criterion(
            id="launch.success_criteria.max_data_loss_incidents",
            name="Data loss incidents",
            target="<= 0 incidents",
            measured="0 incidents",
            passed=True,
            target_value=0,
            measured_value=0,
            comparison="<=",
            unit="incidents",
        ),
    )
    return StageResult(
        stage="scenarios",
        status="failed" if failing else "passed",
        summary=f"{len(checks)} scenarios" + (", 2 failed" if failing else ", all passed"),
        started_at="2026-11-20T10:00:14Z",
        duration_seconds=41.0,
        checks=tuple(checks),
        criteria=criteria,
        seed=7,
        metrics={"records_synced": 1000, "duplicates": 0},
        artifacts={"traffic (provider)": "scenarios/traffic.jsonl"},
    )


def load_stage(*, p95: float = 180.0, error_rate: float = 0.2, seconds: int = 60) -> StageResult:
    rng = random.Random(3)
    p95_ok = p95 <= 800
    criteria = (
        Criterion(
            id="performance.response_time.p95_ms",
            name="Response time p95",
            target="<= 800 ms",
            measured=f"{p95:.0f} ms",
            passed=p95_ok,
            target_value=800,
            measured_value=p95,
            comparison="<=",
            unit="ms",
        ),
        Criterion(
            id="launch.success_criteria.max_error_rate_percent",
            name="Error rate",
            target="<= 1 %",
            measured=f"{error_rate:.2f} %",
            passed=error_rate <= 1,
            target_value=1,
            measured_value=error_rate,
            comparison="<=",
            unit="%",
        ),
        Criterion(
            id="performance.throughput.requests_per_minute",
            name="Throughput",
            target=">= 300 requests/min",
            measured="301 requests/min",
            passed=True,
            target_value=300,
            measured_value=301,
            comparison=">=",
            unit="requests/min",
        ),
    )
    checks = tuple(
        CheckResult(
            id=f"load/{c.id}",
            name=c.name,
            status="passed" if c.passed else "failed",
            summary=f"{c.name}: measured {c.measured}, target {c.target}",
            attributes={"criterion": c.id, "profile": "expected"},
        )
        for c in criteria
    )
    series = (
        Series(
            "latency distribution",
            "ms",
            "requests",
            tuple((float(b), float(rng.randint(5, 300))) for b in range(10, 400, 10)),
        ),
        Series("p50", "s", "ms", tuple((float(t), 60 + rng.random() * 20) for t in range(seconds))),
        Series(
            "p95", "s", "ms", tuple((float(t), p95 + rng.random() * 30) for t in range(seconds))
        ),
        Series(
            "rps", "s", "requests/s", tuple((float(t), 5 + rng.random()) for t in range(seconds))
        ),
        Series(
            "error rate",
            "s",
            "%",
            tuple((float(t), error_rate * rng.random() * 2) for t in range(seconds)),
        ),
    )
    return StageResult(
        stage="load",
        status="passed" if all(c.passed for c in criteria) else "failed",
        summary="profile expected: 300 requests/min for 60 s",
        started_at="2026-11-20T10:01:00Z",
        duration_seconds=62.0,
        checks=checks,
        criteria=criteria,
        series=series,
        metrics={"requests": 301.0, "rps": 5.0, "p95_ms": p95, "error_rate": error_rate},
        artifacts={"locust report": "load/locust.html", "traffic": "load/traffic.jsonl"},
        seed=42,
    )


def traffic_record(seq: int, rng: random.Random, start: float = 1_790_000_000.0) -> bytes:
    status = rng.choices((200, 200, 200, 200, 429, 500, None), (60, 20, 10, 5, 2, 2, 1))[0]
    latency = rng.lognormvariate(3.5, 0.6)
    wall = start + seq * 0.002
    record = {
        "seq": seq,
        "side": "provider" if seq % 5 else "destination",
        "operation_id": "listPets" if seq % 5 else "upsertItem",
        "method": "GET" if seq % 5 else "PUT",
        "path": "/pets" if seq % 5 else f"/items/{seq}",
        "query": "page=1&limit=50",
        "status": status,
        "started_monotonic": seq * 0.002,
        "ended_monotonic": seq * 0.002 + latency / 1000,
        "started_wall": wall,
        "ended_wall": wall + latency / 1000,
        "latency_ms": round(latency, 3),
        "request_bytes": 0,
        "response_bytes": 812,
        "fault": "reset" if status is None else None,
        "client_id": "client-1",
        "auth_identity": "client-1",
        "rate_limit": {"limit": 600, "remaining": rng.randint(0, 600), "reset": 30},
        "early_retry": False,
        "validation_errors": [],
        "request_headers": [["authorization", "Bearer [REDACTED]"], ["accept", "application/json"]],
        "response_headers": [["content-type", "application/json"], ["ratelimit-limit", "600"]],
        "request_body": None,
        "response_body": '{"items":[{"id":1,"name":"Rex","status":"available"}],"next":null}',
        "request_body_truncated": False,
        "response_body_truncated": False,
        "note": "",
    }
    return orjson.dumps(record)


def write_traffic(path: Path, count: int, seed: int = 1) -> Path:
    """A traffic log of ``count`` records, written in batches (bounded memory)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as stream:
        batch: list[bytes] = []
        for seq in range(1, count + 1):
            batch.append(traffic_record(seq, rng))
            if len(batch) >= 10_000:
                stream.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            stream.write(b"\n".join(batch) + b"\n")
    return path


def all_stages(*, failing: bool = False) -> list[StageResult]:
    return [
        contract_stage(failing=failing),
        scenarios_stage(failing=failing),
        load_stage(p95=950.0 if failing else 180.0, error_rate=3.0 if failing else 0.2),
    ]
