"""What Locust itself wrote: its final statistics, its users over time, its exceptions.

The stage judges from the raw samples (exact durations); Locust's own numbers serve as the
second witness: its final request count must equal the samples' and the simulator's traffic
log's (see ``crosscheck``). The final count comes from ``--json-file``, written at shutdown;
Locust's CSV files are rewritten once a second, so the last second can be missing from them.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class LocustTotals:
    requests: int | None
    """``None`` when Locust wrote no final statistics (it was killed)."""
    failures: int | None
    by_name: dict[str, int] = field(default_factory=dict)
    exceptions: int = 0
    exception_messages: tuple[str, ...] = ()


def read_totals(json_stats: Path, exceptions_csv: Path) -> LocustTotals:
    requests: int | None = None
    failures: int | None = None
    by_name: dict[str, int] = {}
    try:
        entries = json.loads(json_stats.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        entries = None
    if isinstance(entries, list):
        requests = failures = 0
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            count = int(entry.get("num_requests") or 0)
            requests += count
            failures += int(entry.get("num_failures") or 0)
            name = str(entry.get("name"))
            by_name[name] = by_name.get(name, 0) + count
    exceptions = 0
    messages: list[str] = []
    try:
        with exceptions_csv.open(encoding="utf-8", newline="") as stream:
            for row in csv.DictReader(stream):
                exceptions += int(row.get("Count") or 0)
                messages.append(str(row.get("Message") or "")[:200])
    except (OSError, ValueError):
        pass
    return LocustTotals(requests, failures, by_name, exceptions, tuple(messages))


def read_users(history_csv: Path, start_wall: float | None) -> list[tuple[float, float]]:
    """(seconds from the start, users) from Locust's stats history."""
    points: list[tuple[float, float]] = []
    try:
        with history_csv.open(encoding="utf-8", newline="") as stream:
            for row in csv.DictReader(stream):
                if row.get("Name") != "Aggregated":
                    continue
                try:
                    stamp = float(row["Timestamp"])
                    users = float(row["User Count"])
                except (KeyError, ValueError):
                    continue
                points.append((stamp - (start_wall or stamp), users))
    except OSError:
        return []
    if points and start_wall is None:
        first = points[0][0]
        points = [(t - first, u) for t, u in points]
    return points
