"""`harness simulate` as a real process: durability under SIGKILL, secrets never logged,
cassette replay, and one-line errors for bad input."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from harness.provider.cassettes import load_cassettes
from harness.provider.traffic import read_traffic

from ..conftest import EXAMPLE_SPEC, REPO, run_cli

SECRET = "canary-secret-7f3a9b2c"
CLIENT_ID = "canary-client-51de0a"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def simulator(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "simulate",
            str(EXAMPLE_SPEC),
            "--port",
            str(port),
            *args,
        ],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/__harness/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"simulator did not start: {proc.communicate()}") from None
                time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("count", [1, 17])
def test_sigkill_right_after_n_responses_leaves_n_records(tmp_path: Path, count: int) -> None:
    traffic = tmp_path / "traffic.jsonl"
    with simulator("--side", "destination", "--traffic", str(traffic)) as (url, proc):
        with httpx.Client() as client:
            for index in range(count):
                reply = client.put(
                    f"{url}/items/{index}",
                    json={"external_id": str(index), "name": "x", "state": "gone"},
                )
                assert reply.status_code in (200, 201)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    records = read_traffic(traffic)
    assert len(records) == count
    assert [r.seq for r in records] == list(range(1, count + 1))
    assert all(r.operation_id == "upsertItem" and r.side == "destination" for r in records)


def test_no_secret_reaches_the_traffic_log_or_the_cassette(tmp_path: Path) -> None:
    traffic = tmp_path / "traffic.jsonl"
    cassette = tmp_path / "cassette.yaml"
    env = {"PETSTORE_CLIENT_ID": CLIENT_ID, "PETSTORE_CLIENT_SECRET": SECRET}
    tokens: list[str] = []
    with simulator("--traffic", str(traffic), "--export-cassette", str(cassette), env=env) as (
        url,
        proc,
    ):
        form = httpx.post(
            url + "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": SECRET,
            },
        )
        basic = httpx.post(
            url + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(CLIENT_ID, SECRET),
        )
        assert form.status_code == basic.status_code == 200
        tokens = [form.json()["access_token"], basic.json()["access_token"]]
        for tok in tokens:
            assert (
                httpx.get(url + "/pets", headers={"Authorization": f"Bearer {tok}"}).status_code
                == 200
            )
        httpx.get(url + "/pets", params={"access_token": tokens[0], "client_secret": SECRET})
        httpx.post(
            url + "/pets",
            json={"name": SECRET, "status": "sold"},
            headers={"Authorization": f"Bearer {tokens[0]}"},
        )
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert "wrote" in err and cassette.is_file()
    texts = {"traffic": traffic.read_text(), "cassette": cassette.read_text(), "output": out + err}
    forbidden = [
        SECRET,
        CLIENT_ID,
        *tokens,
        base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode(),
    ]
    for name, text in texts.items():
        for value in forbidden:
            assert value not in text, f"{value[:6]}... leaked into {name}"
    assert len(read_traffic(traffic)) == 6
    assert "[REDACTED]" in texts["traffic"]


def test_cassette_replay_and_miss_policy(tmp_path: Path) -> None:
    cassettes = REPO / "tests" / "data" / "cassettes"
    recorded = [i for i in load_cassettes(cassettes / "vcrpy-pets.yaml")]
    first = recorded[0]
    with simulator("--cassettes", str(cassettes / "vcrpy-pets.yaml"), "--on-miss", "fail") as (
        url,
        _proc,
    ):
        query = f"?{first.query}" if first.query else ""
        reply = httpx.request(
            first.method,
            url + first.path + query,
            content=first.request_body or None,
            headers={"content-type": "application/json"} if first.request_body else {},
        )
        assert reply.status_code == first.status
        assert reply.content == first.body
        miss = httpx.get(url + "/pets/424242")
        assert miss.status_code == 501
        assert "no recorded interaction" in miss.json()["detail"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--faults", "tests/data/faults/broken/two-actions.yaml"],
            "tests/data/faults/broken/two-actions.yaml:",
        ),
        (["--faults", "missing-plan.yaml"], "missing-plan.yaml: file not found"),
        (
            ["--cassettes", "tests/data/broken/yaml-syntax.yaml"],
            "tests/data/broken/yaml-syntax.yaml",
        ),
        (["--port", "99999"], "99999"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], expected: str) -> None:
    result = run_cli("simulate", str(EXAMPLE_SPEC.relative_to(REPO)), *args, cwd=REPO)
    assert result.code == 2, result.stdout + result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) >= 1


def test_unknown_operation_in_a_fault_plan_is_located(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("rules:\n  - match: {operation: listPet}\n    action: {reset: true}\n")
    result = run_cli("simulate", str(EXAMPLE_SPEC), "--faults", str(plan))
    assert result.code == 2
    assert f"{plan}:2: rules[0].match.operation" in result.stderr
    assert "listPet" in result.stderr


def test_port_in_use_is_one_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_cli("simulate", str(EXAMPLE_SPEC), "--port", str(port))
    assert result.code == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(port) in result.stderr
