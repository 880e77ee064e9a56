"""The provider engine's HTTP core against real clients (httpx, requests, http.client, sockets).

One server per module (uvloop when installed) answers by path; the completion callback records
every Outcome so each test can check what the server says really reached the client. Timing
assertions only use lower bounds, or orderings with generous slack: the machine may be loaded.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import requests

from harness.provider.messages import Action, Hang, Outcome, Request, Reset, Respond
from harness.provider.server import HttpServer, ServerThread

JSON = (("Content-Type", "application/json"),)
BODY = b'{"id":1,"name":"Rex"}'
MAX_BODY = 4096
# Far more than the kernel buffers on both ends hold, so a client that does not read holds it up.
BIG = b"y" * (16 * 1024 * 1024)


@dataclass(frozen=True)
class Record:
    request: Request
    action: Action
    outcome: Outcome


class Recorder:
    """Collects completions from the server thread; tests wait for the one they caused."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._cond = threading.Condition()

    def __call__(self, request: Request, action: Action, outcome: Outcome) -> None:
        with self._cond:
            self.records.append(Record(request, action, outcome))
            self._cond.notify_all()

    def wait_for(self, tag: str, count: int = 1, timeout: float = 5.0) -> list[Record]:
        """The records of requests whose query is ``tag`` (each test uses its own tag)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self.records if r.request.query == tag]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no completion for {tag!r} within {timeout} s: {found}")
                self._cond.wait(left)


async def _async_handler(request: Request) -> Action:
    await asyncio.sleep(0.01)
    return Respond(201, JSON, b'{"async":true}')


def handler(request: Request) -> Action | Awaitable[Action]:
    path = request.path
    if path == "/json":
        return Respond(200, JSON, BODY)
    if path == "/echo":
        kind = request.header("content-type", "application/octet-stream") or ""
        return Respond(200, (("Content-Type", kind),), request.body)
    if path == "/reset":
        return Reset()
    if path == "/hang":
        return Hang()
    if path == "/truncate":
        return Respond(200, JSON, b"x" * 100, truncate_at=10)
    if path == "/close-after-headers":
        return Respond(200, JSON, b"x" * 100, close_after_headers=True)
    if path == "/slow":
        return Respond(200, (), b"abcdefghij" * 4, chunk_size=10, chunk_delay_seconds=0.05)
    if path == "/delay":
        return Respond(200, (), b"late", delay_seconds=0.4)
    if path == "/async":
        return _async_handler(request)
    if path == "/boom":
        raise RuntimeError("the engine broke")
    if path == "/bad-action":
        return Respond(200, (), "a str, not bytes")  # type: ignore[arg-type]
    if path == "/big":
        return Respond(200, (), BIG)
    if path == "/no-content":
        return Respond(204)
    return Respond(404, JSON, b'{"error":"not found"}')


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def server(recorder: Recorder) -> Iterator[ServerThread]:
    thread = ServerThread(handler, recorder, max_body_size=MAX_BODY)
    with thread:
        yield thread


@pytest.fixture()
def base_url(server: ServerThread) -> str:
    return server.base_url


# --- raw socket helpers ----------------------------------------------------------------------


def connect(server: ServerThread) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


class Reader:
    """Reads whole HTTP/1.1 responses (Content-Length framed) from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.total = 0

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        self.total += len(data)
        return bool(data)

    def response(self) -> tuple[int, dict[str, str], bytes, bytes]:
        """(status, lower-cased headers, body, raw bytes) of the next response."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise EOFError(self.buffer)
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            if not self._fill():
                raise EOFError(self.buffer)
            rest = self.buffer.partition(b"\r\n\r\n")[2]
        body, self.buffer = rest[:length], rest[length:]
        return status, headers, body, head + b"\r\n\r\n" + body

    def at_eof(self) -> bool:
        return not self.buffer and not self._fill()


def get(path: str, tag: str, extra: str = "") -> bytes:
    return f"GET {path}?{tag} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode()


# --- plain responses with real clients -----------------------------------------------------------


def test_canned_json_over_httpx(base_url: str, recorder: Recorder) -> None:
    response = httpx.get(f"{base_url}/json?httpx")
    assert response.status_code == 200
    assert response.json() == {"id": 1, "name": "Rex"}
    assert response.headers["content-length"] == str(len(BODY))
    assert response.headers["server"] == "integration-harness"
    assert response.headers["date"].endswith(" GMT")
    (record,) = recorder.wait_for("httpx")
    assert record.request.method == "GET"
    assert record.request.path == "/json"
    assert record.request.header("host") == base_url.removeprefix("http://")
    assert record.outcome.status == 200
    assert not record.outcome.client_aborted


def test_canned_json_over_requests(base_url: str, recorder: Recorder) -> None:
    response = requests.get(f"{base_url}/json?requests", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"id": 1, "name": "Rex"}
    assert recorder.wait_for("requests")[0].outcome.status == 200


def test_raw_socket_and_completion_bytes(server: ServerThread, recorder: Recorder) -> None:
    with connect(server) as sock:
        sock.sendall(get("/json", "raw"))
        status, headers, body, raw = Reader(sock).response()
    assert (status, body) == (200, BODY)
    assert headers["content-type"] == "application/json"
    (record,) = recorder.wait_for("raw")
    assert record.outcome.bytes_sent == len(raw)
    assert record.request.client.startswith("127.0.0.1:")


def test_keep_alive_reuses_one_connection(server: ServerThread, recorder: Recorder) -> None:
    with connect(server) as sock:
        reader = Reader(sock)
        for _ in range(2):
            sock.sendall(get("/json", "keepalive"))
            assert reader.response()[0] == 200
    first, second = recorder.wait_for("keepalive", 2)
    assert first.request.connection_id == second.request.connection_id
    with httpx.Client(base_url=server.base_url) as client:
        assert client.get("/json?httpx-keepalive").status_code == 200
        assert client.get("/json?httpx-keepalive").status_code == 200
    ids = {r.request.connection_id for r in recorder.wait_for("httpx-keepalive", 2)}
    assert len(ids) == 1


def test_pipelined_requests_are_answered_in_order(server: ServerThread) -> None:
    # The delayed one goes first: its answer must still come first.
    pipeline = (
        get("/delay", "pipe")
        + get("/json", "pipe")
        + b"POST /echo?pipe HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
        + get("/missing", "pipe")
    )
    with connect(server) as sock:
        sock.sendall(pipeline)
        reader = Reader(sock)
        answers = [reader.response() for _ in range(4)]
    assert [(status, body) for status, _, body, _ in answers] == [
        (200, b"late"),
        (200, BODY),
        (200, b"hello"),
        (404, b'{"error":"not found"}'),
    ]


def test_http_10_closes_unless_keep_alive_is_asked(server: ServerThread) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /json?http10 HTTP/1.0\r\n\r\n")
        reader = Reader(sock)
        status, headers, body, _ = reader.response()
        assert (status, body) == (200, BODY)
        assert headers["connection"] == "close"
        assert reader.at_eof()
    with connect(server) as sock:
        reader = Reader(sock)
        for _ in range(2):
            sock.sendall(b"GET /json?http10ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _, _ = reader.response()
            assert status == 200
            assert headers["connection"] == "keep-alive"


def test_http11_connection_close(server: ServerThread) -> None:
    with connect(server) as sock:
        sock.sendall(get("/json", "close", "Connection: close\r\n"))
        reader = Reader(sock)
        assert reader.response()[1]["connection"] == "close"
        assert reader.at_eof()


def test_chunked_request_body_is_echoed(server: ServerThread, recorder: Recorder) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /echo?chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: text/plain\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        status, headers, body, _ = Reader(sock).response()
    assert (status, body, headers["content-type"]) == (200, b"hello world", "text/plain")

    def pieces() -> Iterator[bytes]:
        yield b'{"a":'
        yield b"1}"

    response = httpx.post(
        f"{server.base_url}/echo?httpx-chunked",
        content=pieces(),
        headers={"Content-Type": "application/json"},
    )
    assert response.json() == {"a": 1}
    (record,) = recorder.wait_for("httpx-chunked")
    assert record.request.header("transfer-encoding") == "chunked"
    assert record.request.body == b'{"a":1}'


def test_body_over_the_limit_is_413(server: ServerThread) -> None:
    response = httpx.post(f"{server.base_url}/echo?big", content=b"x" * (MAX_BODY + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    # A big upload still in flight when the 413 is sent: the client must see the 413, not a reset.
    response = httpx.post(f"{server.base_url}/echo?big", content=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 413
    with connect(server) as sock:  # chunked: only the running total can tell
        chunk = b"x" * 1000
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) * 5)
        reader = Reader(sock)
        assert reader.response()[0] == 413
        assert reader.at_eof()


def test_head_and_no_content(server: ServerThread) -> None:
    with connect(server) as sock:
        reader = Reader(sock)
        sock.sendall(b"HEAD /json?head HTTP/1.1\r\nHost: t\r\n\r\n")
        head = reader.sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Content-Length: %d\r\n" % len(BODY) in head
        assert head.endswith(b"\r\n\r\n")  # and no body
        sock.sendall(get("/no-content", "nocontent"))
        status, headers, body, _ = reader.response()
        assert (status, body) == (204, b"")
        assert "content-length" not in headers


def _small_window_socket(server: ServerThread) -> socket.socket:
    """A client with a fixed 256 KiB receive window (no autotuning), so buffering is bounded."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", server.port))
    return sock


