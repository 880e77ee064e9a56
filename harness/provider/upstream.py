"""A small pooled HTTP/1.1 client: how the fault proxy reaches the real provider.

Why not httpx (or aiohttp): the proxy sits in the path of every request the integration makes,
and its budget is a fraction of a millisecond per request on top of going direct. A general
client spends that on layers the proxy does not need (request/response models, decoding,
cookie jars, redirects, anyio). This one is an ``asyncio.Protocol`` feeding
``httptools.HttpResponseParser`` (the same llhttp the server uses), with only what forwarding
needs:

- a keep-alive connection pool per upstream, bounded (``max_connections``); when every
  connection is busy, requests wait for one in FIFO order, within their own timeout;
- Content-Length, chunked and read-until-close response bodies, 1xx interim responses skipped,
  HEAD answered without a body;
- one timeout per request covering the wait for a connection, the connect and the full response
  (``UpstreamTimeout``); refused, reset or broken connections are ``UpstreamUnavailable``.
  A request that fails on a *reused* connection before any byte of the answer arrived (the
  upstream closed an idle connection as we wrote to it) is retried once on a new connection,
  but only for idempotent methods - a POST might have been processed;
- hop-by-hop headers (RFC 9110 7.6.1: Connection and what it names, Keep-Alive, Proxy-*, TE,
  Trailer, Transfer-Encoding, Upgrade) dropped in both directions; Host, Content-Length and
  Expect are written by the client, not copied.

Two ways in. ``forward`` is callback-driven, for the proxy's hot path: with an idle connection
at hand the request is written before it returns, and ``on_done`` is called straight from the
connection's ``data_received`` - no task, no coroutine, no extra turns of the event loop, each
of which costs latency. ``request`` is the same as a coroutine, for everything else.

A pool belongs to the event loop that first uses it (the server's loop): call it only there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import urlsplit

import httptools

from harness.provider.messages import Headers

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_TIMEOUT_SECONDS",
    "HOP_BY_HOP",
    "Forwarding",
    "UpstreamError",
    "UpstreamPool",
    "UpstreamResponse",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "without_hop_by_hop",
]

DEFAULT_MAX_CONNECTIONS: Final = 64
DEFAULT_TIMEOUT_SECONDS: Final = 30.0
DEFAULT_MAX_BODY_SIZE: Final = 64 * 1024 * 1024

HOP_BY_HOP: Final = frozenset(
    {"connection", "keep-alive", "te", "trailer", "trailers", "transfer-encoding", "upgrade"}
)
"""Headers that describe one connection, not the message (plus every ``proxy-*`` header)."""

_HOP_BY_HOP_BYTES: Final = frozenset(name.encode() for name in HOP_BY_HOP)
# Request headers not copied upstream: hop-by-hop, and those the client writes itself.
_NOT_COPIED: Final = HOP_BY_HOP | {"host", "content-length", "expect"}
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


class UpstreamError(Exception):
    """The upstream gave no usable answer."""


class UpstreamUnavailable(UpstreamError):
    """Refused, reset or closed connection, or a malformed response: a proxy answers 502."""

    def __init__(self, message: str, *, answered: bool = False) -> None:
        super().__init__(message)
        self.answered = answered
        """Whether any byte of a response arrived (a retry is only safe if none did)."""


class UpstreamTimeout(UpstreamError):
    """No complete answer within the request's timeout: a proxy answers 504."""


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """The upstream's final answer: status, headers as sent minus hop-by-hop ones, whole body."""

    status: int
    headers: Headers
    body: bytes


Result = UpstreamResponse | UpstreamError
OnDone = Callable[[Result], None]


# Response header names as sent -> (lower-cased, decoded as sent, hop-by-hop?). Upstreams repeat
# the same few names: decoding and classifying each once saves work on every response.
_NAMES: dict[bytes, tuple[bytes, str, bool]] = {}
_NAMES_LIMIT: Final = 512


def _name_info(name: bytes) -> tuple[bytes, str, bool]:
    info = _NAMES.get(name)
    if info is None:
        lname = name.lower()
        info = (
            lname,
            name.decode("latin-1"),
            lname in _HOP_BY_HOP_BYTES or lname.startswith(b"proxy-"),
        )
        if len(_NAMES) < _NAMES_LIMIT:
            _NAMES[name] = info
    return info


def _is_hop_by_hop(lname: str) -> bool:
    return lname in HOP_BY_HOP or lname.startswith("proxy-")


