"""The proxy's upstream client against raw sockets: framing, header handling, timeouts.

Each upstream here is a plain socket server in a thread that answers scripted bytes and keeps
what it received, so the tests see exactly what went over the wire in both directions.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from harness.provider.upstream import UpstreamPool, UpstreamResponse, UpstreamTimeout

Script = Callable[[int], bytes | None]
"""Answer to the nth request on a connection (0-based): bytes, or None to close at once."""


@contextmanager
def scripted_upstream(script: Script) -> Iterator[tuple[str, list[bytes]]]:
    """A keep-alive upstream: answers each request with ``script(n)``; closes after a ``None``
    or after an answer without Content-Length or chunking (a body ended by the close)."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve(conn: socket.socket) -> None:
        with conn:
            buffer = b""
            count = 0
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                received.append(head)
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.lower().split(b"\r\n")
                        if line.startswith(b"content-length:")
                    ),
                    0,
                )
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                buffer = buffer[length:]  # the body: not looked at
                answer = script(count)
                count += 1
                if answer is None:
                    return
                conn.sendall(answer)
                lowered = answer.lower()
                if b"content-length" not in lowered and b"chunked" not in lowered:
                    return  # the close ends the body

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", received
    finally:
        listener.close()


def _ok(body: bytes = b"{}") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


def test_chunked_interim_and_read_until_close_bodies() -> None:
    answers = [
        # An interim 100 before the real answer, whose body comes in chunks.
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        b"X-First: 1\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        # No length at all: the body runs until the upstream closes the connection.
        b"HTTP/1.1 203 Non-Authoritative Information\r\nConnection: close, X-Drop\r\n"
        b"X-Drop: 1\r\nX-Keep: 2\r\n\r\nbody ended by the close",
    ]

    async def run(url: str) -> list[UpstreamResponse]:
        pool = UpstreamPool(url, timeout=5)
        try:
            return [await pool.request("GET", "/a"), await pool.request("GET", "/b")]
        finally:
            await pool.aclose()

    with scripted_upstream(lambda n: answers[n]) as (url, received):
        first, second = asyncio.run(run(url))
    assert (first.status, first.body) == (200, b"hello world")
    assert dict(first.headers) == {"X-First": "1"}  # Transfer-Encoding is hop-by-hop
    assert (second.status, second.body) == (203, b"body ended by the close")
    assert dict(second.headers) == {"X-Keep": "2"}  # Connection and what it names: dropped
    assert len(received) == 2


def test_repeated_headers_are_sent_the_same_and_hop_by_hop_ones_never() -> None:
    headers = (
        ("Authorization", "Bearer t"),
        ("Connection", "keep-alive, X-Hop"),
        ("X-Hop", "1"),
        ("Proxy-Authorization", "Basic x"),
        ("Host", "client.example"),
        ("Content-Length", "999"),
        ("X-End", "é"),  # the server decoded it as latin-1: sent back as the same byte
    )

    async def run(url: str) -> None:
        pool = UpstreamPool(url + "/base", timeout=5)
        try:
            await pool.request("GET", "/pets", "a=1", headers)
            await pool.request("POST", "/pets", "", headers, b'{"x":1}')
            await pool.request("GET", "/base/pets", "", headers)
        finally:
            await pool.aclose()

    with scripted_upstream(lambda n: _ok()) as (url, received):
        asyncio.run(run(url))
    port = url.rsplit(":", 1)[1]
    first, posted, third = (head.split(b"\r\n") for head in received)
    assert first == [
        b"GET /base/pets?a=1 HTTP/1.1",
        b"host: 127.0.0.1:" + port.encode(),
        b"Authorization: Bearer t",
        b"X-End: \xe9",
    ]
    assert posted[0] == b"POST /base/pets HTTP/1.1"
    assert posted[1:] == [*first[1:], b"content-length: 7"]
    assert third == [b"GET /base/pets HTTP/1.1", *first[1:]]


def test_each_request_times_out_at_its_own_deadline() -> None:
    """One sweep timer serves the pool: a later, shorter timeout must still fire on time, and
    a finished exchange must not be failed when the sweep comes round."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}"

        async def timed(pool: UpstreamPool, timeout: float) -> tuple[BaseException, float]:
            start = time.monotonic()
            with pytest.raises(UpstreamTimeout) as caught:
                await pool.request("GET", "/", timeout=timeout)
            return caught.value, time.monotonic() - start

        async def run() -> list[tuple[BaseException, float]]:
            pool = UpstreamPool(silent_url, timeout=5)
            try:
                long = asyncio.ensure_future(timed(pool, 1.0))
                await asyncio.sleep(0.05)  # the long deadline is armed first
                short = await timed(pool, 0.2)
                return [short, await long]
            finally:
                await pool.aclose()

        (short_error, short_took), (long_error, long_took) = asyncio.run(run())
    assert 0.18 <= short_took < 0.8 and "0.2 s" in str(short_error)
    assert 0.9 <= long_took < 3 and "1 s" in str(long_error)

    async def answered(url: str) -> list[int]:
        pool = UpstreamPool(url, timeout=0.2)
        try:
            statuses = [(await pool.request("GET", "/")).status]
            await asyncio.sleep(0.35)  # past the first request's deadline: the sweep runs
            statuses.append((await pool.request("GET", "/")).status)
            assert pool.connections_opened == 1
            return statuses
        finally:
            await pool.aclose()

    with scripted_upstream(lambda n: _ok()) as (url, _):
        assert asyncio.run(answered(url)) == [200, 200]
