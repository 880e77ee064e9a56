"""The fault proxy over real HTTP: forwarding, response checks, faults, rate limits, failures.

The upstream is either the harness's own simulator (conforming, counts what reaches it in its
traffic log) or a tiny ``http.server`` that breaks the document on purpose and counts its
connections. Every server listens on 127.0.0.1.
"""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from harness.openapi.operations import compile_document
from harness.project import load_project
from harness.provider.api import RunningProvider, proxy, simulate
from harness.provider.faults import parse_fault_plan
from harness.provider.response_check import ResponseChecker
from harness.provider.upstream import HOP_BY_HOP

from ..conftest import EXAMPLE_SPEC, REPO, run_cli, run_cli_process

PROJECT = load_project(EXAMPLE_SPEC)
VCRPY = REPO / "tests" / "data" / "cassettes" / "vcrpy-pets.yaml"


def _plan(*rules: dict[str, Any]) -> Any:
    return parse_fault_plan({"rules": list(rules)})


def _auth(sim: RunningProvider, via: str) -> dict[str, str]:
    """A bearer token from the simulator's token endpoint, fetched through ``via``."""
    creds = sim.credentials.by_field
    reply = httpx.post(
        via + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
        },
    )
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def _upstream_count(sim: RunningProvider, operation: str) -> int:
    return sum(1 for r in sim.records() if r.operation_id == operation)


# --- a deliberately non-conforming upstream ---------------------------------------------------


class _Broken(BaseHTTPRequestHandler):
    """Answers getPet without the required ``id``, 418 for pet 2, HTML for the list."""

    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is visible
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    connections: ClassVar[int] = 0
    requests: ClassVar[int] = 0

    def setup(self) -> None:
        type(self).connections += 1
        super().setup()

    def do_GET(self) -> None:
        type(self).requests += 1
        if self.path.startswith("/v1/pets/2"):
            self._send(418, "application/json", b'{"teapot": true}')
        elif self.path.startswith("/v1/pets/"):
            body = json.dumps({"name": "Rex", "status": "available"}).encode()
            self._send(200, "application/json", body)
        else:
            self._send(200, "text/html", b"<h1>maintenance</h1>")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Upstream", "broken")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def broken_upstream() -> Iterator[str]:
    _Broken.connections = _Broken.requests = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Broken)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()
        server.server_close()


# --- tests ----------------------------------------------------------------------------------


def test_same_answer_as_direct_and_one_record_per_exchange() -> None:
    with simulate(PROJECT) as sim, proxy(PROJECT, sim.url) as px:
        auth = _auth(sim, px.url)  # the token request is forwarded: the provider's auth
        direct = httpx.get(sim.url + "/pets", params={"per_page": 2}, headers=auth)
        proxied = httpx.get(px.url + "/pets", params={"per_page": 2}, headers=auth)
        assert proxied.status_code == direct.status_code == 200
        assert proxied.content == direct.content
        assert proxied.headers["ratelimit-limit"] == "20"  # the upstream's headers, as sent
        created = httpx.post(px.url + "/pets", json={"name": "Kit", "status": "sold"}, headers=auth)
        assert created.status_code == 201 and created.json()["name"] == "Kit"

        token, listed, posted = px.records()
        assert (token.operation_id, token.status) == ("createToken", 200)
        assert (listed.operation_id, listed.status, listed.query) == ("listPets", 200, "per_page=2")
        assert (posted.operation_id, posted.status) == ("createPet", 201)
        assert listed.latency_ms > 0 and listed.response_bytes == len(proxied.content)
        assert listed.validation_errors == () and posted.validation_errors == ()
        # Credentials passed through untouched, but never reach the proxy's log.
        assert listed.request_header("authorization") == "Bearer [REDACTED]"
        assert "[REDACTED]" in (token.response_body or "")
        assert auth["Authorization"].split()[1] not in json.dumps(
            [r.to_dict() for r in px.records()]
        )
        upstream_seen = sim.records()[-1]
        assert upstream_seen.request_header("host") == sim.url.removeprefix("http://")


