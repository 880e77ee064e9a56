"""Provider simulator against Stoplight Prism and nginx under wrk (a report, not a test).

On loopback, with every server pinned to CPU 0 (``taskset -c 0``) and ``wrk -t1`` pinned to CPU 1,
loads the example document's operations (GET /pets, GET /pets/1, POST /pets) on:

1. ``sim+log``   ``python -m harness simulate`` with every feature on: request validation, OAuth2
                 auth (a real token is obtained first and sent by wrk), rate limiting (a limit so
                 high it never triggers), an empty fault plan, the durable traffic log to a file;
2. ``sim``       the same without the traffic log;
3. ``prism``     ``prism mock`` on the same document, static examples (and ``prism-dyn``, ``-d``);
4. ``nginx``     the simulator's own response bodies as static files (the ceiling);
5. ``proxy``     the fault proxy in front of a simulator against that simulator direct, and
                 Prism's validating proxy (``prism proxy --errors``) in front of the same
                 simulator: ``bench_proxy.measure_upstream`` (see bench_proxy.py for the set-up:
                 upstream on CPU 0, proxies on CPU 1, GET /pets/1, p50 at one connection with
                 the client on the proxy's CPU, wrk -t1 at ``--proxy-connections`` unpinned).

Prints requests/s, p50/p99 latency and the ratios against their targets (simulator/Prism
requests/s >= 5, simulator p99/Prism p99 <= 0.5, traffic log on/off >= 0.85, no traffic record
lost; proxy added p50 <= 0.2 ms, proxied/direct requests/s >= 0.4, harness proxy/Prism proxy
requests/s >= 4), and writes everything to ``benchmarks/results/provider-<date>.json``. Always
exits 0 once it has measured: missing a target is a finding, not a failure. Missing tools are
skipped.

    python benchmarks/bench_provider.py [--duration 5] [--connections 32]

Install: ``apt-get install -y wrk nginx-light`` and, for Prism,
``npm install --prefix benchmarks/.cache/prism @stoplight/prism-cli`` (or ``prism`` on PATH).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_proxy  # noqa: E402  (the proxy comparison lives there, runnable on its own too)

SPEC = BENCH / "specs" / "provider-bench.yaml"
FAULTS = BENCH / "specs" / "empty-faults.yaml"
DOCUMENT = ROOT / "contracts" / "petstore" / "provider.openapi.yaml"
PRISM_LOCAL = BENCH / ".cache" / "prism" / "node_modules" / ".bin" / "prism"
RESULTS = BENCH / "results"

CLIENT_ID = "bench-client-id"
CLIENT_SECRET = "bench-client-secret-0123456789"
POST_BODY = '{"name":"Rex","status":"available"}'
SERVER_CPU = "0"
CLIENT_CPU = "1"


@dataclass(frozen=True)
class Op:
    name: str
    method: str
    path: str
    body: str | None = None


OPS = (
    Op("GET /pets", "GET", "/pets"),
    Op("GET /pets/1", "GET", "/pets/1"),
    Op("POST /pets", "POST", "/pets", POST_BODY),
)
TARGETS = ("sim+log", "sim", "prism", "prism-dyn", "nginx", "proxy")

TARGETS_ABOUT = {
    "sim+log": "harness simulate: validation, auth, rate limit, empty fault plan, traffic log",
    "sim": "harness simulate, same without --traffic",
    "prism": "prism mock (static examples)",
    "prism-dyn": "prism mock -d (dynamic, json-schema-faker)",
    "nginx": "nginx, the simulator's bodies as static files (ceiling)",
    "proxy": "harness proxy in front of a simulator vs direct, and Prism's validating proxy",
}
PROXY_SECONDS = 45.0  # about what the proxy target takes with the default settings


# --- processes: every child in its own session, all killed on the way out --------------------


class Children:
    """Servers we started. Each runs in its own session, so killing its group gets its children
    (node workers, nginx workers) too, and a Ctrl-C in the terminal reaches only us."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **kwargs,
            )
        self.running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], grace: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; returns the exit code."""
        if process in self.running:
            self.running.remove(process)
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
            try:
                return process.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        return None

    def stop_all(self) -> None:
        for process in list(self.running):
            self.stop(process, grace=3.0)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# --- ports -------------------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    """Nothing answers on it and we could bind it."""
    with socket.socket() as probe:
        probe.settimeout(0.2)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port_is_free(port):
            return port
    raise RuntimeError("no free port found")


def wait_listening(
    port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode} before listening:\n{_tail(log)}"
            )
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server not listening on {port} after {timeout:.0f} s:\n{_tail(log)}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- process accounting (is the server really using its whole core?) ---------------------------


def session_cpu_seconds(session: int) -> float:
    """utime+stime of every process in ``session`` (threads included)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2 :].split()
        if int(rest[3]) == session:
            total += int(rest[11]) + int(rest[12])
    return total / tick


