"""A sync that writes its destination locally (JSON lines, CSV or SQLite), for file destinations.

Reads its settings from variables whose *names* are given on the command line, the way a team's
own program would (the spec maps the harness's variables onto them with ``env_names`` and its
``${VAR}`` credential references). ``--duplicate`` writes every item twice, ``--drop N`` leaves
out the N-th record: deliberate bugs for the harness to find. Plain requests, no retries.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import requests
from common import problems, to_item

FIELDS = ("external_id", "name", "state", "born_on", "weight_grams", "labels")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--format", choices=["jsonl", "csv", "sqlite"], required=True)
    parser.add_argument("--provider-var", default="PROVIDER_URL")
    parser.add_argument("--output-var", default="HARNESS_OUTPUT_DIR")
    parser.add_argument("--id-var", default="PETSTORE_CLIENT_ID")
    parser.add_argument("--secret-var", default="PETSTORE_CLIENT_SECRET")
    parser.add_argument("--duplicate", action="store_true")
    parser.add_argument("--drop", type=int, default=0)
    args = parser.parse_args()
    provider = os.environ[args.provider_var].rstrip("/")
    output = Path(os.environ[args.output_var])
    form = {
        "grant_type": "client_credentials",
        "client_id": os.environ[args.id_var],
        "client_secret": os.environ[args.secret_var],
    }
    http = requests.Session()
    response = http.post(f"{provider}/oauth/token", data=form, timeout=5)
    response.raise_for_status()
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    items: list[dict[str, Any]] = []
    page = 1
    while page:
        response = http.get(
            f"{provider}/pets", params={"page": page, "per_page": 50}, headers=headers, timeout=5
        )
        response.raise_for_status()
        body = response.json()
        for record in body["items"]:
            if not problems(record):
                items.append(to_item(record))
        page = body.get("next_page")
    if args.drop:
        del items[args.drop - 1]
    if args.duplicate:
        items = [item for item in items for _ in range(2)]
    output.mkdir(parents=True, exist_ok=True)
    if args.format == "jsonl":
        with (output / "items.jsonl").open("w", encoding="utf-8") as sink:
            sink.writelines(json.dumps(item) + "\n" for item in items)
    elif args.format == "csv":
        with (output / "items.csv").open("w", encoding="utf-8", newline="") as sink:
            writer = csv.DictWriter(sink, FIELDS)
            writer.writeheader()
            for item in items:
                writer.writerow(
                    {**item, "labels": json.dumps(item["labels"]) if "labels" in item else ""}
                )
    else:
        with sqlite3.connect(output / "items.db") as db:
            db.execute(f"CREATE TABLE items ({', '.join(FIELDS)})")
            db.executemany(
                f"INSERT INTO items VALUES ({', '.join('?' * len(FIELDS))})",
                [
                    tuple(
                        json.dumps(item[f]) if f == "labels" and f in item else item.get(f)
                        for f in FIELDS
                    )
                    for item in items
                ],
            )
    print(json.dumps({"written": len(items)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
