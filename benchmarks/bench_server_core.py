"""Quick micro-benchmark of the provider engine's HTTP core (not a test).

Runs ``harness.provider.server.HttpServer`` in a child process (one core, uvloop when installed)
answering a canned JSON response with a synchronous handler, and a raw asyncio ``Protocol``
answering the same bytes as the ceiling for this machine, and loads both with ``wrk`` (or, if
``wrk`` is not installed, a small multi-connection Python client, which is itself the bottleneck
and so only good for a rough lower bound). Prints requests/s and the ratio to the ceiling.

    python benchmarks/bench_server_core.py [--duration 5] [--connections 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def _pin() -> None:
    """Pin the server to CPU 0 so the load generator gets the other core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})


def _serve_harness(port_queue: multiprocessing.Queue[int]) -> None:
    from harness.provider.messages import Request, Respond
    from harness.provider.server import HttpServer

    _pin()
    response = Respond(200, (("Content-Type", "application/json"),), BODY)

    def handler(request: Request) -> Respond:
        return response

    async def main() -> None:
        server = HttpServer(handler, lambda request, action, outcome: None)
        port_queue.put(await server.start())
        await asyncio.Event().wait()

    loop = _new_loop()
    loop.run_until_complete(main())


class _RawProtocol(asyncio.Protocol):
    """The ceiling: one canned response per request head, no parsing beyond counting."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        count = data.count(b"\r\n\r\n")
        if count:
            self.transport.write(CANNED * count)  # type: ignore[attr-defined]


def _serve_raw(port_queue: multiprocessing.Queue[int]) -> None:
    _pin()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_RawProtocol, "127.0.0.1", 0, backlog=1024)
        port_queue.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    loop = _new_loop()
    loop.run_until_complete(main())


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(port: int, duration: float, connections: int, threads: int) -> tuple[float, int]:
    """(requests/s, requests) of one wrk run."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s"]
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        command = ["taskset", "-c", "1", *command]
    out = subprocess.run(
        [*command, f"http://127.0.0.1:{port}/pets/1"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    if match is None or count is None:
        raise RuntimeError(out)
    return float(match.group(1)), int(count.group(1))


def _python_client(port: int, duration: float, connections: int) -> float:
    """A fallback load generator: keep-alive connections, one request in flight on each."""
    request = b"GET /pets/1 HTTP/1.1\r\nHost: bench\r\n\r\n"
    done = 0

    async def worker(deadline: float) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            done += 1
        writer.close()

    async def main() -> float:
        start = time.monotonic()
        await asyncio.gather(*(worker(start + duration) for _ in range(connections)))
        return done / (time.monotonic() - start)

    return _new_loop().run_until_complete(main())


def _measure(target: str, args: argparse.Namespace) -> tuple[float, float | None]:
    """Start the target server in a fresh process, load it: (requests/s, server CPU us per
    request). CPU per request is the steadier figure on a shared machine: it does not count
    the moments the server waited for a core."""
    ctx = multiprocessing.get_context("spawn")
    port_queue: multiprocessing.Queue[int] = ctx.Queue()
    process = ctx.Process(
        target=_serve_harness if target == "harness" else _serve_raw, args=(port_queue,)
    )
    process.start()
    try:
        port = port_queue.get(timeout=20)
        with socket.create_connection(("127.0.0.1", port)):
            pass
        if shutil.which("wrk") and not args.python_client:
            _wrk(port, 1, args.connections, args.threads)  # warm-up
            assert process.pid is not None
            before = _cpu_seconds(process.pid)
            rps, requests = _wrk(port, args.duration, args.connections, args.threads)
            return rps, (_cpu_seconds(process.pid) - before) / max(requests, 1) * 1e6
        return _python_client(port, args.duration, min(args.connections, 32)), None
    finally:
        process.terminate()
        process.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds; best kept")
    parser.add_argument("--python-client", action="store_true", help="ignore wrk if installed")
    args = parser.parse_args()
    tool = "wrk" if shutil.which("wrk") and not args.python_client else "python client"
    print(
        f"load generator: {tool}, {args.connections} connections, {args.duration:.0f} s runs, "
        f"{args.repeat} alternating rounds (this machine is shared: the best round is reported)"
    )
    raws: list[tuple[float, float | None]] = []
    ours: list[tuple[float, float | None]] = []
    for round_ in range(1, args.repeat + 1):
        raws.append(_measure("raw", args))
        ours.append(_measure("harness", args))
        print(
            f"  round {round_}: raw {raws[-1][0]:>9,.0f}/s {_us(raws[-1][1])}"
            f"  harness {ours[-1][0]:>9,.0f}/s {_us(ours[-1][1])}"
        )
    raw, harness = max(raws), max(ours)
    print(f"raw asyncio Protocol (ceiling): {raw[0]:>10,.0f} requests/s {_us(raw[1])}")
    print(
        f"harness HttpServer:             {harness[0]:>10,.0f} requests/s {_us(harness[1])}"
        f" ({harness[0] / raw[0]:.0%})"
    )


def _us(cpu: float | None) -> str:
    return "" if cpu is None else f"({cpu:.1f} us CPU/request)"


if __name__ == "__main__":
    main()