def session_rss_mb(session: int) -> float:
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[3]) != session:
                continue
            status = Path(f"/proc/{entry}/status").read_text()
        except (OSError, ValueError):
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        if match:
            total += int(match.group(1))
    return total / 1024


# --- wrk ---------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    bytes_read: float
    non_2xx: int
    socket_errors: dict[str, int]
    server_cpu_percent: float | None = None

    @property
    def bytes_per_response(self) -> float:
        return self.bytes_read / self.requests if self.requests else 0.0


_UNITS_TIME = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}
_UNITS_SIZE = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_TIME[match.group(2)]


def parse_wrk(out: str) -> WrkResult:
    def grab(pattern: str) -> re.Match[str]:
        match = re.search(pattern, out)
        if match is None:
            raise RuntimeError(f"unexpected wrk output (no {pattern!r}):\n{out}")
        return match

    total = grab(r"(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)(B|KB|MB|GB|TB) read")
    percentiles = {p: _ms(grab(rf"\n\s+{p}%\s+(\S+)").group(1)) for p in (50, 75, 90, 99)}
    latency_max = _ms(grab(r"Latency\s+\S+\s+\S+\s+(\S+)").group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=_ms(total.group(2) + total.group(3)) / 1000,
        rps=float(grab(r"Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=percentiles[50],
        p75_ms=percentiles[75],
        p90_ms=percentiles[90],
        p99_ms=percentiles[99],
        max_ms=latency_max,
        bytes_read=float(total.group(4)) * _UNITS_SIZE[total.group(5)],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=dict(
            zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)
        )
        if errors
        else {"connect": 0, "read": 0, "write": 0, "timeout": 0},
    )


def post_script(folder: Path) -> Path:
    script = folder / "post.lua"
    body = POST_BODY.replace("\\", "\\\\").replace('"', '\\"')
    script.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = "{body}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def run_wrk(
    args: argparse.Namespace,
    port: int,
    op: Op,
    seconds: float,
    headers: dict[str, str],
    lua: Path,
    session: int,
) -> WrkResult:
    command = [
        *(["taskset", "-c", CLIENT_CPU] if args.pin else []),
        args.wrk,
        "-t1",
        f"-c{args.connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if op.method == "POST":
        command += ["-s", str(lua)]
    command.append(f"http://127.0.0.1:{port}{op.path}")
    cpu_before, started = session_cpu_seconds(session), time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    elapsed = time.monotonic() - started
    cpu_after = session_cpu_seconds(session)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = parse_wrk(done.stdout)
    result.server_cpu_percent = round(100 * (cpu_after - cpu_before) / elapsed, 1)
    return result


# --- HTTP helpers --------------------------------------------------------------------------------


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def check_traffic_file(path: Path) -> dict[str, Any]:
    """Every line a JSON object with consecutive ``seq``; the file ends with a newline."""
    lines = bad = gaps = 0
    last = 0
    data = path.read_bytes()
    for raw in data.split(b"\n")[:-1]:
        lines += 1
        try:
            seq = json.loads(raw)["seq"]
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        if seq != last + 1:
            gaps += 1
        last = seq
    return {
        "lines": lines,
        "bad_lines": bad,
        "seq_gaps": gaps,
        "last_seq": last,
        "ends_with_newline": data.endswith(b"\n"),
        "bytes": len(data),
    }


# --- the targets -------------------------------------------------------------------------------


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    headers: dict[str, str] = field(default_factory=dict)
    traffic: Path | None = None


def _pinned(args: argparse.Namespace, argv: list[str]) -> list[str]:
    return ["taskset", "-c", SERVER_CPU, *argv] if args.pin else argv


def start_simulator(
    args: argparse.Namespace, children: Children, work: Path, traffic: bool
) -> Server:
    port = free_port()
    log = work / f"sim-{port}.log"
    traffic_path = work / f"traffic-{port}.jsonl" if traffic else None
    argv = [
        args.python,
        "-m",
        "harness",
        "simulate",
        str(SPEC),
        "--port",
        str(port),
        "--faults",
        str(FAULTS),
        "--records",
        str(args.records),
    ]
    if traffic_path is not None:
        argv += ["--traffic", str(traffic_path)]
    env = {
        **os.environ,
        "PETSTORE_CLIENT_ID": CLIENT_ID,
        "PETSTORE_CLIENT_SECRET": CLIENT_SECRET,
        "PYTHONPATH": str(ROOT),
    }
    process = children.start(_pinned(args, argv), log, cwd=ROOT, env=env)
    wait_listening(port, process, log)
    form = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    ).encode()
    status, body = http(
        "POST",
        f"http://127.0.0.1:{port}/oauth/token",
        form,
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    if status != 200:
        raise RuntimeError(f"token request answered {status}: {body[:300]!r}")
    token = json.loads(body)["access_token"]
    return Server(port, process, log, {"Authorization": f"Bearer {token}"}, traffic_path)


def start_prism(args: argparse.Namespace, children: Children, work: Path, dynamic: bool) -> Server:
    port = free_port()
    log = work / f"prism-{port}.log"
    argv = [
        args.prism,
        "mock",
        str(DOCUMENT),
        "-p",
        str(port),
        "-h",
        "127.0.0.1",
        "-v",
        args.prism_log_level,
    ]
    if dynamic:
        argv.append("-d")
    process = children.start(_pinned(args, argv), log, cwd=ROOT)
    wait_listening(port, process, log)
    # Prism checks that a Bearer token is present (any value); send one of the same shape.
    return Server(port, process, log, {"Authorization": "Bearer " + "x" * 43})


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    default_type application/json;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {work}/www;
        # GET /pets: the simulator's page; POST /pets: the static module refuses POST with 405,
        # which error_page turns into a 201 with the created pet (method becomes GET internally).
        location = /pets {{ try_files /pets.json =404; error_page 405 =201 /pet.json; }}
        location ~ ^/pets/[0-9]+$ {{ try_files /pet.json =404; }}
    }}
}}
"""


def start_nginx(
    args: argparse.Namespace, children: Children, work: Path, bodies: dict[str, bytes]
) -> Server:
    port = free_port()
    www = work / "www"
    www.mkdir(exist_ok=True)
    (www / "pets.json").write_bytes(bodies["GET /pets"])
    (www / "pet.json").write_bytes(bodies["GET /pets/1"])
    # Workers drop to 'nobody' when started as root: let them read the files.
    for path in (work, www, www / "pets.json", www / "pet.json"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, port=port))
    log = work / "nginx.log"
    process = children.start(_pinned(args, [args.nginx, "-p", str(work), "-c", str(conf)]), log)
    wait_listening(port, process, log)
    return Server(port, process, log, {})


# --- the proxy comparison (bench_proxy.py's code) -------------------------------------------------


def measure_proxy(args: argparse.Namespace) -> dict[str, Any]:
    """The fault proxy in front of a simulator vs direct, and Prism's validating proxy."""
    entry: dict[str, Any] = {"about": TARGETS_ABOUT["proxy"]}
    try:
        entry["figures"] = bench_proxy.measure_upstream(
            "simulator",
            duration=args.duration,
            connections=args.proxy_connections,
            requests=args.proxy_requests,
            prism=args.prism,
            with_prism=bool(args.prism),
            pin=args.pin,
            say=lambda line: print("    " + line.strip(), flush=True),
        )
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        print(f"    ! proxy failed: {error}", flush=True)
        entry["error"] = str(error)
    return entry


