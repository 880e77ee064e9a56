"""Monitoring figures folded from traffic logs while streaming them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness.report import traffic_stats
from harness.report.traffic_stats import summarize_traffic, traffic_logs

from .synthetic import write_traffic


def _record(seq: int, status: int | None, latency: float, **extra: object) -> str:
    return json.dumps(
        {
            "seq": seq,
            "side": "provider",
            "operation_id": "listPets",
            "method": "GET",
            "path": "/pets",
            "status": status,
            "latency_ms": latency,
            "started_wall": 1000.0 + seq / 10,
            **extra,
        }
    )


def test_counts_rates_and_percentiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(traffic_stats, "CHUNK_BYTES", 100)  # lines straddle every chunk
    rng = random.Random(5)
    latencies = [rng.uniform(1, 500) for _ in range(1000)]
    lines = [_record(i, 200, lat) for i, lat in enumerate(latencies)]
    lines += [
        _record(1000, 429, 1.0, rate_limit={"limit": 10, "remaining": 1}, early_retry=True),
        _record(1001, 503, 2.0),
        _record(1002, None, 0.0, fault="reset"),
        "{torn",
    ]
    log = tmp_path / "traffic.jsonl"
    log.write_text("\n".join(lines))  # no final newline: the torn tail still counts as bad
    summary = summarize_traffic([log], root=tmp_path)
    assert summary.records == 1003 and summary.bad_lines == 1
    assert summary.succeeded == 1000 and summary.failed == 3 and summary.no_response == 1
    assert summary.rate_limited == 1 and summary.early_retries == 1
    assert summary.max_rate_limit_usage == pytest.approx(0.9)
    assert summary.error_types == {
        "429 rate limited": 1,
        "503 server error": 1,
        "no response (reset, hang or gave up)": 1,
        "fault injected: reset": 1,
    }
    measured = sorted([*latencies, 1.0, 2.0])
    exact = measured[int(0.95 * len(measured)) - 1]
    assert summary.latency_ms["p95"] == pytest.approx(exact, rel=0.02)
    assert summary.latency_ms["max"] == pytest.approx(max(latencies), abs=0.01)
    assert sum(count for _, count in summary.latency_histogram) == 1002
    assert sum(n for _, n, _ in summary.per_second) == 1003
    assert summary.operations == {"listPets": (1003, 3)}
    assert summary.files == ("traffic.jsonl",)


def test_only_traffic_logs_inside_the_run_folder(tmp_path: Path) -> None:
    write_traffic(tmp_path / "load" / "traffic.jsonl", 3)
    (tmp_path / "quarantine.jsonl").write_text("{}\n")
    outside = tmp_path.parent / "outside-traffic.jsonl"
    outside.write_text("{}\n")
    found = traffic_logs(
        [
            {"traffic": "load/traffic.jsonl", "quarantine": "quarantine.jsonl"},
            {"log": "../outside-traffic.jsonl", "gone": "x/traffic.jsonl"},
        ],
        tmp_path,
    )
    assert found == [(tmp_path / "load" / "traffic.jsonl").resolve()]
