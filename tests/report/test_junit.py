"""junit.xml parses, and its counts match results.json."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.report.html import write_outputs
from harness.report.junit import write_junit
from harness.results.model import CheckResult, Criterion, StageResult
from harness.results.schema import read_results

from .conftest import all_stages, make_run


def _counts(element: ET.Element) -> tuple[int, int, int, int]:
    return tuple(int(element.get(k, "0")) for k in ("tests", "failures", "errors", "skipped"))  # type: ignore[return-value]


def test_counts_match_results(project: Any, tmp_path: Path) -> None:
    run = make_run(project, all_stages(failing=True), tmp_path)
    write_outputs(run, tmp_path)
    root = ET.parse(tmp_path / "junit.xml").getroot()
    run = read_results(tmp_path)

    checks = [c for s in run.stages for c in s.checks]
    stage_cases = [
        s for s in run.stages if not s.checks and s.status in ("error", "not_run", "skipped")
    ]
    own_items = [i for i in run.checklist if not i.check_ids and i.status.startswith("automated")]
    expected_tests = len(checks) + len(stage_cases) + len(run.criteria) + len(own_items)
    failed = (
        sum(c.status == "failed" for c in checks)
        + sum(c.passed is False for c in run.criteria)
        + sum(i.status == "automated-fail" for i in own_items)
    )
    skipped = sum(c.status in ("skipped", "not_run") for c in checks) + sum(
        c.passed is None for c in run.criteria
    )
    assert _counts(root) == (expected_tests, failed, 0, skipped)
    cases = root.findall(".//testcase")
    assert len(cases) == expected_tests
    # Every suite's attributes agree with its own test cases.
    for suite in root.findall("testsuite"):
        own = suite.findall("testcase")
        assert _counts(suite) == (
            len(own),
            sum(c.find("failure") is not None for c in own),
            sum(c.find("error") is not None for c in own),
            sum(c.find("skipped") is not None for c in own),
        )
    names = {c.get("name") for c in cases}
    assert "scenarios/rate-limit-429-retry-after" in names
    assert "contract/getPet/response_schema" in names
    assert "performance.response_time.p95_ms" in names
    failure = next(c for c in cases if c.get("name") == "contract/getPet/response_schema").find(
        "failure"
    )
    assert failure is not None and failure.text is not None
    # verdict first, then the evidence: the violated expectation, the request, the repro
    text = failure.text
    assert text.index("1 of 25 cases failed") < text.index("weight_kg") < text.index("curl")


def test_statuses_map_to_junit_elements(tmp_path: Path) -> None:
    stage = StageResult(
        stage="contract",
        status="error",
        summary="s",
        checks=(
            CheckResult("a", "a", "passed", "ok"),
            CheckResult("b", "b", "failed", "bad \x07 bell"),
            CheckResult("c", "c", "error", "crashed"),
            CheckResult("d", "d", "skipped", "off"),
            CheckResult("e", "e", "not_run", "later"),
        ),
    )
    empty = StageResult(stage="load", status="error", summary="locust crashed", error="exit 3")
    missing = StageResult(stage="scenarios", status="not_run", summary="not run")
    criteria = [Criterion("k", "k", "<= 1", None, None), Criterion("m", "m", "<= 1", "2", False)]
    path = tmp_path / "out" / "junit.xml"
    write_junit(path, [stage, empty, missing], suite_name="petstore", criteria=criteria)
    root = ET.parse(path).getroot()  # parses despite the control character
    assert _counts(root) == (9, 2, 2, 4)
    by_name = {c.get("name"): c for c in root.iter("testcase")}
    assert by_name["b"].find("failure") is not None
    assert by_name["c"].find("error") is not None
    assert by_name["d"].find("skipped") is not None and by_name["e"].find("skipped") is not None
    assert by_name["load/stage"].find("error") is not None
    assert by_name["scenarios/stage"].find("skipped") is not None
    assert by_name["m"].find("failure") is not None and by_name["k"].find("skipped") is not None