# --- one target, every operation ---------------------------------------------------------------


def measure_target(
    args: argparse.Namespace, name: str, server: Server, lua: Path
) -> dict[str, Any]:
    base = f"http://127.0.0.1:{server.port}"
    rows: dict[str, Any] = {}
    for op in OPS:
        status, body = http(
            op.method,
            base + op.path,
            op.body.encode() if op.body else None,
            {**server.headers, "Content-Type": "application/json"},
        )
        if status >= 300:
            print(f"    ! {name} {op.name} answered {status}: {body[:200]!r}", flush=True)
        if args.warmup > 0:
            run_wrk(args, server.port, op, args.warmup, server.headers, lua, server.process.pid)
        runs: list[dict[str, Any]] = []
        for _ in range(args.repeat):
            before = count_lines(server.traffic) if server.traffic else None
            result = run_wrk(
                args, server.port, op, args.duration, server.headers, lua, server.process.pid
            )
            run = asdict(result) | {"bytes_per_response": round(result.bytes_per_response, 1)}
            if server.traffic is not None and before is not None:
                time.sleep(0.3)  # a request wrk gave up on at the deadline may still be finishing
                logged = count_lines(server.traffic) - before
                run["traffic"] = {
                    "logged": logged,
                    "served": result.requests,
                    "logged_minus_served": logged - result.requests,
                    "lost": max(0, result.requests - logged),
                }
            runs.append(run)
        best = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]  # the median run
        row = dict(best)
        row["status_probe"] = status
        if len(runs) > 1:
            row["runs_rps"] = [round(r["rps"]) for r in runs]
        rows[op.name] = row
        extra = ""
        if "traffic" in row:
            t = row["traffic"]
            extra = f"  log {t['logged']} lines / {t['served']} served (diff {t['logged_minus_served']:+d})"
        print(
            f"    {op.name:<12} {row['rps']:>10,.0f} req/s  p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms"
            f"  cpu {row['server_cpu_percent']:5.1f}%{extra}",
            flush=True,
        )
    return rows


