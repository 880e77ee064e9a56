"""Canary: a secret value of the spec, sent on every request and echoed back by the provider in
a failing response, appears in none of what ``harness contract`` prints or writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.contract.broken_server import broken_server
from tests.contract.helpers import BROKEN_SPEC, CANARY_KEY


def test_no_secret_in_logs_results_request_log_or_junit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BROKEN_API_KEY", CANARY_KEY)
    out = tmp_path / "out"
    junit = tmp_path / "junit.xml"
    with broken_server(CANARY_KEY) as url:
        result = run_cli(
            "contract",
            str(BROKEN_SPEC),
            "--base-url",
            url,
            "--max-examples",
            "2",
            "--out",
            str(out),
            "--junit",
            str(junit),
        )
    assert result.code == 1, result.stderr[-2000:]
    written = {
        "stdout": result.stdout,
        "stderr": result.stderr,
        "contract.json": (out / "contract.json").read_text(encoding="utf-8"),
        "requests.jsonl": (out / "contract" / "requests.jsonl").read_text(encoding="utf-8"),
        "junit.xml": junit.read_text(encoding="utf-8"),
    }
    for name, text in written.items():
        assert CANARY_KEY not in text, name
    # the key did travel (the spec's provider.mode is live), and came back scrubbed
    stage = json.loads(written["contract.json"])
    owner = next(c for c in stage["checks"] if c["id"] == "contract/getOwner/response_body_schema")
    assert owner["status"] == "failed"
    assert "X-API-Key [REDACTED]" in owner["findings"][0]["response_excerpt"]
    assert "getOwner" in written["stdout"] and "contract: live provider" in written["stderr"]
