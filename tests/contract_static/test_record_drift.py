"""`harness record` (vcrpy, secrets filtered in requests AND responses) and drift against a
changed document, with the harness simulator standing in as the "live" provider."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from harness.contract.drift import check_cassettes
from harness.contract.record import RecordOptions, record
from harness.openapi.document import load_document
from harness.problems import InputError
from harness.project import Project, load_project
from harness.provider.api import simulate
from harness.provider.cassettes import export_cassette
from harness.results.model import CheckResult

from ..conftest import REPO, run_cli

DATA = Path(__file__).parent / "data"
SPEC = DATA / "record-spec.yaml"
V2 = REPO / "tests" / "data" / "contract" / "diff" / "petstore-v2-breaking.yaml"


def _v2(project: Project) -> Project:
    return Project(project.spec, load_document(str(V2)), None)


def _failed(results: tuple[CheckResult, ...]) -> dict[str, CheckResult]:
    return {r.id: r for r in results if r.status == "failed"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Path, set[str]]]:
    """One recording from the simulator serving document v1, shared by the drift tests."""
    project = load_project(SPEC)
    out = tmp_path_factory.mktemp("cassettes")
    with simulate(project, seed=3) as running:
        env = dict(running.credentials.by_env)
        result = record(project, RecordOptions(out_dir=out, base_url=running.url), environ=env)
        issued = {r.auth_identity for r in running.records() if r.auth_identity}
    assert [c.operation for c in result.cassettes] == ["createToken", "listPets", "getPet"]
    assert all(c.statuses == (200,) for c in result.cassettes)
    assert issued, "the recording authenticated"
    yield project, out, set(env.values())


def test_recorded_cassettes_hold_no_secret(recorded: tuple[Project, Path, set[str]]) -> None:
    _project, out, secrets = recorded
    texts = {p.name: p.read_text(encoding="utf-8") for p in sorted(out.glob("*.yaml"))}
    assert set(texts) == {"createToken.yaml", "listPets.yaml", "getPet.yaml"}
    assert not list(out.glob(".recording-*")), "the staging folder is cleaned up"
    for name, text in texts.items():
        for secret in secrets:
            assert secret not in text, name
        assert "hsim_" not in text, f"a simulator token leaked into {name}"
    assert "client_secret=[REDACTED]" in texts["createToken.yaml"]
    assert '"access_token": "[REDACTED]"' in texts["createToken.yaml"]
    assert "authorization:\n      - '[REDACTED]'" in texts["listPets.yaml"]


def test_same_document_no_drift(recorded: tuple[Project, Path, set[str]]) -> None:
    project, out, _ = recorded
    results = check_cassettes(project, out)
    assert results and not _failed(results), [(r.id, r.summary) for r in results]
    checked = {r.id for r in results}
    assert "contract/drift/response_schema_conformance/listPets" in checked
    assert "contract/drift/status_code_conformance/createToken" in checked


def test_changed_document_drift_names_cassette_and_interaction(
    recorded: tuple[Project, Path, set[str]],
) -> None:
    project, out, secrets = recorded
    failed = _failed(check_cassettes(_v2(project), out))
    # v2 made weight_kg a string and removed getPet.
    assert set(failed) == {
        "contract/drift/response_schema_conformance/listPets",
        "contract/drift/operation_exists/GET /pets/1",
    }
    schema = failed["contract/drift/response_schema_conformance/listPets"]
    finding = schema.findings[0]
    assert finding.code == "ST108"
    assert re.fullmatch(r"\$\.items\[\d+\]\.weight_kg", str(finding.json_path))
    assert str(finding.details["cassette"]).endswith("listPets.yaml")
    assert finding.details["interaction"] == 0
    assert "listPets.yaml, interaction 0" in finding.message
    assert finding.request == "GET /pets"
    assert str(finding.response_excerpt).startswith("200 {")
    gone = failed["contract/drift/operation_exists/GET /pets/1"].findings[0]
    assert gone.code == "HC701"
    assert str(gone.details["cassette"]).endswith("getPet.yaml")
    for f in (finding, gone):
        shown = json.dumps([f.message, f.request, f.response_excerpt])
        assert not any(secret in shown for secret in secrets)


def test_the_engine_export_and_schemathesis_reports_are_read_the_same_way(tmp_path: Path) -> None:
    project = load_project(SPEC)
    with simulate(project, seed=3) as running:
        creds = running.credentials.by_field
        token = httpx.post(
            f"{running.url}/oauth/token",
            data={"grant_type": "client_credentials", **creds},
        ).json()["access_token"]
        httpx.get(f"{running.url}/pets", headers={"Authorization": f"Bearer {token}"})
        export_cassette(
            running.records(), tmp_path / "export.yaml", running.traffic.redactor, running.url
        )
    assert not _failed(check_cassettes(project, tmp_path))
    assert "contract/drift/response_schema_conformance/listPets" in _failed(
        check_cassettes(_v2(project), tmp_path)
    )
    # schemathesis' VCR report of a different, two-operation server: every response judged.
    st_results = check_cassettes(
        project, REPO / "tests" / "data" / "cassettes" / "schemathesis-pets.yaml"
    )
    assert {r.attributes["operation"] for r in st_results} == {"listPets", "createPet"}
    assert (
        _failed(st_results)["contract/drift/response_schema_conformance/listPets"]
        .findings[0]
        .details["cassette"]
        .endswith("schemathesis-pets.yaml")
    )


# -- a provider that echoes credentials back -----------------------------------------------------

CLIENT_ID = "echo-client-id-5f1e"
CLIENT_SECRET = "echo-client-secret-9a77c2"
TOKEN = "tok-echo-31d0c6b2a9e84f"


class _Echo(BaseHTTPRequestHandler):
    """Everything a careless provider does: cookies with the secret, echoed credentials."""

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: object, headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        secret = form["client_secret"][0]
        self._send(
            200,
            {
                "access_token": TOKEN,
                "token_type": "Bearer",
                "expires_in": 300,
                "debug": f"issued to {form['client_id'][0]} with {secret}",
            },
            {"Set-Cookie": f"session={secret}; Path=/", "X-Client": form["client_id"][0]},
        )

    def do_GET(self) -> None:
        echoed = self.headers.get("Authorization", "")
        pet = {"id": 1, "name": "Rex", "status": "available", "nickname": echoed}
        body = (
            {"items": [pet], "page": 1, "per_page": 20, "total": 1}
            if self.path.startswith("/pets?") or self.path == "/pets"
            else pet
        )
        self._send(200, body, {"X-Seen-Auth": echoed, "Set-Cookie": f"last={TOKEN}"})


@pytest.fixture()
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_echoed_credentials_set_cookie_and_token_bodies_are_filtered(
    echo_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECORD_TEST_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("RECORD_TEST_CLIENT_SECRET", CLIENT_SECRET)
    result = run_cli("record", str(SPEC), "--base-url", echo_server, "--out", str(tmp_path))
    assert result.code == 0, result.stderr
    assert "createToken" in result.stdout and "listPets" in result.stdout
    text = "\n".join(p.read_text(encoding="utf-8") for p in tmp_path.glob("*.yaml"))
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    for secret in (CLIENT_ID, CLIENT_SECRET, TOKEN, basic):
        assert secret not in text
        assert secret not in result.stdout + result.stderr
    assert "session=" not in text  # Set-Cookie is replaced whole
    assert "issued to [REDACTED] with [REDACTED]" in text


def test_bad_input_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECORD_TEST_CLIENT_ID", raising=False)
    monkeypatch.delenv("RECORD_TEST_CLIENT_SECRET", raising=False)
    unset = run_cli("record", str(SPEC), "--base-url", "http://127.0.0.1:9", "--out", str(tmp_path))
    assert unset.code == 2
    assert "RECORD_TEST_CLIENT_ID is not set: recording needs the real credential" in unset.stderr
    monkeypatch.setenv("RECORD_TEST_CLIENT_ID", "id-value-1234")
    monkeypatch.setenv("RECORD_TEST_CLIENT_SECRET", "secret-value-5678")
    cases = {
        "not allowed": ["--base-url", "https://api.example.com/v1"],
        "cannot reach 127.0.0.1:9": ["--base-url", "http://127.0.0.1:9"],
        "unknown operation 'nope'": ["--base-url", "http://127.0.0.1:9", "--operations", "nope"],
        "unsafe method": ["--base-url", "http://127.0.0.1:9", "--operations", "listPets,createPet"],
    }
    for expected, args in cases.items():
        result = run_cli("record", str(SPEC), *args, "--out", str(tmp_path))
        assert result.code == 2, (expected, result.stderr)
        assert expected in result.stderr, (expected, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "secret-value-5678" not in result.stderr
    assert not list(tmp_path.glob("*.yaml"))


def test_record_refuses_a_spec_without_credentials_then_a_refused_token(
    tmp_path: Path,
) -> None:
    project = load_project(SPEC)
    with simulate(project) as running, pytest.raises(InputError, match="without an access_token"):
        wrong = {var: "wrong-" + value for var, value in running.credentials.by_env.items()}
        record(project, RecordOptions(out_dir=tmp_path, base_url=running.url), environ=wrong)
    assert not list(tmp_path.glob("*.yaml"))


def test_interrupted_recording_keeps_the_finished_cassettes(tmp_path: Path) -> None:
    project = load_project(SPEC)

    def stop_after_list(line: str) -> None:
        if line.startswith("listPets"):
            raise KeyboardInterrupt

    with simulate(project) as running, pytest.raises(KeyboardInterrupt):
        record(
            project,
            RecordOptions(out_dir=tmp_path, base_url=running.url),
            progress=stop_after_list,
            environ=dict(running.credentials.by_env),
        )
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == ["createToken.yaml", "listPets.yaml"]
    assert not list(tmp_path.glob(".recording-*"))


def test_the_leak_canary_refuses_an_unfiltered_cassette(
    echo_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: with vcrpy's filters and hooks switched off, nothing is written."""
    import vcr

    from harness.contract import record as recording

    monkeypatch.setattr(recording, "_vcr", lambda project, secrets: vcr.VCR(record_mode="all"))
    env = {"RECORD_TEST_CLIENT_ID": CLIENT_ID, "RECORD_TEST_CLIENT_SECRET": CLIENT_SECRET}
    with pytest.raises(InputError, match="a secret value survived filtering"):
        record(
            load_project(SPEC),
            RecordOptions(out_dir=tmp_path, base_url=echo_server),
            environ=env,
        )
    assert not list(tmp_path.rglob("*.yaml"))