def stop_simulator(children: Children, server: Server) -> dict[str, Any]:
    """Stop it politely; compare the count it reports with the lines in its traffic file."""
    rss = session_rss_mb(server.process.pid)
    code = children.stop(server.process, grace=30.0)
    text = server.log.read_text(errors="replace")
    match = re.search(r"stopped after (\d+) requests", text)
    info: dict[str, Any] = {
        "rss_mb_at_end": round(rss, 1),
        "exit_code": code,
        "engine_count": int(match.group(1)) if match else None,
    }
    if server.traffic is not None and server.traffic.exists():
        check = check_traffic_file(server.traffic)
        info["file"] = check
        if info["engine_count"] is not None:
            info["file_lines_minus_engine_count"] = check["lines"] - info["engine_count"]
    return info


# --- report --------------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def compute_ratios(results: dict[str, Any]) -> dict[str, Any]:
    def get(target: str, op: str, key: str) -> float | None:
        value = results.get(target, {}).get("ops", {}).get(op, {}).get(key)
        return None if value is None else float(value)

    out: dict[str, Any] = {}
    for op in OPS:
        n = op.name
        traffic = results.get("sim+log", {}).get("ops", {}).get(n, {}).get("traffic", {})
        out[n] = {
            "sim_over_prism_rps": ratio(get("sim+log", n, "rps"), get("prism", n, "rps")),
            "sim_over_prism_p99": ratio(get("sim+log", n, "p99_ms"), get("prism", n, "p99_ms")),
            "sim_over_prism_dyn_rps": ratio(get("sim+log", n, "rps"), get("prism-dyn", n, "rps")),
            "sim_over_prism_dyn_p99": ratio(
                get("sim+log", n, "p99_ms"), get("prism-dyn", n, "p99_ms")
            ),
            "log_on_over_off_rps": ratio(get("sim+log", n, "rps"), get("sim", n, "rps")),
            "sim_over_nginx_rps": ratio(get("sim+log", n, "rps"), get("nginx", n, "rps")),
            "sim_nolog_over_prism_rps": ratio(get("sim", n, "rps"), get("prism", n, "rps")),
            "records_lost": traffic.get("lost"),
            "logged_minus_served": traffic.get("logged_minus_served"),
        }
    return out


