"""A lean HTTP/1.1 server that carries out the engine's actions with real TCP behaviour.

Why not a framework: the provider engine is the *target* of load tests, so it has to be faster
than the clients it measures (uvicorn + starlette tops out near our goal), and it has to misbehave
on command below the HTTP layer - a real RST, a response cut short under a full Content-Length, a
connection that never answers. Frameworks hide the transport that those faults need. So this is an
``asyncio.Protocol`` feeding ``httptools`` (llhttp), with one decision function per request:

- ``Handler`` turns a parsed ``Request`` into an ``Action`` (``Respond``, ``Reset`` or ``Hang``).
  A plain (synchronous) return is carried out inline, without a task or coroutine: most decisions
  are synchronous and this is the hot path. An awaitable return is awaited in a task.
- ``Completion`` is told, once per request the handler decided, what really reached the client
  (``Outcome``), after the action was carried out: response written to the socket, connection
  reset, closed by the client, or ended by ``stop()``. The traffic log hangs off this.

- ``before_send`` (optional) is called once per turn of the event loop, before the whole
  responses decided in that turn are sent: the traffic log writes their records there, with one
  ``write(2)``, so a client never has an answer whose record is not yet written.

Faults behave identically on a new connection and on an already-open keep-alive connection.
Pipelined requests are answered strictly in order; a slow or delayed response delays the ones
behind it on the same connection (as HTTP/1.1 requires), never those on other connections.

``ServerThread`` runs a server in a background thread with its own loop (uvloop when installed)
for the harness's synchronous Python API and for tests.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import email.utils
import inspect
import itertools
import logging
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final, TypeVar, cast

import httptools

from harness.provider.messages import Action, Hang, Headers, Outcome, Request, Reset, Respond

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_HEADER_SIZE",
    "Completion",
    "Handler",
    "HttpServer",
    "ServerThread",
]

logger = logging.getLogger(__name__)

Handler = Callable[[Request], Action | Awaitable[Action]]
Completion = Callable[[Request, Action, Outcome], None]

T = TypeVar("T")

DEFAULT_MAX_BODY_SIZE: Final = 10 * 1024 * 1024
DEFAULT_MAX_HEADER_SIZE: Final = 64 * 1024
# Requests parsed ahead of the one being answered; beyond this we stop reading the socket.
_MAX_PIPELINE: Final = 64
# Bodies up to this size are joined with the head into one write (one syscall, small copy).
_JOIN_LIMIT: Final = 64 * 1024
_HEADER_CACHE_LIMIT: Final = 512
_LINGER_RESET: Final = struct.pack("ii", 1, 0)
# After a response that ends the connection politely, how long we wait for the client to close.
_LINGER_SECONDS: Final = 2.0

_NOTE_RESET: Final = "reset"
_NOTE_TRUNCATED: Final = "truncated"
_NOTE_CLOSED_AFTER_HEADERS: Final = "closed after headers"
_NOTE_CLIENT_CLOSED: Final = "client closed the connection"
_NOTE_STOPPED: Final = "server stopped"
_NOTE_HANDLER_ERROR: Final = "handler error"


# --- precomputed response pieces ------------------------------------------------------------

_STATUS_LINES: dict[int, bytes] = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode("ascii")) for s in HTTPStatus
}


def _status_line(status: int) -> bytes:
    """The status line for ``status``; unknown codes get an empty reason phrase (still valid)."""
    line = _STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d \r\n" % status
        if len(_STATUS_LINES) < 2048:
            _STATUS_LINES[status] = line
    return line


def _encode(text: str) -> bytes:
    """Header text as bytes: latin-1 as HTTP/1.1 historically defines it, UTF-8 if it will not fit."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


class _HeaderBlock:
    """An action's headers, encoded once, plus which automatic headers they override.

    Cached by the headers tuple itself: engines tend to reuse the same tuple for a canned
    response, and hashing a tuple of strings is cheap (strings cache their hash).
    """

    __slots__ = ("close", "data", "has_connection", "has_date", "has_server", "sets_length")

    def __init__(self, headers: Headers) -> None:
        parts: list[bytes] = []
        names: set[str] = set()
        close = False
        for name, value in headers:
            lname = name.lower()
            names.add(lname)
            if lname == "connection" and "close" in value.lower():
                close = True
            parts.append(_encode(name) + b": " + _encode(value) + b"\r\n")
        self.data: bytes = b"".join(parts)
        # An explicit Content-Length (possibly deliberately wrong) or Transfer-Encoding is the
        # action's business: we send the body as given and add no length of our own.
        self.sets_length: bool = "content-length" in names or "transfer-encoding" in names
        self.has_date: bool = "date" in names
        self.has_server: bool = "server" in names
        self.has_connection: bool = "connection" in names
        self.close: bool = close


