"""A real HTTP provider that breaks its document (data/broken.openapi.yaml) in six known ways.

Written with the standard library on purpose: it shares no code with the harness, so when the
contract stage finds these breakages it found them in somebody else's server. Each operation
breaks the document in exactly one way, and only in its successful answers; requests the
document forbids are rejected with a documented 400, and a missing or wrong API key gets the
documented 401 - so every finding has exactly one right attribution:

============  ==================================================  ==========================
operation     breakage                                            found by
============  ==================================================  ==========================
getPet        wrong type: ``id`` is a string                      response schema checks
getOwner      missing required field: no ``name``                 response schema checks
listPets      enum value outside the list: ``status: lost``       response schema checks
getStats      undocumented status code: 202                       status code checks
getHealth     wrong content type: ``text/plain``                  content type checks
createPet     500 on a valid request                              not_a_server_error
getVersion    (honoured)                                          nothing
============  ==================================================  ==========================

getOwner also echoes the API key it was sent inside its body, the way careless debug output
does: the canary tests check that it never reaches anything the harness writes.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATHS: dict[str, tuple[str, ...]] = {
    "/api/pets": ("GET", "POST"),
    "/api/stats": ("GET",),
    "/api/health": ("GET",),
    "/api/version": ("GET",),
}
_ITEM = re.compile(r"^/api/(pets|owners)/([^/]+)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(
        self, status: int, body: Any, content_type: str = "application/json", **headers: str
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self, method: str) -> None:
        self.server.count += 1
        body = self._body()
        path = self.path.split("?", 1)[0]
        match = _ITEM.match(path)
        allowed = PATHS.get(path) or (("GET",) if match else None)
        if allowed is None:
            return self._send(404, {"title": "Not Found"})
        if method not in allowed:
            return self._send(405, {"title": "Method Not Allowed"}, Allow=", ".join(allowed))
        if self.headers.get("X-API-Key") != self.server.api_key:
            return self._send(401, {"title": "Unauthorized"})
        if match:
            raw = match.group(2)
            if not raw.isdigit() or not 1 <= int(raw) <= 1000:
                return self._send(400, {"title": f"{match.group(1)[:-1]} id must be 1-1000"})
            if match.group(1) == "pets":
                return self._send(200, {"id": "seven", "name": "Rex", "status": "available"})
            echo = f"debug: called with X-API-Key {self.headers.get('X-API-Key')}"
            return self._send(200, {"id": int(raw), "note": echo})
        if path == "/api/pets" and method == "GET":
            return self._send(200, [{"id": 1, "name": "Rex", "status": "lost"}])
        if path == "/api/pets":
            try:
                data = json.loads(body)
            except ValueError:
                return self._send(400, {"title": "body is not JSON"})
            valid = (
                isinstance(data, dict)
                and set(data) == {"name"}
                and isinstance(data["name"], str)
                and 1 <= len(data["name"]) <= 50
            )
            if not valid or "json" not in (self.headers.get("Content-Type") or ""):
                return self._send(400, {"title": "invalid pet"})
            return self._send(500, {"title": "Internal Server Error"})
        if path == "/api/stats":
            return self._send(202, {"pets": 1})
        if path == "/api/health":
            return self._send(200, b"OK", content_type="text/plain")
        return self._send(200, {"version": "1.0"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_OPTIONS(self) -> None:
        self._handle("OPTIONS")

    def do_TRACE(self) -> None:
        self._handle("TRACE")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_QUERY(self) -> None:
        self._handle("QUERY")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api_key = ""
    count = 0


@contextmanager
def broken_server(api_key: str) -> Iterator[str]:
    """Serve on 127.0.0.1 until the block ends; yields the base URL (``http://127.0.0.1:N/api``)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.api_key = api_key
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
