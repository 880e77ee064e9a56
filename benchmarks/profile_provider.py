"""Where the provider simulator spends its time per request (a report, not a test).

Two views, both on the benchmark spec (``benchmarks/specs/provider-bench.yaml``: every feature
on, rate limit too high to trigger, empty fault plan, traffic log to a file):

* ``engine`` (default): in-process, no network. Builds the engine exactly as ``harness simulate``
  does, feeds it the requests wrk sends (GET /pets, GET /pets/1, POST /pets) and reports
  (1) ``ProviderEngine.handle`` in microseconds per request, (2) each stage of the per-request
  path timed on its own (route, auth, rate limit, validation, stateful answer, JSON encoding,
  traffic record building, redaction, record copy, line encoding, write), (3) the cProfile top
  functions, and (4) garbage-collector pauses over a long run (the in-memory traffic log grows).
* ``--pyspy``: the real server (``python -m harness simulate``, pinned to CPU 0) under ``wrk``
  (CPU 1), sampled by ``py-spy record``; reports the share of server CPU per stage, HTTP layer
  included (``pip install py-spy``).

    python benchmarks/profile_provider.py [--requests 20000] [--pyspy] [--seconds 8]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import cProfile
import functools
import gc
import io
import json
import os
import pstats
import re
import shutil
import sys
import tempfile
import time
import timeit
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_provider as bench  # noqa: E402

# --- in-process ----------------------------------------------------------------------------


def build_engine(traffic_path: Path, keep_in_memory: bool = True) -> tuple[Any, Any, str]:
    """The engine ``harness simulate SPEC --traffic FILE --faults EMPTY --records 20`` runs."""
    os.environ["PETSTORE_CLIENT_ID"] = bench.CLIENT_ID
    os.environ["PETSTORE_CLIENT_SECRET"] = bench.CLIENT_SECRET
    from harness.project import load_project
    from harness.provider.api import load_faults, simulation_credentials
    from harness.provider.engine import EngineOptions, ProviderEngine
    from harness.provider.traffic import TrafficLog
    from harness.redact import Redactor

    project = load_project(bench.SPEC, display=str(bench.SPEC))
    creds = simulation_credentials(project)
    spec = project.spec.spec
    options = EngineOptions(
        side="provider",
        records=20,
        authentication=spec.authentication,
        credentials=creds.by_field,
        rate_limits=spec.rate_limits,
        fault_plan=load_faults(bench.FAULTS, {"provider": project.provider}),
    )
    traffic = TrafficLog.open(
        traffic_path, Redactor(frozenset(creds.by_env.values())), keep_in_memory=keep_in_memory
    )
    engine = ProviderEngine(project.provider, options, traffic)
    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": bench.CLIENT_ID,
            "client_secret": bench.CLIENT_SECRET,
        }
    ).encode()
    reply = engine.handle(
        make_request(
            "POST", "/oauth/token", form, (("content-type", "application/x-www-form-urlencoded"),)
        )
    )
    from harness.provider.messages import Respond

    assert isinstance(reply, Respond), reply
    token = json.loads(reply.body)["access_token"]
    return engine, traffic, token


_COUNTER = iter(range(1, 1 << 62))


def make_request(
    method: str,
    path: str,
    body: bytes = b"",
    extra: tuple[tuple[str, str], ...] = (),
    token: str | None = None,
) -> Any:
    """A request as the server builds it from what wrk sends (header names lower-cased)."""
    from harness.provider.messages import Request

    headers: list[tuple[str, str]] = [("host", "127.0.0.1:8080")]
    if token:
        headers.append(("authorization", f"Bearer {token}"))
    headers.extend(extra)
    if body:
        headers.append(("content-length", str(len(body))))
    now = time.monotonic()
    return Request(
        method, path, "", tuple(headers), body, "127.0.0.1:40000", next(_COUNTER), now, time.time()
    )


def op_request(op: bench.Op, token: str) -> Any:
    if op.body:
        return make_request(
            op.method, op.path, op.body.encode(), (("content-type", "application/json"),), token
        )
    return make_request(op.method, op.path, token=token)


@contextlib.contextmanager
def capturing(traffic: Any) -> Iterator[list[Any]]:
    """Catch the field values handed to ``traffic.append_values`` instead of logging them."""
    captured: list[Any] = []

    def append_values(values: Any, defer: bool = False) -> int:
        captured.append(values)
        return len(captured)

    traffic.append_values = append_values
    try:
        yield captured
    finally:
        del traffic.append_values  # the class method again


def per_call_us(function: Callable[[], Any], number: int) -> float:
    best = min(timeit.repeat(function, number=number, repeat=5))
    return best / number * 1e6


def stages(
    engine: Any, traffic: Any, op: bench.Op, token: str, number: int
) -> list[tuple[str, float]]:
    """Each step of ``ProviderEngine.handle`` for ``op``, timed on its own (best of 5)."""
    from harness.provider import state as state_module
    from harness.provider import traffic as traffic_module
    from harness.provider.engine import _Meta
    from harness.provider.messages import Respond
    from harness.provider.state import dumps

    request = op_request(op, token)
    op_compiled, params = engine.route(request.method, request.path)
    out: list[tuple[str, float]] = []
    out.append(
        (
            "route (static dict, then template regex + path_params)",
            per_call_us(lambda: engine.route(request.method, request.path), number),
        )
    )
    out.append(
        (
            "fault plan decide (empty plan)",
            per_call_us(
                lambda: engine.faults.decide(
                    "provider", op_compiled.operation_id, request.method, request.path
                ),
                number,
            ),
        )
    )
    out.append(
        (
            "auth: token request check + authenticate",
            per_call_us(
                lambda: (
                    engine.auth.is_token_request(request.path, op_compiled.operation_id),
                    engine.auth.authenticate(request),
                ),
                number,
            ),
        )
    )
    out.append(
        (
            "rate limit: check + headers",
            per_call_us(
                lambda: engine.limiter.headers(
                    engine.limiter.check("client:x", op_compiled.operation_id)
                ),
                number,
            ),
        )
    )

    def validate() -> Any:
        headers = {k: v for k, v in request.headers}
        return op_compiled.validate(
            params, request.query, headers, request.body, headers.get("content-type")
        )

    out.append(("request validation (headers dict + op.validate)", per_call_us(validate, number)))
    body = validate()[1]
    identity = engine.auth.authenticate(request).identity
    if op.method == "POST":
        # Creating records grows the store; time it on a throw-away copy of the store state.
        out.append(
            (
                "stateful answer (store.answer: create)",
                per_call_us(
                    lambda: engine.store.answer(op_compiled, params, {}, body, identity),
                    max(1, number // 4),
                ),
            )
        )
    else:
        out.append(
            (
                "stateful answer (store.answer; uncached: handle() serves repeats from its read cache)",
                per_call_us(
                    lambda: engine.store.answer(op_compiled, params, {}, body, identity), number
                ),
            )
        )
        if op.path == "/pets":
            spec = op_compiled.success()
            out.append(
                (
                    "  of which _record_schema (compiles a schema)",
                    per_call_us(
                        lambda: state_module._record_schema(spec.body), max(1, number // 4)
                    ),
                )
            )
            out.append(
                (
                    "  of which wrapper generator.static()",
                    per_call_us(lambda: spec.body.generator.static(), number),
                )
            )
            records = list(
                engine.store._records_of(
                    identity, "/pets", engine.store._collections["/pets"]
                ).values()
            )[:20]
            out.append(
                (
                    "  of which copy.deepcopy(page)",
                    per_call_us(lambda: copy.deepcopy(records), number),
                )
            )
            wrapper = engine.store.answer(op_compiled, params, {}, body, identity).body
            out.append(
                (
                    "  of which response is_valid(page)",
                    per_call_us(lambda: spec.body.is_valid(wrapper), number),
                )
            )
        else:
            record = engine.store.answer(op_compiled, params, {}, body, identity).body
            out.append(
                (
                    "  of which copy.deepcopy(record)",
                    per_call_us(lambda: copy.deepcopy(record), number),
                )
            )
    stored = engine.store.answer(op_compiled, params, {}, body, identity)
    out.append(
        ("response JSON encoding (state.dumps)", per_call_us(lambda: dumps(stored.body), number))
    )
    out.append(
        (
            "response headers (_doc_headers + rate headers)",
            per_call_us(lambda: engine._doc_headers(stored.spec), number),
        )
    )
    action = Respond(stored.status, (("content-type", "application/json"),), dumps(stored.body))
    meta = _Meta(
        operation_id=op_compiled.operation_id,
        identity=identity,
        rate=engine.limiter.check("client:x", op_compiled.operation_id),
    )

    # The traffic record, step by step, as ProviderEngine._record and TrafficLog.append_values
    # do it: the field values as a dict, redacted, encoded once, written.
    with capturing(traffic) as captured:
        build = per_call_us(
            lambda: engine._record(
                request,
                action,
                meta,
                action.status,
                len(action.body),
                time.monotonic(),
                time.time(),
                "",
            ),
            number,
        )
    out.append(("traffic: field values (engine._record)", build))
    values = captured[-1]
    redactor = traffic.redactor
    out.append(
        (
            "traffic: redaction (_redacted_values)",
            per_call_us(
                lambda: traffic_module._redacted_values(values, redactor, traffic.max_body_bytes),
                number,
            ),
        )
    )
    values.update(traffic_module._redacted_values(values, redactor, traffic.max_body_bytes))
    import orjson

    out.append(
        ("traffic: JSON line (orjson.dumps)", per_call_us(lambda: orjson.dumps(values), number))
    )
    line = orjson.dumps(values) + b"\n"
    with (
        tempfile.TemporaryDirectory() as folder,
        open(Path(folder) / "w.jsonl", "wb", buffering=0) as handle,
    ):
        out.append(
            (
                f"traffic: write(2) of the {len(line)}-byte line",
                per_call_us(lambda: handle.write(line), number),
            )
        )
    return out


def handle_us(
    engine: Any, op: bench.Op, token: str, number: int, chunks: int = 10
) -> tuple[float, float]:
    """``handle()`` per request: (best chunk, mean over all chunks), GC on as in the server.

    The best chunk is what the code costs; the mean adds collector pauses and whatever else
    the machine was doing (it may be shared).
    """
    request = op_request(op, token)
    handle = engine.handle
    size = max(1, number // chunks)
    times = []
    for _ in range(chunks):
        start = time.perf_counter()
        for _ in range(size):
            handle(request)
        times.append((time.perf_counter() - start) / size * 1e6)
    return min(times), sum(times) / len(times)


def token_scaling(
    folder: Path, counts: tuple[int, ...] = (1, 10, 50, 100)
) -> list[dict[str, float]]:
    """Every issued token becomes a redactor secret: cost of a token request, of redacting one
    GET /pets/1 record and of handle(GET /pets/1) as the number of issued tokens grows."""
    from harness.provider import traffic as traffic_module

    engine, traffic, token = build_engine(folder / "traffic-tokens.jsonl")
    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": bench.CLIENT_ID,
            "client_secret": bench.CLIENT_SECRET,
        }
    ).encode()
    token_request = make_request(
        "POST", "/oauth/token", form, (("content-type", "application/x-www-form-urlencoded"),)
    )
    issued = 1
    out = []
    for count in counts:
        batch = count - issued
        start = time.perf_counter()
        for _ in range(batch):
            engine.handle(token_request)
        per_token = (time.perf_counter() - start) / batch * 1e6 if batch > 0 else float("nan")
        issued = count
        with capturing(traffic) as captured:
            engine.handle(op_request(bench.OPS[1], token))
        record = captured[-1]
        redactor = traffic.redactor
        redact = per_call_us(
            functools.partial(
                traffic_module._redacted_values, record, redactor, traffic.max_body_bytes
            ),
            300,
        )
        best, _ = handle_us(engine, bench.OPS[1], token, 2000, chunks=5)
        out.append(
            {
                "tokens": count,
                "token_request_us": round(per_token, 1),
                "redaction_us": round(redact, 1),
                "handle_us": round(best, 1),
                "secret_forms": len(redactor._kinds),
            }
        )
    return out


def cprofile_top(engine: Any, op: bench.Op, token: str, number: int, top: int) -> str:
    request = op_request(op, token)
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(number):
        engine.handle(request)
    profile.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profile, stream=stream)
    stats.sort_stats("tottime").print_stats(top)
    text = stream.getvalue()
    # Keep the table only, with paths shortened.
    body = text[text.find("ncalls") :] if "ncalls" in text else text
    return body.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")


def gc_pauses(engine: Any, token: str, number: int) -> dict[str, Any]:
    """Run ``number`` GET /pets/1 through handle() and record every collection's pause."""
    pauses: dict[int, list[float]] = collections.defaultdict(list)
    started: list[float] = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - started[0])

    request = op_request(bench.OPS[1], token)
    gc.collect()
    gc.callbacks.append(callback)
    t0 = time.perf_counter()
    try:
        for _ in range(number):
            engine.handle(request)
    finally:
        gc.callbacks.remove(callback)
    elapsed = time.perf_counter() - t0
    out: dict[str, Any] = {
        "requests": number,
        "seconds": round(elapsed, 2),
        "tracked_objects": len(gc.get_objects()),
    }
    for generation in (0, 1, 2):
        values = pauses.get(generation, [])
        out[f"gen{generation}"] = {
            "collections": len(values),
            "total_ms": round(sum(values) * 1000, 1),
            "max_ms": round(max(values) * 1000, 2) if values else 0.0,
        }
    out["gc_share_percent"] = round(100 * sum(sum(v) for v in pauses.values()) / elapsed, 1)
    return out