_EMPTY_BLOCK: Final = _HeaderBlock(())
_HEADER_BLOCKS: dict[Headers, _HeaderBlock] = {}


def _header_block(headers: Headers) -> _HeaderBlock:
    if not headers:
        return _EMPTY_BLOCK
    block = _HEADER_BLOCKS.get(headers)
    if block is None:
        block = _HeaderBlock(headers)
        if len(_HEADER_BLOCKS) >= _HEADER_CACHE_LIMIT:
            _HEADER_BLOCKS.clear()
        _HEADER_BLOCKS[headers] = block
    return block


def _problem(status: int, detail: str) -> Respond:
    """A short RFC 9457 problem+json response for errors the server itself answers."""
    title = HTTPStatus(status).phrase
    body = b'{"type":"about:blank","title":"%s","status":%d,"detail":"%s"}' % (
        title.encode("ascii"),
        status,
        detail.replace('"', "'").encode("ascii", "replace"),
    )
    return Respond(status, (("Content-Type", "application/problem+json"),), body)


_CONNECTION_CLOSE: Final = b"Connection: close\r\n"
_CONNECTION_KEEP_ALIVE: Final = b"Connection: keep-alive\r\n"
# Request header names as sent -> lower-cased str; clients repeat the same few names.
_HEADER_NAMES: dict[bytes, str] = {}
_WATCHED_HEADERS: Final = frozenset({"content-length", "expect"})
_NO_BODY_STATUSES: Final = frozenset({204, 304})
_ACTION_TYPES: Final = (Respond, Reset, Hang)


class _ProtocolError(Exception):
    """Raised from a parser callback to stop parsing; the status to answer is on the connection."""


# --- one request being carried out -----------------------------------------------------------


class _EndOfInput:
    """Queued after the last request we will parse: answer ``error`` (if any), then close."""

    __slots__ = ("error",)

    def __init__(self, error: Respond | None) -> None:
        self.error = error


class _Exchange:
    """One parsed request, from the queue through the handler to the Outcome."""

    __slots__ = (
        "abrupt",
        "action",
        "body",
        "bytes_sent",
        "close_at_end",
        "connection_header",
        "done",
        "draining",
        "head_only",
        "keep_alive",
        "note",
        "offset",
        "request",
        "status_sent",
        "task",
        "timer",
        "unsent",
    )

    def __init__(
        self, request: Request, keep_alive: bool, head_only: bool, connection_header: bytes
    ) -> None:
        self.request = request
        self.keep_alive = keep_alive
        self.head_only = head_only
        self.connection_header = connection_header
        self.action: Action | None = None
        self.status_sent: int | None = None
        self.bytes_sent = 0
        self.note = ""
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Future[Action] | None = None
        self.body = b""
        self.offset = 0
        self.close_at_end = False
        self.abrupt = False
        self.draining = False
        self.unsent = 0  # last known bytes still in the transport's buffer while draining
        self.done = False


