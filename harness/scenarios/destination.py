"""What reached the destination, read back after the run.

The destination is either the simulated destination API - a recording sink whose store holds
exactly what the integration wrote - or what the integration writes locally: JSON lines, CSV or
a SQLite table, at the spec's ``destination.path`` relative to the output folder the harness
gave it. Lines or rows that cannot be read become evidence (garbage at the destination), not a
harness error.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.spec.model import Destination


@dataclass(frozen=True)
class DestinationContents:
    """Records found at the destination, plus what could not be read as a record."""

    where: str
    records: tuple[Mapping[str, Any], ...] = ()
    unreadable: tuple[str, ...] = ()
    """One line per entry that is not a record (a JSON line that does not parse, say)."""
    missing: bool = False
    """The file the spec names was not written at all."""


def collection_of(path_template: str) -> str:
    """The store collection a write operation's path belongs to: ``/items/{id}`` -> ``/items``."""
    match = re.fullmatch(r"(.*)/\{[^}/]+\}", path_template)
    return (match.group(1) or "/") if match else path_template


def from_store(
    snapshot: Mapping[str, Mapping[str, list[Any]]], collection: str, where: str
) -> DestinationContents:
    """Records every client wrote to ``collection`` of the simulated destination."""
    records: list[Mapping[str, Any]] = []
    unreadable: list[str] = []
    for collections in snapshot.values():
        for record in collections.get(collection, []):
            if isinstance(record, Mapping):
                records.append(record)
            else:
                unreadable.append(f"stored value is not an object: {json.dumps(record)[:80]}")
    return DestinationContents(where, tuple(records), tuple(unreadable))


def from_files(destination: Destination, output_dir: Path) -> DestinationContents:
    """Records the integration wrote to its local file or database."""
    assert destination.path is not None  # the spec schema requires it for file kinds
    path = output_dir / destination.path
    where = f"{destination.kind} file {destination.path} (in the output folder)"
    if not path.is_file():
        return DestinationContents(where, missing=True)
    if destination.kind == "jsonl":
        return _jsonl(path, where)
    if destination.kind == "csv":
        return _csv(path, where)
    return _sqlite(path, destination.table, where)


def _jsonl(path: Path, where: str) -> DestinationContents:
    records: list[Mapping[str, Any]] = []
    unreadable: list[str] = []
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            unreadable.append(f"line {number} is not JSON: {line[:80]}")
            continue
        if isinstance(value, dict):
            records.append(value)
        else:
            unreadable.append(f"line {number} is not a JSON object: {line[:80]}")
    return DestinationContents(where, tuple(records), tuple(unreadable))


def _csv(path: Path, where: str) -> DestinationContents:
    with path.open(encoding="utf-8", errors="replace", newline="") as stream:
        rows = [dict(row) for row in csv.DictReader(stream)]
    unreadable = [
        f"row {i} has more cells than the header" for i, row in enumerate(rows, 2) if None in row
    ]
    return DestinationContents(
        where,
        tuple({k: v for k, v in row.items() if k is not None} for row in rows),
        tuple(unreadable),
    )


def _sqlite(path: Path, table: str | None, where: str) -> DestinationContents:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as error:
        return DestinationContents(where, unreadable=(f"cannot open the database: {error}",))
    try:
        connection.row_factory = sqlite3.Row
        if table is None:
            names = [
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            if len(names) != 1:
                return DestinationContents(
                    where, unreadable=(f"expected one table, found {len(names)}: {names}",)
                )
            table = names[0]
        quoted = '"' + table.replace('"', '""') + '"'
        rows = connection.execute(f"SELECT * FROM {quoted}").fetchall()
    except sqlite3.Error as error:
        return DestinationContents(where, unreadable=(f"cannot read table {table}: {error}",))
    finally:
        connection.close()
    return DestinationContents(where, tuple(dict(row) for row in rows))
