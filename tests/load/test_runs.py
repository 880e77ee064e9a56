"""Real Locust runs (subprocesses) against the real simulator, a few seconds each.

Each run is bounded by its profile (2-4 s here) and by the harness's own time bound; every test
checks that no Locust process is left behind (the ``no_leftovers`` fixture).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from harness.load import LoadOptions, run_load
from harness.load.samples import read_samples
from harness.project import load_project
from harness.provider.api import simulate
from harness.provider.traffic import read_traffic
from harness.results.model import StageResult
from harness.results.serialize import read_stage

from ..conftest import EXAMPLE_SPEC, REPO, run_cli
from .conftest import replace_once, spec_variant

pytestmark = pytest.mark.usefixtures("no_leftovers")


def _quiet(_line: str) -> None:
    pass


def _criteria(result: StageResult) -> dict[str, bool | None]:
    return {c.id: c.passed for c in result.criteria}


def _check(result: StageResult, suffix: str) -> str:
    (check,) = [c for c in result.checks if c.id.endswith(suffix)]
    return check.status


def test_smoke_passes_against_the_simulated_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[str] = []
    # A relative output folder, as `harness run` gets by default (reports/...): Locust runs in
    # a working folder of its own, so the stage must hand it absolute paths.
    monkeypatch.chdir(tmp_path)
    result = run_load(
        load_project(EXAMPLE_SPEC),
        LoadOptions(profile="smoke", duration_seconds=3, cwd=REPO),
        Path("."),
        lines.append,
    )
    assert result.status == "passed", result.summary
    assert result.exit_code == 0
    assert set(_criteria(result)) >= {
        "performance.response_time.p50_ms",
        "performance.response_time.p95_ms",
        "performance.response_time.p99_ms",
        "launch.success_criteria.max_response_time_seconds",
        "launch.success_criteria.max_error_rate_percent",
        "load.arrival_rate",  # smoke runs below the declared throughput
        "error_handling.request_timeout.seconds",
    }
    assert all(_criteria(result).values())
    assert {c.id.split("/")[-1] for c in result.checks} >= {"traffic-cross-check"}
    assert _check(result, "traffic-cross-check") == "passed"
    # Progress was shown while it ran: users, rate, p95, failures.
    assert any("users" in line and "req/s" in line and "p95" in line for line in lines[1:])

    load = tmp_path / "load"
    for artifact in ("locust-report.html", "locust_stats.csv", "locust_stats_history.csv"):
        assert (load / artifact).is_file(), artifact
    assert result.artifacts["locust_html_report"] == "load/locust-report.html"

    # Nothing lost, nothing invented: the same requests in the three witnesses.
    samples = read_samples(load / "samples").items
    traffic = read_traffic(load / "traffic.jsonl")
    stats = json.loads((load / "locust-stats.json").read_text())
    assert len(traffic) == len(samples) == sum(e["num_requests"] for e in stats)
    assert Counter(r.status for r in traffic) == Counter(s.status for s in samples)
    # The arrival rate is the smoke profile's 2 req/s, evenly spaced (Locust's own pacing).
    pets = sorted(s.t for s in samples if s.name == "listPets" and s.t < 3)
    assert len(pets) == 6
    gaps = [b - a for a, b in itertools.pairwise(pets)]
    assert all(0.3 < gap < 0.7 for gap in gaps), gaps
    # Percentiles come from the exact durations, not Locust's rounded buckets.
    durations = sorted(s.duration_ms for s in samples)
    assert result.metrics["max_ms"] == pytest.approx(durations[-1], abs=0.001)
    assert {s.name for s in result.series} >= {"rps", "p95", "errors", "latency distribution"}
    # The result round-trips through JSON (what the face writes).
    from harness.results.serialize import write_json

    write_json(tmp_path / "load.json", result)
    assert read_stage(tmp_path / "load.json") == result


def test_a_p95_the_slow_simulator_cannot_meet_fails_exactly_that_criterion(
    tmp_path: Path,
) -> None:
    # loadtests/profiles/slow-p95.yaml: a fault plan makes every third page one second late.
    out = tmp_path / "out"
    cli = run_cli(
        "load",
        str(EXAMPLE_SPEC),
        "--profile",
        "slow-p95",
        "--duration",
        "3",
        "--out",
        str(out),
        "--junit",
        str(out / "junit.xml"),
        cwd=REPO,
    )
    assert cli.code == 1, cli.stderr + cli.stdout
    junit = (out / "junit.xml").read_text()
    assert "load/slow-p95/performance.response_time.p95_ms" in junit
    assert junit.count("<failure") >= 1
    result = read_stage(out / "load.json")
    failed = [c for c in result.criteria if c.passed is False]
    assert [c.id for c in failed] == ["performance.response_time.p95_ms"]
    (p95,) = failed
    assert p95.target_value == 800
    assert p95.measured_value is not None and p95.measured_value >= 1000
    assert p95.measured == f"{p95.measured_value:.1f} ms"
    assert all(c.passed for c in result.criteria if c is not p95)
    assert _check(result, "traffic-cross-check") == "passed"
    assert "Response time p95" in cli.stdout and "FAILED" in cli.stdout


def test_rate_limit_profile_counts_429s_over_the_limit_and_none_behind_the_limiter(
    tmp_path: Path,
) -> None:
    # A small burst, so the provider's bucket empties within the over-limit stage's 2 s.
    spec = spec_variant(tmp_path, lambda t: replace_once(t, "burst: 20", "burst: 4"))
    result = run_load(
        load_project(spec),
        LoadOptions(profile="rate-limit", duration_seconds=4),
        tmp_path,
        _quiet,
    )
    assert result.status == "passed", result.summary
    criteria = {c.id: c for c in result.criteria}
    refused = criteria["rate_limits"]
    assert refused.passed and refused.measured_value is not None and refused.measured_value >= 3
    assert criteria["rate_limits.retry_after_format"].passed
    limited = criteria["error_handling.rate_limit.client_requests_per_second"]
    assert limited.passed and limited.measured_value == 0
    samples = read_samples(tmp_path / "load" / "samples").items
    assert not [s for s in samples if s.stage == 0 and s.status == 429]
    over = [s for s in samples if s.stage == 1 and s.status == 429]
    assert len(over) == refused.measured_value == result.metrics["status_429"]
    assert all(s.retry_after and s.retry_after.isdigit() for s in over)
    # The simulator's log agrees, 429 for 429.
    traffic = read_traffic(tmp_path / "load" / "traffic.jsonl")
    assert sum(1 for r in traffic if r.status == 429) == len(over)
    assert _check(result, "traffic-cross-check") == "passed"


def test_two_workers_give_the_same_thresholds_and_cross_check(tmp_path: Path) -> None:
    result = run_load(
        load_project(EXAMPLE_SPEC),
        LoadOptions(profile="smoke", duration_seconds=2, workers=2),
        tmp_path,
        _quiet,
    )
    assert result.status == "passed", result.summary
    assert _check(result, "traffic-cross-check") == "passed"
    # The workers sent their samples to the master (Locust messages): one file, no shared disk.
    files = sorted(p.name for p in (tmp_path / "load" / "samples").glob("samples-*"))
    assert len(files) == 1 and files[0].startswith("samples-master-")
    assert (tmp_path / "load" / "locust-worker-2.log").is_file()
    assert result.metrics["workers"] == 2
    # One token per worker process, shared by its users.
    samples = read_samples(tmp_path / "load" / "samples").items
    assert sum(1 for s in samples if s.name == "createToken") == 2


def test_timeouts_profile_sees_requests_cut_at_the_declared_timeout(tmp_path: Path) -> None:
    # Tokens live 1 s here, so the run also shows the shared token being refreshed in time.
    spec = spec_variant(
        tmp_path,
        lambda t: replace_once(
            replace_once(
                t, "request_timeout:\n    seconds: 5", "request_timeout:\n    seconds: 0.4"
            ),
            "token_ttl_seconds: 300",
            "token_ttl_seconds: 1",
        ),
    )
    result = run_load(
        load_project(spec), LoadOptions(profile="timeouts", duration_seconds=3), tmp_path, _quiet
    )
    assert result.status == "passed", result.summary
    criteria = {c.id: c for c in result.criteria}
    cut = criteria["error_handling.request_timeout.seconds"]
    assert cut.passed and cut.measured_value is not None
    assert 400 <= cut.measured_value <= 650
    samples = read_samples(tmp_path / "load" / "samples").items
    timed_out = [s for s in samples if s.kind == "timeout"]
    assert timed_out and all(s.status == 0 for s in timed_out)
    # The simulator logged those as answers that never reached the client.
    traffic = read_traffic(tmp_path / "load" / "traffic.jsonl")
    assert sum(1 for r in traffic if r.status is None) == len(timed_out)
    assert _check(result, "traffic-cross-check") == "passed"
    grants = [r.request_body or "" for r in traffic if r.operation_id == "createToken"]
    assert grants[0].count("grant_type=client_credentials") == 1
    assert any("grant_type=refresh_token" in g for g in grants[1:])
    assert not [r for r in traffic if r.status == 401]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_live_target_with_a_remote_worker_stays_under_the_declared_limit(tmp_path: Path) -> None:
    """A "live" sandbox (a second simulator on an allowed loopback host), loaded by a worker
    started apart from the harness, as on another machine: it downloads the plan and the
    locustfiles from the master (``-f -``) and has only the credentials in its environment."""
    example = load_project(EXAMPLE_SPEC)
    port = _free_port()
    with simulate(example) as sandbox:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                "-",
                "--worker",
                "--master-host",
                "127.0.0.1",
                "--master-port",
                str(port),
            ],
            cwd=tmp_path,
            # Locust writes the locustfiles it downloads to the temporary folder.
            env={**os.environ, **sandbox.credentials.by_env, "TMPDIR": str(tmp_path)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        spec = spec_variant(
            tmp_path,
            lambda t: replace_once(
                replace_once(
                    t,
                    "base_url: https://sandbox.petstore.example/v1",
                    f"base_url: {sandbox.url}/v1",
                ),
                "allowed_hosts: [sandbox.petstore.example]",
                "allowed_hosts: [127.0.0.1]",
            ),
        )
        try:
            result = run_load(
                load_project(spec),
                LoadOptions(
                    profile="smoke",
                    target="live",
                    duration_seconds=2,
                    remote_workers=1,
                    master_bind=("127.0.0.1", port),
                    environ=dict(sandbox.credentials.by_env),
                ),
                tmp_path,
                _quiet,
            )
            assert worker.wait(15) == 0  # the master ended it
        finally:
            worker.kill()
            worker.wait()
        sent = sandbox.records()
    assert result.status == "passed", result.summary
    assert not any(c.id.endswith("traffic-cross-check") for c in result.checks)
    assert {r.operation_id for r in sent} == {"createToken", "listPets"}
    assert all(r.path.startswith("/v1/") for r in sent)
    assert result.metrics["locust_requests"] == len(sent)


def test_integration_target_drives_the_service_the_spec_names(tmp_path: Path) -> None:
    example = load_project(EXAMPLE_SPEC)
    with simulate(example, side="destination") as service:
        spec = spec_variant(
            tmp_path,
            lambda t: (
                t
                + "\nload:\n  integration:\n"
                + f"    url: {service.url}\n"
                + "    openapi: destination.openapi.yaml\n"
                + "    operations:\n      - {operation: upsertItem, weight: 3}\n"
                + "      - {operation: listItems}\n"
            ),
        )
        result = run_load(
            load_project(spec),
            LoadOptions(profile="smoke", target="integration", duration_seconds=2),
            tmp_path,
            _quiet,
        )
        sent = service.records()
    assert result.status == "passed", result.summary
    assert {r.operation_id for r in sent} <= {"upsertItem", "listItems"}
    assert all(r.status in (200, 201) for r in sent)
    assert not any(r.request_header("authorization") for r in sent)


def test_a_locust_crash_is_one_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken_locustfile.py"
    broken.write_text("raise RuntimeError('the locustfile is broken on purpose')\n")
    started = time.monotonic()
    cli = run_cli(
        "load",
        str(EXAMPLE_SPEC),
        "--locustfile",
        str(broken),
        "--duration",
        "2",
        "--out",
        str(tmp_path / "out"),
    )
    assert cli.code == 2
    assert time.monotonic() - started < 30
    assert "Traceback" not in cli.stderr
    result = read_stage(tmp_path / "out" / "load.json")
    assert result.status == "error" and result.incomplete
    assert result.error is not None
    assert "before the run started" in result.error
    assert "the locustfile is broken on purpose" in result.error


def test_the_example_locustfile_in_loadtests_runs_under_the_profile(tmp_path: Path) -> None:
    example = REPO / "loadtests" / "locustfiles" / "browse_then_read.py"
    result = run_load(
        load_project(EXAMPLE_SPEC),
        LoadOptions(profile="smoke", duration_seconds=2, locustfile=example),
        tmp_path,
        _quiet,
    )
    assert result.status == "passed", result.summary
    assert _check(result, "traffic-cross-check") == "passed"
    names = {s.name for s in read_samples(tmp_path / "load" / "samples").items}
    assert names == {"createToken", "listPets", "getPet"}


def test_a_locustfile_that_ignores_the_pacing_is_stopped_at_the_request_cap(
    tmp_path: Path,
) -> None:
    greedy = tmp_path / "greedy_locustfile.py"
    greedy.write_text(
        "import harness_hooks as hooks\n"
        "from locust import FastHttpUser, constant, task\n\n\n"
        "class Greedy(FastHttpUser):\n"
        "    host = hooks.BASE_URL\n"
        "    wait_time = constant(0)\n\n"
        "    @task\n"
        "    def pets(self):\n"
        "        headers = {}\n"
        "        url, _ = hooks.AUTH.apply(self, '/pets', headers)\n"
        "        self.client.get(url, name='listPets', headers=headers)\n\n\n"
        "class Shape(hooks.PlanShape):\n"
        "    pass\n"
    )
    result = run_load(
        load_project(EXAMPLE_SPEC),
        LoadOptions(profile="smoke", duration_seconds=3, locustfile=greedy),
        tmp_path,
        _quiet,
    )
    assert result.status == "error"
    assert result.error is not None and "request cap" in result.error
    assert result.metrics["requests"] < 1000  # stopped, not flooding for 3 s


def _start_cli(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "load", str(EXAMPLE_SPEC), *args],
        cwd=tmp_path,
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_progress(process: subprocess.Popen[str]) -> list[str]:
    """Read the command's stderr until its first progress line (``load smoke  1/20 s  users``)."""
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if re.search(r"\d+/\d+ s  users \d+", line):
            return seen
    raise AssertionError("no progress line: " + "".join(seen))