def without_hop_by_hop(headers: Headers) -> Headers:
    """``headers`` minus the hop-by-hop ones (and those ``Connection`` names), order kept."""
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return tuple(
        (name, value)
        for name, value in headers
        if not _is_hop_by_hop(lname := name.lower()) and lname not in named
    )


def _encode(text: str) -> bytes:
    """Header text as bytes: latin-1 as HTTP/1.1 historically defines it, else UTF-8."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _header_lines(headers: Headers) -> bytes:
    """The client's headers as the upstream gets them: hop-by-hop ones (and what Connection
    names), Host, Content-Length and Expect dropped; encoded, one line each."""
    lines: list[tuple[str, bytes]] = []
    named: list[str] = []
    for name, value in headers:
        lname = name.lower()
        if lname in _NOT_COPIED or lname.startswith("proxy-"):
            if lname == "connection":
                named.extend(t.strip().lower() for t in value.split(","))
            continue
        lines.append((lname, _encode(name) + b": " + _encode(value) + b"\r\n"))
    return b"".join(line for lname, line in lines if lname not in named)


# Encoded header blocks per pool, by the client's header tuple: an integration sends the same
# headers (token, user agent, accept) again and again, only the path and the body change.
_BLOCKS_LIMIT: Final = 256


class _HeadDone(Exception):
    """Raised from the parser callback: a HEAD response ends with its headers."""


class _Connection(asyncio.Protocol):
    """One upstream connection: one request at a time, its outcome handed to a callback."""

    def __init__(self, pool: UpstreamPool, loop: asyncio.AbstractEventLoop) -> None:
        self._pool = pool
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.uses = 0
        self.closed = False
        self.keep_alive = True
        self._on_done: OnDone | None = None
        self.deadline = 0.0  # loop time by which the exchange in flight must be answered
        self.limit = 0.0  # that request's timeout, for the error message
        self._head_only = False
        self._received = 0
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._headers_done = False

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence a cast, not isinstance.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._on_done is None:
            # Bytes nobody asked for: the connection is out of step, never reuse it.
            self.close()
            return
        self._received += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            if isinstance(cause, _HeadDone):
                self._parser = httptools.HttpResponseParser(self)
                self._finish()
            elif isinstance(cause, UpstreamError):
                self._fail(cause)
            else:
                self._fail(
                    UpstreamUnavailable(f"bad response from upstream: {error}", answered=True)
                )
        except httptools.HttpParserError as error:
            self._fail(UpstreamUnavailable(f"bad response from upstream: {error}", answered=True))

    def eof_received(self) -> bool | None:
        return None  # close; connection_lost finishes a read-until-close body or fails

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._on_done is not None:
            answered = self._received > 0
            if self._headers_done and not self._framed():
                self.keep_alive = False
                self._finish()  # the body was delimited by the close
            elif isinstance(exc, ConnectionResetError):
                self._fail(UpstreamUnavailable("upstream reset the connection", answered=answered))
            else:
                what = "in the middle of the answer" if answered else "without answering"
                self._fail(
                    UpstreamUnavailable(f"upstream closed the connection {what}", answered=answered)
                )
        self._pool._connection_lost(self)

    # parser callbacks

    def on_message_begin(self) -> None:
        self._headers = []
        self._body = []
        self._body_size = 0
        self._headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        self._status = status = parser.get_status_code()
        if status < 200:
            return  # an interim response (100, 103): the final one follows
        self._headers_done = True
        self.keep_alive = parser.should_keep_alive()
        if self._head_only:
            raise _HeadDone

    def _framed(self) -> bool:
        """Whether the response's length is known (else the close ends its body). Only asked
        when the connection is lost mid-answer, so not worked out for every response."""
        if self._status in (204, 304):
            return True
        for name, value in self._headers:
            lname = _name_info(name)[0]
            if lname == b"content-length" or (
                lname == b"transfer-encoding" and b"chunked" in value.lower()
            ):
                return True
        return False

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._pool.max_body_size:
            raise UpstreamUnavailable("upstream response body too large", answered=True)
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._status >= 200:
            self._finish()

    # the exchange

    def send(
        self, data: bytes, head_only: bool, deadline: float, limit: float, on_done: OnDone
    ) -> None:
        """Write one request; ``on_done`` gets the final response or the failure, once.

        ``deadline`` (loop time) ends the request's timeout ``limit`` (named in the error); the
        pool's sweep enforces it (no timer per request: arming and cancelling one costs more
        than the rest of the bookkeeping of a forward).
        """
        self._on_done = on_done
        self._head_only = head_only
        self._received = 0
        self._headers_done = False
        self.uses += 1
        self.deadline = deadline
        self.limit = limit
        self._pool._watch(deadline)
        assert self.transport is not None
        self.transport.write(data)

    def _finish(self) -> None:
        on_done = self._on_done
        self._on_done = None
        if on_done is None:
            return
        # One pass: drop hop-by-hop headers (noting what Connection names), decode the rest.
        kept: list[tuple[str, str]] = []
        named: list[bytes] | None = None
        for name, value in self._headers:
            lname, text, hop = _name_info(name)
            if hop:
                if lname == b"connection":
                    named = named or []
                    named.extend(t.strip().lower() for t in value.split(b","))
                continue
            kept.append((text, value.decode("latin-1")))
        headers = tuple(kept)
        if named:  # rare: a Connection header naming end-to-end headers to drop as well
            dropped = {n.decode("latin-1") for n in named}
            headers = tuple(h for h in headers if h[0].lower() not in dropped)
        if not self.keep_alive:
            self.close()
        body = self._body
        self._body = []
        on_done(
            UpstreamResponse(self._status, headers, body[0] if len(body) == 1 else b"".join(body))
        )

    def _fail(self, error: UpstreamError) -> None:
        on_done = self._on_done
        self._on_done = None
        self.abort()
        if on_done is not None:
            on_done(error)

    def _timed_out(self) -> None:
        self._fail(UpstreamTimeout(f"upstream did not answer within {self.limit:g} s"))

    @property
    def busy(self) -> bool:
        return self._on_done is not None

    def close(self) -> None:
        """Close politely (FIN); the pool slot is freed in ``connection_lost``."""
        self.keep_alive = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection at once: its state is unknown (timeout, error, cancellation)."""
        self.keep_alive = False
        if self.transport is not None:
            self.transport.abort()


