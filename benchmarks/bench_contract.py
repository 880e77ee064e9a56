"""The contract stage's wall time against a plain ``st run``: same document, examples, seed, server.

One simulator (``harness simulate benchmarks/specs/contract-bench.yaml``, its own process) serves
the bundled Petstore document. Against it, in alternating order, ``--repeat`` times each:

- ``st``: ``st run contracts/petstore/provider.openapi.yaml --url URL -n N --seed S`` with one
  worker, every phase, both generation modes, health checks off, no example database, no cache
  (a ``--config-file`` saying so, so no ``schemathesis.toml`` around can interfere) and the
  bearer token the bench fetched first;
- ``harness``: ``harness contract benchmarks/specs/contract-bench.yaml --base-url URL -n N
  --seed S`` - the whole stage as a user runs it: the spec's auth (token fetched by the stage),
  the harness checks on every response, its request log, re-validation of failures, the
  static checks, contract.json and the summary;
- ``harness-sim`` (for information): the same stage on its default target, a simulator inside
  its own process.

Each is a fresh process (interpreter start-up and imports included on both sides); the
simulator's state is reset before each run so every run sees the same data. Reports wall and
CPU time of each, the requests each sent, and the overhead ``harness / st - 1`` as the median of
the per-round ratios (target: at most 15 %). Then, in this process (warm), the engine alone as
``st`` configures it against the stage without its static checks: the cost of the harness layer
(auth provider, harness checks, hooks, request log, verdicts) without start-up. Writes
``benchmarks/results/contract-<date>.json``.

    python benchmarks/bench_contract.py [--max-examples 25] [--seed 0] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "benchmarks" / "specs" / "contract-bench.yaml"
DOCUMENT = REPO / "contracts" / "petstore" / "provider.openapi.yaml"
ENV = {
    "PETSTORE_CLIENT_ID": "bench-client-id-0001",
    "PETSTORE_CLIENT_SECRET": "bench-client-secret-0001",
}
ST_CONFIG = "[cache]\nenabled = false\n[auth]\nauto-signup = false\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/__harness/openapi.json", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"simulator did not start at {url}")


def _traffic_count(url: str) -> int:
    response = httpx.get(url + "/__harness/traffic", params={"since": 0}, timeout=30)
    data = response.json()
    return len(data) if isinstance(data, list) else len(data.get("records", []))


def _timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int, str]:
    """Wall time and CPU time (user + system) of one child process, its exit code, its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode, proc.stdout[-400:] + proc.stderr[-400:]


