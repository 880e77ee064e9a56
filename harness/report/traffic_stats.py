"""Monitoring figures aggregated from a run's traffic logs, while streaming them.

The template's "Metrics to track" (success/failure rates, response times, rate-limit usage,
error frequencies by type) are computed over *every* exchange the provider engine logged, so
the report shows what monitoring would have shown. A load run can log millions of records; the
logs are read in fixed-size chunks and folded into counters and a log-bucketed latency histogram
(2 % wide buckets: percentiles within about 1 % of the exact value), never held in memory.
Memory is bounded by the number of distinct statuses, faults, operations and run seconds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

CHUNK_BYTES = 4 * 1024 * 1024
_BUCKET_BASE_MS = 0.01
_BUCKET_STEP = math.log(1.02)
MAX_OPERATIONS = 50
"""Operations beyond this many distinct ids are counted under ``(other)``."""


@dataclass(frozen=True)
class TrafficSummary:
    """What the monitoring section shows; all counts over every record read."""

    files: tuple[str, ...]
    records: int
    by_side: Mapping[str, int]
    succeeded: int
    """Status below 400."""
    failed: int
    """Status 400 and above, or no response at all."""
    no_response: int
    statuses: Mapping[str, int]
    error_types: Mapping[str, int]
    operations: Mapping[str, tuple[int, int]]
    """Operation id -> (requests, failures)."""
    latency_ms: Mapping[str, float]
    """``p50``, ``p90``, ``p95``, ``p99``, ``max``, ``mean`` over responses that arrived."""
    latency_histogram: tuple[tuple[float, int], ...]
    """(bucket lower bound in ms, count), for the distribution chart."""
    rate_limited: int
    early_retries: int
    max_rate_limit_usage: float | None
    """Highest share of the rate limit used (1 - remaining/limit), ``None`` without headers."""
    per_second: tuple[tuple[float, int, int], ...]
    """(seconds since the first record, requests, failures)."""
    bad_lines: int = 0

    @property
    def failure_rate(self) -> float:
        return self.failed / self.records if self.records else 0.0


@dataclass
class _Accumulator:
    records: int = 0
    by_side: Counter[str] = field(default_factory=Counter)
    succeeded: int = 0
    failed: int = 0
    no_response: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    error_types: Counter[str] = field(default_factory=Counter)
    operations: dict[str, list[int]] = field(default_factory=dict)
    buckets: Counter[int] = field(default_factory=Counter)
    latency_sum: float = 0.0
    latency_count: int = 0
    latency_max: float = 0.0
    rate_limited: int = 0
    early_retries: int = 0
    max_usage: float | None = None
    seconds: dict[int, list[int]] = field(default_factory=dict)
    bad_lines: int = 0

    def add(self, record: Mapping[str, Any]) -> None:
        self.records += 1
        self.by_side[str(record.get("side"))] += 1
        status = record.get("status")
        fault = record.get("fault")
        failed = True
        if status is None:
            self.no_response += 1
            self.statuses["no response"] += 1
            self.error_types["no response (reset, hang or gave up)"] += 1
        else:
            self.statuses[str(status)] += 1
            if status < 400:
                failed = False
                self.succeeded += 1
            elif status == 429:
                self.rate_limited += 1
                self.error_types["429 rate limited"] += 1
            elif status in (401, 403):
                self.error_types[f"{status} authentication"] += 1
            elif status >= 500:
                self.error_types[f"{status} server error"] += 1
            else:
                self.error_types[f"{status} client error"] += 1
            latency = record.get("latency_ms")
            if isinstance(latency, int | float) and latency >= 0:
                self.latency_sum += latency
                self.latency_count += 1
                if latency > self.latency_max:
                    self.latency_max = latency
                index = (
                    int(math.log(latency / _BUCKET_BASE_MS) / _BUCKET_STEP)
                    if latency > _BUCKET_BASE_MS
                    else 0
                )
                self.buckets[index] += 1
        if failed:
            self.failed += 1
        if fault:
            self.error_types[f"fault injected: {fault}"] += 1
        operation = record.get("operation_id") or "(unknown)"
        counts = self.operations.get(operation)
        if counts is None:
            if len(self.operations) >= MAX_OPERATIONS:
                operation = "(other)"
            counts = self.operations.setdefault(operation, [0, 0])
        counts[0] += 1
        counts[1] += failed
        if record.get("early_retry"):
            self.early_retries += 1
        limits = record.get("rate_limit")
        if limits:
            limit, remaining = limits.get("limit"), limits.get("remaining")
            if isinstance(limit, int | float) and isinstance(remaining, int | float) and limit > 0:
                usage = max(0.0, min(1.0, 1.0 - remaining / limit))
                if self.max_usage is None or usage > self.max_usage:
                    self.max_usage = usage
        started = record.get("started_wall")
        if isinstance(started, int | float) and started > 0:
            second = self.seconds.get(int(started))
            if second is None:
                second = self.seconds[int(started)] = [0, 0]
            second[0] += 1
            second[1] += failed

    def percentile(self, share: float) -> float:
        if not self.latency_count:
            return 0.0
        wanted = share * self.latency_count
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= wanted:
                low = _BUCKET_BASE_MS * math.exp(index * _BUCKET_STEP)
                return min(low * math.exp(_BUCKET_STEP / 2), self.latency_max)
        return self.latency_max

    def histogram(self, bins: int = 40) -> tuple[tuple[float, int], ...]:
        """The fine buckets merged into about ``bins`` display bins (log-spaced)."""
        if not self.buckets:
            return ()
        low, high = min(self.buckets), max(self.buckets)
        width = max(1, math.ceil((high - low + 1) / bins))
        merged: Counter[int] = Counter()
        for index, count in self.buckets.items():
            merged[low + (index - low) // width * width] += count
        return tuple(
            (round(_BUCKET_BASE_MS * math.exp(index * _BUCKET_STEP), 3), merged[index])
            for index in sorted(merged)
        )

    def summary(self, files: tuple[str, ...]) -> TrafficSummary:
        start = min(self.seconds) if self.seconds else 0
        return TrafficSummary(
            files=files,
            records=self.records,
            by_side=dict(self.by_side),
            succeeded=self.succeeded,
            failed=self.failed,
            no_response=self.no_response,
            statuses=dict(self.statuses.most_common()),
            error_types=dict(self.error_types.most_common()),
            operations={k: (v[0], v[1]) for k, v in sorted(self.operations.items())},
            latency_ms={
                "p50": round(self.percentile(0.50), 2),
                "p90": round(self.percentile(0.90), 2),
                "p95": round(self.percentile(0.95), 2),
                "p99": round(self.percentile(0.99), 2),
                "max": round(self.latency_max, 2),
                "mean": round(self.latency_sum / self.latency_count, 2)
                if self.latency_count
                else 0.0,
            },
            latency_histogram=self.histogram(),
            rate_limited=self.rate_limited,
            early_retries=self.early_retries,
            max_rate_limit_usage=self.max_usage,
            per_second=tuple(
                (float(second - start), counts[0], counts[1])
                for second, counts in sorted(self.seconds.items())
            ),
            bad_lines=self.bad_lines,
        )


def _lines(path: Path) -> Iterator[bytes]:
    """The lines of a file, read in fixed-size chunks (a torn last line is still yielded)."""
    with path.open("rb") as stream:
        rest = b""
        while chunk := stream.read(CHUNK_BYTES):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest


def summarize_traffic(paths: Iterable[Path], *, root: Path | None = None) -> TrafficSummary:
    """Fold every record of every log into one summary (unreadable lines are counted, skipped:
    a report must render even from a log torn by a crash)."""
    acc = _Accumulator()
    names: list[str] = []
    loads = orjson.loads
    for path in paths:
        names.append(path.relative_to(root).as_posix() if root else str(path))
        for line in _lines(path):
            if not line.strip():
                continue
            try:
                record = loads(line)
            except orjson.JSONDecodeError:
                acc.bad_lines += 1
                continue
            if isinstance(record, dict):
                acc.add(record)
            else:
                acc.bad_lines += 1
    return acc.summary(tuple(names))


def traffic_logs(artifacts: Iterable[Mapping[str, str]], out_dir: Path) -> list[Path]:
    """The traffic logs among a run's artifacts: a ``.jsonl`` file whose artifact name or path
    says ``traffic``, that exists under ``out_dir``; each file once."""
    found: list[Path] = []
    base = out_dir.resolve()
    for mapping in artifacts:
        for name, relative in mapping.items():
            if not relative.endswith(".jsonl"):
                continue
            if "traffic" not in name.lower() and "traffic" not in relative.lower():
                continue
            path = (base / relative).resolve()
            if path.is_relative_to(base) and path.is_file() and path not in found:
                found.append(path)
    return found
