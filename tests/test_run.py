"""`harness run` end to end, as the README runs it: real simulators, the real example
integrations as subprocesses, real schemathesis and Locust runs, and the files a release
manager and a CI system read.

The careful and naive runs go at once (each in its own process, with its own simulators), so
the module takes about as long as the slower run. The canary credentials are set for both: the
simulated provider then accepts exactly those values, and no file either run writes may hold
them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from harness.redact import secret_forms

from .conftest import EXAMPLE_SPEC, REPO

CANARY_ID = "canary-client-id-7f3a9c2e41"
CANARY_SECRET = "canary-client-secret-b81d0e5f99a4"
ENV = {
    "PETSTORE_CLIENT_ID": CANARY_ID,
    "PETSTORE_CLIENT_SECRET": CANARY_SECRET,
    "HARNESS_SCALE": "0.06",  # 60 records instead of the spec's 1000: same paths, less time
}


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    out: Path

    @property
    def results(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.out / "results.json").read_text())
        return data


def _harness(out: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(EXAMPLE_SPEC), "--out", str(out), *args],
        cwd=REPO,
        env={**os.environ, **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen[str], out: Path, timeout: float = 400) -> Run:
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return Run(proc.returncode, stdout, stderr, out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Run]]]:
    base = tmp_path_factory.mktemp("run")
    variants = {
        "careful": (),
        "naive": ("--integration", "{python} -m petstore_sync.naive", "--gate"),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            name: pool.submit(lambda n=name, a=args: _finish(_harness(base / n, *a), base / n))
            for name, args in variants.items()
        }


def test_careful_example_is_ready(runs: dict[str, Future[Run]]) -> None:
    run = runs["careful"].result()
    assert run.code == 0, run.stderr[-3000:]
    results = run.results
    assert results["verdict"] == "ready" and results["reasons"] == []
    assert results["incomplete"] is False
    stages = {s["stage"]: s["status"] for s in results["stages"]}  # type: ignore[index, union-attr]
    assert stages == {
        "validate": "passed",
        "contract": "passed",
        "scenarios": "passed",
        "load": "passed",
    }
    assert "verdict: READY" in run.stderr
    assert (run.out / "readiness.html").stat().st_size > 100_000  # charts embedded
    # The contract cases as pytest items too, in pytest-html (environment table included).
    contract = next(s for s in results["stages"] if s["stage"] == "contract")  # type: ignore[union-attr, index]
    assert contract["artifacts"]["pytest-html"] == "contract/pytest-html/report.html"  # type: ignore[index]
    assert "not_a_server_error" in (run.out / "contract/pytest-html/report.html").read_text()


def test_naive_example_is_not_ready_naming_each_failing_item(runs: dict[str, Future[Run]]) -> None:
    run = runs["naive"].result()
    assert run.code == 1, run.stderr[-3000:]
    results = run.results
    assert results["verdict"] == "not_ready"
    reasons = "\n".join(results["reasons"])  # type: ignore[arg-type]
    # The scenarios its code cannot survive are named, each on its own line.
    for scenario in ("connection-reset", "timeout-hang", "token-expiry", "invalid-records"):
        assert scenario in reasons, reasons
    # --gate: the verdict, then the reasons, then one line per stage, for CI logs.
    assert "verdict: NOT READY" in run.stderr
    assert "scenarios: failed" in run.stderr
    assert "timeout-hang" in run.stderr


def test_results_validate_and_junit_counts_match(runs: dict[str, Future[Run]]) -> None:
    schema = json.loads((REPO / "harness" / "schemas" / "results.schema.json").read_text())
    for future in runs.values():
        run = future.result()
        jsonschema.validate(run.results, schema)
        suites = ET.parse(run.out / "junit.xml").getroot()
        cases = suites.findall(".//testcase")
        checks = sum(len(s["checks"]) for s in run.results["stages"])  # type: ignore[arg-type, index, union-attr]
        assert len(cases) >= checks > 50
        failed_checks = sum(
            1
            for s in run.results["stages"]  # type: ignore[union-attr]
            for c in s["checks"]  # type: ignore[index]
            if c["status"] == "failed"
        )
        failures = len(suites.findall(".//testcase/failure"))
        assert failures >= failed_checks
        assert (failures > 0) == (run.results["verdict"] == "not_ready")


def test_no_canary_credential_in_any_file_either_run_wrote(runs: dict[str, Future[Run]]) -> None:
    forms = secret_forms(CANARY_ID) | secret_forms(CANARY_SECRET)
    scanned = 0
    for future in runs.values():
        run = future.result()
        for path in run.out.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                scanned += 1
                leaked = [form for form in forms if form.encode() in data]
                assert not leaked, f"{path} holds a canary credential"
        assert CANARY_SECRET not in run.stdout + run.stderr
    assert scanned > 20


def test_ctrl_c_leaves_a_partial_marked_report(tmp_path: Path) -> None:
    out = tmp_path / "interrupted"
    proc = _harness(out, "--stages", "contract,scenarios")
    deadline = time.monotonic() + 120
    # Interrupt once the contract stage is written and the scenarios are under way.
    while not (out / "results.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)
    os.killpg(proc.pid, signal.SIGINT)
    run = _finish(proc, out, timeout=60)
    assert run.code == 130, run.stderr[-2000:]
    results = run.results
    assert results["incomplete"] is True
    stages = {s["stage"]: s for s in results["stages"]}  # type: ignore[index, union-attr]
    assert stages["contract"]["status"] == "passed"
    assert stages["scenarios"]["incomplete"] is True
    html = (out / "readiness.html").read_text(encoding="utf-8")
    assert "incomplete" in html.lower()
    assert (out / "junit.xml").exists()


def test_an_integration_that_does_not_exist_is_bad_input_with_a_report(tmp_path: Path) -> None:
    out = tmp_path / "missing"
    proc = _harness(out, "--stages", "scenarios", "--integration", "no-such-program-xyz")
    run = _finish(proc, out, timeout=120)
    assert run.code == 2
    assert "bad input: --integration: command not found: 'no-such-program-xyz'" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.results["verdict"] == "error"  # the report still says what happened
