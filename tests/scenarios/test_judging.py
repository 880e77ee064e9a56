"""The judges on hand-made evidence: exact, fast, and able to fail.

Each test builds the traffic a client *would* produce, then asks the judge. The same traffic is
judged against different declared policies, because that is the point: a scenario's verdict
depends on what the spec says the integration does.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from harness.project import load_project
from harness.provider.faults import FaultPlan, RuleCount, parse_fault_plan
from harness.provider.traffic import TrafficRecord
from harness.scenarios.alerts import Alert
from harness.scenarios.checks import (
    judge_alert,
    judge_outcome,
    judge_rate_compliance,
    judge_reauth,
    judge_retries,
    judge_retry_after,
    judge_sync_accuracy,
    judge_token_reuse,
    peak_in_window,
)
from harness.scenarios.destination import DestinationContents
from harness.scenarios.loader import builtin_scenarios
from harness.scenarios.mapping import differences, map_record, same_value
from harness.scenarios.observe import Observation, Operations, SourceLedger
from harness.scenarios.policy import Backoff, retry_policy
from harness.scenarios.process import ProcessOutcome
from harness.spec.model import ConnectionFailures, IntegrationSpec

from ..conftest import EXAMPLE_SPEC

PROJECT = load_project(EXAMPLE_SPEC)
SPEC = PROJECT.spec.spec
OPS = Operations(
    source="listPets", token="createToken", token_path="/oauth/token", destination="upsertItem"
)
SCENARIOS = {s.name: s for s in builtin_scenarios()}
T0 = 1000.0


def rec(
    at: float,
    status: int | None,
    *,
    op: str = "listPets",
    query: str = "page=1&per_page=50",
    took: float = 0.01,
    fault: str | None = None,
    note: str = "",
    headers: tuple = (),
    body: str | None = None,
    early: bool = False,
) -> TrafficRecord:
    path = "/oauth/token" if op == "createToken" else "/pets"
    return TrafficRecord(
        seq=int(at * 1000),
        side="provider",
        operation_id=op,
        method="POST" if op == "createToken" else "GET",
        path=path,
        query="" if op == "createToken" else query,
        status=status,
        started_monotonic=T0 + at,
        ended_monotonic=T0 + at + took,
        fault=fault,
        note=note,
        response_headers=headers,
        request_body=body,
        early_retry=early,
    )


def observation(
    records: list[TrafficRecord],
    *,
    spec: IntegrationSpec = SPEC,
    scenario: str = "connection-reset",
    exit_code: int = 0,
    plan: FaultPlan | None = None,
    stderr: str = "",
    **extra: Any,
) -> Observation:
    values: dict[str, Any] = dict(
        scenario=SCENARIOS[scenario],
        spec=spec,
        operations=OPS,
        plan=plan
        or parse_fault_plan(
            {
                "rules": [
                    {
                        "name": "f",
                        "match": {"operation": "listPets"},
                        "when": {"nth": [1]},
                        "action": {"reset": True},
                    }
                ]
            }
        ),
        process=ProcessOutcome(T0, T0 + 5, exit_code, stderr=stderr),
        provider=tuple(records),
        destination_traffic=(),
        fault_counts=(RuleCount("f", 1, 1),),
        destination=None,
        ledger=SourceLedger(),
        alerts=(),
        output_dir=Path("."),
        records=10,
        token_ttl_seconds=None,
    )
    values.update(extra)
    return Observation(**values)


def with_retries(
    max_retries: int, backoff: str = "exponential", jitter: str = "full"
) -> IntegrationSpec:
    assert SPEC.error_handling is not None
    failures = ConnectionFailures(max_retries, backoff, 100, 2000, jitter)  # type: ignore[arg-type]
    handling = dataclasses.replace(SPEC.error_handling, connection_failures=failures)
    return dataclasses.replace(SPEC, error_handling=handling)


RESET = {"fault": "f", "note": "reset"}


def test_backoff_bounds_follow_the_declared_policy() -> None:
    exponential = Backoff("exponential", 0.1, 2.0, "none")
    assert exponential.bounds(1) == (0.0, 0.1)  # the first retry may come at once
    assert exponential.bounds(3) == (0.4, 0.4)
    assert exponential.bounds(10) == (2.0, 2.0)  # capped
    assert Backoff("exponential", 0.1, 2.0, "full").bounds(3) == (0.0, 0.4)
    assert Backoff("exponential", 0.1, 2.0, "equal").bounds(3) == (0.2, 0.4)
    assert Backoff("linear", 0.5, None, "none").bounds(3) == (1.5, 1.5)
    assert Backoff("exponential", None, None, "none").bounds(2) == (0.0, None)
    assert retry_policy(SPEC, "service_unavailable").describe() == "4 retries"
    assert retry_policy(SPEC, "rate_limit").describe() == "5 retries, honouring Retry-After"


def test_one_attempt_and_no_retry_is_the_evidence_against_a_retry_policy() -> None:
    traffic = [rec(0.1, 200, op="createToken"), rec(0.2, None, **RESET)]
    verdict = judge_retries(observation(traffic, exit_code=1), {"policy": "connection_failures"})
    assert verdict.status == "failed"
    assert verdict.line == (
        "declared: 4 retries, exponential backoff from 100 ms capped at 2 s full jitter; "
        "observed: GET /pets?page=1&per_page=50: 1 attempt, no retry, then gave up"
    )


def test_the_same_traffic_passes_when_the_policy_says_fail_fast() -> None:
    traffic = [rec(0.1, 200, op="createToken"), rec(0.2, None, **RESET)]
    fail_fast = observation(traffic, spec=with_retries(0), exit_code=1)
    assert judge_retries(fail_fast, {"policy": "connection_failures"}).status == "passed"
    outcome = judge_outcome(fail_fast, {"expect": "recovers", "policy": "connection_failures"})
    assert outcome.status == "passed", outcome.line
    assert "1 injected failure exceed the budget" in outcome.declared
    # ... and the policy that promised retries fails it on the outcome too.
    assert (
        judge_outcome(observation(traffic, exit_code=1), {"expect": "recovers"}).status == "failed"
    )


def test_full_jitter_waits_may_go_down_and_the_first_retry_may_be_immediate() -> None:
    traffic = [
        rec(0.0, None, **RESET),
        rec(0.011, None, **RESET),  # immediate first retry
        rec(0.2, None, **RESET),
        rec(0.25, 200),  # 0.18 s then 0.04 s: down, fine with full jitter
    ]
    assert judge_retries(observation(traffic), {"policy": "connection_failures"}).status == "passed"
    no_jitter = observation(traffic, spec=with_retries(4, jitter="none"))
    verdict = judge_retries(no_jitter, {"policy": "connection_failures"})
    assert verdict.status == "failed"
    assert "retry 3 after 40 ms, sooner than the 400 ms the backoff allows" in verdict.observed


def test_hammering_beyond_the_budget_and_waits_far_beyond_the_cap_fail() -> None:
    hammer = [rec(i * 0.01, None, **RESET) for i in range(9)]
    verdict = judge_retries(observation(hammer, exit_code=1), {"policy": "connection_failures"})
    assert verdict.status == "failed" and "8 retries, more than the declared 4" in verdict.observed
    slow = [rec(0.0, None, **RESET), rec(5.0, 200)]
    verdict = judge_retries(observation(slow), {"policy": "connection_failures"})
    assert verdict.status == "failed" and "longer than the backoff's 100 ms" in verdict.observed


def test_retry_after_is_a_lower_bound() -> None:
    told = (("Retry-After", "2"),)
    early = [rec(0.0, 429, fault="f", headers=told), rec(0.5, 200)]
    verdict = judge_retry_after(observation(early, scenario="rate-limit-429"), {})
    assert verdict.status == "failed"
    assert (
        verdict.observed
        == "GET /pets?page=1&per_page=50 retried after 490 ms; Retry-After said 2 s"
    )
    patient = [rec(0.0, 429, fault="f", headers=told), rec(2.01, 200)]
    assert judge_retry_after(observation(patient, scenario="rate-limit-429"), {}).status == "passed"
    flagged = [rec(0.0, 200), rec(0.3, 200, early=True)]
    assert judge_retry_after(observation(flagged, scenario="rate-limit-429"), {}).status == "failed"


def test_rate_compliance_uses_sliding_windows_and_the_limiters_own_429s() -> None:
    assert peak_in_window([0.0, 0.5, 0.99, 1.0, 1.6], 1.0) == (3, 0.0)
    even = [rec(i * 0.135, 200, query=f"page={i}") for i in range(21)]
    assert (
        judge_rate_compliance(observation(even, scenario="rate-limit-sustained"), {}).status
        == "passed"
    )
    fast = [rec(i * 0.07, 200, query=f"page={i}") for i in range(21)]
    verdict = judge_rate_compliance(observation(fast, scenario="rate-limit-sustained"), {})
    assert verdict.status == "failed"
    assert (
        "peak 15 requests in 1 s" in verdict.observed
        and "the client limiter allows 9" in verdict.observed
    )
    refused = [*even[:3], rec(0.5, 429, query="page=9")]
    verdict = judge_rate_compliance(observation(refused, scenario="rate-limit-sustained"), {})
    assert "the provider's limiter refused 1 request (429)" in verdict.observed


def test_retrying_a_401_with_the_same_dead_token_is_the_evidence() -> None:
    same_token = [
        rec(0.0, 200, op="createToken"),
        rec(0.1, 200),
        rec(0.2, 401, query="page=2"),
        rec(0.25, 401, query="page=2"),
    ]
    verdict = judge_reauth(observation(same_token, scenario="token-expiry", exit_code=1), {})
    assert verdict.status == "failed"
    assert (
        "retried with the same expired token (no token request between the 401 at 0.20 s"
        in verdict.observed
    )
    refreshed = [
        rec(0.0, 200, op="createToken"),
        rec(0.1, 200),
        rec(0.2, 401, query="page=2"),
        rec(0.21, 200, op="createToken", body="grant_type=client_credentials"),
        rec(0.3, 200, query="page=2"),
    ]
    assert judge_reauth(observation(refreshed, scenario="token-expiry"), {}).status == "passed"
    twice = [*refreshed[:4], rec(0.22, 200, op="createToken"), rec(0.3, 200, query="page=2")]
    verdict = judge_reauth(observation(twice, scenario="token-expiry"), {})
    assert "2 tokens issued for one expiry (expected exactly one)" in verdict.observed


def test_a_token_for_every_request_is_not_reuse() -> None:
    per_request = [
        r
        for i in range(6)
        for r in (rec(i * 0.5, 200, op="createToken"), rec(i * 0.5 + 0.1, 200, query=f"page={i}"))
    ]
    obs = observation(per_request, scenario="auth-short-lived-tokens", token_ttl_seconds=1.0)
    verdict = judge_token_reuse(obs, {})
    assert verdict.status == "failed" and "a new token for every request" in verdict.observed
    reused = [
        rec(0.0, 200, op="createToken"),
        *[rec(0.1 + i * 0.3, 200, query=f"page={i}") for i in range(6)],
        rec(0.95, 200, op="createToken"),
    ]
    assert judge_token_reuse(observation(reused, token_ttl_seconds=1.0), {}).status == "passed"


def test_a_crash_is_never_a_clean_failure() -> None:
    crash = "Traceback (most recent call last):\n  ...\nKeyError: 'items'\n"
    verdict = judge_outcome(
        observation([rec(0, 503)], exit_code=1, stderr=crash), {"expect": "failure"}
    )
    assert verdict.status == "failed"
    assert verdict.observed == "crashed with an unhandled error (KeyError: 'items'); exit status 1"


def test_alerts_must_match_the_scenario_and_stay_quiet_when_healthy() -> None:
    fired = observation([], alerts=(Alert("log", "ALERT service_availability: down"),))
    assert judge_alert(fired, {"kinds": ["service_availability"]}).status == "passed"
    assert judge_alert(fired, {"kinds": ["integration_failure"]}).status == "failed"
    assert judge_alert(fired, {"expect": "none"}).status == "failed"
    assert judge_alert(observation([]), {"kinds": ["service_availability"]}).observed == "no alert"


def test_mapping_follows_the_spec_and_tolerates_text_destinations() -> None:
    assert SPEC.data_mapping is not None
    pet = {
        "id": 7,
        "name": "Rex",
        "status": "pending",
        "birth_date": "2021-04-03",
        "weight_kg": 1.0005,
        "tags": [{"id": 1, "name": "calm"}],
    }
    expected = map_record(SPEC.data_mapping, pet)
    assert expected.key == "7"
    assert dict(expected.values) == {
        "external_id": "7",
        "name": "Rex",
        "state": "reserved",
        "born_on": "03.04.2021",
        "weight_grams": 1000,
        "labels": ["calm"],
    }
    assert differences(expected, {**expected.values, "weight_grams": 1001}) == []  # ceil is fine
    assert differences(expected, {**expected.values, "weight_grams": 10}) == [
        "weight_grams is 10, expected 1000"
    ]
    assert same_value(["calm"], '["calm"]') and same_value(1000, "1000") and not same_value("7", 8)
    bare = map_record(SPEC.data_mapping, {"id": 8, "name": "Mia", "status": "sold"})
    assert (
        differences(bare, {"external_id": "8", "name": "Mia", "state": "gone", "born_on": ""}) == []
    )
    assert differences(
        bare, {"external_id": "8", "name": "Mia", "state": "gone", "born_on": "01.01.2020"}
    )


def test_sync_accuracy_names_duplicates_garbage_and_loss() -> None:
    assert SPEC.data_mapping is not None
    pets = [{"id": i, "name": f"Pet {i}", "status": "sold"} for i in (1, 2, 3)]
    expected = {
        str(i): map_record(SPEC.data_mapping, p) for i, p in zip((1, 2, 3), pets, strict=True)
    }
    ledger = SourceLedger(expected=expected, delivered_ok=frozenset(expected), total=3)
    written = (
        dict(expected["1"].values),
        dict(expected["1"].values),
        {"title": "Service Unavailable", "status": 503},
    )
    obs = observation(
        [rec(0, 200)], ledger=ledger, destination=DestinationContents("test", written)
    )
    verdict = judge_sync_accuracy(obs, {})
    assert verdict.status == "failed"
    assert "1 duplicated (external_id 1 (2x))" in verdict.observed
    assert (
        "1 unexpected record (a record without external_id: {title='Service Unavailable'"
        in verdict.observed
    )
    assert "lost 2 of 3 records (external_id 2, 3)" in verdict.observed
    failed_run = observation(
        [rec(0, 200)],
        ledger=ledger,
        exit_code=1,
        destination=DestinationContents("test", (dict(expected["2"].values),)),
    )
    verdict = judge_sync_accuracy(failed_run, {})
    assert verdict.status == "passed" and "loss is not judged" in verdict.observed


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_outcome_declarations_read_like_the_spec(name: str) -> None:
    """Every built-in's outcome states the policy in words a reader of the spec recognises."""
    scenario = SCENARIOS[name]
    expectation = scenario.expectation("outcome")
    assert expectation is not None
    plan = parse_fault_plan(
        {
            "rules": [
                dict(r, match={**r.get("match", {}), "operation": "listPets"})
                for r in scenario.faults["rules"]
            ]
        }
        if scenario.faults
        else {"rules": []}
    )
    verdict = judge_outcome(
        observation([rec(0, 200)], scenario=name, plan=plan), dict(expectation.params)
    )
    assert verdict.declared and "None" not in verdict.declared
    if name == "connection-reset":
        assert verdict.declared.startswith(
            "4 retries, exponential backoff from 100 ms capped at 2 s full jitter: 2 injected failures fit the budget"
        )
    if name == "connection-down":
        assert verdict.declared == "fail fast (exit non-zero, no crash)"