# --- the protocol ---------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One client connection: parses requests, answers them in order, carries out faults."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._loop = server._loop_or_raise()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._id = next(server._ids)
        self._client = ""
        self._queue: deque[_Exchange | _EndOfInput] = deque()
        self._current: _Exchange | None = None
        self._advancing = False
        self._closed = False  # no more responses will be written
        self._input_done = False  # no more requests will be parsed
        self._peer_eof = False
        self._stopping = False
        self._writing_paused = False
        self._reading_paused = False
        self._error: Respond | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._max_body_size = server.max_body_size
        self._max_header_size = server.max_header_size
        # Per-message parse state (reset in on_message_begin).
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._expect_continue = False
        self._keep_alive = True
        self._connection_header = b""
        self._method = ""
        self._started_monotonic = 0.0
        self._started_wall = 0.0

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence a cast, not isinstance.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        # High-water mark 0: pause_writing fires as soon as anything is left unsent in user space
        # and resume_writing once all of it reached the kernel. That tells us when a response is
        # really written (for the Outcome), and stops reading new requests while a slow client
        # has not taken the previous answer - so a slow reader costs one response of memory.
        transport.set_write_buffer_limits(high=0)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._client = f"{peer[0]}:{peer[1]}"
        self._server._connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._input_done:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # We do not speak any upgraded protocol: answer the request as plain HTTP and close.
            last = self._queue[-1] if self._queue else None
            if isinstance(last, _Exchange):
                last.keep_alive = False
                last.connection_header = _CONNECTION_CLOSE
            self._end_input(None)
        except httptools.HttpParserError as exc:
            error = self._error or _problem(400, "malformed HTTP request")
            logger.debug("connection %d: %s: %s", self._id, error.status, exc)
            self._end_input(error)
        if self._current is None and self._queue:
            self._advance()
        else:
            self._update_reading()

    def eof_received(self) -> bool | None:
        # The client closed its side: for HTTP that means it gave up on whatever is in flight.
        self._peer_eof = True
        current = self._current
        if current is not None and current.draining and self._transport is not None:
            current.unsent = self._transport.get_write_buffer_size()
        return None  # let the transport close itself -> connection_lost

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self._closed = True
        self._input_done = True
        self._server._connections.discard(self)
        self._queue.clear()
        current = self._current
        if current is None or current.done:
            return
        if current.timer is not None:
            current.timer.cancel()
            current.timer = None
        if current.task is not None and not current.task.done():
            # The handler is still deciding; it reports (as abandoned) when it returns.
            return
        if current.draining and exc is None and not self._peer_eof:
            # We closed after the response and the transport flushed it: a normal end.
            self._complete(current)
            return
        if current.draining:
            current.bytes_sent -= current.unsent
        aborted = not self._stopping
        self._complete(
            current,
            client_aborted=aborted,
            note=_NOTE_STOPPED if self._stopping else _NOTE_CLIENT_CLOSED,
        )

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        current = self._current
        if current is not None and current.draining and not current.done:
            current.draining = False
            if current.timer is not None:
                current.timer.cancel()
                current.timer = None
            self._after_written(current)
        self._update_reading()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._header_bytes = 0
        self._body = []
        self._body_size = 0
        self._expect_continue = False
        self._started_monotonic = time.monotonic()
        self._started_wall = time.time()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._header_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = _HEADER_NAMES.get(name)
        if lname is None:
            lname = name.decode("latin-1").lower()
            if len(_HEADER_NAMES) < _HEADER_CACHE_LIMIT:
                _HEADER_NAMES[name] = lname
        self._headers.append((lname, value.decode("latin-1")))
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self._max_header_size:
            self._error = _problem(431, "request headers too large")
            raise _ProtocolError
        if lname not in _WATCHED_HEADERS:
            return
        if lname == "content-length":
            try:
                declared = int(value)
            except ValueError:
                return  # llhttp rejects it itself
            if declared > self._max_body_size:
                self._error = _problem(413, "request body too large")
                raise _ProtocolError
        elif lname == "expect" and value.lower() == b"100-continue":
            self._expect_continue = True

    def on_headers_complete(self) -> None:
        parser = self._parser
        self._method = parser.get_method().decode("latin-1")
        keep_alive = parser.should_keep_alive()
        self._keep_alive = keep_alive
        if not keep_alive:
            self._connection_header = _CONNECTION_CLOSE
        elif parser.get_http_version() == "1.0":
            self._connection_header = _CONNECTION_KEEP_ALIVE
        else:
            self._connection_header = b""
        if (
            self._expect_continue
            and self._current is None
            and not self._queue
            and self._transport is not None
        ):
            # Only when nothing is ahead of it, so the interim response cannot interleave.
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._max_body_size:
            self._error = _problem(413, "request body too large")
            raise _ProtocolError
        self._body.append(body)

    def on_message_complete(self) -> None:
        url = self._url
        mark = url.find(b"?")
        if mark < 0:
            path, query = url.decode("latin-1"), ""
        else:
            path, query = url[:mark].decode("latin-1"), url[mark + 1 :].decode("latin-1")
        body = self._body
        request = Request(
            self._method,
            path,
            query,
            tuple(self._headers),
            body[0] if len(body) == 1 else b"".join(body),
            self._client,
            self._id,
            self._started_monotonic,
            self._started_wall,
        )
        self._queue.append(
            _Exchange(request, self._keep_alive, self._method == "HEAD", self._connection_header)
        )

    # request processing

    def _end_input(self, error: Respond | None) -> None:
        """Stop parsing; answer what was parsed, then ``error`` (if any), then close."""
        self._input_done = True
        self._queue.append(_EndOfInput(error))

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or self._closed:
            return
        want_pause = self._writing_paused or len(self._queue) >= _MAX_PIPELINE
        if want_pause != self._reading_paused and not transport.is_closing():
            self._reading_paused = want_pause
            if want_pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _advance(self) -> None:
        """Start queued requests in order until one has to wait (delay, hang, async, drain)."""
        if self._advancing:
            return  # the loop below picks up where the finished exchange left off
        self._advancing = True
        try:
            while self._current is None and self._queue and not self._closed:
                self._start(self._queue.popleft())
        finally:
            self._advancing = False
        self._update_reading()

    def _start(self, exchange: _Exchange | _EndOfInput) -> None:
        if isinstance(exchange, _EndOfInput):
            # After a protocol error, or an upgrade request we will not honour.
            self._closed = True
            transport = self._transport
            if transport is not None:
                error = exchange.error
                if error is not None:
                    block = _header_block(error.headers)
                    head = self._head(error, block, _CONNECTION_CLOSE)
                    transport.write(head + error.body)
                self._close_politely(transport)
            return
        request = exchange.request
        self._current = exchange
        try:
            result = self._server._handler(request)
        except Exception:
            logger.exception("handler raised for %s %s", request.method, request.path)
            self._carry_out(exchange, self._handler_error(exchange))
            return
        if isinstance(result, _ACTION_TYPES):
            self._carry_out(exchange, result)
        elif inspect.isawaitable(result):
            task = asyncio.ensure_future(result, loop=self._loop)
            exchange.task = task
            self._server._tasks.add(task)
            task.add_done_callback(lambda t: self._handler_done(exchange, t))
        else:
            logger.error("handler returned %r, not an action", result)
            self._carry_out(exchange, self._handler_error(exchange))

    def _handler_error(self, exchange: _Exchange) -> Respond:
        """The 500 answered in place of a failed decision; the note tells the traffic log why."""
        exchange.note = _NOTE_HANDLER_ERROR
        return _problem(500, "the provider engine failed on this request")

    def _handler_done(self, exchange: _Exchange, task: asyncio.Future[Action]) -> None:
        self._server._tasks.discard(task)
        if task.cancelled():
            return  # only stop() cancels handlers; nothing was decided, nothing to report
        error = task.exception()
        if error is not None:
            logger.error(
                "handler raised for %s %s",
                exchange.request.method,
                exchange.request.path,
                exc_info=error,
            )
            action: Action = self._handler_error(exchange)
        else:
            result = task.result()
            if isinstance(result, _ACTION_TYPES):
                action = result
            else:
                logger.error("handler returned %r, not an action", result)
                action = self._handler_error(exchange)
        if self._closed:
            exchange.action = action
            aborted = not self._stopping
            note = _NOTE_STOPPED if self._stopping else _NOTE_CLIENT_CLOSED
            self._complete(exchange, client_aborted=aborted, note=note)
            return
        self._carry_out(exchange, action)

    def _carry_out(self, exchange: _Exchange, action: Action) -> None:
        exchange.action = action
        if isinstance(action, Respond):
            if action.delay_seconds > 0:
                exchange.timer = self._loop.call_later(
                    action.delay_seconds, self._respond, exchange
                )
            else:
                self._respond(exchange)
        elif isinstance(action, Reset):
            if action.delay_seconds > 0:
                exchange.timer = self._loop.call_later(action.delay_seconds, self._reset, exchange)
            else:
                self._reset(exchange)
        # Hang: nothing to do. We keep reading, to notice the client leaving, and never answer.

    def _head(self, action: Respond, block: _HeaderBlock, connection: bytes) -> bytes:
        """Status line and headers, adding Server, Date, Content-Length and Connection as needed.

        A truncated or cut-off response does not announce ``Connection: close``: a server that
        dies mid-response would not have either."""
        status = action.status
        auto = self._server._auto_headers(not block.has_server, not block.has_date)
        if block.sets_length or status in _NO_BODY_STATUSES or status < 200:
            length = b""
        else:
            length = b"Content-Length: %d\r\n" % len(action.body)
        if block.has_connection:
            connection = b""
        return b"".join((_status_line(status), auto, length, connection, block.data, b"\r\n"))

    def _respond(self, exchange: _Exchange) -> None:
        exchange.timer = None
        transport = self._transport
        if transport is None or self._closed:
            return
        action = exchange.action
        assert isinstance(action, Respond)
        try:
            head, body = self._prepare(exchange, action)
        except Exception:
            # A malformed action (say, a str body) is an engine bug: answer 500, keep serving.
            logger.exception("cannot send %r", action)
            exchange.abrupt = False
            action = self._handler_error(exchange)
            exchange.action = action
            head, body = self._prepare(exchange, action)
        if action.chunk_delay_seconds > 0 and len(body) > max(action.chunk_size, 1):
            # Slow body: headers and the first piece now, the rest one piece per pause.
            exchange.body = body
            exchange.offset = 0
            transport.write(head)
            exchange.bytes_sent = len(head)
            self._send_piece(exchange)
            return
        if self._server._before_send is None:
            self._send(exchange, head, body)
        else:
            self._server._send_this_turn(self, exchange, head, body)

    def _send(self, exchange: _Exchange, head: bytes, body: bytes) -> None:
        """Hand a whole response to the transport, then end the exchange."""
        transport = self._transport
        if transport is None or self._closed:
            return  # gone meanwhile: connection_lost or shutdown() reports the exchange
        if len(body) <= _JOIN_LIMIT:
            transport.write(head + body if body else head)
        else:
            transport.write(head)
            transport.write(body)
        exchange.bytes_sent = len(head) + len(body)
        self._end_response(exchange)

    def _prepare(self, exchange: _Exchange, action: Respond) -> tuple[bytes, bytes]:
        """The head and the body bytes to send, and how the connection ends afterwards."""
        block = _header_block(action.headers)
        head = self._head(action, block, exchange.connection_header)
        status = action.status
        body = action.body
        if type(body) is not bytes:
            body = bytes(body)  # bytearray or memoryview; a str raises (-> 500)
        if exchange.head_only or status in _NO_BODY_STATUSES or status < 200:
            body = b""
        close = not exchange.keep_alive or block.close
        if action.close_after_headers:
            body = b""
            exchange.abrupt = True
            exchange.note = _NOTE_CLOSED_AFTER_HEADERS
        elif action.truncate_at is not None:
            exchange.abrupt = True
            if action.truncate_at < len(body):
                body = body[: max(action.truncate_at, 0)]
                exchange.note = _NOTE_TRUNCATED
        exchange.close_at_end = close or exchange.abrupt
        exchange.status_sent = status
        return head, body

    def _send_piece(self, exchange: _Exchange) -> None:
        exchange.timer = None
        transport = self._transport
        action = exchange.action
        assert isinstance(action, Respond)
        if transport is None or self._closed:
            return
        size = max(action.chunk_size, 1)
        piece = exchange.body[exchange.offset : exchange.offset + size]
        exchange.offset += len(piece)
        transport.write(piece)
        exchange.bytes_sent += len(piece)
        if exchange.offset < len(exchange.body):
            exchange.timer = self._loop.call_later(
                action.chunk_delay_seconds, self._send_piece, exchange
            )
        else:
            exchange.body = b""
            self._end_response(exchange)

    def _end_response(self, exchange: _Exchange) -> None:
        """All bytes are handed to the transport; close if needed, report once they are out."""
        if exchange.close_at_end:
            self._closed = True
            self._input_done = True
            assert self._transport is not None
            if exchange.abrupt:  # truncated or cut after headers: drop the connection outright
                self._transport.close()  # flushes what is buffered, then FIN
            else:
                self._close_politely(self._transport)
        if self._writing_paused:
            exchange.draining = True  # resume_writing or connection_lost completes it
            self._sample_unsent(exchange)
            return
        self._after_written(exchange)

    def _sample_unsent(self, exchange: _Exchange) -> None:
        """While a slow client drains a response, note what is still unsent every 0.1 s.

        Transports drop their buffer before ``connection_lost``; this is how a client that
        gives up mid-download is reported with (about) the bytes it was really sent.
        """
        exchange.timer = None
        transport = self._transport
        if exchange.done or not exchange.draining or transport is None or transport.is_closing():
            return
        exchange.unsent = transport.get_write_buffer_size()
        exchange.timer = self._loop.call_later(0.1, self._sample_unsent, exchange)

    def _close_politely(self, transport: asyncio.Transport) -> None:
        """Send FIN after the response but keep reading (and discarding) until the client closes.

        Closing a socket that still has unread input sends RST, and an RST can destroy the
        response the client has not read yet - e.g. a 413 while the client is still uploading,
        or requests pipelined after ``Connection: close``. Lingering like this (as nginx does)
        makes sure the client sees the answer; ``_LINGER_SECONDS`` bounds the wait.
        """
        if transport.can_write_eof():
            transport.write_eof()
            if self._reading_paused:
                self._reading_paused = False
                transport.resume_reading()
            self._linger = self._loop.call_later(_LINGER_SECONDS, transport.close)
        else:
            transport.close()

    def _after_written(self, exchange: _Exchange) -> None:
        self._complete(exchange)
        if not self._closed:
            self._advance()

    def _reset(self, exchange: _Exchange) -> None:
        exchange.timer = None
        transport = self._transport
        if transport is None or self._closed:
            return
        self._closed = True
        self._input_done = True
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                # Linger on, timeout 0: close() discards unsent data and sends RST, not FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            except OSError:
                logger.debug("connection %d: SO_LINGER failed", self._id, exc_info=True)
        exchange.note = _NOTE_RESET
        self._complete(exchange)
        transport.abort()

    def _complete(
        self, exchange: _Exchange, *, client_aborted: bool = False, note: str | None = None
    ) -> None:
        """Report the exchange to the completion callback (exactly once) and clear it."""
        if exchange.done:
            return
        exchange.done = True
        if self._current is exchange:
            self._current = None
        on_complete = self._server._on_complete
        action = exchange.action
        if on_complete is None or action is None:
            return
        outcome = Outcome(
            exchange.status_sent,
            exchange.bytes_sent,
            time.monotonic(),
            time.time(),
            client_aborted,
            exchange.note if note is None else note,
        )
        try:
            on_complete(exchange.request, action, outcome)
        except Exception:
            logger.exception("completion callback raised")

    def shutdown(self) -> None:
        """Server stop: end whatever is in flight (reported as stopped), drop the connection."""
        self._stopping = True
        current = self._current
        if current is not None and not current.done:
            if current.timer is not None:
                current.timer.cancel()
                current.timer = None
            if current.task is not None and not current.task.done():
                current.task.cancel()
            else:
                if current.draining and self._transport is not None:
                    current.bytes_sent -= self._transport.get_write_buffer_size()
                self._complete(current, note=_NOTE_STOPPED)
        self._closed = True
        self._input_done = True
        if self._transport is not None:
            self._transport.abort()


