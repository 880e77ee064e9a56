"""A tiny, real HTTP fake of the Petstore provider and the inventory destination.

Only ``tests/test_examples.py`` uses it: the example programs are tested as real subprocesses
talking real HTTP, so the fake has to be a real server, but it only needs the few behaviours
those tests exercise. It is not the harness's provider simulator and should stay small.

One server plays both roles (``/oauth/token`` and ``/pets`` for the provider, ``/items/{id}``
for the destination) on 127.0.0.1 with an OS-assigned port.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakePetstore:
    """Serves ``pets`` page by page and stores what is PUT; knobs inject simple faults.

    Knobs:
    * ``unavailable_first``: answer 503 to the first N ``GET /pets`` requests.
    * ``unavailable_from``: answer 503 to every ``GET /pets`` request from the Nth one on.
    * ``token_max_uses``: a token is rejected (401) after it authorised this many page requests.
    """

    pets: list[Any]
    client_id: str = "harness-client"
    client_secret: str = field(default_factory=lambda: "sekret-" + secrets.token_hex(12))
    unavailable_first: int = 0
    unavailable_from: int | None = None
    token_max_uses: int | None = None
    token_expires_in: int = 300

    # What happened, for assertions.
    items: dict[str, Any] = field(default_factory=dict)
    token_requests: int = 0
    issued_tokens: list[str] = field(default_factory=list)
    pets_requests: int = 0
    pets_request_times: list[float] = field(default_factory=list)
    provider_request_times: list[float] = field(default_factory=list)
    unauthorized: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._token_uses: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL for both PROVIDER_URL and DESTINATION_URL."""
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakePetstore:
        """Bind to an ephemeral port and serve from a daemon thread."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakePetstore:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Request handling (called from server threads) --------------------------------------------

    def _token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.token_requests += 1
            self.provider_request_times.append(time.monotonic())
            ok = (
                form.get("grant_type") == ["client_credentials"]
                and form.get("client_id") == [self.client_id]
                and form.get("client_secret") == [self.client_secret]
            )
            if not ok:
                return 401, _problem("invalid client credentials", 401)
            token = secrets.token_urlsafe(24)
            self.issued_tokens.append(token)
            self._token_uses[token] = 0
            return 200, {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.token_expires_in,
            }

    def _pets(self, query: dict[str, list[str]], authorization: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.pets_requests += 1
            number = self.pets_requests
            now = time.monotonic()
            self.pets_request_times.append(now)
            self.provider_request_times.append(now)
            if number <= self.unavailable_first or (
                self.unavailable_from is not None and number >= self.unavailable_from
            ):
                return 503, _problem("maintenance", 503)
            token = authorization.removeprefix("Bearer ")
            uses = self._token_uses.get(token)
            if uses is None or (self.token_max_uses is not None and uses >= self.token_max_uses):
                self.unauthorized += 1
                return 401, _problem("invalid or expired token", 401)
            self._token_uses[token] = uses + 1
        page = int(query.get("page", ["1"])[0])
        per_page = int(query.get("per_page", ["20"])[0])
        start = (page - 1) * per_page
        total = len(self.pets)
        return 200, {
            "items": self.pets[start : start + per_page],
            "page": page,
            "per_page": per_page,
            "total": total,
            "next_page": page + 1 if start + per_page < total else None,
        }

    def _put_item(self, external_id: str, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or body.get("external_id") != external_id:
            return 422, _problem("external_id does not match the path", 422)
        with self._lock:
            created = external_id not in self.items
            self.items[external_id] = body
        return (201 if created else 200), body


def _problem(title: str, status: int) -> dict[str, Any]:
    return {"title": title, "status": status}


def _make_handler(fake: FakePetstore) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to one fake (http.server instantiates handlers per request)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Silence per-request logging; pytest output stays readable."""

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            is_error = status >= 400
            content_type = "application/problem+json" if is_error else "application/json"
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
            if status in (429, 503):
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/oauth/token":
                self._send(404, _problem("not found", 404))
                return
            self._send(*fake._token(parse_qs(self._body().decode())))

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/pets":
                self._send(404, _problem("not found", 404))
                return
            authorization = self.headers.get("Authorization", "")
            self._send(*fake._pets(parse_qs(parts.query), authorization))

        def do_PUT(self) -> None:
            path = urlsplit(self.path).path
            if not path.startswith("/items/"):
                self._send(404, _problem("not found", 404))
                return
            try:
                body = json.loads(self._body())
            except ValueError:
                self._send(400, _problem("body is not JSON", 400))
                return
            self._send(*fake._put_item(path.removeprefix("/items/"), body))

    return Handler
