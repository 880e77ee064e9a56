"""The engine's vocabulary: a parsed request, and what the engine decides to do with it.

Kept free of any server or policy code so the HTTP server, the policies (auth, rate limit,
faults) and the traffic log can agree on these types without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Request:
    """One HTTP request as the server received it. Header names are lower-cased."""

    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    client: str
    connection_id: int
    started_monotonic: float
    started_wall: float

    def header(self, name: str, default: str | None = None) -> str | None:
        """First value of a header (``name`` in lower case)."""
        for key, value in self.headers:
            if key == name:
                return value
        return default


@dataclass(frozen=True)
class Respond:
    """Send a response, optionally misbehaving on the way.

    ``delay_seconds``: wait before the first byte (added latency).
    ``chunk_delay_seconds``: send the body in ``chunk_size`` pieces with this pause between (slow body).
    ``truncate_at``: send only this many body bytes, keep the full Content-Length, then close.
    ``close_after_headers``: send the status line and headers, then close.
    """

    status: int
    headers: Headers = ()
    body: bytes = b""
    delay_seconds: float = 0.0
    chunk_delay_seconds: float = 0.0
    chunk_size: int = 64
    truncate_at: int | None = None
    close_after_headers: bool = False


@dataclass(frozen=True)
class Reset:
    """Abort the connection with a real TCP RST (SO_LINGER 0) before sending any byte."""

    delay_seconds: float = 0.0


@dataclass(frozen=True)
class Hang:
    """Never answer: hold the connection open until the client gives up or the server stops."""


Action = Respond | Reset | Hang


@dataclass(frozen=True)
class Outcome:
    """What actually reached the client, known only after the action has been carried out."""

    status: int | None
    bytes_sent: int
    ended_monotonic: float
    ended_wall: float
    client_aborted: bool = False
    note: str = ""
    extra: dict[str, object] = field(default_factory=dict)
