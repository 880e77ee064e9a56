"""Judging without Locust: thresholds, percentiles, the cross-check, on hand-made samples."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.load.crosscheck import cross_check
from harness.load.locust_results import LocustTotals
from harness.load.plan import LoadPlan, PlanOptions, build_plan
from harness.load.profiles import resolve_profile
from harness.load.samples import Sample, percentile, summarize
from harness.load.thresholds import evaluate
from harness.project import Project, load_project
from harness.provider.traffic import TrafficRecord

from ..conftest import EXAMPLE_SPEC, REPO
from .conftest import spec_variant


@pytest.fixture(scope="module")
def example() -> Project:
    return load_project(EXAMPLE_SPEC)


def plan_for(project: Project, profile: str = "smoke", duration: float = 10) -> LoadPlan:
    return build_plan(
        project,
        PlanOptions(
            profile=resolve_profile(project, profile, REPO),
            duration_seconds=duration,
            simulated_credentials={"PETSTORE_CLIENT_ID": "a", "PETSTORE_CLIENT_SECRET": "b"},
        ),
    )


def paced(
    count: int,
    rate: float,
    duration_ms: float = 5.0,
    name: str = "listPets",
    status: int = 200,
    stage: int = 0,
) -> list[Sample]:
    kind = "ok" if status < 400 else "fail"
    return [Sample(i / rate, name, duration_ms, status, kind, stage) for i in range(count)]


def by_id(project: Project, plan: LoadPlan, samples: list[Sample]) -> dict[str, object]:
    evaluation = evaluate(project, plan, samples)
    return {c.id: c for c in evaluation.criteria}


def test_percentiles_interpolate_between_exact_durations() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_a_p95_just_over_its_target_fails_where_locust_buckets_would_round_it_down(
    example: Project,
) -> None:
    # Locust keeps 803 ms as 800 (two significant digits): a p95 <= 800 ms would pass there.
    plan = plan_for(example)
    samples = paced(20, 2, 5.0)
    samples[-3:] = [dataclasses.replace(s, duration_ms=803.0) for s in samples[-3:]]
    criteria = by_id(example, plan, samples)
    p95 = criteria["performance.response_time.p95_ms"]
    assert p95.passed is False  # type: ignore[attr-defined]
    assert p95.measured_value == pytest.approx(803.0)  # type: ignore[attr-defined]
    assert criteria["performance.response_time.p50_ms"].passed  # type: ignore[attr-defined]


def test_error_rate_is_a_ratio_one_failure_in_thousands_passes(example: Project) -> None:
    plan = plan_for(example, duration=1000)
    samples = paced(2000, 2)
    samples[500] = dataclasses.replace(samples[500], status=503, kind="fail")
    criterion = by_id(example, plan, samples)["launch.success_criteria.max_error_rate_percent"]
    assert criterion.passed  # type: ignore[attr-defined]
    assert criterion.measured_value == pytest.approx(0.05)  # type: ignore[attr-defined]
    samples[:30] = [dataclasses.replace(s, status=503, kind="fail") for s in samples[:30]]
    criterion = by_id(example, plan, samples)["launch.success_criteria.max_error_rate_percent"]
    assert criterion.passed is False  # type: ignore[attr-defined]


def test_throughput_is_judged_on_arrivals_and_reports_the_shortfall(example: Project) -> None:
    plan = plan_for(example, duration=10)  # smoke: 2 req/s -> 20 arrivals planned
    judged = by_id(example, plan, paced(20, 2))
    # Smoke is capped below the declared 300/min: it proves its own arrival rate only.
    assert "performance.throughput" not in judged
    on_time = judged["load.arrival_rate"]
    assert on_time.passed  # type: ignore[attr-defined]
    # A slow target: the users fell behind and sent 12 of the 20 requests in time.
    late = by_id(example, plan, paced(12, 1.2))["load.arrival_rate"]
    assert late.passed is False  # type: ignore[attr-defined]
    assert late.measured_value == pytest.approx(1.2)  # type: ignore[attr-defined]
    assert "shortfall 8 requests" in late.evidence  # type: ignore[attr-defined]


def test_a_threshold_on_an_operation_the_run_never_produced_is_an_error(
    tmp_path: Path,
) -> None:
    spec = spec_variant(
        tmp_path,
        lambda t: (
            t
            + "\nload:\n  thresholds:\n"
            + "    - {metric: p95_ms, operation: getPet, max: 100}\n"
            + "    - {metric: p95_ms, operation: listPets, max: 100}\n"
            + "    - {metric: status_429, max: 0}\n"
        ),
    )
    project = load_project(spec)
    plan = plan_for(project)
    evaluation = evaluate(project, plan, paced(20, 2))
    checks = {c.id: c for c in evaluation.checks}
    never = checks["load/smoke/load.thresholds[0]"]
    assert never.status == "error"
    assert "never produced" in never.summary and "getPet" in never.summary
    assert checks["load/smoke/load.thresholds[1]"].status == "passed"
    assert checks["load/smoke/load.thresholds[2]"].status == "passed"


def test_rate_limit_criteria_count_429s_per_stage(example: Project) -> None:
    plan = plan_for(example, "rate-limit", duration=10)
    limited = paced(40, 8, stage=0)
    over = [dataclasses.replace(s, t=s.t + 5) for s in paced(100, 20, stage=1)]
    over[50:] = [
        dataclasses.replace(s, status=429, kind="fail", retry_after="1") for s in over[50:]
    ]
    criteria = by_id(example, plan, limited + over)
    assert criteria["rate_limits"].measured_value == 50  # type: ignore[attr-defined]
    assert criteria["rate_limits.retry_after_format"].passed  # type: ignore[attr-defined]
    assert criteria["error_handling.rate_limit.client_requests_per_second"].passed  # type: ignore[attr-defined]
    # The over-limit stage's 429s are counted there, not as the spec's error rate.
    assert criteria["launch.success_criteria.max_error_rate_percent"].passed  # type: ignore[attr-defined]
    # A 429 behind the limiter fails the limiter's criterion; one without Retry-After the other.
    limited[3] = dataclasses.replace(limited[3], status=429, kind="fail")
    over[60] = dataclasses.replace(over[60], retry_after=None)
    criteria = by_id(example, plan, limited + over)
    assert criteria["error_handling.rate_limit.client_requests_per_second"].passed is False  # type: ignore[attr-defined]
    assert criteria["rate_limits.retry_after_format"].passed is False  # type: ignore[attr-defined]


def test_no_samples_means_nothing_measured_not_passed(example: Project) -> None:
    evaluation = evaluate(example, plan_for(example), [])
    assert evaluation.criteria
    assert all(c.passed is None for c in evaluation.criteria)
    assert all(c.status == "error" for c in evaluation.checks)


def _record(status: int | None) -> TrafficRecord:
    return TrafficRecord(side="provider", method="GET", path="/pets", status=status)


def test_cross_check_finds_a_lost_and_an_invented_request() -> None:
    samples = [*paced(3, 1), Sample(3.0, "listPets", 5000.0, 0, "timeout", 0)]
    records = [_record(200), _record(200), _record(200), _record(None)]
    assert cross_check(records, samples, LocustTotals(4, 1)).ok
    lost = cross_check(records[:3], samples, LocustTotals(4, 1))
    assert not lost.ok and "traffic log 3" in lost.summary
    invented = cross_check([*records[:3], _record(503)], samples, LocustTotals(4, 1))
    assert not invented.ok and "status mix differs" in invented.summary
    unfinished = cross_check(records, samples, LocustTotals(None, None))
    assert not unfinished.ok and "no final statistics" in unfinished.summary


def test_summary_counts_timeouts_apart_from_other_failures() -> None:
    samples = [
        *paced(8, 1),
        Sample(8, "listPets", 400.0, 0, "timeout", 0),
        Sample(9, "listPets", 3.0, 503, "fail", 0),
    ]
    summary = summarize(samples)
    assert (summary.requests, summary.failures, summary.timeouts) == (10, 2, 1)
    assert summary.error_rate_percent == 20 and summary.timeout_rate_percent == 10
    assert summary.max_timeout_ms == 400.0


def test_soak_degradation_compares_the_last_fifth_with_the_first(example: Project) -> None:
    plan = plan_for(example, "soak", duration=100)
    steady = paced(400, 4, 10.0)
    assert by_id(example, plan, steady)["load.degradation"].passed  # type: ignore[attr-defined]
    worse = [dataclasses.replace(s, duration_ms=25.0) if s.t >= 80 else s for s in steady]
    degraded = by_id(example, plan, worse)["load.degradation"]
    assert degraded.passed is False  # type: ignore[attr-defined]
    assert degraded.measured_value == pytest.approx(2.5)  # type: ignore[attr-defined]


def test_samples_files_are_read_back_exactly(tmp_path: Path) -> None:
    """The packed format the locustfile hooks write (columns as base64 arrays)."""
    import base64
    import json
    import sys
    from array import array

    from harness.load.samples import read_samples

    def packed(code: str, values: list[float] | list[int]) -> str:
        return base64.b64encode(array(code, values).tobytes()).decode()

    chunk = {
        "rows": 3,
        "byteorder": sys.byteorder,
        "names": ["createToken", "listPets"],
        "kinds": ["ok", "fail", "timeout", "error"],
        "retry_after": {"2": "1"},
        "t": packed("d", [100.25, 100.5, 101.0]),
        "duration": packed("d", [8.123456, 812.000001, 2.5]),
        "status": packed("H", [200, 200, 429]),
        "kind": packed("B", [0, 0, 1]),
        "stage": packed("H", [0, 0, 1]),
        "name": packed("H", [0, 1, 1]),
    }
    lines = [json.dumps({"start": 100.0, "role": "local"}), json.dumps(chunk), '{"rows": 2, "t"']
    (tmp_path / "samples-local-1.jsonl").write_text("\n".join(lines) + "\n")
    read = read_samples(tmp_path)
    assert read.start_wall == 100.0 and read.damaged_lines == 1
    first, second, third = read.items
    assert (first.t, first.name, first.duration_ms, first.kind) == (
        0.25,
        "createToken",
        8.123456,
        "ok",
    )
    assert second.duration_ms == 812.000001  # exact, not Locust's 810
    assert (third.status, third.kind, third.stage, third.retry_after) == (429, "fail", 1, "1")


def test_the_declared_throughput_is_measured_only_at_the_declared_rate(example: Project) -> None:
    plan = plan_for(example, "expected", duration=10)  # 300/min -> 5 req/s, 50 arrivals
    judged = by_id(example, plan, paced(50, 5))
    assert judged["performance.throughput"].passed  # type: ignore[attr-defined]
    late = by_id(example, plan, paced(30, 3))["performance.throughput"]
    assert late.passed is False  # type: ignore[attr-defined]