class Forwarding:
    """One request on its way upstream (``UpstreamPool.forward``): cancel it, or let it finish."""

    __slots__ = (
        "_connection",
        "_data",
        "_deadline",
        "_done",
        "_head_only",
        "_limit",
        "_method",
        "_on_done",
        "_pool",
        "_retried",
        "_reused",
        "_task",
    )

    def __init__(
        self,
        pool: UpstreamPool,
        method: str,
        data: bytes,
        deadline: float,
        limit: float,
        on_done: OnDone,
    ) -> None:
        self._pool = pool
        self._method = method
        self._data = data
        self._head_only = method == "HEAD"
        self._deadline = deadline
        self._limit = limit
        self._on_done = on_done
        self._connection: _Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._reused = False
        self._retried = False
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def cancel(self) -> None:
        """Give up: ``on_done`` will not be called; an exchange in flight loses its connection."""
        if self._done:
            return
        self._done = True
        if self._task is not None:
            self._task.cancel()
        if self._connection is not None:
            self._connection.abort()  # mid-exchange: its state is unknown

    def _start(self) -> None:
        """Send on an idle connection now, else in a task that connects or waits for one."""
        if self._pool.closing:
            self._finish(UpstreamUnavailable("the proxy is shutting down"))
            return
        connection = self._pool._take_idle()
        if connection is not None:
            self._send(connection)
        else:
            self._task = asyncio.ensure_future(self._acquire_and_send())
            self._pool._acquiring.add(self)

    async def _acquire_and_send(self) -> None:
        pool = self._pool
        try:
            connection = await pool._acquire(self._deadline, self._limit)
        except UpstreamError as error:
            self._finish(error)
            return
        finally:
            self._task = None
            pool._acquiring.discard(self)
        if self._done:  # cancelled while we connected
            pool._release(connection)
            return
        self._send(connection)

    def _abandon(self, error: UpstreamError) -> None:
        """Stop waiting for a connection and finish with ``error`` (the pool is closing)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._finish(error)

    def _send(self, connection: _Connection) -> None:
        if self._deadline <= self._pool._loop_time():
            self._pool._release(connection)
            self._finish(UpstreamTimeout(f"upstream did not answer within {self._limit:g} s"))
            return
        self._connection = connection
        self._reused = connection.uses > 0
        connection.send(self._data, self._head_only, self._deadline, self._limit, self._answered)

    def _answered(self, result: Result) -> None:
        """The connection's callback: release it, retry once if it was stale, else finish."""
        connection = self._connection
        self._connection = None
        if connection is not None:
            self._pool._release(connection)
        if (
            isinstance(result, UpstreamUnavailable)
            and self._reused
            and not result.answered
            and not self._retried
            and not self._done
            and not self._pool.closing
            and self._method in _IDEMPOTENT
        ):
            self._retried = True  # a stale keep-alive connection: once more, on a new one
            self._start()
            return
        self._finish(result)

    def _finish(self, result: Result) -> None:
        if not self._done:
            self._done = True
            self._on_done(result)