def test_slow_reader_is_reported_once_the_response_is_out(
    server: ServerThread, recorder: Recorder
) -> None:
    with _small_window_socket(server) as sock:
        sock.sendall(get("/big", "slow-reader"))
        with pytest.raises(AssertionError):  # not written yet: the client has not read it
            recorder.wait_for("slow-reader", timeout=0.3)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert b"Content-Length: %d\r\n" % len(BIG) in head
        expected = head.index(b"\r\n\r\n") + 4 + len(BIG)
        received = len(head)
        while received < expected:
            received += len(sock.recv(1 << 20))
        (record,) = recorder.wait_for("slow-reader")
    assert record.outcome.bytes_sent == received  # all of it, head included
    assert not record.outcome.client_aborted


def test_client_leaving_mid_body_is_reported_with_what_was_sent(
    server: ServerThread, recorder: Recorder
) -> None:
    with _small_window_socket(server) as sock:
        sock.sendall(get("/big", "leaves"))
        assert sock.recv(1024).startswith(b"HTTP/1.1 200 OK")
        time.sleep(0.25)  # let the server sample what is still unsent
    (record,) = recorder.wait_for("leaves")
    assert record.outcome.client_aborted
    assert record.outcome.status == 200
    assert 0 < record.outcome.bytes_sent < len(BIG)