def _in_process(
    url: str, token: str, max_examples: int, seed: int, rounds: int
) -> dict[str, float]:
    """The engine alone, in this (warm) process: schemathesis configured as the ``st`` command
    line configures itself, against the full harness stage without its static checks. CPU time
    of the whole process (every thread), median over ``rounds`` alternating runs."""
    os.environ.update(ENV)
    import schemathesis
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import from_schema

    from harness.contract.options import ContractOptions
    from harness.contract.runner import run_contract
    from harness.project import load_project

    project = load_project(SPEC)

    def plain() -> None:
        config = SchemathesisConfig.from_dict(
            {
                "seed": seed,
                "suppress-health-check": ["all"],
                "cache": {"enabled": False},
                "base-url": url + "/v1",
                "workers": 1,
                "generation": {"mode": "all", "max-examples": max_examples, "database": "none"},
                "headers": {"Authorization": f"Bearer {token}"},
                "auth": {"auto-signup": False},
            }
        )
        schema = schemathesis.openapi.from_path(DOCUMENT, config=config)
        for _event in from_schema(schema).execute():
            pass

    def stage() -> None:
        with tempfile.TemporaryDirectory() as out:
            options = ContractOptions(
                base_url=url + "/v1", max_examples=max_examples, seed=seed, static_checks=False
            )
            run_contract(project, options, Path(out), lambda _line: None)

    runs = {"schemathesis": plain, "stage": stage}
    for run in runs.values():
        run()  # warm up: imports, compiled schemas
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            httpx.post(url + "/__harness/reset", timeout=10)
            start = time.process_time()
            run()
            cpu[name].append(time.process_time() - start)
    return {name: statistics.median(values) for name, values in cpu.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    env = {**os.environ, **ENV, "NO_COLOR": "1"}
    env.pop("CI", None)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "harness", "simulate", str(SPEC), "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    times: dict[str, list[float]] = {"st": [], "harness": [], "harness-sim": []}
    cpu: dict[str, list[float]] = {"st": [], "harness": [], "harness-sim": []}
    sent: dict[str, list[int]] = {"st": [], "harness": []}
    try:
        _wait(url)
        token = httpx.post(
            url + "/v1/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": ENV["PETSTORE_CLIENT_ID"],
                "client_secret": ENV["PETSTORE_CLIENT_SECRET"],
                "scope": "pets:read",
            },
            timeout=10,
        ).json()["access_token"]
        with tempfile.TemporaryDirectory() as scratch:
            work = Path(scratch)
            (work / "st.toml").write_text(ST_CONFIG)
            n, seed = str(args.max_examples), str(args.seed)
            commands = {
                "st": [
                    sys.executable, "-m", "schemathesis.cli", "--config-file", str(work / "st.toml"),
                    "run", str(DOCUMENT), "--url", url + "/v1", "-n", n, "--seed", seed,
                    "--workers", "1", "--mode", "all", "--suppress-health-check", "all",
                    "--generation-database", "none", "--no-color",
                    "-H", f"Authorization: Bearer {token}",
                ],
                "harness": [
                    sys.executable, "-m", "harness", "contract", str(SPEC), "--base-url",
                    url + "/v1", "--max-examples", n, "--seed", seed, "--out", str(work / "h"),
                ],
                "harness-sim": [
                    sys.executable, "-m", "harness", "contract", str(SPEC), "--target",
                    "simulated", "--max-examples", n, "--seed", seed, "--out", str(work / "hs"),
                ],
            }  # fmt: skip
            for round_ in range(args.repeat):
                order = ["st", "harness", "harness-sim"]
                if round_ % 2:
                    order = ["harness", "st", "harness-sim"]
                for name in order:
                    httpx.post(url + "/__harness/reset", timeout=10)
                    before = _traffic_count(url)
                    seconds, used, code, tail = _timed(commands[name], env, work)
                    if code not in (0, 1):
                        raise SystemExit(f"{name} exited {code}:\n{tail}")
                    times[name].append(seconds)
                    cpu[name].append(used)
                    if name in sent:
                        sent[name].append(_traffic_count(url) - before)
                    print(
                        f"round {round_ + 1} {name:<12} {seconds:6.2f} s wall {used:6.2f} s cpu",
                        flush=True,
                    )
        engine_only = _in_process(url, token, args.max_examples, args.seed, args.repeat)
    finally:
        server.terminate()
        server.wait(timeout=10)

    # The machine is shared: a round's contenders run back to back, so each round gives one
    # ratio; the median of those ratios is the figure (best times and CPU time for comparison).
    def paired(values: dict[str, list[float]], name: str) -> float:
        ratios = [h / s for h, s in zip(values[name], values["st"], strict=True)]
        return statistics.median(ratios) - 1

    median = {name: statistics.median(values) for name, values in times.items()}
    best = {name: min(values) for name, values in times.items()}
    overhead, overhead_sim = paired(times, "harness"), paired(times, "harness-sim")
    cpu_overhead = {name: paired(cpu, name) for name in ("harness", "harness-sim")}
    print()
    print(f"max examples {args.max_examples}, seed {args.seed}, {args.repeat} rounds:")
    for name in times:
        requests = f", {statistics.median(sent[name]):.0f} requests" if name in sent else ""
        print(
            f"  {name:<12} wall median {median[name]:6.2f} s, best {best[name]:6.2f} s;"
            f" cpu median {statistics.median(cpu[name]):6.2f} s{requests}"
        )
    print(
        f"overhead harness vs st: {overhead:+.1%} wall (median of per-round ratios; best times"
        f" {best['harness'] / best['st'] - 1:+.1%}), {cpu_overhead['harness']:+.1%} cpu;"
        " target <= +15%"
    )
    print(
        f"overhead harness (own simulator) vs st: {overhead_sim:+.1%} wall,"
        f" {cpu_overhead['harness-sim']:+.1%} cpu (information: its simulator runs inside the"
        " measured process)"
    )
    layer = engine_only["stage"] / engine_only["schemathesis"] - 1
    print(
        f"in one warm process, engine only: schemathesis {engine_only['schemathesis']:.2f} s cpu,"
        f" the stage {engine_only['stage']:.2f} s cpu: the harness layer costs {layer:+.1%}"
    )
    results = REPO / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC)
    (results / f"contract-{stamp:%Y%m%d-%H%M}.json").write_text(
        json.dumps(
            {
                "when": stamp.isoformat(timespec="seconds"),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "load": os.getloadavg(),
                },
                "max_examples": args.max_examples,
                "seed": args.seed,
                "times": times,
                "requests": sent,
                "median": median,
                "best": best,
                "overhead": overhead,
                "overhead_own_simulator": overhead_sim,
                "cpu": cpu,
                "cpu_overhead": cpu_overhead,
                "in_process_cpu": engine_only,
                "in_process_layer_overhead": layer,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
