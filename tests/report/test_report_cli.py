"""`harness report DIR` re-renders; `harness report --compare OLD NEW` finds regressions."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from harness.report.html import write_outputs
from harness.results.model import CheckResult, Finding

from ..conftest import run_cli
from .conftest import all_stages, make_run
from .synthetic import contract_stage, load_stage, scenarios_stage


def _write(project: Any, folder: Path, stages: list[Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_outputs(make_run(project, stages, folder), folder)
    return folder


def test_report_rerenders_html_and_junit(project: Any, run_dir: Any) -> None:
    out = run_dir(records=100)
    write_outputs(make_run(project, all_stages(failing=True), out), out)
    first = (out / "readiness.html").read_text()
    (out / "readiness.html").unlink()
    (out / "junit.xml").unlink()
    result = run_cli("report", str(out))
    assert result.code == 0, result.stderr
    assert "NOT READY" in result.stdout
    again = (out / "readiness.html").read_text()
    assert again == first  # same data, same page (the traffic logs are re-aggregated)
    assert (out / "junit.xml").is_file()


def test_report_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run_cli("report", str(tmp_path))
    assert result.code == 2 and result.stderr.count("\n") == 1
    assert "results.json: file not found" in result.stderr
    (tmp_path / "results.json").write_text("[]")
    result = run_cli("report", str(tmp_path))
    assert result.code == 2 and result.stderr.count("\n") == 1
    assert "not a results.json" in result.stderr
    assert run_cli("report").code == 2
    assert run_cli("report", str(tmp_path), "--compare", str(tmp_path), str(tmp_path)).code == 2


def test_compare_no_regression_exit_0(project: Any, tmp_path: Path) -> None:
    old = _write(project, tmp_path / "old", all_stages())
    new = _write(project, tmp_path / "new", all_stages())
    result = run_cli("report", "--compare", str(old), str(new))
    assert result.code == 0, result.stdout + result.stderr
    assert "no regressions" in result.stdout


def test_compare_names_every_kind_of_regression(project: Any, tmp_path: Path) -> None:
    old = _write(project, tmp_path / "old", all_stages())
    contract = contract_stage(failing=True)
    extra = CheckResult(
        "contract/listPets/content_type",
        "n",
        "passed",
        "passed with an accepted finding",
        findings=(Finding("content_type", "known", accepted=None),),
    )
    contract = dataclasses.replace(contract, checks=(*contract.checks, extra))
    new = _write(
        project,
        tmp_path / "new",
        [contract, scenarios_stage(failing=True), load_stage(p95=950.0, error_rate=3.0)],
    )
    result = run_cli("report", "--compare", str(old), str(new / "results.json"))
    assert result.code == 1, result.stdout + result.stderr
    out = result.stdout
    regressed = out.split("REGRESSED", 1)[1]
    assert "verdict verdict: ready -> not_ready" in regressed
    assert "criterion performance.response_time.p95_ms: pass -> FAIL (180 ms -> 950 ms" in regressed
    assert "p95 p95_ms: 180 -> 950 ms (+428%)" in regressed
    assert "error rate error_rate: 0.2 -> 3 %" in regressed
    assert "scenario scenarios/rate-limit-429-retry-after: passed -> failed" in regressed
    assert "new contract finding contract/getPet/response_schema: [ST201]" in regressed
    assert "new contract finding contract/listPets/content_type: known" in regressed
    # and the other way round, it is all improvements: exit 0
    back = run_cli("report", "--compare", str(new), str(old))
    assert back.code == 0 and "no regressions" in back.stdout and "improved" in back.stdout


def test_compare_tolerance(project: Any, tmp_path: Path) -> None:
    old = _write(project, tmp_path / "old", [load_stage(p95=100.0)])
    new = _write(project, tmp_path / "new", [load_stage(p95=108.0)])
    assert run_cli("report", "--compare", str(old), str(new)).code == 0
    result = run_cli("report", "--compare", str(old), str(new), "--tolerance", "5")
    assert result.code == 1 and "p95 p95_ms: 100 -> 108 ms (+8%)" in result.stdout
