"""Requests/s of `harness load` against plain Locust, wrk, and itself with more workers.

All against the same target, in one run: a canned-response HTTP server (a raw asyncio
``Protocol``, about 65k req/s on one core here, see bench_server_core.py) in its own process
pinned to CPU 0, so the load generators are what is measured:

- ``harness load`` (live target, a profile paced at 1,000,000 req/s: Locust's
  ``constant_throughput`` then never waits) with N users in one Locust process, against
- ``locust`` with an equivalent locustfile (the same FastHttpUser, the same request, no wait,
  N users), measured the same way: requests / (last request - first request) from Locust's own
  final statistics (``--json-file``). Target: harness/plain >= 0.95, i.e. the harness's hooks
  (raw samples, pacing, auth, progress) cost under 5 %. Because the machine is shared, each
  run also reports the Locust process's CPU time per request while the test ran (getrusage
  at test start and stop, in both locustfiles): steadier than requests/s under contention;
- ``wrk -t1 -cN``: a native generator's ceiling on this machine (Locust's efficiency);
- ``harness load --workers 2`` against ``--workers 1``: the scaling of Locust's own
  distributed mode on this machine (two cores, one of them shared with the target).

Runs alternate (plain, harness, plain, harness...) so drift on a shared machine hits both;
the ratios are of the medians.

    python benchmarks/bench_load.py [--duration 10] [--users 32] [--repeat 5]

It writes benchmarks/results/load-<date>.json and prints a summary; it judges nothing (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROVIDER_DOC = REPO / "contracts" / "petstore" / "provider.openapi.yaml"
PATH = "/pets/1"
GENERATOR_CPU = 1
"""Single-process generators run on this CPU (the target has CPU 0); workers runs float."""
BODY = b'{"id":1,"name":"Rex","status":"available"}'
CANNED = (
    b"HTTP/1.1 200 OK\r\nServer: raw\r\nContent-Length: %d\r\n"
    b"Content-Type: application/json\r\n\r\n%s" % (len(BODY), BODY)
)

SPEC = """\
spec_version: 1
name: Load benchmark
integration_type: rest
provider:
  name: Canned server
  openapi: {doc}
  live: {{base_url: "http://127.0.0.1:9", allowed_hosts: [127.0.0.1]}}
rate_limits: {{requests_per_second: 1000000000, burst: 1000000000}}
error_handling: {{request_timeout: {{seconds: 10}}}}
launch: {{success_criteria: {{max_error_rate_percent: 1}}}}
load:
  operations: [{{operation: getPet, parameters: {{petId: 1}}}}]
  profiles:
    - name: bench
      basis: fixed
      rps: 1000000
      max_rps: 1000000
      duration_seconds: 10
      judge: [errors]
"""

PLAIN_LOCUSTFILE = f'''\
import json
import resource

from locust import FastHttpUser, constant, events, task

# CPU while the test runs, measured as the harness's hooks do (no per-request cost).
CPU = {{}}


def _cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@events.test_start.add_listener
def _start(environment, **_):
    CPU["start"], CPU["n"] = _cpu(), environment.runner.stats.total.num_requests


@events.test_stop.add_listener
def _stop(environment, **_):
    requests = environment.runner.stats.total.num_requests - CPU["n"]
    with open("cpu.json", "w") as stream:
        json.dump({{"cpu_seconds": _cpu() - CPU["start"], "requests": requests}}, stream)


class Plain(FastHttpUser):
    wait_time = constant(0)
    network_timeout = 10.0
    connection_timeout = 10.0
    max_retries = 0

    @task
    def get_pet(self):
        self.client.request("GET", "{PATH}", name="getPet")
'''


# --- the target ------------------------------------------------------------------------------


class _Canned(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        count = data.count(b"\r\n\r\n")
        if count:
            self.transport.write(CANNED * count)  # type: ignore[attr-defined]


def _serve(ports: multiprocessing.Queue[int]) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(
            _Canned, "127.0.0.1", 0, backlog=4096
        )
        ports.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    loop.run_until_complete(main())


# --- measuring -------------------------------------------------------------------------------


def rate_from_stats(path: Path) -> tuple[float, int, int]:
    """(requests/s, requests, failures) from Locust's final statistics (--json-file)."""
    entries = json.loads(path.read_text())
    requests = sum(int(e["num_requests"]) for e in entries)
    failures = sum(int(e["num_failures"]) for e in entries)
    first = min(float(e["start_time"]) for e in entries)
    last = max(float(e["last_request_timestamp"]) for e in entries)
    return requests / max(last - first, 1e-9), requests, failures


def _pinned(command: list[str], cpu: int | None) -> list[str]:
    """``command`` on one CPU (taskset), so the scheduler cannot move it onto the target's."""
    taskset = shutil.which("taskset")
    if cpu is None or taskset is None or (os.cpu_count() or 1) <= cpu:
        return command
    return [taskset, "-c", str(cpu), *command]


def run_plain(work: Path, url: str, users: int, duration: int, index: int) -> dict[str, Any]:
    folder = work / f"plain-{index}"
    folder.mkdir()
    locustfile = folder / "plain_locustfile.py"
    locustfile.write_text(PLAIN_LOCUSTFILE)
    subprocess.run(
        _pinned(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(locustfile),
                "--headless",
                "--only-summary",
                "-H",
                url,
                "-u",
                str(users),
                "-r",
                str(users),
                "-t",
                f"{duration}s",
                "--json-file",
                str(folder / "stats"),
                "--exit-code-on-error",
                "0",
            ],
            GENERATOR_CPU,
        ),
        cwd=folder,
        check=True,
        capture_output=True,
        timeout=duration + 60,
    )
    rps, requests, failures = rate_from_stats(folder / "stats.json")
    cpu = json.loads((folder / "cpu.json").read_text())
    return {
        "rps": rps,
        "requests": requests,
        "failures": failures,
        "cpu_us_per_request": cpu["cpu_seconds"] / max(cpu["requests"], 1) * 1e6,
    }


