"""Plain requests, no retry configuration: what its defaults give you.

requests does not retry (``HTTPAdapter``'s ``max_retries`` defaults to 0) and has no default
timeout: "requests do not time out unless a timeout value is set explicitly", so a provider
that never answers holds the sync for ever. This client checks statuses (``raise_for_status``),
skips invalid records with a warning (no quarantine file), does not re-authenticate, raises
no alert, and fails with exit status 1 and a one-line message on any HTTP error.
"""

from __future__ import annotations

import sys

import requests
from common import Config, log, problems, summary, to_item


def main() -> int:
    config = Config()
    http = requests.Session()
    read = written = skipped = pages = 0
    try:
        response = http.post(f"{config.provider}/oauth/token", data=config.token_form())
        response.raise_for_status()
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        page = 1
        while page:
            response = http.get(
                f"{config.provider}/pets",
                params={"page": page, "per_page": config.page_size},
                headers=headers,
            )
            response.raise_for_status()
            body = response.json()
            pages += 1
            for record in body["items"]:
                read += 1
                if problems(record):
                    log(f"skipping invalid record {record.get('id')}")
                    skipped += 1
                    continue
                item = to_item(record)
                http.put(
                    f"{config.destination}/items/{item['external_id']}", json=item
                ).raise_for_status()
                written += 1
            page = body.get("next_page")
    except (requests.RequestException, ValueError) as error:
        log(f"error: sync failed: {error}")
        return 1
    summary(read, written, skipped, pages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
