"""The traffic log: redacted before it is kept, numbered in order, on disk the moment append returns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from harness.problems import InputError
from harness.provider.messages import Hang, Outcome, Request, Reset, Respond
from harness.provider.traffic import (
    TrafficLog,
    TrafficRecord,
    read_traffic,
    redact_record,
    truncate_utf8,
)
from harness.redact import REDACTED, Redactor

from ..conftest import REPO

SECRET = "sk_live_4f9a2c1e8b7d"


def make_record(**changes: object) -> TrafficRecord:
    values: dict[str, object] = {
        "side": "provider",
        "operation_id": "listPets",
        "method": "GET",
        "path": "/v1/pets",
        "query": "limit=2",
        "status": 200,
        "started_monotonic": 10.0,
        "ended_monotonic": 10.25,
        "started_wall": 1_700_000_000.0,
        "ended_wall": 1_700_000_000.25,
        "latency_ms": 250.0,
        "request_bytes": 0,
        "response_bytes": 23,
        "client_id": "127.0.0.1:50000",
        "auth_identity": "client-1",
        "rate_limit": {"limit": 10, "remaining": 9, "reset": 60, "retry_after": None},
        "validation_errors": ("response: 'id' is required",),
        "request_headers": (("authorization", f"Bearer {SECRET}"), ("accept", "*/*")),
        "response_headers": (("content-type", "application/json"),),
        "response_body": '[{"id": 1, "name": "a"}]',
        "note": "ok",
    }
    values.update(changes)
    return TrafficRecord(**values)  # type: ignore[arg-type]


def test_json_round_trip() -> None:
    record = make_record(seq=7, fault="reset-after-3", early_retry=True, status=None)
    assert TrafficRecord.from_json(record.to_json()) == record
    assert TrafficRecord.from_dict(json.loads(record.to_json())) == record
    assert json.loads(record.to_json()) == record.to_dict()
    assert TrafficRecord.from_json({**record.to_dict(), "added_later": 1}) == record


@pytest.mark.parametrize(
    "bad", [{}, {"side": "both", "method": "GET", "path": "/"}, {"side": "provider", "path": "/"}]
)
def test_from_dict_rejects_records_missing_their_identity(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TrafficRecord.from_dict(bad)


def test_append_redacts_numbers_and_writes(tmp_path: Path) -> None:
    path = tmp_path / "run" / "traffic.jsonl"
    with TrafficLog.open(path, Redactor.of([SECRET])) as log:
        first = log.append(make_record(query=f"api_key={SECRET}&limit=2", seq=99))
        rest = log.append_many([make_record(path=f"/v1/pets/{i}") for i in range(3)])
        assert [r.seq for r in (first, *rest)] == [1, 2, 3, 4]
        assert first.request_header("Authorization") == f"Bearer {REDACTED}"
        assert first.query == f"api_key={REDACTED}&limit=2"
        assert log.count == len(log) == 4
        assert log.records() == [first, *rest]
        assert log.records(since_seq=2) == rest[1:]
        assert read_traffic(path) == [first, *rest]  # readable while the log is open
    assert SECRET not in path.read_text()
    with pytest.raises(RuntimeError, match="closed"):
        log.append(make_record())
    log.close()  # idempotent


def test_in_memory_log_and_add_secrets() -> None:
    log = TrafficLog.open(None, Redactor())
    issued = "issued-access-token-77"
    assert log.append(make_record(note=issued)).note == issued
    log.add_secrets([issued])
    assert log.append(make_record(note=issued)).note == REDACTED
    assert [r.seq for r in log.records()] == [1, 2]


def test_file_only_log_reads_records_back(tmp_path: Path) -> None:
    log = TrafficLog.open(tmp_path / "t.jsonl", Redactor(), keep_in_memory=False)
    stored = log.append_many([make_record(path=f"/p/{i}") for i in range(5)])
    assert log.records() == stored
    assert log.records(since_seq=3) == stored[3:]
    log.close()
    with pytest.raises(ValueError):
        TrafficLog.open(None, Redactor(), keep_in_memory=False)


def test_bodies_are_redacted_before_truncation(tmp_path: Path) -> None:
    # The secret straddles the cut: truncating first would leave its first half in the log.
    body = "x" * 90 + SECRET + "y" * 100
    log = TrafficLog.open(tmp_path / "t.jsonl", Redactor.of([SECRET]), max_body_bytes=100)
    stored = log.append(
        make_record(
            response_headers=(("content-type", "text/plain"),),
            response_body=body,
            request_body='{"password": "hunter22"}',
            request_headers=(("content-type", "application/json"),),
        )
    )
    assert stored.response_body == "x" * 90 + REDACTED
    assert stored.response_body_truncated
    assert stored.request_body == f'{{"password": "{REDACTED}"}}'
    assert not stored.request_body_truncated
    assert SECRET[:6] not in (tmp_path / "t.jsonl").read_text()
    log.close()


def test_truncation_cuts_on_a_character_boundary() -> None:
    assert truncate_utf8("é" * 10, 5) == ("éé", True)
    assert truncate_utf8("é" * 10, 20) == ("é" * 10, False)
    assert truncate_utf8("abc", 3) == ("abc", False)


def test_concurrent_appends_get_unique_ordered_seqs(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    log = TrafficLog.open(path, Redactor.of([SECRET]))

    def worker(n: int) -> None:
        for i in range(100):
            log.append(make_record(path=f"/w/{n}/{i}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    on_disk = read_traffic(path)
    assert [r.seq for r in on_disk] == list(range(1, 401))
    assert on_disk == log.records()
    assert len({r.path for r in on_disk}) == 400


def test_read_traffic_drops_a_torn_last_line_only(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = [make_record(seq=i).to_json() for i in (1, 2, 3)]
    path.write_text("\n".join(lines) + "\n" + lines[0][:40])
    assert [r.seq for r in read_traffic(path)] == [1, 2, 3]
    path.write_text("\n".join(lines))  # whole last line, newline missing
    assert [r.seq for r in read_traffic(path)] == [1, 2, 3]
    path.write_text(lines[0] + "\n" + lines[1][:40] + "\n" + lines[2] + "\n")
    with pytest.raises(InputError) as caught:
        read_traffic(path)
    assert [(p.file, p.line) for p in caught.value.problems] == [(str(path), 2)]
    with pytest.raises(InputError, match="file not found"):
        read_traffic(tmp_path / "missing.jsonl")


def _request(body: bytes = b"") -> Request:
    return Request(
        method="POST",
        path="/v1/pets",
        query="",
        headers=(("content-type", "application/json"), ("x-api-key", "k-live-12345")),
        body=body,
        client="127.0.0.1:40000",
        connection_id=1,
        started_monotonic=5.0,
        started_wall=1_700_000_000.0,
    )


def test_from_exchange_records_what_reached_the_client() -> None:
    respond = Respond(
        status=201, headers=(("content-type", "application/json"),), body=b'{"id": 12345}'
    )
    done = Outcome(status=201, bytes_sent=120, ended_monotonic=5.5, ended_wall=1_700_000_000.5)
    record = TrafficRecord.from_exchange(
        _request(b'{"name": "rex"}'), respond, done, side="provider", fault=None
    )
    assert (record.status, record.latency_ms, record.request_bytes) == (201, 500.0, 15)
    assert (record.response_body, record.response_bytes) == ('{"id": 12345}', 120)
    assert record.request_body == '{"name": "rex"}'

    cut = Respond(status=200, body=b"0123456789", truncate_at=4)
    record = TrafficRecord.from_exchange(_request(), cut, done, side="provider", fault="truncate")
    assert (record.response_body, record.fault, record.request_body) == ("0123", "truncate", None)

    headers_only = Respond(status=200, body=b"0123", close_after_headers=True)
    assert (
        TrafficRecord.from_exchange(_request(), headers_only, done, side="provider").response_body
        is None
    )

    gone = Outcome(status=None, bytes_sent=0, ended_monotonic=6.0, ended_wall=0.0, note="reset")
    for action in (Reset(), Hang()):
        record = TrafficRecord.from_exchange(_request(), action, gone, side="destination")
        assert (record.status, record.response_headers, record.note) == (None, (), "reset")
    stored = redact_record(record, Redactor())
    assert stored.request_header("x-api-key") == REDACTED


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from harness.provider.traffic import TrafficLog, TrafficRecord
    from harness.redact import Redactor

    path, count = Path(sys.argv[1]), int(sys.argv[2])
    log = TrafficLog.open(path, Redactor.of(["sk_live_4f9a2c1e8b7d"]))
    for i in range(count):
        log.append(TrafficRecord(side="provider", method="GET", path=f"/items/{i}", status=200,
                                 response_body="sk_live_4f9a2c1e8b7d " + "x" * 100))
        print(i + 1, flush=True)
    time.sleep(60)  # killed long before; a user-space buffer would still hold every line
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_records_survive_sigkill(tmp_path: Path) -> None:
    count = 25  # ~15 KiB of lines: a buffered writer would still hold the last several KiB
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    path = tmp_path / "traffic.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path), str(count)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        for expected in range(1, count + 1):
            assert proc.stdout.readline().strip() == str(expected)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    records = read_traffic(path)
    assert [r.path for r in records] == [f"/items/{i}" for i in range(count)]
    assert all(r.response_body == f"{REDACTED} " + "x" * 100 for r in records)


def _values(path: str) -> dict[str, object]:
    """Every field of a record but ``seq``, as the engine hands them to ``append_values``."""
    record = make_record(path=path, request_body=f'{{"secret": "{SECRET}"}}')
    return {**record.__dict__, "seq": 0}  # seq stays the first key: the line's field order


def test_append_values_redacts_and_writes_at_once(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    log = TrafficLog.open(path, Redactor.of([SECRET]), keep_in_memory=False)
    assert log.append_values(_values("/a")) == 1
    line = path.read_text()
    assert line.startswith('{"seq":1,') and line.endswith("\n")
    assert SECRET not in line and REDACTED in line
    assert [r.path for r in read_traffic(path)] == ["/a"]
    log.close()


def test_deferred_appends_reach_the_file_on_flush_in_seq_order(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    log = TrafficLog.open(path, Redactor.of([SECRET]))
    assert [log.append_values(_values(f"/d/{i}"), defer=True) for i in range(3)] == [1, 2, 3]
    assert log.count == 3 and path.read_bytes() == b""  # numbered and kept, not yet written
    assert [r.path for r in log.records()] == ["/d/0", "/d/1", "/d/2"]  # memory has them
    log.flush()
    assert [r.seq for r in read_traffic(path)] == [1, 2, 3]
    log.append_values(_values("/d/3"), defer=True)
    log.append_values(_values("/d/4"))  # a plain append writes what waits first
    assert [r.seq for r in read_traffic(path)] == [1, 2, 3, 4, 5]
    log.append_values(_values("/d/5"), defer=True)
    log.close()  # closing flushes
    assert [r.path for r in read_traffic(path)][-1] == "/d/5"
    assert SECRET not in path.read_text()


def test_file_only_log_flushes_before_reading_back(tmp_path: Path) -> None:
    log = TrafficLog.open(tmp_path / "t.jsonl", Redactor(), keep_in_memory=False)
    log.append_values(_values("/x"), defer=True)
    assert [r.path for r in log.records()] == ["/x"]
    log.close()