def run_harness(
    work: Path, spec: Path, url: str, users: int, duration: int, name: str, workers: int = 0
) -> dict[str, Any]:
    out = work / name
    cli = subprocess.run(
        _pinned(
            [
                sys.executable,
                "-m",
                "harness",
                "load",
                str(spec),
                "--profile",
                "bench",
                "--target",
                "live",
                "--base-url",
                url,
                "--users",
                str(users),
                "--duration",
                str(duration),
                "--workers",
                str(workers),
                "--out",
                str(out),
            ],
            GENERATOR_CPU if workers == 0 else None,
        ),
        cwd=work,
        capture_output=True,
        text=True,
        timeout=duration + 120,
        check=False,
    )
    if cli.returncode not in (0, 1):
        raise RuntimeError(f"harness load failed ({cli.returncode}): {cli.stderr[-2000:]}")
    rps, requests, failures = rate_from_stats(out / "load" / "locust-stats.json")
    result = json.loads((out / "load.json").read_text())
    return {
        "rps": rps,
        "requests": requests,
        "failures": failures,
        "samples": result["metrics"]["requests"],
        "p95_ms": result["metrics"].get("p95_ms"),
        "cpu_us_per_request": result["metrics"].get("locust_cpu_us_per_request"),
        "status": result["status"],
    }


def run_wrk(url: str, connections: int, duration: int) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"skipped": "wrk not installed (apt-get install wrk)"}
    out = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{duration}s", url + PATH],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {"rps": float(match.group(1)) if match else None}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=5, help="plain/harness pairs")
    args = parser.parse_args()

    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(ports,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get(timeout=10)}"
    started = time.time()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-load-") as temporary:
            work = Path(temporary)
            spec = work / "spec.yaml"
            spec.write_text(SPEC.format(doc=PROVIDER_DOC))
            plain: list[dict[str, Any]] = []
            harness: list[dict[str, Any]] = []
            for index in range(args.repeat):
                plain.append(run_plain(work, url, args.users, args.duration, index))
                print(
                    f"plain locust   {plain[-1]['rps']:9.0f} req/s  "
                    f"{plain[-1]['cpu_us_per_request']:6.1f} us CPU/request",
                    flush=True,
                )
                harness.append(
                    run_harness(work, spec, url, args.users, args.duration, f"harness-{index}")
                )
                print(
                    f"harness load   {harness[-1]['rps']:9.0f} req/s  "
                    f"{harness[-1]['cpu_us_per_request'] or 0:6.1f} us CPU/request",
                    flush=True,
                )
            wrk = run_wrk(url, args.users, args.duration)
            print(f"wrk -t1 -c{args.users}   {wrk.get('rps') or 0:9.0f} req/s", flush=True)
            ones: list[dict[str, Any]] = []
            twos: list[dict[str, Any]] = []
            for index in range(max(1, args.repeat // 2)):
                ones.append(
                    run_harness(
                        work, spec, url, args.users, args.duration, f"w1-{index}", workers=1
                    )
                )
                print(f"--workers 1    {ones[-1]['rps']:9.0f} req/s", flush=True)
                twos.append(
                    run_harness(
                        work, spec, url, args.users, args.duration, f"w2-{index}", workers=2
                    )
                )
                print(f"--workers 2    {twos[-1]['rps']:9.0f} req/s", flush=True)
    finally:
        server.terminate()
        server.join(5)

    plain_rps = _median([r["rps"] for r in plain])
    harness_rps = _median([r["rps"] for r in harness])
    ratios = {
        "harness_vs_plain_locust": harness_rps / plain_rps,
        "harness_vs_plain_locust_per_pair": [
            round(h["rps"] / p["rps"], 3) for h, p in zip(harness, plain, strict=True)
        ],
        "plain_vs_harness_cpu_per_request": _median([r["cpu_us_per_request"] for r in plain])
        / _median([r["cpu_us_per_request"] for r in harness]),
        "harness_vs_wrk": harness_rps / wrk["rps"] if wrk.get("rps") else None,
        "workers_2_vs_1": _median([r["rps"] for r in twos]) / _median([r["rps"] for r in ones]),
    }
    load_average = os.getloadavg()
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": load_average,
        },
        "settings": vars(args),
        "plain_locust": plain,
        "harness_load": harness,
        "wrk": wrk,
        "workers_1": ones,
        "workers_2": twos,
        "ratios": ratios,
    }
    results = REPO / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    path = results / f"load-{datetime.now(UTC):%Y-%m-%d}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(
        f"harness load / plain locust: {ratios['harness_vs_plain_locust']:.3f} (target >= 0.95; "
        f"per pair {ratios['harness_vs_plain_locust_per_pair']})"
    )
    print(
        "plain / harness CPU per request (Locust process, while running): "
        f"{ratios['plain_vs_harness_cpu_per_request']:.3f}"
    )
    if ratios["harness_vs_wrk"] is not None:
        print(f"harness load / wrk:          {ratios['harness_vs_wrk']:.3f}")
    print(f"--workers 2 / --workers 1:   {ratios['workers_2_vs_1']:.2f}")
    print(f"load average {load_average[0]:.2f}; wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