TARGET_CHECKS = (
    ("sim_over_prism_rps", "simulator/Prism req/s", ">=", 5.0),
    ("sim_over_prism_p99", "simulator/Prism p99", "<=", 0.5),
    ("log_on_over_off_rps", "traffic log on/off req/s", ">=", 0.85),
    ("records_lost", "traffic records lost", "<=", 0),
)


def print_report(results: dict[str, Any], ratios: dict[str, Any]) -> None:
    print()
    header = f"{'target':<10} {'operation':<12} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'B/resp':>7} {'non2xx':>7} {'errors':>6} {'srv cpu':>7}"
    print(header)
    print("-" * len(header))
    for target, data in results.items():
        for op, row in data.get("ops", {}).items():
            errors = sum(row["socket_errors"].values())
            print(
                f"{target:<10} {op:<12} {row['rps']:>10,.0f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['max_ms']:>8.1f}"
                f" {row['bytes_per_response']:>7.0f} {row['non_2xx']:>7} {errors:>6} {row['server_cpu_percent']:>6.0f}%"
            )
    print()
    print(f"{'ratio (target)':<36} " + " ".join(f"{op.name:>12}" for op in OPS))
    for key, label, sense, goal in TARGET_CHECKS:
        cells = []
        for op in OPS:
            value = ratios[op.name].get(key)
            if value is None:
                cells.append(f"{'n/a':>12}")
                continue
            ok = value >= goal if sense == ">=" else value <= goal
            text = f"{value:.0f}" if key == "records_lost" else f"{value:.2f}"
            cells.append(f"{text + (' ok' if ok else ' MISS'):>12}")
        print(f"{label + f' ({sense} {goal:g})':<36} " + " ".join(cells))
    for key, label in (
        ("sim_over_prism_dyn_rps", "simulator/Prism -d req/s"),
        ("sim_over_prism_dyn_p99", "simulator/Prism -d p99"),
        ("sim_over_nginx_rps", "simulator/nginx req/s"),
        ("logged_minus_served", "log lines - wrk responses"),
    ):
        cells = []
        for op in OPS:
            value = ratios[op.name].get(key)
            cells.append(
                f"{'n/a' if value is None else (f'{value:+d}' if isinstance(value, int) else f'{value:.2f}'):>12}"
            )
        print(f"{label:<36} " + " ".join(cells))


def print_round_ranges(per_round: list[dict[str, Any]]) -> None:
    """The target ratios' range over the rounds: how much one run's ratio can be trusted."""
    print(
        f"{'range over ' + str(len(per_round)) + ' rounds':<36} "
        + " ".join(f"{op.name:>12}" for op in OPS)
    )
    for key, label, _, _ in TARGET_CHECKS[:3]:
        cells = []
        for op in OPS:
            values = [r[op.name][key] for r in per_round if r[op.name].get(key) is not None]
            cells.append(f"{f'{min(values):.2f}-{max(values):.2f}' if values else 'n/a':>12}")
        print(f"{label:<36} " + " ".join(cells))


def proxy_ratios(figures: dict[str, Any]) -> dict[str, Any]:
    """The three proxy figures judged against the issue's targets (GET /pets/1)."""
    return {key: figures.get(key) for key, _, _, _ in bench_proxy.PROXY_TARGETS}