# --- faults ----------------------------------------------------------------------------------


def test_reset_on_a_new_connection(server: ServerThread, recorder: Recorder) -> None:
    with connect(server) as sock:
        sock.sendall(get("/reset", "reset"))
        with pytest.raises(ConnectionResetError):
            sock.recv(1024)
    (record,) = recorder.wait_for("reset")
    assert (record.outcome.status, record.outcome.bytes_sent) == (None, 0)
    assert record.outcome.note == "reset"
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        httpx.get(f"{server.base_url}/reset?reset-httpx")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.base_url}/reset?reset-requests", timeout=5)


def test_reset_on_an_open_keep_alive_connection(server: ServerThread, recorder: Recorder) -> None:
    with connect(server) as sock:
        reader = Reader(sock)
        sock.sendall(get("/json", "reset-ka"))
        assert reader.response()[0] == 200
        sock.sendall(get("/reset", "reset-ka"))
        with pytest.raises(ConnectionResetError):
            sock.recv(1024)
    first, second = recorder.wait_for("reset-ka", 2)
    assert first.request.connection_id == second.request.connection_id
    assert (first.outcome.status, second.outcome.status) == (200, None)


def test_hang_times_the_client_out_and_is_reported_abandoned(
    server: ServerThread, recorder: Recorder
) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout), httpx.Client(timeout=0.3) as client:
        client.get(f"{server.base_url}/hang?hang")
    assert time.monotonic() - started >= 0.28  # the client timer, with a little tolerance
    (record,) = recorder.wait_for("hang")
    assert record.outcome.client_aborted
    assert (record.outcome.status, record.outcome.bytes_sent) == (None, 0)
    assert isinstance(record.action, Hang)


