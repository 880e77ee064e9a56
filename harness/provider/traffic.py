"""The traffic log: one redacted JSON line per exchange, the evidence every verdict is computed from.

Both faces of the provider engine (simulator and fault proxy) and the destination side append a
:class:`TrafficRecord` per exchange; the scenario, contract and load stages read the records back
(live, through :meth:`TrafficLog.records`, or afterwards with :func:`read_traffic`).

Why it is built this way:

* **Redacted on the way in.** :meth:`TrafficLog.append` redacts every record before it is kept or
  written, so nothing downstream (reports, cassettes, a pasted log) can leak a credential the
  log never held.
* **Survives SIGKILL, not power loss.** Each append is one ``write(2)`` on an unbuffered file:
  once ``append`` returns, the line is in the kernel's page cache and survives the harness being
  killed (CI timeouts, OOM killer). There is no ``fsync``: surviving a power cut is not worth a
  disk flush per request under load. The simulator's server batches instead (``defer=True``,
  then :meth:`TrafficLog.flush` once per turn of its event loop, before it sends the turn's
  responses): the same guarantee - no client has an answer whose record is not written - with
  one system call per burst of exchanges.
* **The log numbers records.** ``seq`` is assigned under the log's lock (1, 2, 3, ...), so file
  order, memory order and ``seq`` agree even when server threads append concurrently.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

import orjson

from harness.problems import InputError, Problem
from harness.provider.messages import Action, Headers, Outcome, Request, Respond
from harness.redact import Redactor

Side = Literal["provider", "destination"]
RateLimitInfo = dict[str, float | int | str | None]
"""``limit``, ``remaining``, ``reset``, ``retry_after`` as the engine saw or set them."""

DEFAULT_MAX_BODY_BYTES = 64 * 1024
"""Bodies are kept up to this many UTF-8 bytes (after redaction); the rest is cut and flagged."""


@dataclass(frozen=True, kw_only=True)
class TrafficRecord:
    """One request/response exchange as it reached (or failed to reach) the client.

    ``status`` is ``None`` when no response was sent (connection reset, hang, client gave up).
    ``fault`` names the fault rule/action applied, ``None`` for a clean exchange. ``early_retry``
    is set by the engine when the client came back before the ``Retry-After`` it was given.
    Records are frozen but hold a dict (``rate_limit``), so they are not hashable.
    """

    seq: int = 0
    side: Side
    operation_id: str | None = None
    method: str
    path: str
    query: str = ""
    status: int | None = None
    started_monotonic: float = 0.0
    ended_monotonic: float = 0.0
    started_wall: float = 0.0
    ended_wall: float = 0.0
    latency_ms: float = 0.0
    request_bytes: int = 0
    response_bytes: int = 0
    fault: str | None = None
    client_id: str | None = None
    auth_identity: str | None = None
    rate_limit: RateLimitInfo | None = None
    early_retry: bool = False
    validation_errors: tuple[str, ...] = ()
    request_headers: Headers = ()
    response_headers: Headers = ()
    request_body: str | None = None
    response_body: str | None = None
    request_body_truncated: bool = False
    response_body_truncated: bool = False
    note: str = ""

    def request_header(self, name: str) -> str | None:
        """First value of a request header, case-insensitively."""
        return _header(self.request_headers, name)

    def response_header(self, name: str) -> str | None:
        """First value of a response header, case-insensitively."""
        return _header(self.response_headers, name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; headers become ``[name, value]`` lists."""
        data = {f.name: getattr(self, f.name) for f in _FIELDS}
        data["validation_errors"] = list(self.validation_errors)
        data["request_headers"] = [list(pair) for pair in self.request_headers]
        data["response_headers"] = [list(pair) for pair in self.response_headers]
        return data

    def to_json(self) -> str:
        """One compact JSON line, without the newline."""
        return self.to_json_bytes().decode("utf-8")

    def to_json_bytes(self) -> bytes:
        """The JSON line as UTF-8 bytes: what the log writes. orjson, because this is the
        hottest line of a load run (about 2 µs against about 10 µs for the json module)."""
        # The instance dict holds exactly the fields; tuples become arrays.
        return orjson.dumps(self.__dict__)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrafficRecord:
        """Inverse of :meth:`to_dict`; unknown keys are ignored (newer logs stay readable).

        Raises ``ValueError`` (or ``TypeError``) when a required field is missing or mistyped.
        """
        for required in ("side", "method", "path"):
            if not isinstance(data.get(required), str):
                raise ValueError(f"missing or non-string {required!r}")
        values = {name: data[name] for name in _FIELD_NAMES if name in data}
        values["validation_errors"] = tuple(str(e) for e in data.get("validation_errors") or ())
        values["request_headers"] = _pairs(data.get("request_headers"))
        values["response_headers"] = _pairs(data.get("response_headers"))
        if values.get("side") not in ("provider", "destination"):
            raise ValueError(f"side must be 'provider' or 'destination', not {values['side']!r}")
        return cls(**values)

    @classmethod
    def from_json(cls, text: str | bytes | Mapping[str, Any]) -> TrafficRecord:
        """Parse one log line (or an already parsed dict)."""
        data = text if isinstance(text, Mapping) else orjson.loads(text)
        if not isinstance(data, Mapping):
            raise ValueError("a traffic record is a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_exchange(
        cls,
        request: Request,
        action: Action,
        outcome: Outcome,
        *,
        side: Side,
        operation_id: str | None = None,
        fault: str | None = None,
        client_id: str | None = None,
        auth_identity: str | None = None,
        rate_limit: RateLimitInfo | None = None,
        early_retry: bool = False,
        validation_errors: Iterable[str] = (),
        note: str | None = None,
    ) -> TrafficRecord:
        """Build an (unredacted) record from what the server received, decided and achieved.

        The response part records what reached the client: nothing for ``Reset``/``Hang``, the
        headers but no body for ``close_after_headers``, the sent prefix for ``truncate_at``.
        Pass it to :meth:`TrafficLog.append`, which redacts it and assigns ``seq``.
        """
        response_headers: Headers = ()
        response_body: str | None = None
        if isinstance(action, Respond) and outcome.status is not None:
            response_headers = action.headers
            if not action.close_after_headers:
                sent = action.body
                if action.truncate_at is not None:
                    sent = sent[: action.truncate_at]
                response_body = sent.decode("utf-8", "replace")
        return cls(
            side=side,
            operation_id=operation_id,
            method=request.method,
            path=request.path,
            query=request.query,
            status=outcome.status,
            started_monotonic=request.started_monotonic,
            ended_monotonic=outcome.ended_monotonic,
            started_wall=request.started_wall,
            ended_wall=outcome.ended_wall,
            latency_ms=round((outcome.ended_monotonic - request.started_monotonic) * 1000.0, 3),
            request_bytes=len(request.body),
            response_bytes=outcome.bytes_sent,
            fault=fault,
            client_id=client_id,
            auth_identity=auth_identity,
            rate_limit=rate_limit,
            early_retry=early_retry,
            validation_errors=tuple(validation_errors),
            request_headers=request.headers,
            response_headers=response_headers,
            request_body=request.body.decode("utf-8", "replace") if request.body else None,
            response_body=response_body,
            note=outcome.note if note is None else note,
        )


