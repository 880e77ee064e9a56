"""The spec's alert channel, as the harness observes it.

``log_pattern``: a regular expression matched against each line the integration printed (stdout
and stderr). ``webhook``: the harness serves ``path`` on 127.0.0.1 and passes the URL as
``ALERT_WEBHOOK_URL``; every request to it is an alert. An alert's *kind* is recognised when its
text names one of the template's alert kinds (``service_availability``, ``integration_failure``,
``high_error_rate``, ``rate_limit_threshold``; spaces or dashes for underscores are fine).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ALERT_KINDS = (
    "integration_failure",
    "high_error_rate",
    "rate_limit_threshold",
    "service_availability",
)
WEBHOOK_ENV = "ALERT_WEBHOOK_URL"
_MAX_ALERT_BYTES = 16 * 1024


@dataclass(frozen=True)
class Alert:
    """One alert the integration raised: where it was seen and its text (redacted later)."""

    channel: str
    text: str

    @property
    def kinds(self) -> tuple[str, ...]:
        """The alert kinds its text names."""
        lowered = self.text.lower()
        return tuple(
            kind
            for kind in ALERT_KINDS
            if re.search(kind.replace("_", "[ _-]"), lowered) is not None
        )


def log_alerts(pattern: str, output: str) -> list[Alert]:
    """Lines of ``output`` the pattern matches (``re.search``, per line)."""
    compiled = re.compile(pattern)
    return [
        Alert("log", line.rstrip())
        for line in output.splitlines()
        if compiled.search(line) is not None
    ]


class WebhookReceiver:
    """Collects the requests an integration sends to the alert webhook."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.url = ""
        self._alerts: list[Alert] = []
        self._lock = threading.Lock()

    def received(self) -> list[Alert]:
        with self._lock:
            return list(self._alerts)

    def _add(self, text: str) -> None:
        with self._lock:
            self._alerts.append(Alert("webhook", text))


@contextmanager
def serve_webhook(path: str) -> Iterator[WebhookReceiver]:
    """Serve the alert webhook on 127.0.0.1 until the block ends."""
    receiver = WebhookReceiver(path)

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = min(int(self.headers.get("Content-Length") or 0), _MAX_ALERT_BYTES)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            if self.path.split("?", 1)[0] != receiver.path:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            receiver._add(body or f"{self.command} {self.path}")
            self.send_response(204)
            self.end_headers()

        do_POST = do_PUT = do_GET = _handle

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the harness reports alerts itself."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(
        target=server.serve_forever, name="harness-alert-webhook", daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2.0)
