"""httpx with ``HTTPTransport(retries=3)``: retries that look like a retry policy but are not.

httpx's transport retries apply to establishing a connection only (httpcore retries
``ConnectError`` and ``ConnectTimeout`` in ``_connect``): a connection reset after the request
was sent, a body cut short, a 429 or a 503 is never retried. Everything else here is careful:
a status check on every answer, one new token on a 401, invalid records quarantined, an alert
when it gives up, a 5 s timeout, and its own rate limit (requests to the provider spaced at
least 130 ms apart, under 8 per second).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import httpx
from common import Config, alert, log, problems, quarantine, summary, to_item

SPACING = 0.13


class Paced:
    """At least ``SPACING`` seconds between provider requests."""

    def __init__(self) -> None:
        self.next = 0.0

    def wait(self) -> None:
        now = time.monotonic()
        if now < self.next:
            time.sleep(self.next - now)
        self.next = max(now, self.next) + SPACING


def main() -> int:
    config = Config()
    pace = Paced()
    read = written = quarantined = pages = 0
    transport = httpx.HTTPTransport(retries=3)
    with httpx.Client(transport=transport, timeout=5.0) as http:

        def token() -> str:
            pace.wait()
            response = http.post(f"{config.provider}/oauth/token", data=config.token_form())
            response.raise_for_status()
            return str(response.json()["access_token"])

        def get(access: str, page: int) -> httpx.Response:
            pace.wait()
            return http.get(
                f"{config.provider}/pets",
                params={"page": page, "per_page": config.page_size},
                headers={"Authorization": f"Bearer {access}"},
            )

        try:
            access = token()
            page: int | None = 1
            while page is not None:
                response = get(access, page)
                if response.status_code == 401:
                    log("401: fetching a new token")
                    access = token()
                    response = get(access, page)
                response.raise_for_status()
                body: dict[str, Any] = response.json()
                pages += 1
                for record in body["items"]:
                    read += 1
                    reasons = problems(record)
                    if reasons:
                        quarantine(config, record, reasons)
                        quarantined += 1
                        continue
                    item = to_item(record)
                    http.put(
                        f"{config.destination}/items/{item['external_id']}", json=item
                    ).raise_for_status()
                    written += 1
                page = body.get("next_page")
        except httpx.HTTPStatusError as error:
            kind = (
                "integration_failure"
                if error.response.status_code in (400, 401, 403)
                else "service_availability"
            )
            alert(
                kind,
                f"{error.request.method} {error.request.url.path} answered {error.response.status_code}",
            )
            return 1
        except (httpx.HTTPError, ValueError, KeyError) as error:
            alert("service_availability", f"sync stopped: {type(error).__name__}")
            return 1
    summary(read, written, quarantined, pages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