def print_proxy_report(figures: dict[str, Any]) -> None:
    print()
    print(
        f"proxy, GET /pets/1 (simulator upstream): p50 direct {figures['p50_direct_ms']:.3f} ms,"
        f" proxied {figures['p50_proxied_ms']:.3f} ms; client on the upstream's CPU: added"
        f" {figures['client_on_upstream_cpu']['added_p50_ms']:.3f} ms (information)"
    )
    if "rps_direct" in figures:
        prism = figures.get("prism_proxy", {}).get("rps")
        print(
            f"  wrk -t1 -c{figures['connections']}: direct {figures['rps_direct']:,.0f}/s,"
            f" proxied {figures['rps_proxied']:,.0f}/s"
            + (f", Prism's validating proxy {prism:,.0f}/s" if prism else "")
        )
    for key, label, sense, goal in bench_proxy.PROXY_TARGETS:
        value = figures.get(key)
        met = bench_proxy.target_met(value, sense, goal)
        text = "n/a" if value is None else f"{value:.3f}" + (" ok" if met else " MISS")
        print(f"{label + f' ({sense} {goal:g})':<52} {text:>12}")


def source_fingerprint() -> dict[str, str]:
    """Which harness code was measured: a hash of harness/**/*.py and the newest change."""
    import hashlib

    digest = hashlib.sha256()
    newest = 0.0
    for path in sorted((ROOT / "harness").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
        newest = max(newest, path.stat().st_mtime)
    return {
        "harness_sha256": digest.hexdigest()[:16],
        "harness_newest_change": dt.datetime.fromtimestamp(newest, dt.UTC).isoformat(
            timespec="seconds"
        ),
    }


def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        match = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        model = match.group(1).strip() if match else ""

    def version(argv: list[str]) -> str | None:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return (
            (done.stdout + done.stderr).strip().splitlines()[0]
            if (done.stdout + done.stderr).strip()
            else None
        )

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "python_executable": args.python,
        "platform": platform.platform(),
        "wrk": version([args.wrk, "-v"]) if args.wrk else None,
        "nginx": version([args.nginx, "-v"]) if args.nginx else None,
        "prism": version([args.prism, "--version"]) if args.prism else None,
        "node": version(["node", "--version"]) if shutil.which("node") else None,
    }


# --- main ----------------------------------------------------------------------------------------


def find_tools(args: argparse.Namespace) -> list[str]:
    notes = []
    args.wrk = args.wrk or shutil.which("wrk")
    args.nginx = (
        args.nginx
        or shutil.which("nginx")
        or (shutil.which("nginx", path="/usr/sbin:/usr/local/sbin"))
    )
    if not args.prism:
        args.prism = str(PRISM_LOCAL) if PRISM_LOCAL.exists() else shutil.which("prism")
    if args.pin and (not shutil.which("taskset") or (os.cpu_count() or 1) < 2):
        args.pin = False
        notes.append("no CPU pinning (taskset missing or a single CPU)")
    if not args.prism:
        notes.append(
            "prism not found: Prism targets skipped (npm install --prefix benchmarks/.cache/prism @stoplight/prism-cli)"
        )
    if not args.nginx:
        notes.append("nginx not found: nginx target skipped (apt-get install -y nginx-light)")
    return notes


