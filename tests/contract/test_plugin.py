"""The pytest plugin: contract items in a real pytest run (with pytest-html and JUnit), inert
without its option, and no secret of the spec in what pytest writes.

One pytest run collects two specs at once: the bundled example (simulated, its provider.mode)
and the non-conforming provider (live, whose API key it echoes into a failing answer).
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_SPEC, REPO
from tests.contract.broken_server import broken_server
from tests.contract.helpers import BROKEN_SPEC, CANARY_KEY


def _pytest(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@dataclass(frozen=True)
class Run:
    proc: subprocess.CompletedProcess[str]
    cases: dict[tuple[str, str], str]
    """(JUnit classname: the spec's path, dotted; test name) -> passed / failure / skipped /
    error."""
    html: str
    junit: str
    out: Path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("plugin")
    with broken_server(CANARY_KEY) as url:
        proc = _pytest(
            tmp,
            "--integration-spec",
            str(EXAMPLE_SPEC),
            "--integration-spec",
            str(BROKEN_SPEC),
            "--integration-base-url",
            url,
            "--integration-only",
            "--integration-max-examples",
            "2",
            "--integration-out",
            str(tmp / "out"),
            "--junitxml",
            str(tmp / "junit.xml"),
            "--html",
            str(tmp / "report.html"),
            "--self-contained-html",
            "-rA",
            env={"BROKEN_API_KEY": CANARY_KEY},
        )
    cases = {}
    for case in ET.parse(tmp / "junit.xml").getroot().iter("testcase"):
        outcome = next(
            (child.tag for child in case if child.tag in ("failure", "skipped", "error")), "passed"
        )
        cases[(str(case.get("classname", "")), case.get("name", ""))] = outcome
    return Run(
        proc,
        cases,
        (tmp / "report.html").read_text(encoding="utf-8"),
        (tmp / "junit.xml").read_text(encoding="utf-8"),
        tmp / "out",
    )


def _items(run: Run, spec: str) -> dict[str, str]:
    return {name: outcome for (file, name), outcome in run.cases.items() if spec in file}


def test_contract_items_run_under_pytest_with_reports(run: Run) -> None:
    assert run.proc.returncode == 1, run.proc.stdout[-3000:] + run.proc.stderr[-2000:]
    assert "integration-harness contract:" in run.proc.stdout  # the report header
    example = {n: o for n, o in _items(run, "petstore").items() if n.count("/") == 2}
    assert len(example) == 4 * 20
    assert example["contract/listPets/not_a_server_error"] == "passed"
    assert example["contract/createToken/auth_accepted"] == "skipped"
    assert not [name for name, outcome in example.items() if outcome in ("failure", "error")]
    assert "contract/getPet/response_schema_conformance" in run.html
    assert (run.out / "contract.json").is_file()


def test_failing_contract_items_carry_their_findings(run: Run) -> None:
    broken = _items(run, "broken")
    assert broken["contract/getOwner/response_body_schema"] == "failure"
    assert broken["contract/getVersion/response_body_schema"] == "passed"
    assert "'name' is a required property" in run.junit
    assert "is a required property" in run.html


def test_no_secret_in_pytest_html_junit_or_output(run: Run) -> None:
    """The server echoes the API key into a failing answer; pytest shows the redacted finding."""
    assert "X-API-Key [REDACTED]" in run.junit  # the echo was there, scrubbed
    for text in (run.html, run.junit, run.proc.stdout, run.proc.stderr):
        assert CANARY_KEY not in text


def test_plugin_is_inert_without_its_option(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.hasplugin("integration_harness")
    assert pytestconfig.getoption("integration_spec") == []
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    proc = _pytest(tmp_path, "-q")
    assert proc.returncode == 0 and "1 passed" in proc.stdout
    assert "integration-harness" not in proc.stdout
    # loading the plugin costs an import of the plugin module, nothing of the stage
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, harness.pytest_plugin; print(sorted(m for m in sys.modules"
            " if m.startswith(('schemathesis', 'harness.contract', 'hypothesis'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "[]"
