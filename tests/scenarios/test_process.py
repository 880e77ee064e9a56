"""The integration as a process: started as the spec says, always cleaned up, never trusted.

Hangs, stray children, Ctrl-C, a missing command; file destinations and renamed variables;
the webhook alert channel; the Python-callable form; secrets kept out of what is written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness.results.serialize import read_stage

from ..conftest import EXAMPLE_SPEC, REPO, run_cli
from .conftest import EXAMPLES, check, client, expectation, explain, run, spec_variant, verdicts


def _alive(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(process.info["cmdline"] or ()):
                found.append(process)
        except psutil.Error:
            continue
    return found


def test_a_hanging_integration_and_its_children_are_killed(tmp_path: Path) -> None:
    marker = f"harness-stray-{uuid.uuid4().hex}"
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "quick.yaml").write_text(
        "name: quick-hang\ntitle: Hangs\ncategory: custom\nsetup: {records: 5, timeout_seconds: 2}\n"
        "expect:\n  - outcome: success\n",
        encoding="utf-8",
    )
    child = f"import time; time.sleep(300)  # {marker}"
    command = f"{{python}} -c \"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', '{child}']); time.sleep(300)\" {marker}"
    started = time.monotonic()
    result = run(
        EXAMPLE_SPEC,
        tmp_path / "out",
        only=("quick-hang",),
        integration=command,
        scenario_dirs=(scenarios,),
    )
    assert time.monotonic() - started < 20
    verdict = check(result, "quick-hang")
    assert verdict.status == "error"
    assert verdict.summary.startswith(
        "error: the integration made no request to the provider (stopped"
    )
    assert result.exit_code == 2
    time.sleep(0.2)
    assert _alive(marker) == []


def test_ctrl_c_keeps_partial_results_and_leaves_no_process(tmp_path: Path) -> None:
    out = tmp_path / "out"
    harness = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "scenarios",
            str(EXAMPLE_SPEC),
            "--only",
            "sync-accuracy",
            "--only",
            "timeout-hang",
            "--integration",
            "{python} -m petstore_sync.naive",
            "--records",
            "20",
            "--out",
            str(out),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    hang_log = out / "scenarios" / "timeout-hang" / "provider.traffic.jsonl"
    deadline = time.monotonic() + 60
    children: list[psutil.Process] = []
    while time.monotonic() < deadline:
        children = psutil.Process(harness.pid).children(recursive=True)
        if hang_log.is_file() and hang_log.read_text() and children:
            break
        time.sleep(0.1)
    else:
        harness.kill()
        pytest.fail("the hang scenario never started")
    harness.send_signal(signal.SIGINT)
    _, stderr = harness.communicate(timeout=30)
    assert harness.returncode == 130, stderr
    assert "Traceback" not in stderr
    partial = read_stage(out / "scenarios.json")
    assert partial.incomplete
    assert [c.id for c in partial.checks] == ["scenarios/sync-accuracy"]
    time.sleep(0.2)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def _files(kind: str) -> Any:
    def change(data: dict[str, Any]) -> None:
        data["destination"] = {"kind": kind, "path": f"items.{'db' if kind == 'sqlite' else kind}"}
        if kind == "sqlite":
            data["destination"]["table"] = "items"
        data["authentication"]["client_id"] = "${SHOP_ID}"
        data["authentication"]["client_secret"] = "${SHOP_SECRET}"
        data["integration_under_test"]["env_names"] = {
            "provider_url": "PETS_API",
            "output_dir": "SINK_DIR",
        }
        data["integration_under_test"]["command"] = client(
            "file_sink",
            "--format",
            kind,
            "--provider-var",
            "PETS_API",
            "--output-var",
            "SINK_DIR",
            "--id-var",
            "SHOP_ID",
            "--secret-var",
            "SHOP_SECRET",
        )

    return change


@pytest.mark.parametrize("kind", ["jsonl", "csv", "sqlite"])
def test_file_destinations_are_read_back_and_compared(tmp_path: Path, kind: str) -> None:
    spec = spec_variant(tmp_path / "spec", _files(kind))
    result = run(spec, tmp_path / "out", only=("sync-accuracy",), records=30)
    assert verdicts(result) == {"sync-accuracy": "passed"}, explain(result)
    observed = expectation(result, "sync-accuracy", "sync_accuracy")["observed"]
    assert observed.startswith("30 of 30 records at the destination")


def test_duplicates_and_losses_in_a_file_destination_fail(tmp_path: Path) -> None:
    spec = spec_variant(tmp_path / "spec", _files("jsonl"))
    base = client(
        "file_sink",
        "--format jsonl --provider-var PETS_API --output-var SINK_DIR --id-var SHOP_ID --secret-var SHOP_SECRET",
    )
    doubled = run(
        spec,
        tmp_path / "dup",
        only=("sync-accuracy",),
        records=12,
        integration=base + " --duplicate",
    )
    assert (
        "12 duplicated (external_id 1 (2x)"
        in expectation(doubled, "sync-accuracy", "sync_accuracy")["observed"]
    )
    dropped = run(
        spec, tmp_path / "drop", only=("sync-accuracy",), records=12, integration=base + " --drop 3"
    )
    assert (
        "lost 1 of 12 records (external_id 3)"
        in expectation(dropped, "sync-accuracy", "sync_accuracy")["observed"]
    )


LEAKY_CLIENT = """
import json, os, sys, urllib.error, urllib.parse, urllib.request
secret = os.environ["PETSTORE_CLIENT_SECRET"]
print("using secret=" + secret, flush=True)
form = urllib.parse.urlencode({"grant_type": "client_credentials",
    "client_id": os.environ["PETSTORE_CLIENT_ID"], "client_secret": secret}).encode()