def test_truncated_body(server: ServerThread, recorder: Recorder) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{server.base_url}/truncate?truncate-httpx")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/truncate?truncate")
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Length") == "100"
    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    assert len(caught.value.partial) == 10
    connection.close()
    (record,) = recorder.wait_for("truncate")
    assert record.outcome.status == 200
    assert record.outcome.note == "truncated"
    head_size = record.outcome.bytes_sent - 10
    assert 50 < head_size < 300


def test_close_after_headers(server: ServerThread, recorder: Recorder) -> None:
    with connect(server) as sock:
        sock.sendall(get("/close-after-headers", "cah"))
        reader = Reader(sock)
        while reader._fill():
            pass
    assert reader.buffer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 100\r\n" in reader.buffer
    assert reader.buffer.endswith(b"\r\n\r\n")
    (record,) = recorder.wait_for("cah")
    assert record.outcome.bytes_sent == len(reader.buffer)
    assert record.outcome.note == "closed after headers"
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{server.base_url}/close-after-headers?cah-httpx")


def test_slow_body_arrives_in_pieces(server: ServerThread, recorder: Recorder) -> None:
    started = time.monotonic()
    pieces = []
    with httpx.stream("GET", f"{server.base_url}/slow?slow") as response:
        pieces = list(response.iter_raw())
    elapsed = time.monotonic() - started
    assert b"".join(pieces) == b"abcdefghij" * 4
    assert len(pieces) >= 2
    # Three pauses of 0.05 s between four pieces; event-loop timers (uvloop: 1 ms resolution)
    # may fire a little early, so the lower bound keeps a tolerance.
    assert elapsed >= 0.14
    (record,) = recorder.wait_for("slow")
    assert record.outcome.status == 200
    assert record.outcome.ended_monotonic - record.request.started_monotonic >= 0.14


def test_delay_holds_one_connection_not_the_others(server: ServerThread) -> None:
    finished: dict[str, float] = {}

    def fetch(path: str) -> None:
        assert httpx.get(f"{server.base_url}{path}", timeout=10).status_code == 200
        finished[path] = time.monotonic()

    started = time.monotonic()
    slow = threading.Thread(target=fetch, args=("/delay?delay",))
    slow.start()
    time.sleep(0.05)  # the delayed request is in first
    fetch("/json?not-delayed")
    slow.join(10)
    assert finished["/json?not-delayed"] < finished["/delay?delay"]
    assert finished["/delay?delay"] - started >= 0.39  # timers may fire ~1 ms early


# --- handlers ------------------------------------------------------------------------------


def test_async_handler(base_url: str, recorder: Recorder) -> None:
    response = httpx.get(f"{base_url}/async?async")
    assert (response.status_code, response.json()) == (201, {"async": True})
    assert recorder.wait_for("async")[0].outcome.status == 201