def run_round(
    args: argparse.Namespace,
    targets: list[str],
    children: Children,
    work: Path,
    lua: Path,
    bodies: dict[str, bytes],
    results: dict[str, Any],
) -> None:
    """Every target once, in order, each on a fresh server: one round of the benchmark,
    recorded in ``results`` as it goes (an interrupted round keeps what it measured)."""
    for target in targets:
        print(f"  {target}: {TARGETS_ABOUT[target]}", flush=True)
        if target == "proxy":
            results[target] = measure_proxy(args)
            continue
        try:
            if target in ("sim+log", "sim"):
                server = start_simulator(args, children, work, traffic=target == "sim+log")
            elif target in ("prism", "prism-dyn"):
                server = start_prism(args, children, work, dynamic=target == "prism-dyn")
            else:
                if not bodies:
                    probe = start_simulator(args, children, work, traffic=False)
                    base = f"http://127.0.0.1:{probe.port}"
                    for op in OPS[:2]:
                        bodies[op.name] = http("GET", base + op.path, None, probe.headers)[1]
                    children.stop(probe.process)
                server = start_nginx(args, children, work, bodies)
        except (RuntimeError, OSError) as error:
            print(f"    ! cannot start {target}: {error}", flush=True)
            results[target] = {"error": str(error)}
            continue
        entry: dict[str, Any] = {"about": TARGETS_ABOUT[target]}
        try:
            entry["ops"] = measure_target(args, target, server, lua)
            if target.startswith("sim") and not bodies:
                base = f"http://127.0.0.1:{server.port}"
                for op in OPS[:2]:
                    bodies[op.name] = http("GET", base + op.path, None, server.headers)[1]
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            print(f"    ! {target} failed: {error}", flush=True)
            entry["error"] = str(error)
        finally:
            if target.startswith("sim"):
                entry["server"] = stop_simulator(children, server)
                s = entry["server"]
                line = (
                    f"    stopped: rss {s['rss_mb_at_end']} MB, engine counted {s['engine_count']}"
                )
                if "file" in s:
                    line += f", file {s['file']['lines']} lines ({s['file']['bad_lines']} bad, {s['file']['seq_gaps']} seq gaps, {s['file']['bytes'] / 1e6:.0f} MB)"
                print(line, flush=True)
            else:
                entry["server"] = {"rss_mb_at_end": round(session_rss_mb(server.process.pid), 1)}
                children.stop(server.process)
        results[target] = entry


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per target and operation, the run with the median req/s over the rounds (with every
    round's req/s alongside); records lost are summed over the rounds, not medianed."""
    if len(rounds) == 1:
        return rounds[0]
    merged: dict[str, Any] = {}
    for target in rounds[0]:
        entries = [r[target] for r in rounds if target in r]
        entry = dict(entries[0])
        if "ops" in entry:
            entry["ops"] = {}
            for op in OPS:
                rows = [e["ops"][op.name] for e in entries if op.name in e.get("ops", {})]
                if not rows:
                    continue
                row = dict(sorted(rows, key=lambda r: r["rps"])[len(rows) // 2])
                row["rounds_rps"] = [round(r["rps"]) for r in rows]
                row["rounds_p99_ms"] = [r["p99_ms"] for r in rows]
                if "traffic" in row:
                    lost = sum(r.get("traffic", {}).get("lost", 0) for r in rows)
                    row["traffic"] = {**row["traffic"], "lost": lost}
                entry["ops"][op.name] = row
            entry["rounds_server"] = [e.get("server") for e in entries]
        merged[target] = entry
    return merged


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds per measured wrk run (default 5)"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds of unmeasured wrk load before each operation (default 2)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measured runs per operation; the median run is kept (default 1)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every target this many times, in turn, on fresh servers; per operation the"
        " median round is kept and the ratios' range is printed (default 1; 3 on a noisy machine)",
    )
    parser.add_argument(
        "--records",
        type=int,
        default=20,
        help="records the simulator's collection starts with (default 20)",
    )
    parser.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help=f"comma-separated subset of {','.join(TARGETS)}",
    )
    parser.add_argument(
        "--proxy-connections",
        type=int,
        default=64,
        help="wrk connections for the proxy comparison (default 64, as bench_proxy.py)",
    )
    parser.add_argument(
        "--proxy-requests",
        type=int,
        default=2000,
        help="requests per side for the proxy's p50 at one connection (default 2000)",
    )
    parser.add_argument(
        "--prism-log-level",
        default="error",
        help="prism -v level (default error: no per-request log lines)",
    )
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter that runs the simulator"
    )
    parser.add_argument("--wrk", default=None)
    parser.add_argument("--nginx", default=None)
    parser.add_argument("--prism", default=None)
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="do not pin server and wrk to CPUs"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="JSON results file (default benchmarks/results/provider-<date>.json, written only when every target ran)",
    )
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temporary folder (logs, traffic files)"
    )
    args = parser.parse_args()

    notes = find_tools(args)
    if not args.wrk:
        print("wrk not found (apt-get install -y wrk): nothing to measure", file=sys.stderr)
        return 0
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    if not args.prism:
        targets = [t for t in targets if not t.startswith("prism")]
    if not args.nginx:
        targets = [t for t in targets if t != "nginx"]

    per_target = len(OPS) * (args.warmup + args.duration * args.repeat) + 8
    estimate = per_target * len([t for t in targets if t != "proxy"]) * max(args.rounds, 1)
    if "proxy" in targets:
        estimate += PROXY_SECONDS * args.duration / 5
    children = Children()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    work = Path(tempfile.mkdtemp(prefix="bench-provider-"))
    started_at = dt.datetime.now(dt.UTC)
    info = machine_info(args)
    load_before = os.getloadavg()
    print(
        f"bench_provider: {', '.join(targets)} x {', '.join(op.name for op in OPS)}; wrk -t1 -c{args.connections}, "
        f"{args.warmup:g} s warm-up + {args.repeat} x {args.duration:g} s per operation, {args.rounds} round(s) (about {estimate / 60:.1f} min)"
    )
    print(
        f"machine: {info['nproc']} CPUs, {info['cpu_model']}, Python {info['python']}; load average {load_before[0]:.2f}; pinning {'server CPU 0, wrk CPU 1' if args.pin else 'off'}"
    )
    for note in notes:
        print(f"note: {note}")
    bodies: dict[str, bytes] = {}
    interrupted = False
    rounds: list[dict[str, Any]] = []
    try:
        lua = post_script(work)
        for number in range(args.rounds):
            if args.rounds > 1:
                print(f"round {number + 1} of {args.rounds}", flush=True)
            # The proxy comparison has rounds of its own (interleaved wrk runs): once is enough.
            these = targets if number == 0 else [t for t in targets if t != "proxy"]
            rounds.append({})
            run_round(args, these, children, work, lua, bodies, rounds[-1])
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping every server", file=sys.stderr)
    finally:
        children.stop_all()
        if args.keep_temp:
            print(f"temporary files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    results = merge_rounds([r for r in rounds if r]) if any(rounds) else {}
    measured = {t: r for t, r in results.items() if "ops" in r}
    ratios = compute_ratios(measured)
    print_report(measured, ratios)
    if len(rounds) > 1:
        per_round = [compute_ratios({t: r for t, r in one.items() if "ops" in r}) for one in rounds]
        ratios["rounds"] = per_round
        print_round_ranges(per_round)
    proxy_figures = results.get("proxy", {}).get("figures")
    if proxy_figures:
        ratios["proxy"] = proxy_ratios(proxy_figures)
        print_proxy_report(proxy_figures)
    load_after = os.getloadavg()
    print(
        f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} (this machine may be shared: compare runs)"
    )
    if interrupted:
        return 0
    if args.output is None and set(targets) != set(TARGETS):
        print("a subset of the targets ran: no JSON written (pass --output to keep it)")
        return 0
    output = args.output or RESULTS / f"provider-{started_at:%Y-%m-%d}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "bench_provider",
        "started_at": started_at.isoformat(timespec="seconds"),
        "seconds": round((dt.datetime.now(dt.UTC) - started_at).total_seconds(), 1),
        "settings": {
            "duration": args.duration,
            "warmup": args.warmup,
            "repeat": args.repeat,
            "rounds": args.rounds,
            "connections": args.connections,
            "wrk_threads": 1,
            "records": args.records,
            "pinned": args.pin,
            "prism_log_level": args.prism_log_level,
            "operations": [asdict(op) for op in OPS],
        },
        "machine": info | {"load_average_before": load_before, "load_average_after": load_after},
        "code": source_fingerprint(),
        "notes": notes,
        "targets": results,
        "ratios": ratios,
        "targets_goals": {key: f"{sense} {goal}" for key, _, sense, goal in TARGET_CHECKS}
        | {f"proxy.{key}": f"{sense} {goal}" for key, _, sense, goal in bench_proxy.PROXY_TARGETS},
    }
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results: {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
