"""What every fixture client shares: configuration, the Petstore mapping, quarantine, alerts.

Each client in this folder is a small, complete petstore sync (provider pages -> inventory
items) written with one well-known HTTP library the way its documentation suggests. They differ
only in how they talk to the network, so the harness's verdicts on them are about that alone.
Run as ``python tests/scenarios/clients/<client>.py`` with the environment the harness injects.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

STATES = {"available": "in_stock", "pending": "reserved", "sold": "gone"}


class Config:
    """The environment the harness passes: URLs, credentials, output folder, page size."""

    def __init__(self) -> None:
        self.provider = os.environ["PROVIDER_URL"].rstrip("/")
        self.destination = os.environ["DESTINATION_URL"].rstrip("/")
        self.client_id = os.environ["PETSTORE_CLIENT_ID"]
        self.client_secret = os.environ["PETSTORE_CLIENT_SECRET"]
        self.output_dir = Path(os.environ.get("HARNESS_OUTPUT_DIR") or ".")
        self.page_size = int(os.environ.get("PETSTORE_PAGE_SIZE", "50"))

    def token_form(self) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }


def problems(record: Any) -> list[str]:
    """Why a provider pet cannot become an inventory item (empty: it can)."""
    if not isinstance(record, dict):
        return ["not an object"]
    found = []
    if (
        not isinstance(record.get("id"), int)
        or isinstance(record.get("id"), bool)
        or record["id"] < 1
    ):
        found.append(f"id {record.get('id')!r}")
    if not isinstance(record.get("name"), str) or not record["name"]:
        found.append(f"name {record.get('name')!r}")
    if record.get("status") not in STATES:
        found.append(f"status {record.get('status')!r}")
    weight = record.get("weight_kg")
    if weight is not None and (not isinstance(weight, int | float) or round(weight * 1000) < 1):
        found.append(f"weight_kg {weight!r}")
    if record.get("birth_date") is not None:
        try:
            datetime.strptime(record["birth_date"], "%Y-%m-%d")
        except (TypeError, ValueError):
            found.append(f"birth_date {record['birth_date']!r}")
    return found


def to_item(record: dict[str, Any]) -> dict[str, Any]:
    """The spec's data_mapping, by hand."""
    item: dict[str, Any] = {
        "external_id": str(record["id"]),
        "name": record["name"],
        "state": STATES[record["status"]],
    }
    if record.get("birth_date") is not None:
        born = datetime.strptime(record["birth_date"], "%Y-%m-%d")
        item["born_on"] = f"{born.day:02d}.{born.month:02d}.{born.year:04d}"
    if record.get("weight_kg") is not None:
        item["weight_grams"] = round(record["weight_kg"] * 1000)
    if record.get("tags") is not None:
        item["labels"] = [tag["name"] for tag in record["tags"]]
    return item


def quarantine(config: Config, record: Any, reasons: list[str]) -> None:
    """Append to quarantine.jsonl in the output folder, as the spec's invalid_data declares."""
    config.output_dir.mkdir(parents=True, exist_ok=True)
    with (config.output_dir / "quarantine.jsonl").open("a", encoding="utf-8") as sink:
        sink.write(json.dumps({"record": record, "errors": reasons}) + "\n")
    log(f"quarantined record {record.get('id') if isinstance(record, dict) else '?'}: {reasons}")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def alert(kind: str, message: str) -> None:
    """The spec's alert channel: a log line matching 'ALERT '."""
    print(f"ALERT {kind}: {message}", file=sys.stderr, flush=True)


def summary(read: int, written: int, quarantined: int, pages: int) -> None:
    print(
        json.dumps({"read": read, "written": written, "quarantined": quarantined, "pages": pages})
    )
