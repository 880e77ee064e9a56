"""Map a provider pet onto an inventory item, as declared in the spec's ``data_mapping``.

Both example variants import this module, so a difference in their results is always caused by
how they handle the network, never by a difference in mapping. ``validate_record`` is separate
from ``map_record`` because the careful variant must decide *before* writing whether a record is
quarantined, while the naive variant skips validation and lets bad records blow up in
``map_record`` the way hurried code does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

#: ``status`` -> ``state`` (spec: transformation kind ``enum``).
STATE_BY_STATUS: dict[str, str] = {"available": "in_stock", "pending": "reserved", "sold": "gone"}

#: ``birth_date`` input format (spec: ``from_format``).
SOURCE_DATE_FORMAT = "%Y-%m-%d"

# strptime alone accepts "2021-4-3"; the provider documents RFC 3339 full-date, so insist on
# zero-padded fields and let strptime reject impossible dates such as 2021-02-30.
_SOURCE_DATE_SHAPE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _is_int(value: object) -> bool:
    """JSON integers only: ``bool`` is an ``int`` subclass in Python but not a number in JSON."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    """JSON numbers only; Python's json module also accepts NaN/Infinity, which are not weights."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _parse_source_date(value: str) -> date:
    """Parse ``birth_date``; raises ValueError so callers can report or propagate it."""
    if not _SOURCE_DATE_SHAPE.match(value):
        raise ValueError(f"does not match {SOURCE_DATE_FORMAT}")
    return datetime.strptime(value, SOURCE_DATE_FORMAT).date()


def _format_destination_date(value: date) -> str:
    """Format as ``%d.%m.%Y`` by hand: platform strftime does not zero-pad years below 1000,
    and the destination insists on exactly four year digits."""
    return f"{value.day:02d}.{value.month:02d}.{value.year:04d}"


def _grams(weight_kg: float) -> int:
    """Spec: convert to integer with factor 1000. Round rather than truncate: 1.005 * 1000 is
    1004.9999999999999 in binary floating point, and truncation would lose a gram."""
    return round(weight_kg * 1000)


def validate_record(record: object) -> list[str]:
    """Return every reason ``record`` cannot be mapped; an empty list means it is valid.

    All problems are collected rather than stopping at the first, so a quarantined record's log
    entry tells the operator everything that has to be fixed at the provider in one go.
    Optional fields that are absent or ``null`` are fine; present ones must be well formed.
    """
    if not isinstance(record, Mapping):
        return [f"record must be a JSON object, got {type(record).__name__}"]
    errors: list[str] = []

    pet_id = record.get("id")
    if pet_id is None:
        errors.append("id is missing")
    elif not _is_int(pet_id) or pet_id < 1:
        errors.append(f"id must be a positive integer, got {pet_id!r}")

    name = record.get("name")
    if name is None:
        errors.append("name is missing")
    elif not isinstance(name, str):
        errors.append(f"name must be a string, got {type(name).__name__}")
    elif name == "":
        errors.append("name must not be empty")

    status = record.get("status")
    if status is None:
        errors.append("status is missing")
    elif not isinstance(status, str) or status not in STATE_BY_STATUS:
        errors.append(f"status must be one of {', '.join(STATE_BY_STATUS)}, got {status!r}")

    birth_date = record.get("birth_date")
    if birth_date is not None:
        if not isinstance(birth_date, str):
            errors.append(f"birth_date must be a string, got {type(birth_date).__name__}")
        else:
            try:
                _parse_source_date(birth_date)
            except ValueError:
                errors.append(
                    f"birth_date must be a date in {SOURCE_DATE_FORMAT}, got {birth_date!r}"
                )

    weight_kg = record.get("weight_kg")
    if weight_kg is not None:
        if not _is_number(weight_kg):
            errors.append(f"weight_kg must be a finite number, got {weight_kg!r}")
        elif _grams(weight_kg) < 1:
            # The destination requires weight_grams >= 1; writing 0 would be rejected there.
            errors.append(f"weight_kg must be at least 0.0005, got {weight_kg!r}")

    tags = record.get("tags")
    if tags is not None:
        if not isinstance(tags, list):
            errors.append(f"tags must be a list, got {type(tags).__name__}")
        else:
            for index, tag in enumerate(tags):
                tag_name = tag.get("name") if isinstance(tag, Mapping) else None
                if not isinstance(tag_name, str) or tag_name == "":
                    errors.append(f"tags[{index}].name must be a non-empty string")
    return errors


def map_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Map one provider pet to an inventory ``Item``.

    Assumes the record is valid; on garbage it raises (KeyError, ValueError, TypeError) instead
    of guessing, so nothing half-mapped ever reaches the destination. Optional fields that are
    absent or ``null`` are omitted rather than written as ``null``.
    """
    item: dict[str, Any] = {
        "external_id": str(record["id"]),
        "name": record["name"],
        "state": STATE_BY_STATUS[record["status"]],
    }
    birth_date = record.get("birth_date")
    if birth_date is not None:
        item["born_on"] = _format_destination_date(_parse_source_date(birth_date))
    weight_kg = record.get("weight_kg")
    if weight_kg is not None:
        item["weight_grams"] = _grams(weight_kg)
    tags = record.get("tags")
    if tags is not None:
        item["labels"] = [tag["name"] for tag in tags]
    return item
