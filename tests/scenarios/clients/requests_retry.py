"""requests + urllib3 ``Retry``: the retry set-up most requests users copy from the docs.

``HTTPAdapter(max_retries=Retry(...))`` retries connection errors, read errors and the statuses
in ``status_forcelist`` with exponential backoff (urllib3 2.x: the first retry is immediate,
then ``backoff_factor * 2**(n-1)``, capped at ``backoff_max``), and sleeps for ``Retry-After`` on
429/503 (``respect_retry_after_header``, on by default). What it cannot see: a body that breaks
off after the headers - requests reads bodies after urllib3's retry loop (psf/requests#4568,
#5948), so that surfaces as ``ChunkedEncodingError``. POST (the token request) is not retried
(not in ``allowed_methods``). Hand-written here: one new token on a 401, quarantine of invalid
records, an alert when giving up. No client-side rate limiting.
"""

from __future__ import annotations

import sys

import requests
from common import Config, alert, log, problems, quarantine, summary, to_item
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

TIMEOUT = 5


def session() -> requests.Session:
    retry = Retry(
        total=None,
        connect=4,
        read=4,
        status=4,
        other=0,
        backoff_factor=0.1,
        backoff_max=2,
        status_forcelist=(429, 500, 502, 503, 504),
        respect_retry_after_header=True,
    )
    http = requests.Session()
    http.mount("http://", HTTPAdapter(max_retries=retry))
    return http


def token(http: requests.Session, config: Config) -> str:
    response = http.post(
        f"{config.provider}/oauth/token", data=config.token_form(), timeout=TIMEOUT
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def main() -> int:
    config = Config()
    http = session()
    read = written = quarantined = pages = 0
    try:
        access = token(http, config)
        page: int | None = 1
        while page is not None:
            params = {"page": page, "per_page": config.page_size}
            response = http.get(
                f"{config.provider}/pets",
                params=params,
                headers={"Authorization": f"Bearer {access}"},
                timeout=TIMEOUT,
            )
            if response.status_code == 401:
                log("401: fetching a new token")
                access = token(http, config)
                response = http.get(
                    f"{config.provider}/pets",
                    params=params,
                    headers={"Authorization": f"Bearer {access}"},
                    timeout=TIMEOUT,
                )
            response.raise_for_status()
            body = response.json()
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
                    f"{config.destination}/items/{item['external_id']}", json=item, timeout=TIMEOUT
                ).raise_for_status()
                written += 1
            page = body.get("next_page")
    except requests.HTTPError as error:
        status = error.response.status_code if error.response is not None else 0
        kind = "integration_failure" if status in (400, 401, 403) else "service_availability"
        alert(kind, f"sync stopped: {status}")
        return 1
    except requests.RequestException as error:
        alert("service_availability", f"sync stopped: {type(error).__name__}")
        return 1
    except (ValueError, KeyError) as error:
        alert("integration_failure", f"unusable response: {type(error).__name__}")
        return 1
    summary(read, written, quarantined, pages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