def test_hop_by_hop_headers_are_not_forwarded() -> None:
    with simulate(PROJECT) as sim, proxy(PROJECT, sim.url) as px:
        auth = _auth(sim, px.url)
        host, port = px.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request(
            "GET",
            "/pets",
            headers={
                **auth,
                "Connection": "keep-alive, x-hop",
                "X-Hop": "1",
                "TE": "trailers",
                "X-End": "2",
            },
        )
        assert conn.getresponse().read()
        conn.close()
        seen = {name for name, _ in sim.records()[-1].request_headers}
        assert "x-end" in seen and "x-hop" not in seen and "te" not in seen
        assert not seen & (HOP_BY_HOP - {"connection"})


def test_non_conforming_upstream_reaches_the_client_unchanged_and_is_logged() -> None:
    with broken_upstream() as upstream, proxy(PROJECT, upstream) as px:
        with httpx.Client() as client:
            missing = client.get(px.url + "/pets/1")
            teapot = client.get(px.url + "/pets/2")
            html = client.get(px.url + "/pets")
        direct = httpx.get(upstream + "/pets/1")
        assert missing.status_code == 200 and missing.content == direct.content
        assert teapot.status_code == 418 and teapot.json() == {"teapot": True}
        assert html.text == "<h1>maintenance</h1>"
        # The evidence stays in the log: not a header or a byte more for the client.
        names = {k.lower() for k in missing.headers}
        assert names == {k.lower() for k in direct.headers} - {"connection"}
        assert missing.headers["x-upstream"] == "broken"

        by_path = {r.path: r for r in px.records()}
        assert by_path["/pets/1"].operation_id == "getPet"
        assert any("'id' is a required property" in e for e in by_path["/pets/1"].validation_errors)
        assert by_path["/pets/2"].validation_errors == (
            "response status 418 is not documented for getPet",
        )
        (html_error,) = by_path["/pets"].validation_errors
        assert "content type text/html is not documented for listPets 200" in html_error
        assert all(r.status in (200, 418) and r.note == "" for r in px.records())


def test_upstream_connections_are_kept_alive_and_reused() -> None:
    with broken_upstream() as upstream, proxy(PROJECT, upstream) as px, httpx.Client() as client:
        for _ in range(12):
            assert client.get(px.url + "/pets/1").status_code == 200
        assert _Broken.requests == 12
        assert _Broken.connections == 1
        assert px.engine.upstream is not None and px.engine.upstream.connections_opened == 1


def test_faults_apply_to_proxied_traffic() -> None:
    plan = _plan(
        {
            "name": "rst",
            "match": {"operation": "getPet"},
            "when": {"nth": [1]},
            "action": {"reset": True},
        },
        {
            "name": "busy",
            "match": {"operation": "listPets"},
            "when": {"nth": [1]},
            "action": {"status": 429, "headers": {"Retry-After": "2"}},
        },
        {
            "name": "slow",
            "match": {"operation": "listPets"},
            "when": {"nth": [2]},
            "action": {"latency": 0.3},
        },
        {
            "name": "junk",
            "match": {"operation": "listPets"},
            "when": {"nth": [3]},
            "action": {"malformed_json": True},
        },
    )
    with simulate(PROJECT) as sim, proxy(PROJECT, sim.url, faults=plan) as px:
        auth = _auth(sim, px.url)
        with pytest.raises(httpx.TransportError):
            httpx.get(px.url + "/pets/1", headers=auth)
        assert _upstream_count(sim, "getPet") == 0  # the fault answered; upstream never asked
        assert httpx.get(px.url + "/pets/1", headers=auth).status_code == 200

        busy = httpx.get(px.url + "/pets", headers=auth)
        assert busy.status_code == 429 and busy.headers["retry-after"] == "2"
        assert _upstream_count(sim, "listPets") == 0

        start = time.monotonic()
        slow = httpx.get(px.url + "/pets", headers=auth)
        assert time.monotonic() - start >= 0.29
        assert slow.status_code == 200 and slow.json()["items"]
        junk = httpx.get(px.url + "/pets", headers=auth)
        with pytest.raises(ValueError):
            json.loads(junk.content)
        assert _upstream_count(sim, "listPets") == 2

        faults = [(r.operation_id, r.fault, r.status) for r in px.records()[1:]]
        assert faults == [
            ("getPet", "rst", None),
            ("getPet", None, 200),
            ("listPets", "busy", 429),
            ("listPets", "slow", 200),
            ("listPets", "junk", 200),
        ]
        slow_record = px.records()[4]
        assert slow_record.latency_ms >= 290 and slow_record.validation_errors == ()