# --- the server -----------------------------------------------------------------------------


class HttpServer:
    """An HTTP/1.1 server for one event loop; see the module docstring for the why.

    ``handler`` decides each request; ``on_complete`` (optional) is told what really happened.
    Both run on the server's event loop and must not block it, as does ``before_send``
    (optional; see the module docstring), after which whole responses are sent in batches. ``max_body_size`` bounds request
    bodies (413 beyond it), ``max_header_size`` the request line plus headers (431).
    """

    def __init__(
        self,
        handler: Handler,
        on_complete: Completion | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        server_header: str | None = "integration-harness",
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        backlog: int = 1024,
        before_send: Callable[[], None] | None = None,
    ) -> None:
        self._handler = handler
        self._on_complete = on_complete
        self._before_send = before_send
        # Whole responses decided during this turn of the loop, sent together at its end.
        self._outbox: list[tuple[_Connection, _Exchange, bytes, bytes]] = []
        self.host = host
        self.max_body_size = max_body_size
        self.max_header_size = max_header_size
        self._backlog = backlog
        self._requested_port = port
        self._port: int | None = None
        self._server_line = b"Server: " + _encode(server_header) + b"\r\n" if server_header else b""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Future[Action]] = set()
        self._ids = itertools.count(1)
        self._date_second = -1
        self._date_line = b""
        self._auto_both = b""

    def _send_this_turn(
        self, connection: _Connection, exchange: _Exchange, head: bytes, body: bytes
    ) -> None:
        outbox = self._outbox
        outbox.append((connection, exchange, head, body))
        if len(outbox) == 1:
            self._loop_or_raise().call_soon(self._send_outbox)

    def _send_outbox(self) -> None:
        """Call ``before_send`` once, then send every response decided since the last call.

        The barrier the traffic log needs: its records of these exchanges reach the operating
        system (one ``write(2)`` for all of them) before any of their clients has an answer.
        If it fails (a full disk) the responses still go out: the log's error is logged here,
        and stopping every client would not bring the records back.
        """
        outbox, self._outbox = self._outbox, []
        assert self._before_send is not None
        try:
            self._before_send()
        except Exception:
            logger.exception("before_send failed; sending %d responses anyway", len(outbox))
        for connection, exchange, head, body in outbox:
            connection._send(exchange, head, body)

    @property
    def port(self) -> int:
        """The bound port (after ``start()``)."""
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def open_connections(self) -> int:
        """How many client connections are open right now."""
        return len(self._connections)

    def _loop_or_raise(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the server is not started")
        return self._loop

    def _auto_headers(self, server: bool, date: bool) -> bytes:
        """Server and Date lines; the Date string is rebuilt at most once a second."""
        now = time.time()
        second = int(now)
        if second != self._date_second:
            self._date_second = second
            self._date_line = (
                b"Date: " + email.utils.formatdate(now, usegmt=True).encode() + b"\r\n"
            )
            self._auto_both = self._server_line + self._date_line
        if server and date:
            return self._auto_both
        return (self._server_line if server else b"") + (self._date_line if date else b"")

    async def start(self) -> int:
        """Bind and start accepting; returns the bound port."""
        if self._server is not None:
            return self.port
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(
            lambda: _Connection(self),
            self.host,
            self._requested_port,
            backlog=self._backlog,
            reuse_address=True,
        )
        self._port = int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def stop(self) -> None:
        """Stop listening, end every connection (hangs included) and report what was in flight."""
        server = self._server
        if server is None:
            return
        self._server = None
        server.close()
        for connection in list(self._connections):
            connection.shutdown()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        await asyncio.sleep(0)  # let the aborted transports run connection_lost
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout=2.0)
        self._connections.clear()


