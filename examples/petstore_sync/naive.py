"""The Petstore sync written the way a hurried team writes it.

Run as ``python -m petstore_sync.naive`` from ``examples/``. This is a deliberate counter-example
for the harness to catch: it works against a healthy provider, but it checks no status codes,
sets no timeouts, never retries, ignores rate limits, fetches one token and hopes it lasts, and
lets the first bad record crash the run. Do not copy it; ``petstore_sync.careful`` is the
reference. It reads the same environment variables and prints the same summary line, so the
harness can run either variant with the same scenario.
"""

from __future__ import annotations

import json
import os
import sys

import requests

from petstore_sync.mapping import map_record


def main() -> int:
    """Copy every pet, page by page, as if nothing could go wrong."""
    provider = os.environ["PROVIDER_URL"].rstrip("/")
    destination = os.environ["DESTINATION_URL"].rstrip("/")
    page_size = int(os.environ.get("PETSTORE_PAGE_SIZE", "50"))

    token = requests.post(
        f"{provider}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": os.environ["PETSTORE_CLIENT_ID"],
            "client_secret": os.environ["PETSTORE_CLIENT_SECRET"],
        },
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}

    read = written = pages = 0
    page = 1
    while page:
        body = requests.get(
            f"{provider}/pets", params={"page": page, "per_page": page_size}, headers=headers
        ).json()
        pages += 1
        for record in body["items"]:
            read += 1
            item = map_record(record)
            requests.put(f"{destination}/items/{item['external_id']}", json=item)
            written += 1
        print(f"page {page}: {len(body['items'])} pets", file=sys.stderr)
        page = body.get("next_page")

    print(json.dumps({"read": read, "written": written, "quarantined": 0, "pages": pages}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