def test_rate_limit_answers_429_without_asking_upstream() -> None:
    # The spec allows a burst of 20 at 10/s; 30 requests at once must meet the proxy's limit.
    with simulate(PROJECT) as sim, proxy(PROJECT, sim.url) as px:
        auth = _auth(sim, px.url)
        with httpx.Client() as client:
            statuses = [client.get(px.url + "/pets/1", headers=auth).status_code for _ in range(30)]
        refused = [r for r in px.records() if r.status == 429]
        assert statuses.count(429) == len(refused) > 0
        assert set(statuses) == {200, 429}
        assert _upstream_count(sim, "getPet") == statuses.count(200) < 30
        assert all(r.response_header("retry-after") for r in refused)
        assert all(r.rate_limit is not None and r.rate_limit["remaining"] == 0 for r in refused)


def test_upstream_down_is_a_502() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    with proxy(PROJECT, f"http://127.0.0.1:{port}") as px:
        reply = httpx.get(px.url + "/pets")
        assert reply.status_code == 502
        assert reply.headers["content-type"] == "application/problem+json"
        assert "connection refused" in reply.json()["detail"]
        (record,) = px.records()
        assert record.status == 502 and record.note.startswith("upstream unavailable")


def test_upstream_that_hangs_is_a_504_within_the_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts (the kernel does), never answers
        port = silent.getsockname()[1]
        with proxy(PROJECT, f"http://127.0.0.1:{port}", timeout_seconds=0.4) as px:
            start = time.monotonic()
            reply = httpx.get(px.url + "/pets", timeout=5)
            elapsed = time.monotonic() - start
        assert reply.status_code == 504 and 0.35 <= elapsed < 2
        assert "0.4 s" in reply.json()["detail"]
        (record,) = px.records()
        assert record.status == 504 and record.note.startswith("upstream timeout")


