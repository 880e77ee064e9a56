"""Quick measurement of the fault proxy against going direct (not a test).

Two upstreams, each in its own process pinned to CPU 0: the harness simulator (petstore, no auth,
no rate limit, stateless) and a raw asyncio ``Protocol`` answering canned bytes (a stand-in for a
fast native server such as nginx). The proxy (``ProviderEngine`` with ``upstream`` set, no rate
limit, in-memory traffic log unless ``--traffic-file``) runs in another process pinned to CPU 1.

- latency: one keep-alive connection from a minimal socket client, requests alternating in
  rounds between direct and proxied; p50 of each and the difference;
- throughput: ``wrk`` (unpinned) at ``--connections``, direct vs proxied, and the ratio;
- Stoplight Prism's validating proxy (``prism proxy --errors``) in front of the same simulator,
  measured the same way, when Prism is installed
  (``npm install --prefix benchmarks/.cache/prism @stoplight/prism-cli``): the ratio of the two
  proxies' throughput (target: the harness proxy >= 4x Prism's).

    python benchmarks/bench_proxy.py [--duration 5] [--connections 64] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "contracts" / "petstore" / "integration.yaml"
PATH = "/pets/1"
BODY = b'{"id":1,"name":"Rex","status":"available"}'
CANNED = (
    b"HTTP/1.1 200 OK\r\nServer: raw\r\nContent-Length: %d\r\n"
    b"Content-Type: application/json\r\n\r\n%s" % (len(BODY), BODY)
)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


class _RawProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        count = data.count(b"\r\n\r\n")
        if count:
            self.transport.write(CANNED * count)  # type: ignore[attr-defined]


def _serve(kind: str, upstream: str, traffic_file: str, ports: multiprocessing.Queue[int]) -> None:
    """Child process: 'raw' or 'simulator' upstream on CPU 0, or the 'proxy' on CPU 1."""
    _pin(1 if kind == "proxy" else 0)

    async def main() -> None:
        if kind == "raw":
            loop = asyncio.get_running_loop()
            server = await loop.create_server(_RawProtocol, "127.0.0.1", 0, backlog=1024)
            ports.put(server.sockets[0].getsockname()[1])
        else:
            from harness.project import load_project
            from harness.provider.engine import EngineOptions, ProviderEngine
            from harness.provider.server import HttpServer
            from harness.provider.traffic import TrafficLog
            from harness.redact import Redactor

            project = load_project(SPEC)
            options = EngineOptions(
                stateful=False,
                validate_requests=False,
                upstream=upstream if kind == "proxy" else None,
            )
            traffic = TrafficLog.open(Path(traffic_file) if traffic_file else None, Redactor())
            engine = ProviderEngine(project.provider, options, traffic)
            http = HttpServer(engine.handle, engine.complete)
            ports.put(await http.start())
        await asyncio.Event().wait()

    _new_loop().run_until_complete(main())


def _start(kind: str, upstream: str = "", traffic_file: str = "") -> tuple[object, int]:
    ctx = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue[int] = ctx.Queue()
    process = ctx.Process(target=_serve, args=(kind, upstream, traffic_file, ports), daemon=True)
    process.start()
    port = ports.get(timeout=30)
    with socket.create_connection(("127.0.0.1", port)):
        pass
    return process, port


PRISM = REPO / "benchmarks" / ".cache" / "prism" / "node_modules" / ".bin" / "prism"
DOCUMENT = REPO / "contracts" / "petstore" / "provider.openapi.yaml"
AUTH = (
    "Authorization: Bearer bench-token"  # the document asks for a token; Prism checks one is sent
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_prism_proxy(upstream: str) -> tuple[subprocess.Popen[bytes], int] | None:
    """Prism's validating proxy on CPU 1 (where the harness proxy runs), or None without Prism."""
    prism = str(PRISM) if PRISM.exists() else shutil.which("prism")
    if prism is None:
        return None
    port = _free_port()
    command = [prism, "proxy", str(DOCUMENT), upstream, "-p", str(port), "--errors", "-v", "error"]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "1", *command]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    return None


class _Client:
    """A minimal keep-alive client: what it costs is the same for direct and proxied."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = f"GET {PATH} HTTP/1.1\r\nHost: bench\r\n{AUTH}\r\n\r\n".encode()

    def get(self) -> float:
        start = time.perf_counter()
        self.sock.sendall(self.request)
        data = b""
        while True:
            data += self.sock.recv(65536)
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
                if len(body) >= length:
                    return time.perf_counter() - start


def _latency(direct: int, proxied: int, requests: int) -> tuple[float, float]:
    a, b = _Client(direct), _Client(proxied)
    for _ in range(200):  # warm-up: caches, pools, branch predictors
        a.get()
        b.get()
    times_a: list[float] = []
    times_b: list[float] = []
    for _ in range(requests // 100):
        times_a += [a.get() for _ in range(100)]
        times_b += [b.get() for _ in range(100)]
    return statistics.median(times_a) * 1000, statistics.median(times_b) * 1000


def _wrk(port: int, duration: float, connections: int) -> float:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "-H", AUTH]
    out = subprocess.run(
        [*command, f"http://127.0.0.1:{port}{PATH}"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed responses:\n{out}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--requests", type=int, default=2000, help="per side, for latency")
    parser.add_argument("--traffic-file", action="store_true", help="proxy writes a JSONL log")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = str(Path(tmp) / "traffic.jsonl") if args.traffic_file else ""
        for kind in ("simulator", "raw"):
            upstream, up_port = _start(kind)
            proxy, px_port = _start("proxy", f"http://127.0.0.1:{up_port}", log)
            try:
                direct, proxied = _latency(up_port, px_port, args.requests)
                print(f"upstream {kind}:")
                print(
                    f"  p50 at 1 connection: direct {direct:.3f} ms, proxied {proxied:.3f} ms,"
                    f" added {proxied - direct:.3f} ms"
                )
                if shutil.which("wrk"):
                    _wrk(up_port, 1, args.connections)
                    _wrk(px_port, 1, args.connections)
                    rps_direct = _wrk(up_port, args.duration, args.connections)
                    rps_proxied = _wrk(px_port, args.duration, args.connections)
                    print(
                        f"  wrk -c{args.connections}: direct {rps_direct:,.0f}/s, proxied"
                        f" {rps_proxied:,.0f}/s ({rps_proxied / rps_direct:.0%} of direct)"
                    )
                prism = (
                    _start_prism_proxy(f"http://127.0.0.1:{up_port}")
                    if kind == "simulator"
                    else None
                )
                if prism is not None:
                    prism_process, prism_port = prism
                    try:
                        _, via_prism = _latency(up_port, prism_port, args.requests)
                        print(
                            f"  Prism's validating proxy: p50 {via_prism:.3f} ms, added {via_prism - direct:.3f} ms"
                        )
                        if shutil.which("wrk"):
                            _wrk(prism_port, 1, args.connections)
                            rps_prism = _wrk(prism_port, args.duration, args.connections)
                            print(
                                f"  wrk -c{args.connections}: Prism proxy {rps_prism:,.0f}/s;"
                                f" harness proxy / Prism proxy {rps_proxied / rps_prism:.1f}x (target >= 4x)"
                            )
                    finally:
                        os.killpg(prism_process.pid, 9)
                        prism_process.wait(5)
            finally:
                for process in (proxy, upstream):
                    process.terminate()  # type: ignore[attr-defined]
                    process.join(5)  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