def test_a_worker_dying_mid_run_is_an_error_not_a_hang(tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = _start_cli(tmp_path, "--workers", "2", "--duration", "20", "--out", str(out))
    try:
        _wait_for_progress(process)
        workers = [
            p
            for p in psutil.Process(process.pid).children(recursive=True)
            if "--worker" in p.cmdline()
        ]
        assert len(workers) == 2
        killed_at = time.monotonic()
        workers[0].send_signal(signal.SIGKILL)
        code = process.wait(30)
        assert time.monotonic() - killed_at < 15  # stopped, not run to its 20 s end
    finally:
        process.kill()
        process.communicate()
    assert code == 2
    result = read_stage(out / "load.json")
    assert result.status == "error" and result.incomplete
    assert result.error is not None and "worker" in result.error and "died mid-run" in result.error
    assert "SIGKILL" in result.error


def test_ctrl_c_stops_locust_and_keeps_partial_results(tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = _start_cli(tmp_path, "--duration", "20", "--out", str(out))
    try:
        _wait_for_progress(process)
        children = psutil.Process(process.pid).children(recursive=True)
        assert children
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGINT)
        code = process.wait(30)
        assert time.monotonic() - stopped_at < 15
    finally:
        process.kill()
        _, stderr = process.communicate()
    assert code == 130, stderr
    assert "Traceback" not in stderr
    result = read_stage(out / "load.json")
    assert result.incomplete
    assert result.metrics["requests"] >= 1  # what ran before Ctrl-C is kept
    assert not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