# --- running a server in a background thread -------------------------------------------------


def _new_event_loop(use_uvloop: bool | None) -> asyncio.AbstractEventLoop:
    """uvloop when installed (and not refused), else the standard loop."""
    if use_uvloop is not False:
        try:
            import uvloop
        except ImportError:
            if use_uvloop:
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class ServerThread:
    """An ``HttpServer`` on its own event loop in a daemon thread, driven synchronously.

    ``with ServerThread(handler, on_complete) as base_url:`` starts it (returning once it
    listens) and stops it cleanly on exit. The handler and completion run on the server thread.
    """

    def __init__(
        self,
        handler: Handler,
        on_complete: Completion | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        use_uvloop: bool | None = None,
        **options: Any,
    ) -> None:
        self.server = HttpServer(handler, on_complete, host=host, port=port, **options)
        self._use_uvloop = use_uvloop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def base_url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the server thread is not started")
        return self._loop

    def start(self, timeout: float = 10.0) -> str:
        """Start the thread and return the base URL once the server is listening."""
        if self._thread is not None:
            return self.base_url
        started: concurrent.futures.Future[int] = concurrent.futures.Future()
        loop = _new_event_loop(self._use_uvloop)
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                try:
                    started.set_result(loop.run_until_complete(self.server.start()))
                except BaseException as exc:
                    started.set_exception(exc)
                    return
                loop.run_forever()
            finally:
                _close_loop(loop)

        self._thread = threading.Thread(target=run, name="harness-provider-server", daemon=True)
        self._thread.start()
        try:
            started.result(timeout)
        except BaseException:
            self._thread.join(timeout)
            self._thread = None
            self._loop = None
            raise
        return self.base_url

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (reporting in-flight requests), then the loop and the thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        try:
            if not loop.is_closed():
                asyncio.run_coroutine_threadsafe(self.server.stop(), loop).result(timeout)
        finally:
            if not loop.is_closed():
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            self._thread = None

    def call_soon(self, function: Callable[..., object], *args: object) -> None:
        """Run ``function(*args)`` on the server loop, without waiting (thread-safe)."""
        self.loop.call_soon_threadsafe(function, *args)

    def call(self, function: Callable[[], T], timeout: float | None = 10.0) -> T:
        """Run ``function()`` on the server loop and return its result: the safe way to change
        state the handler reads without locks."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(function())
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout)

    def run_coroutine(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = 10.0) -> T:
        """Run a coroutine on the server loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel leftovers and close the loop, on its own thread after it stopped."""
    try:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    except Exception:
        logger.debug("error while closing the server loop", exc_info=True)
    finally:
        loop.close()
