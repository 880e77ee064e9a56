"""httpx + tenacity: a ``@retry`` decorator around each call, as tenacity's docs show it.

``wait_random_exponential(multiplier=0.1, max=2)`` is "full jitter" (a random wait up to
``0.1 * 2**(n-1)`` s, capped at 2 s) and ``stop_after_attempt(5)`` gives four retries. tenacity
retries whatever exception the predicate names, here transport errors, HTTP status errors and
unparsable JSON - but it knows nothing of HTTP: it does not read ``Retry-After`` (its waits are
time-based only), and the decorated function is called again with the same arguments, so a
401 is retried with the same, dead token, and a rejected token request is retried like any
other failure. httpx's default timeout (5 s) bounds every request. No client-side rate limit.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx
import tenacity
from common import Config, alert, problems, quarantine, summary, to_item

retrying = tenacity.retry(
    stop=tenacity.stop_after_attempt(5),
    wait=tenacity.wait_random_exponential(multiplier=0.1, max=2),
    retry=tenacity.retry_if_exception_type(
        (httpx.TransportError, httpx.HTTPStatusError, ValueError)
    ),
    reraise=True,
)


@retrying
def token(http: httpx.Client, config: Config) -> str:
    response = http.post(f"{config.provider}/oauth/token", data=config.token_form())
    response.raise_for_status()
    return str(response.json()["access_token"])


@retrying
def fetch_page(http: httpx.Client, config: Config, access: str, page: int) -> dict[str, Any]:
    response = http.get(
        f"{config.provider}/pets",
        params={"page": page, "per_page": config.page_size},
        headers={"Authorization": f"Bearer {access}"},
    )
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise ValueError("not a page")
    return body


@retrying
def put(http: httpx.Client, config: Config, item: dict[str, Any]) -> None:
    http.put(f"{config.destination}/items/{item['external_id']}", json=item).raise_for_status()


def main() -> int:
    config = Config()
    read = written = quarantined = pages = 0
    with httpx.Client() as http:
        try:
            access = token(http, config)
            page: int | None = 1
            while page is not None:
                body = fetch_page(http, config, access, page)
                pages += 1
                for record in body["items"]:
                    read += 1
                    reasons = problems(record)
                    if reasons:
                        quarantine(config, record, reasons)
                        quarantined += 1
                        continue
                    put(http, config, to_item(record))
                    written += 1
                page = body.get("next_page")
        except (httpx.HTTPError, ValueError) as error:
            alert("service_availability", f"sync stopped after retries: {type(error).__name__}")
            return 1
    summary(read, written, quarantined, pages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