def test_handler_exception_is_500_and_the_server_keeps_serving(
    server: ServerThread, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        response = client.get("/boom?boom")
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert json.loads(response.content)["status"] == 500
        assert client.get("/json?after-boom").status_code == 200
        assert client.get("/bad-action?bad-action").status_code == 500
        assert client.get("/json?after-boom").status_code == 200
    (record,) = recorder.wait_for("boom")
    assert (record.outcome.status, record.outcome.note) == (500, "handler error")
    assert "the engine broke" in caplog.text
    assert recorder.wait_for("bad-action")[0].outcome.status == 500


def test_malformed_request_is_400_and_closed(server: ServerThread) -> None:
    with connect(server) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        reader = Reader(sock)
        assert reader.response()[0] == 400
        assert reader.at_eof()


# --- lifecycle -----------------------------------------------------------------------------


def _start_hangs(thread: ServerThread, count: int, tag: str) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", thread.port), timeout=5)
        sock.sendall(get("/hang", tag))
        sockets.append(sock)
    return sockets


@pytest.mark.parametrize("use_uvloop", [True, False], ids=["uvloop", "asyncio"])
def test_stop_ends_hangs_promptly_and_reports_them(use_uvloop: bool) -> None:
    recorder = Recorder()
    called = threading.Semaphore(0)

    def counting(request: Request) -> Action | Awaitable[Action]:
        called.release()
        return handler(request)

    thread = ServerThread(counting, recorder, use_uvloop=use_uvloop)
    thread.start()
    sockets = _start_hangs(thread, 3, "stop")
    try:
        for _ in range(3):
            assert called.acquire(timeout=5)
        started = time.monotonic()
        thread.stop()
        assert time.monotonic() - started < 3
        records = recorder.wait_for("stop", 3, timeout=1)
        assert all(r.outcome.note == "server stopped" for r in records)
        assert not any(r.outcome.client_aborted for r in records)
        for sock in sockets:
            assert sock.recv(10) == b""  # closed, never answered
    finally:
        for sock in sockets:
            sock.close()


def test_plain_asyncio_loop_resets_too() -> None:
    """The RST goes through the transport's socket object, which differs between the loops."""
    recorder = Recorder()
    with ServerThread(handler, recorder, use_uvloop=False) as base_url:
        assert httpx.get(f"{base_url}/json?asyncio").status_code == 200
        port = int(base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(get("/reset", "asyncio-reset"))
            with pytest.raises(ConnectionResetError):
                sock.recv(1024)


def test_http_server_in_your_own_loop() -> None:
    async def main() -> tuple[int, list[Outcome]]:
        outcomes: list[Outcome] = []
        server = HttpServer(
            lambda request: Respond(200, body=b"ok"), lambda r, a, o: outcomes.append(o)
        )
        port = await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        data = await reader.readuntil(b"ok")
        await server.stop()
        writer.close()
        return len(data), outcomes

    size, outcomes = asyncio.run(main())
    assert [o.bytes_sent for o in outcomes] == [size]


def test_call_runs_on_the_server_loop(server: ServerThread) -> None:
    def where() -> bool:
        return threading.current_thread().name == "harness-provider-server"

    assert server.call(where) is True
    done = threading.Event()
    server.call_soon(done.set)
    assert done.wait(5)


def test_before_send_runs_between_each_decision_and_its_answer() -> None:
    """The traffic log's barrier: a response leaves only after ``before_send`` has run since it
    was decided, whether requests come one per connection or pipelined on one."""
    events: list[str] = []

    def decide(request: Request) -> Respond:
        events.append("decided " + request.query)
        return Respond(200, JSON, b"{}")

    def before_send() -> None:
        events.append("flushed")

    def flushed_since(tag: str) -> bool:
        snapshot = list(events)
        return "flushed" in snapshot[snapshot.index("decided " + tag) + 1 :]

    thread = ServerThread(decide, None, before_send=before_send)
    with thread:
        sockets = [connect(thread) for _ in range(6)]
        for number, sock in enumerate(sockets):
            sock.sendall(get("/x", f"c{number}"))
        for number, sock in enumerate(sockets):
            assert Reader(sock).response()[0] == 200
            assert flushed_since(f"c{number}")
        pipelined = connect(thread)
        pipelined.sendall(b"".join(get("/x", f"p{n}") for n in range(3)))
        reader = Reader(pipelined)
        for number in range(3):
            assert reader.response()[0] == 200
            assert flushed_since(f"p{number}")
        for sock in (*sockets, pipelined):
            sock.close()


def test_a_failing_before_send_does_not_keep_answers_back() -> None:
    def fail() -> None:
        raise OSError("disk full")

    with ServerThread(lambda request: Respond(200, JSON, b"{}"), None, before_send=fail) as url:
        assert httpx.get(url + "/x").status_code == 200