try:
    urllib.request.urlopen(os.environ["PROVIDER_URL"] + "/oauth/token", form, timeout=5)
except urllib.error.HTTPError as error:
    alert = json.dumps({"alert": "integration_failure", "status": error.code}).encode()
    request = urllib.request.Request(os.environ["ALERT_WEBHOOK_URL"], alert, {"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5)
    sys.exit(1)
"""


def test_webhook_alerts_are_served_and_secrets_never_written(tmp_path: Path) -> None:
    script = tmp_path / "leaky.py"
    script.write_text(LEAKY_CLIENT, encoding="utf-8")

    def webhook(data: dict[str, Any]) -> None:
        data["monitoring"]["alert_channel"] = {"kind": "webhook", "path": "/hooks/alerts"}

    spec = spec_variant(tmp_path / "spec", webhook)
    result = run(spec, tmp_path / "out", only=("auth-revoked",), integration=f"{{python}} {script}")
    assert verdicts(result) == {"auth-revoked": "passed"}, explain(result)
    alert = expectation(result, "auth-revoked", "alert")
    assert alert["declared"] == "an alert on webhook /hooks/alerts (integration_failure)"
    assert '"alert": "integration_failure"' in alert["observed"]
    stdout = (tmp_path / "out" / "scenarios" / "auth-revoked" / "stdout.txt").read_text()
    assert stdout.strip() == "using secret=[REDACTED]"
    assert check(result, "auth-revoked").attributes["alert"] == ["integration_failure"]


def test_the_python_callable_form_and_the_cli_outputs(tmp_path: Path) -> None:
    def as_callable(data: dict[str, Any]) -> None:
        data["integration_under_test"] = {
            "callable": "petstore_sync.careful:main",
            "working_dir": str(EXAMPLES),
            "env": {"PETSTORE_PAGE_SIZE": "25"},
        }

    spec = spec_variant(tmp_path / "spec", as_callable)
    out = tmp_path / "out"
    junit = tmp_path / "junit.xml"
    result = run_cli(
        "scenarios",
        str(spec),
        "--only",
        "sync-accuracy",
        "--records",
        "30",
        "--out",
        str(out),
        "--junit",
        str(junit),
    )
    assert result.code == 0, result.stderr
    assert "sync-accuracy" in result.stderr and "scenarios: passed" in result.stderr
    stage = read_stage(out / "scenarios.json")
    assert [c.status for c in stage.checks] == ["passed"]
    provider = [
        json.loads(line)
        for line in (out / "scenarios/sync-accuracy/provider.traffic.jsonl")
        .read_text()
        .splitlines()
    ]
    assert {r["query"] for r in provider if r["operation_id"] == "listPets"} == {
        "page=1&per_page=25",
        "page=2&per_page=25",
    }
    assert 'name="sync-accuracy"' in junit.read_text() or "sync-accuracy" in junit.read_text()


def test_integration_env_references_must_be_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def needs(data: dict[str, Any]) -> None:
        data["integration_under_test"]["env"] = {"WAREHOUSE_TOKEN": "${WAREHOUSE_TOKEN}"}

    monkeypatch.delenv("WAREHOUSE_TOKEN", raising=False)
    result = run_cli("scenarios", str(spec_variant(tmp_path, needs)), "--only", "sync-accuracy")
    assert result.code == 2
    assert (
        "integration_under_test.env.WAREHOUSE_TOKEN: ${WAREHOUSE_TOKEN} is not set in the environment"
        in result.stderr
    )
    assert os.environ.get("WAREHOUSE_TOKEN") is None