class UpstreamPool:
    """Keep-alive connections to one upstream base URL, at most ``max_connections`` open.

    ``url`` is ``http://`` or ``https://`` host, optional port and optional base path; the base
    path is put in front of request paths that do not already start with it. ``timeout``
    bounds each request end to end. ``ssl_context`` is used for https (default: the system's
    verifying context).
    """

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http:// or https:// URL, not {url!r}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"upstream URL has an invalid port: {url!r}") from None
        if parts.query or parts.fragment:
            raise ValueError(f"upstream URL must not have a query or fragment: {url!r}")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.url = url
        self.host: str = parts.hostname
        self.secure = parts.scheme == "https"
        default_port = 443 if self.secure else 80
        self.port: int = port if port is not None else default_port
        self.base_path = parts.path.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if self.port == default_port else f"{host}:{self.port}"
        self._host_line = b"host: " + _encode(self.host_header) + b"\r\n"
        self.max_connections = max_connections
        self.timeout = timeout
        self.max_body_size = max_body_size
        self._ssl: ssl.SSLContext | None = None
        if self.secure:
            self._ssl = ssl_context or ssl.create_default_context()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[_Connection] = []
        self._open = 0  # open or opening connections, each holding a slot
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._all: set[_Connection] = set()
        self.connections_opened = 0
        """How many connections this pool has opened so far (keep-alive evidence)."""
        self.closing = False
        self._drained: asyncio.Event | None = None
        self._acquiring: set[Forwarding] = set()  # waiting for a connection, or connecting
        self._sweep: asyncio.TimerHandle | None = None
        self._sweep_at = 0.0
        self._blocks: dict[Headers, bytes] = {}

    def target(self, path: str, query: str = "") -> str:
        """The request target upstream: base path + ``path`` (unless already there) + query."""
        base = self.base_path
        if base and not (path == base or path.startswith(base + "/")):
            path = base + path
        return f"{path}?{query}" if query else path

    def forward(
        self,
        method: str,
        path: str,
        query: str,
        headers: Headers,
        body: bytes,
        on_done: OnDone,
        *,
        timeout: float | None = None,
    ) -> Forwarding:
        """Send one request; ``on_done`` gets the response or an ``UpstreamError``, once.

        Call it on the pool's loop. ``on_done`` is never called before this returns: with an
        idle connection the request is already written, and the answer arrives in a later
        ``data_received``. ``headers`` are the client's as received: hop-by-hop ones, Host,
        Content-Length and Expect are dropped, Host and Content-Length written for this
        upstream. ``UpstreamTimeout`` when no complete answer arrives within ``timeout``
        (default: the pool's) from now, ``UpstreamUnavailable`` when the upstream cannot be
        reached or breaks the connection.
        """
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        limit = self.timeout if timeout is None else timeout
        data = self._encode_request(method, self.target(path, query), headers, body)
        forwarding = Forwarding(self, method, data, loop.time() + limit, limit, on_done)
        forwarding._start()
        return forwarding

    async def request(
        self,
        method: str,
        path: str,
        query: str = "",
        headers: Headers = (),
        body: bytes = b"",
        *,
        timeout: float | None = None,
    ) -> UpstreamResponse:
        """``forward`` as a coroutine: the response, or the ``UpstreamError`` raised."""
        answer: asyncio.Future[Result] = asyncio.get_running_loop().create_future()

        def done(result: Result) -> None:
            if not answer.done():
                answer.set_result(result)

        forwarding = self.forward(method, path, query, headers, body, done, timeout=timeout)
        try:
            result = await answer
        except asyncio.CancelledError:
            forwarding.cancel()
            raise
        if isinstance(result, UpstreamError):
            raise result
        return result

    def _encode_request(self, method: str, target: str, headers: Headers, body: bytes) -> bytes:
        block = self._blocks.get(headers)
        if block is None:
            block = _header_lines(headers)
            if len(self._blocks) >= _BLOCKS_LIMIT:
                self._blocks.clear()
            self._blocks[headers] = block
        length = b"content-length: %d\r\n" % len(body) if body or method in _BODY_METHODS else b""
        return b"".join(
            (
                b"%s %s HTTP/1.1\r\n" % (_encode(method), _encode(target)),
                self._host_line,
                block,
                length,
                b"\r\n",
                body,
            )
        )

    # --- timeouts of exchanges in flight: one timer for the pool ---------------------------

    def _watch(self, deadline: float) -> None:
        """Make sure the sweep runs by ``deadline``. With one timeout for every request (the
        usual case) each new deadline is later than the pending sweep's: nothing to arm."""
        sweep = self._sweep
        if sweep is not None and self._sweep_at <= deadline:
            return
        if sweep is not None:
            sweep.cancel()
        assert self._loop is not None
        self._sweep_at = deadline
        self._sweep = self._loop.call_at(deadline, self._sweep_expired)

    def _sweep_expired(self) -> None:
        """Fail every exchange past its deadline; run again at the earliest one left."""
        self._sweep = None
        now = self._loop_time()
        pending: list[float] = []
        for connection in list(self._all):
            if not connection.busy:
                continue
            if connection.deadline <= now:
                connection._timed_out()
            else:
                pending.append(connection.deadline)
        if pending and not self.closing:
            self._watch(min(pending))

    # --- the pool ----------------------------------------------------------------------------

    def _loop_time(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _take_idle(self) -> _Connection | None:
        idle = self._idle
        while idle:
            connection = idle.pop()  # most recently used first: least likely to be stale
            if not connection.closed and connection.keep_alive:
                return connection
        return None

    async def _acquire(self, deadline: float, limit: float) -> _Connection:
        """A new connection if a slot is free, else wait for a released one (or a slot)."""
        loop = asyncio.get_running_loop()
        if self._open < self.max_connections:
            self._open += 1
            return await self._connect(loop, deadline, limit)
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_at(deadline, self._expire, waiter, limit)
        try:
            handed = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                given = waiter.result()  # handed over just as we were cancelled: pass it on
                if given is None:
                    self._slot_freed()
                else:
                    self._release(given)
            raise
        finally:
            timer.cancel()
        if handed is None:  # a slot was passed to us, not a connection
            return await self._connect(loop, deadline, limit)
        return handed

    @staticmethod
    def _expire(waiter: asyncio.Future[_Connection | None], limit: float) -> None:
        if not waiter.done():
            waiter.set_exception(UpstreamTimeout(f"no upstream connection free within {limit:g} s"))

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, deadline: float, limit: float
    ) -> _Connection:
        """Open a connection in a slot already reserved for it (freed again on failure)."""
        try:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self, loop),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                ),
                remaining,
            )
        except TimeoutError:
            self._slot_freed()
            raise UpstreamTimeout(
                f"cannot connect to {self.host}:{self.port} within {limit:g} s"
            ) from None
        except OSError as error:
            self._slot_freed()
            if isinstance(error, ConnectionRefusedError):
                reason = "connection refused"
            else:
                reason = os.strerror(error.errno) if error.errno else str(error) or repr(error)
            raise UpstreamUnavailable(
                f"cannot connect to {self.host}:{self.port}: {reason}"
            ) from None
        except BaseException:
            self._slot_freed()
            raise
        self.connections_opened += 1
        self._all.add(connection)
        return connection

    def _release(self, connection: _Connection) -> None:
        """After an exchange: hand the connection to a waiter, keep it idle, or close it."""
        if connection.busy:
            connection.abort()
            return  # its slot is freed in connection_lost
        if connection.closed or not connection.keep_alive:
            connection.close()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def _connection_lost(self, connection: _Connection) -> None:
        if connection not in self._all:
            return
        self._all.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)
        self._slot_freed()
        if self._drained is not None and not self._all:
            self._drained.set()

    def _slot_freed(self) -> None:
        """A connection slot is free: pass it to the first waiter, else count it free."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._open -= 1

    @property
    def open_connections(self) -> int:
        """Connections open (or opening) right now."""
        return self._open

    async def aclose(self, timeout: float = 1.0) -> None:
        """Drop every connection (on the pool's loop); requests in flight fail, none starts.

        Returns once every connection is gone (their ``connection_lost`` ran, so callbacks of
        requests in flight have been called), or after ``timeout``.
        """
        self.closing = True
        self._idle.clear()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for forwarding in list(self._acquiring):
            forwarding._abandon(UpstreamUnavailable("the proxy is shutting down"))
        self._acquiring.clear()
        if not self._all:
            return
        self._drained = asyncio.Event()
        for connection in list(self._all):
            connection.abort()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), timeout)
