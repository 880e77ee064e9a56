"""The run's raw samples (one per request, exact durations) and the statistics computed from them.

Locust's own statistics round response times to about two significant digits, which is fine
for its dashboards and wrong for a gate: a p95 threshold of 800 ms would see 812 ms as 810 and
flap at the boundary. The locustfile hooks write every request event with its exact duration
(``samples-<role>-<pid>.jsonl``); everything the load stage judges is computed here from those,
with percentiles interpolated linearly between ranks (numpy's default, "type 7").
"""

from __future__ import annotations

import base64
import json
import math
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Kind = str
"""``ok``; ``fail`` (an HTTP status Locust counts as a failure); ``timeout``; ``error``
(no response: connection refused or reset)."""


@dataclass(frozen=True, slots=True)
class Sample:
    t: float
    """Seconds from the run's start to the request's start."""
    name: str
    duration_ms: float
    status: int
    """0 when no response arrived."""
    kind: Kind
    stage: int
    retry_after: str | None = None

    @property
    def failed(self) -> bool:
        return self.kind != "ok"


@dataclass(frozen=True)
class Samples:
    start_wall: float | None
    """Wall time the run started (the master's, or the single process's, ``test_start``)."""
    items: tuple[Sample, ...]
    files: int
    damaged_lines: int
    """Lines that could not be read (a process killed mid-write)."""


_COLUMNS = {"t": "d", "duration": "d", "status": "H", "kind": "B", "stage": "H", "name": "H"}


def _columns(chunk: dict[str, Any]) -> list[tuple[float, str, float, int, str, int, str | None]]:
    """The rows of one packed chunk (see ``harness_hooks._Recorder.chunk``)."""
    decoded: dict[str, array[Any]] = {}
    for key, code in _COLUMNS.items():
        column = array(code)
        column.frombytes(base64.b64decode(chunk[key]))
        if chunk.get("byteorder", sys.byteorder) != sys.byteorder:
            column.byteswap()
        decoded[key] = column
    rows = int(chunk["rows"])
    if any(len(column) != rows for column in decoded.values()):
        raise ValueError("columns of different lengths")
    names = [str(n) for n in chunk["names"]]
    kinds = [str(k) for k in chunk["kinds"]]
    retry_after = {int(k): str(v) for k, v in (chunk.get("retry_after") or {}).items()}
    return [
        (
            decoded["t"][i],
            names[decoded["name"][i]],
            decoded["duration"][i],
            decoded["status"][i],
            kinds[decoded["kind"][i]],
            decoded["stage"][i],
            retry_after.get(i),
        )
        for i in range(rows)
    ]


def read_samples(folder: Path) -> Samples:
    """Every sample of the run, in start order, relative to the run's start."""
    starts: dict[str, list[float]] = {"master": [], "local": [], "worker": []}
    raw: list[tuple[float, str, float, int, str, int, str | None]] = []
    damaged = 0
    files = sorted(folder.glob("samples-*.jsonl")) if folder.is_dir() else []
    for path in files:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if "start" in data:
                    starts.setdefault(str(data.get("role")), []).append(float(data["start"]))
                else:
                    raw.extend(_columns(data))
            except (ValueError, KeyError, TypeError, IndexError):
                damaged += 1
    start = next(
        (min(starts[role]) for role in ("master", "local", "worker") if starts.get(role)),
        None,
    )
    if start is None and raw:
        start = min(r[0] for r in raw)
    origin = start or 0.0
    items = sorted(
        (Sample(r[0] - origin, r[1], r[2], r[3], r[4], r[5], r[6]) for r in raw),
        key=lambda s: s.t,
    )
    return Samples(start, tuple(items), len(files), damaged)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    if not sorted_values:
        raise ValueError("no values")
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    """Aggregates over a set of samples."""

    requests: int
    failures: int
    timeouts: int
    no_response: int
    status: Counter[int]
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    max_timeout_ms: float | None
    """Longest request among those that timed out (how promptly the client gave up)."""

    @property
    def error_rate_percent(self) -> float:
        return 100.0 * self.failures / self.requests if self.requests else 0.0

    @property
    def timeout_rate_percent(self) -> float:
        return 100.0 * self.timeouts / self.requests if self.requests else 0.0


def summarize(samples: Iterable[Sample]) -> Summary:
    items = list(samples)
    durations = sorted(s.duration_ms for s in items)
    timeouts = [s.duration_ms for s in items if s.kind == "timeout"]

    def pct(q: float) -> float | None:
        return percentile(durations, q) if durations else None

    return Summary(
        requests=len(items),
        failures=sum(1 for s in items if s.failed),
        timeouts=len(timeouts),
        no_response=sum(1 for s in items if s.status == 0),
        status=Counter(s.status for s in items),
        p50_ms=pct(50),
        p90_ms=pct(90),
        p95_ms=pct(95),
        p99_ms=pct(99),
        max_ms=durations[-1] if durations else None,
        mean_ms=sum(durations) / len(durations) if durations else None,
        max_timeout_ms=max(timeouts) if timeouts else None,
    )


def buckets(samples: Sequence[Sample], width: float, until: float) -> list[list[Sample]]:
    """Samples per time bucket of ``width`` seconds, from 0 to ``until`` (later ones join the last)."""
    count = max(1, math.ceil(until / width))
    out: list[list[Sample]] = [[] for _ in range(count)]
    for sample in samples:
        index = min(max(int(sample.t // width), 0), count - 1)
        out[index].append(sample)
    return out


HISTOGRAM_EDGES_MS = (
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1000,
    2000,
    5000,
    10000,
    20000,
    60000,
)


def histogram(samples: Iterable[Sample]) -> list[tuple[float, float]]:
    """(upper edge in ms, count) for the latency distribution chart; the last edge is open."""
    counts = [0] * (len(HISTOGRAM_EDGES_MS) + 1)
    for sample in samples:
        index = next(
            (i for i, edge in enumerate(HISTOGRAM_EDGES_MS) if sample.duration_ms <= edge),
            len(HISTOGRAM_EDGES_MS),
        )
        counts[index] += 1
    edges = [*HISTOGRAM_EDGES_MS, math.inf]
    last = max((i for i, c in enumerate(counts) if c), default=-1)
    return [
        (float(edges[i]) if edges[i] != math.inf else float(HISTOGRAM_EDGES_MS[-1] * 10), counts[i])
        for i in range(last + 1)
    ]