_FIELDS = dataclasses.fields(TrafficRecord)
_FIELD_NAMES = frozenset(f.name for f in _FIELDS)


def _header(headers: Headers, name: str) -> str | None:
    lower = name.lower()
    for key, value in headers:
        if key.lower() == lower:
            return value
    return None


def _pairs(raw: Any) -> Headers:
    if raw is None:
        return ()
    pairs: list[tuple[str, str]] = []
    for item in raw:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise ValueError("headers must be [name, value] pairs")
        pairs.append((str(item[0]), str(item[1])))
    return tuple(pairs)


def truncate_utf8(text: str, max_bytes: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes on a character boundary."""
    if len(text) * 4 <= max_bytes:  # cannot exceed: no need to encode
        return text, False
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text, False
    return encoded[:max_bytes].decode("utf-8", "ignore"), True


def redact_record(
    record: TrafficRecord, redactor: Redactor, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> TrafficRecord:
    """The record as it may be stored: credentials scrubbed, bodies redacted then truncated.

    Bodies are redacted whole *before* truncation so a cut can never leave half a secret behind.
    """
    return dataclasses.replace(record, **_redacted_fields(record, redactor, max_body_bytes))


def _redacted_fields(
    record: TrafficRecord, redactor: Redactor, max_body_bytes: int
) -> dict[str, Any]:
    return _redacted_values(record.__dict__, redactor, max_body_bytes)


def _redacted_values(
    values: Mapping[str, Any], redactor: Redactor, max_body_bytes: int
) -> dict[str, Any]:
    """The redacted form of every field that can carry a credential (the rest is numbers,
    times and names the engine chose). Absent fields take the record's defaults."""
    text = redactor.text
    request_headers = values.get("request_headers", ())
    response_headers = values.get("response_headers", ())
    request_body, request_cut = _body(
        values.get("request_body"),
        _header(request_headers, "content-type"),
        redactor,
        max_body_bytes,
    )
    response_body, response_cut = _body(
        values.get("response_body"),
        _header(response_headers, "content-type"),
        redactor,
        max_body_bytes,
    )
    client_id = values.get("client_id")
    identity = values.get("auth_identity")
    rate_limit = values.get("rate_limit")
    return {
        "path": text(values["path"]),
        "query": redactor.query(values.get("query", "")),
        "client_id": text(client_id) if client_id else client_id,
        "auth_identity": text(identity) if identity else identity,
        "validation_errors": tuple(text(e) for e in values.get("validation_errors", ())),
        # A copy: the caller's dict must not be able to change stored evidence afterwards.
        "rate_limit": dict(rate_limit) if rate_limit is not None else None,
        "request_headers": redactor.headers(request_headers),
        "response_headers": redactor.headers(response_headers),
        "request_body": request_body,
        "response_body": response_body,
        "request_body_truncated": values.get("request_body_truncated", False) or request_cut,
        "response_body_truncated": values.get("response_body_truncated", False) or response_cut,
        "note": text(values.get("note", "")),
    }


def _body(
    body: str | None, content_type: str | None, redactor: Redactor, max_bytes: int
) -> tuple[str | None, bool]:
    if body is None:
        return None, False
    return truncate_utf8(redactor.body(body, content_type), max_bytes)


class TrafficLog:
    """Append-only, thread-safe log of :class:`TrafficRecord`, in memory and as JSON lines.

    Use :meth:`open`. ``append`` redacts the record, assigns the next ``seq``, writes the line
    with a single ``write(2)`` (no user-space buffer, no ``fsync``: survives SIGKILL of this
    process, not a power cut) and returns the stored record. ``OSError`` from the write (disk
    full) propagates: a log that silently lost records would make verdicts lie.

    In memory the log keeps the encoded lines, not record objects, and decodes them when
    :meth:`records` is first asked for them. Bytes are invisible to the garbage collector: a
    load run of a million exchanges would otherwise leave millions of tracked tuples and dicts
    for every full collection to walk, and those pauses became the simulator's p99.
    """

    def __init__(
        self,
        path: Path | None,
        redactor: Redactor,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        keep_in_memory: bool = True,
    ) -> None:
        if path is None and not keep_in_memory:
            raise ValueError("a traffic log without a file must keep its records in memory")
        self.path = path
        self.max_body_bytes = max_body_bytes
        self._redactor = redactor
        self._keep = keep_in_memory
        self._lock = threading.Lock()
        self._lines: list[bytes] = []
        self._decoded: list[TrafficRecord] = []
        self._pending: list[bytes] = []  # numbered, not yet written (``defer=True``)
        self._count = 0
        self._file: IO[bytes] | None = None
        self._closed = False
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Unbuffered: every write() is a write(2); "wb" because a log belongs to one run.
            self._file = cast(IO[bytes], open(path, "wb", buffering=0))  # noqa: SIM115

    @classmethod
    def open(
        cls,
        path: Path | None,
        redactor: Redactor,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        keep_in_memory: bool = True,
    ) -> TrafficLog:
        """A new log writing to ``path`` (created or truncated), or in memory only for ``None``.

        ``keep_in_memory=False`` (only with a file) keeps just the count; :meth:`records` then
        reads the file back: for long load runs whose records would not fit in memory.
        """
        return cls(path, redactor, max_body_bytes=max_body_bytes, keep_in_memory=keep_in_memory)

    @property
    def redactor(self) -> Redactor:
        return self._redactor

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Scrub these values from every record appended from now on (e.g. an issued token)."""
        with self._lock:
            self._redactor = self._redactor.with_secrets(secrets)

    def append(self, record: TrafficRecord) -> TrafficRecord:
        """Redact, number and write one record; return it as stored.

        ``record.seq`` is ignored: the log assigns the next number under its lock.
        """
        return self.append_many((record,))[0]

    def append_many(self, records: Iterable[TrafficRecord]) -> list[TrafficRecord]:
        """Like :meth:`append` for several records, written with one ``write(2)``."""
        redactor = self._redactor
        changes = [(r, _redacted_fields(r, redactor, self.max_body_bytes)) for r in records]
        if not changes:
            return []
        with self._lock:
            first = self._next_seq()
            stored = [
                dataclasses.replace(r, seq=first + i, **fields)
                for i, (r, fields) in enumerate(changes)
            ]
            self._store([r.to_json_bytes() + b"\n" for r in stored])
        return stored

    def append_values(self, values: dict[str, Any], *, defer: bool = False) -> int:
        """Redact, number and write one record given as its field values; return its ``seq``.

        What the engine calls once per exchange, on the hot path of a load run: no record
        object is built at all, the values are redacted in place and encoded once. ``values``
        must hold every field of :class:`TrafficRecord` except ``seq`` (a ``seq`` key placed
        first keeps the line's field order); the dict is the log's afterwards.

        ``defer=True`` numbers and keeps the record but leaves the line to the next
        :meth:`flush` (or the next plain append): the server flushes once per turn of its event
        loop, before it sends any response, so a burst of exchanges costs one ``write(2)``
        instead of one each, and no client has its answer before the record is written.
        """
        values.update(_redacted_values(values, self._redactor, self.max_body_bytes))
        with self._lock:
            seq = values["seq"] = self._next_seq()
            self._store([orjson.dumps(values) + b"\n"], write=not defer)
        return seq

    def flush(self) -> None:
        """Write the records appended with ``defer=True`` that are not written yet."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._pending:
            lines, self._pending = self._pending, []
            self._write(lines)

    def _next_seq(self) -> int:
        if self._closed:
            raise RuntimeError("the traffic log is closed")
        return self._count + 1

    def _store(self, lines: list[bytes], *, write: bool = True) -> None:
        """Count and keep encoded records already numbered, and write them unless deferred
        (after any deferred ones, in ``seq`` order); the lock is held."""
        self._count += len(lines)
        if self._keep:
            self._lines.extend(lines)
        if self._file is None:
            return
        if not write:
            self._pending.extend(lines)
            return
        if self._pending:
            lines, self._pending = self._pending + lines, []
        self._write(lines)

    def _write(self, lines: list[bytes]) -> None:
        """One ``write(2)`` of these lines (a short write is finished); the lock is held."""
        assert self._file is not None
        data = lines[0] if len(lines) == 1 else b"".join(lines)
        written = self._file.write(data)
        if written != len(data):  # a short write: finish it (rare: signals, full pipes)
            view = memoryview(data)[written:]
            while view:
                view = view[self._file.write(view) :]

    @property
    def count(self) -> int:
        """How many records have been appended."""
        return self._count

    def __len__(self) -> int:
        return self._count

    def records(self, since_seq: int = 0) -> list[TrafficRecord]:
        """Records with ``seq > since_seq``, in order (a snapshot; safe while others append)."""
        if self._keep:
            with self._lock:
                decoded = self._decoded
                for line in self._lines[len(decoded) :]:
                    decoded.append(TrafficRecord.from_json(line))
                return decoded[max(since_seq, 0) :]
        assert self.path is not None
        with self._lock:
            self._flush_locked()
            count = self._count
        return [r for r in read_traffic(self.path) if since_seq < r.seq <= count]

    def close(self) -> None:
        """Close the file; later appends raise ``RuntimeError``. Idempotent."""
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._flush_locked()
                self._file.close()
                self._file = None

    def __enter__(self) -> TrafficLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_traffic(path: Path) -> list[TrafficRecord]:
    """Read a traffic log written by :class:`TrafficLog`.

    A torn last line (the writer died mid-write; only possible on a power cut or a full disk) is
    dropped. A bad line anywhere else is corrupt evidence: ``InputError`` naming the line.
    """
    name = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError([Problem(name, None, "", "file not found")]) from None
    except OSError as exc:
        raise InputError([Problem(name, None, "", f"cannot read: {exc.strerror}")]) from None
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" after a final newline, otherwise the torn fragment
    records: list[TrafficRecord] = []
    problems: list[Problem] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(TrafficRecord.from_json(line))
        except (ValueError, TypeError) as exc:
            problems.append(Problem(name, number, "", f"not a traffic record: {exc}"))
    if tail.strip():
        # A last line that is whole but lacks its newline is still a record; a torn one is not.
        with contextlib.suppress(ValueError, TypeError):
            records.append(TrafficRecord.from_json(tail))
    if problems:
        raise InputError(problems)
    return records
