"""Security & compliance: the secrets scan, TLS on live targets, credentials only from env.

The canary test sets the spec's credential variables to canary values, lets them reach the
stage results and the traffic log the way a careless stage or integration would, and checks
that no file the report writes holds any form of them while the scan names every leak.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from harness.redact import secret_forms
from harness.report import security
from harness.report.html import write_outputs
from harness.report.security import (
    credentials_item,
    leaks_in,
    scan_for_secrets,
    tls_item,
)
from harness.results.model import Finding, TimelineEntry

from .conftest import make_run
from .synthetic import contract_stage, load_stage, scenarios_stage

CANARY_ID = "canary-client-id-7f3a9c2e"
CANARY_SECRET = "canary-s3cr3t/with+odd&chars=Zq81"
ENV = {"PETSTORE_CLIENT_ID": CANARY_ID, "PETSTORE_CLIENT_SECRET": CANARY_SECRET}


def _leaky_stages() -> list[Any]:
    """Stage results carrying the canaries where a careless stage would let them through."""
    basic = base64.b64encode(f"{CANARY_ID}:{CANARY_SECRET}".encode()).decode()
    contract = contract_stage(failing=True)
    check = contract.checks[0]
    leaky = dataclasses.replace(
        check,
        status="failed",
        summary=f"token endpoint rejected client_secret={quote(CANARY_SECRET, safe='')}",
        findings=(
            Finding(
                check="auth",
                message=f"401 for client {CANARY_ID}",
                request=f"POST /oauth/token\nAuthorization: Basic {basic}",
                response_excerpt=json.dumps({"echo": CANARY_SECRET}),
                reproduce=f"curl -u {CANARY_ID}:{CANARY_SECRET} http://127.0.0.1:1/oauth/token",
                details={CANARY_SECRET: [CANARY_ID]},
            ),
        ),
        timeline=(TimelineEntry(0.0, "provider", "POST", "/oauth/token", 401, note=CANARY_SECRET),),
        attributes={"client_id": CANARY_ID},
    )
    contract = dataclasses.replace(contract, checks=(leaky, *contract.checks[1:]))
    return [contract, scenarios_stage(), load_stage()]


def test_no_output_file_holds_a_canary_and_the_scan_names_the_leaks(
    project: Any, run_dir: Any
) -> None:
    out = run_dir(records=50)
    # A planted leak in an artifact: a traffic line with the raw secret (the log must redact).
    with (out / "scenarios" / "traffic.jsonl").open("a") as log:
        log.write(
            json.dumps({"side": "provider", "method": "GET", "path": "/x", "note": CANARY_SECRET})
            + "\n"
        )
    (out / "scenarios" / "careful.stdout").write_text(f"token hsim_{'A' * 20}\n")
    run = make_run(project, _leaky_stages(), out, environ=ENV)
    write_outputs(run, out)

    forms = {form for value in ENV.values() for form in secret_forms(value)}
    for name in ("results.json", "readiness.html", "junit.xml"):
        text = (out / name).read_text()
        assert leaks_in([text], ENV) == [], name
        assert not any(form in text for form in forms if len(form) >= 8), name

    item = next(i for i in run.checklist if i.id == "security.secrets_redaction")
    assert item.status == "automated-fail"
    assert "PETSTORE_CLIENT_SECRET (raw) in scenarios/traffic.jsonl line 51" in item.evidence
    assert (
        "a token issued by the simulator (raw) in scenarios/careful.stdout line 1" in item.evidence
    )
    assert "stage results" in item.evidence  # the stages' own leak is named too
    assert CANARY_SECRET not in item.evidence and CANARY_ID not in item.evidence
    assert run.verdict == "not_ready"
    assert run.reasons[0].startswith("security: No secret value in any file of the run")


def test_a_clean_run_folder_passes_the_scan(project: Any, run_dir: Any) -> None:
    out = run_dir(records=50)
    run = make_run(project, [contract_stage(), scenarios_stage(), load_stage()], out, environ=ENV)
    item = next(i for i in run.checklist if i.id == "security.secrets_redaction")
    assert item.status == "automated-pass", item.evidence
    assert "scanned 5 file(s)" in item.evidence and "2 credential value(s)" in item.evidence
    write_outputs(run, out)
    # the written outputs pass a second scan too (the page embeds plotly.js: no false alarm)
    assert scan_for_secrets(out, ENV).leaks == ()


def test_scan_finds_every_form_across_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(security, "CHUNK_BYTES", 64)
    secret = "Zx9-very-secret-value-42"
    (tmp_path / "a").mkdir()
    lines = ["filler line " * 3] * 7
    (tmp_path / "a" / "raw.log").write_text("\n".join([*lines, f"xx{secret}yy"]) + "\n")
    (tmp_path / "url.txt").write_text("q=" + quote("p@ss " + secret, safe=""))
    blob = base64.b64encode(b"user:" + secret.encode()).decode()
    (tmp_path / "basic.txt").write_text(f"Authorization: Basic {blob}")
    (tmp_path / "json.txt").write_text(json.dumps({"v": 'say "' + secret + '"'}))
    (tmp_path / "clean.txt").write_text("nothing to see " * 100)
    result = scan_for_secrets(tmp_path, {"API_KEY": secret})
    found = {(leak.file, leak.form) for leak in result.leaks}
    assert ("a/raw.log", "raw") in found
    assert ("basic.txt", "base64") in found
    assert any(f == "url.txt" for f, _ in found) and any(f == "json.txt" for f, _ in found)
    assert not any(f == "clean.txt" for f, _ in found)
    line = next(leak.line for leak in result.leaks if leak.file == "a/raw.log")
    assert line == 8
    assert result.files == 5


def test_tls_on_live_targets(project: Any) -> None:
    spec = project.spec.spec
    assert tls_item(spec).status == "automated-pass"
    live = dataclasses.replace(spec.provider.live, base_url="http://sandbox.petstore.example/v1")
    plain = dataclasses.replace(spec, provider=dataclasses.replace(spec.provider, live=live))
    item = tls_item(plain)
    assert item.status == "automated-fail" and "plain http" in item.evidence
    none = dataclasses.replace(spec, provider=dataclasses.replace(spec.provider, live=None))
    assert tls_item(none).status == "not-run"


def test_credentials_only_from_the_environment(project: Any) -> None:
    spec = project.spec.spec
    item = credentials_item(spec, ENV)
    assert item.status == "automated-pass"
    assert "${PETSTORE_CLIENT_SECRET}" in item.evidence
    assert "PETSTORE_CLIENT_ID, PETSTORE_CLIENT_SECRET" in item.evidence
    iut = dataclasses.replace(
        spec.integration_under_test, env={"PETSTORE_API_TOKEN": "literal-value-1234"}
    )
    literal = dataclasses.replace(spec, integration_under_test=iut)
    bad = credentials_item(literal, {})
    assert bad.status == "automated-fail"
    assert "integration_under_test.env.PETSTORE_API_TOKEN" in bad.evidence
    assert "literal-value-1234" not in bad.evidence