@contextmanager
def forgetful_upstream() -> Iterator[tuple[str, list[int]]]:
    """Answers the first request on each connection, then closes at the next without a word:
    what a keep-alive connection the upstream dropped while idle looks like to a client."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []
    pet = json.dumps({"id": 1, "name": "Rex", "status": "sold"}).encode()

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(pet), pet)
                )
                conn.recv(65536)  # the next request: dropped

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        listener.close()


def test_a_stale_connection_is_retried_for_get_but_not_for_post() -> None:
    with forgetful_upstream() as (upstream, accepted), proxy(PROJECT, upstream) as px:
        with httpx.Client() as client:
            assert client.get(px.url + "/pets/1").status_code == 200
            assert client.get(px.url + "/pets/1").status_code == 200  # stale, retried
            posted = client.post(px.url + "/pets", json={"name": "Kit", "status": "sold"})
        assert len(accepted) == 2
        assert posted.status_code == 502  # a POST may have been processed: never resent
        assert "closed the connection without answering" in posted.json()["detail"]


def test_a_request_in_flight_when_the_proxy_stops_is_logged() -> None:
    replies: list[BaseException | int] = []
    with socket.create_server(("127.0.0.1", 0)) as silent:
        upstream = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with proxy(PROJECT, upstream, timeout_seconds=30) as px:

            def call() -> None:
                try:
                    replies.append(httpx.get(px.url + "/pets", timeout=5).status_code)
                except httpx.TransportError as error:
                    replies.append(error)

            caller = threading.Thread(target=call)
            caller.start()
            deadline = time.monotonic() + 5
            pool = px.engine.upstream
            while pool is not None and not pool.open_connections and time.monotonic() < deadline:
                time.sleep(0.01)
        caller.join(5)
        (record,) = px.records()
        assert (record.status, record.note) == (None, "server stopped")
        assert isinstance(replies[0], httpx.TransportError)


def test_cassette_misses_pass_through_to_the_upstream() -> None:
    with (
        simulate(PROJECT) as sim,
        simulate(PROJECT, cassettes=VCRPY, on_miss="passthrough", upstream=sim.url) as replay,
    ):
        recorded = httpx.get(replay.url + "/v1/pets", params={"status": "available", "limit": 2})
        assert recorded.json() == [{"id": 1, "name": "rex"}, {"id": 2, "name": "tom"}]
        assert sim.records() == []
        auth = _auth(sim, sim.url)
        missed = httpx.get(replay.url + "/v1/pets/3", headers=auth)
        assert missed.status_code == 200 and missed.json()["id"] == 3
        assert _upstream_count(sim, "getPet") == 1
        hit, miss = replay.records()
        assert hit.note == "replayed" and miss.note == "" and miss.operation_id == "getPet"


def test_cli_refuses_a_host_the_spec_does_not_allow() -> None:
    result = run_cli_process(
        "proxy", str(EXAMPLE_SPEC), "--upstream", "https://api.evil.example/v1"
    )
    assert result.code == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "provider.live.allowed_hosts" in line and "api.evil.example" in line


def test_cli_one_line_errors_for_a_busy_port_and_passthrough_without_upstream() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = run_cli(
            "proxy", str(EXAMPLE_SPEC), "--upstream", "http://127.0.0.1:9", "--port", port
        )
    assert result.code == 2
    (line,) = result.stderr.splitlines()
    assert "cannot listen" in line
    result = run_cli(
        "simulate", str(EXAMPLE_SPEC), "--cassettes", str(VCRPY), "--on-miss", "passthrough"
    )
    assert result.code == 2
    (line,) = result.stderr.splitlines()
    assert "passthrough needs --cassettes and --upstream" in line


def test_response_verdicts_are_remembered_per_body_and_stay_right() -> None:
    checker = ResponseChecker(PROJECT.provider)
    get_pet = next(op for op in compile_document(PROJECT.provider) if op.operation_id == "getPet")
    json_type = (("Content-Type", "application/json"),)
    good = json.dumps({"id": 1, "name": "Rex", "status": "sold"}).encode()
    bad = json.dumps({"name": "Rex", "status": "sold"}).encode()

    first = checker.check(get_pet, 200, json_type, bad)
    assert any("'id' is a required property" in p for p in first)
    assert checker.check(get_pet, 200, json_type, bad) == first  # remembered: same words
    assert checker.check(get_pet, 200, json_type, good) == ()
    # The same bytes gzipped are another body: decoded, then judged the same way.
    zipped = checker.check(
        get_pet, 200, (*json_type, ("Content-Encoding", "gzip")), gzip.compress(bad)
    )
    assert zipped == first
    # Beyond what orjson parses (a 100-bit integer) is still JSON: judged by the schema.
    (huge,) = checker.check(
        get_pet,
        200,
        json_type,
        b'{"id": 1267650600228229401496703205376, "name": "R", "status": "sold"}',
    )
    assert "not valid JSON" not in huge and "maximum" in huge
    (broken,) = checker.check(get_pet, 200, json_type, b'{"id": 1,')
    assert broken.startswith("response body is not valid JSON")
    # Large bodies are checked every time and never kept.
    kept = len(checker._verdicts)
    large = json.dumps({"id": 1, "name": "Rex", "status": "sold", "nickname": "x" * 20000})
    assert checker.check(get_pet, 200, json_type, large.encode()) == ()
    assert len(checker._verdicts) == kept
