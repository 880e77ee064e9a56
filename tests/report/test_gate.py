"""The gate: verdict and reasons, criteria collection, checklist mapping rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from harness.results.gate import check_topics, collect_criteria, tool_versions
from harness.results.model import CheckResult, Criterion, StageResult

from .conftest import all_stages, make_run
from .synthetic import contract_stage, load_stage, scenarios_stage


def _item(run: Any, item_id: str) -> Any:
    return next(i for i in run.checklist if i.id == item_id)


def test_all_passing_is_ready(project: Any, tmp_path: Path) -> None:
    run = make_run(project, all_stages(), tmp_path)
    assert run.verdict == "ready" and run.reasons == ()
    assert [s.stage for s in run.stages] == ["validate", "contract", "scenarios", "load"]
    assert _item(run, "error_handling.rate_limit").status == "automated-pass"
    assert len(run.spec_sha256) == 64
    assert {"harness", "schemathesis", "locust", "hypothesis", "python"} <= set(run.versions)


def test_failures_make_not_ready_naming_each_item_most_important_first(
    project: Any, tmp_path: Path
) -> None:
    run = make_run(project, all_stages(failing=True), tmp_path)
    assert run.verdict == "not_ready"
    reasons = run.reasons
    # criteria first, then scenarios, then contract; load checks that only repeat a failed
    # criterion are not listed twice
    assert reasons[0].startswith("success criterion launch.success_criteria.max_error_rate_percent")
    assert reasons[1].startswith("success criterion performance.response_time.p95_ms")
    assert "measured 950 ms, target <= 800 ms" in reasons[1]
    assert any("scenarios/rate-limit-429-retry-after" in r for r in reasons)
    assert any("scenarios/connection-reset-recovers" in r for r in reasons)
    assert reasons[-1].startswith("contract check contract/getPet/response_schema failed")
    assert not any(r.startswith("load check") for r in reasons)
    assert _item(run, "error_handling.rate_limit").status == "automated-fail"
    assert _item(run, "error_handling.invalid_data").status == "automated-pass"


def test_missing_stages_are_not_run_and_do_not_fail_the_gate(project: Any) -> None:
    run = make_run(project, [contract_stage()])
    assert run.verdict == "ready"
    statuses = {s.stage: s.status for s in run.stages}
    assert statuses == {
        "validate": "passed",
        "contract": "passed",
        "scenarios": "not_run",
        "load": "not_run",
    }
    p95 = next(c for c in run.criteria if c.id == "performance.response_time.p95_ms")
    assert p95.passed is None and p95.measured is None and "did not run" in p95.evidence
    eh = _item(run, "error_handling.connection_failures")
    assert eh.status == "not-run" and "scenarios stage did not run" in eh.evidence
    assert _item(run, "security.secrets_redaction").status == "not-run"  # no out_dir given


def test_nothing_tested_is_error(project: Any) -> None:
    run = make_run(project, [])
    assert run.verdict == "error"
    assert run.reasons == ("nothing was tested: no contract, scenario or load stage ran",)


def test_stage_error_and_incomplete_are_error_unless_something_failed(project: Any) -> None:
    crashed = StageResult(stage="load", status="error", summary="x", error="locust exited 3")
    run = make_run(project, [contract_stage(), crashed])
    assert run.verdict == "error" and run.reasons == ("load stage error: locust exited 3",)
    cut = dataclasses.replace(scenarios_stage(), incomplete=True)
    run = make_run(project, [cut])
    assert run.verdict == "error" and run.incomplete
    assert "scenarios stage incomplete" in run.reasons[0]
    run = make_run(project, [contract_stage(failing=True), crashed], incomplete=True)
    assert run.verdict == "not_ready"
    assert run.reasons[0].startswith("contract check") and "load stage error" in run.reasons[1]


def test_checklist_mapping_rules() -> None:
    def topics(check_id: str, **attributes: Any) -> set[str]:
        return check_topics(CheckResult(check_id, "n", "passed", "s", attributes=attributes))

    assert topics("scenarios/x", policy="rate_limit") == {"error_handling.rate_limit"}
    assert topics("scenarios/x", policy="error_handling.invalid_data") == {
        "error_handling.invalid_data"
    }
    assert topics("scenarios/x", category="authentication") == {
        "error_handling.authentication_failures"
    }
    assert topics("scenarios/x", category="timeouts") == {"error_handling.request_timeout"}
    assert topics("scenarios/x", checklist=["testing_strategy.integration.end_to_end"]) == {
        "testing_strategy.integration.end_to_end"
    }
    assert topics("scenarios/alert-when-down", category="alerts", alert="service_availability") == {
        "monitoring.alerts.service_availability"
    }
    # explicit attributes win over the name
    assert topics("scenarios/auth-but-really-503", policy="service_unavailable") == {
        "error_handling.service_unavailable"
    }
    # name keywords only when nothing explicit is given
    assert topics("scenarios/token-expiry-mid-run") == {"error_handling.authentication_failures"}
    assert topics("scenarios/provider-503-forever") == {"error_handling.service_unavailable"}
    assert topics("scenarios/alert-high-error-rate") == {"monitoring.alerts.high_error_rate"}
    assert topics("scenarios/rate-limit-compliance") == {
        "error_handling.rate_limit",
        "rate_limit_compliance",
    }
    assert topics("scenarios/something-else") == set()


def test_manual_items_say_what_the_spec_says(project: Any) -> None:
    run = make_run(project, all_stages())
    assert _item(run, "dependencies.firewall_rules_configured").status == "manual"
    assert _item(run, "dependencies.firewall_rules_configured").evidence == "spec: not done"
    security = _item(run, "approvals.security")
    assert security.status == "manual" and "not approved yet (Ana Ruiz)" in security.evidence
    step = _item(run, "rollback.steps[0]")
    assert step.status == "manual" and "Disable the petstore-sync schedule" in step.evidence
    # manual items never change the verdict, even when the spec says "not done"
    assert run.verdict == "ready"


def test_criteria_declared_measured_and_extra(project: Any) -> None:
    spec = project.spec.spec
    extra = Criterion("load/custom.timeouts", "timeout rate", "<= 0 %", "0 %", True)
    stage = dataclasses.replace(load_stage(), criteria=(*load_stage().criteria, extra))
    criteria = collect_criteria(spec, [stage])
    ids = [c.id for c in criteria]
    assert ids[:4] == [
        "launch.success_criteria.records_synced",
        "launch.success_criteria.max_error_rate_percent",
        "launch.success_criteria.max_response_time_seconds",
        "launch.success_criteria.max_data_loss_incidents",
    ]
    assert ids[-1] == "load/custom.timeouts"
    measured = {c.id: c for c in criteria}
    assert measured["performance.response_time.p95_ms"].passed is True
    assert measured["performance.response_time.p95_ms"].source == "load"
    assert measured["performance.response_time.p99_ms"].passed is None
    assert measured["launch.success_criteria.records_synced"].evidence == (
        "not measured: the scenarios stage did not run"
    )


def test_versions_come_from_metadata_without_importing_locust() -> None:
    import sys

    versions = tool_versions()
    assert versions["python"].count(".") == 2
    assert "locust" not in sys.modules or "gevent" in sys.modules  # never imported by us
    assert versions["locust"] != ""