def run_engine(args: argparse.Namespace) -> None:
    from harness.provider.state import ResourceStore

    with tempfile.TemporaryDirectory(prefix="profile-provider-") as folder:
        engine, traffic, token = build_engine(Path(folder) / "traffic.jsonl")
        print(
            f"engine: {engine.document.title}; traffic log {traffic.path}; {args.requests} requests per measurement\n"
        )
        for op in bench.OPS:
            for _ in range(200):  # warm caches (static bodies, header blocks)
                engine.handle(op_request(op, token))
            total, mean = handle_us(engine, op, token, args.requests)
            print(
                f"== {op.name}: ProviderEngine.handle {total:.1f} us/request best chunk, {mean:.1f} mean"
                f" ({1e6 / total:,.0f}/s on one core, HTTP layer excluded); stages (GC off, best of 5):"
            )
            rows = stages(engine, traffic, op, token, max(200, args.requests // 10))
            for label, us in rows:
                share = f"{100 * us / total:5.1f}%" if not label.startswith(" ") else "      "
                print(f"   {us:8.2f} us  {share}  {label}")
            print()
        if args.cprofile:
            for op in bench.OPS:
                print(
                    f"== cProfile, {op.name}, {args.requests} requests, top {args.top} by own time"
                )
                print(cprofile_top(engine, op, token, args.requests, args.top))
        print("== issued tokens vs cost (each token is a redactor secret for the rest of the run)")
        for row in token_scaling(Path(folder)):
            print(f"   {row}")
        print()
        # Fresh engine (no POST-grown store) for the GC measurement; the traffic log keeps every
        # record in memory (TrafficLog.open(..., keep_in_memory=True), as simulate() opens it).
        for keep in (True, False):
            engine, traffic, token = build_engine(
                Path(folder) / f"traffic-gc-{keep}.jsonl", keep_in_memory=keep
            )
            how = (
                "kept in memory, as simulate() does"
                if keep
                else "file only: TrafficLog.open(..., keep_in_memory=False)"
            )
            print(
                f"== garbage collector over {args.gc_requests} GET /pets/1, traffic records {how}"
            )
            result = gc_pauses(engine, token, args.gc_requests)
            for key, value in result.items():
                print(f"   {key}: {value}")
            traffic.close()
            del engine, traffic
            gc.collect()
        del ResourceStore


# --- py-spy under wrk --------------------------------------------------------------------------

STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("HTTP layer (parse, write, uvloop; not engine)", ()),
    ("engine: route + path_params", ("ProviderEngine.route (",)),
    ("engine: auth", ("AuthEmulator.",)),
    ("engine: rate limit", ("RateLimiter.",)),
    ("engine: request validation", ("CompiledOperation.validate (",)),
    ("engine: stateful answer (store.answer)", ("ResourceStore.answer (",)),
    ("engine: response JSON (state.dumps)", ("dumps (harness/provider/state.py",)),
    ("traffic: field values (engine._record, excl. append)", ("ProviderEngine._record (",)),
    ("traffic: append (encode, write)", ("TrafficLog.append_values (", "TrafficLog._store (")),
    ("traffic: redaction (_redacted_values)", ("_redacted_values (",)),
)


_FLUSH = "traffic: batched write(2) (flush_traffic, once per loop turn)"


def classify(frames: list[str]) -> str:
    """The innermost stage a sampled stack is in (stages nest: record > append > redaction)."""
    found = STAGES[0][0]
    if any("ProviderEngine.flush_traffic (" in f for f in frames):
        return _FLUSH  # the records of a loop turn, written before its responses
    if not any("ProviderEngine.handle (" in f for f in frames):
        return found
    found = "engine: other (handle/_decide/_answer glue)"
    for frame in frames:
        for name, needles in STAGES[1:]:
            if any(needle in frame for needle in needles):
                found = name
    return found


def run_pyspy(args: argparse.Namespace) -> None:
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        print("py-spy not found: pip install py-spy", file=sys.stderr)
        return
    ns = argparse.Namespace(
        python=sys.executable,
        records=20,
        pin=(os.cpu_count() or 1) > 1,
        wrk=shutil.which("wrk"),
        connections=args.connections,
    )
    if not ns.wrk:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return
    children = bench.Children()
    work = Path(tempfile.mkdtemp(prefix="profile-provider-"))
    try:
        server = bench.start_simulator(ns, children, work, traffic=True)
        lua = bench.post_script(work)
        for op in bench.OPS:
            bench.run_wrk(
                ns, server.port, op, 1, server.headers, lua, server.process.pid
            )  # warm-up
            raw = work / f"spy-{op.method}-{op.path.replace('/', '_')}.txt"
            spy = children.start(
                [
                    pyspy,
                    "record",
                    "--format",
                    "raw",
                    "-r",
                    str(args.rate),
                    "-d",
                    str(int(args.seconds)),
                    "-o",
                    str(raw),
                    "-p",
                    str(server.process.pid),
                ],
                work / "py-spy.log",
            )
            time.sleep(0.5)
            result = bench.run_wrk(
                ns, server.port, op, args.seconds, server.headers, lua, server.process.pid
            )
            spy.wait(args.seconds + 30)
            children.running.remove(spy)
            if args.keep_raw:
                shutil.copy(raw, args.keep_raw / raw.name)
            report_pyspy(op, raw, result)
    finally:
        children.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def report_pyspy(op: bench.Op, raw: Path, result: Any) -> None:
    buckets: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if not any("ServerThread.start" in f for f in frames):
            continue  # the CLI's main thread waiting for Ctrl-C, py-spy's own sampling of it
        total += n
        buckets[classify(frames)] += n
        own[re.sub(r":\d+\)$", ")", frames[-1])] += n
    us = 1e6 / result.rps * (result.server_cpu_percent or 100) / 100 if result.rps else 0
    print(
        f"== py-spy, {op.name}: {result.rps:,.0f} req/s under wrk, server CPU {result.server_cpu_percent}% -> {us:.0f} us CPU/request; {total} samples of the server thread"
    )
    for name, n in buckets.most_common():
        print(f"   {100 * n / total:5.1f}%  ~{us * n / total:5.0f} us  {name}")
    print("   top functions by own samples:")
    for name, n in own.most_common(12):
        print(f"   {100 * n / total:5.1f}%  {name}")
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=20000, help="requests per in-process measurement"
    )
    parser.add_argument(
        "--gc-requests", type=int, default=200000, help="requests for the GC pause measurement"
    )
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-cprofile", dest="cprofile", action="store_false")
    parser.add_argument(
        "--pyspy", action="store_true", help="sample the real server under wrk instead"
    )
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="py-spy: seconds of load per operation"
    )
    parser.add_argument("--rate", type=int, default=250, help="py-spy: samples per second")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--keep-raw", type=Path, default=None, help="py-spy: copy the raw collapsed stacks here"
    )
    args = parser.parse_args()
    if args.pyspy:
        run_pyspy(args)
    else:
        run_engine(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
