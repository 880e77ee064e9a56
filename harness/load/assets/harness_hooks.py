"""What every `harness load` run loads into Locust: the plan, raw samples, progress, pacing, auth.

`harness load` writes the run's plan as a module, ``harness_plan.py``, and starts Locust with
``-f harness_plan.py,harness_hooks.py,<locustfile>``: workers started elsewhere with ``-f -``
download all three from the master. This module reads the plan once per process (or, run by
hand, the JSON file ``HARNESS_LOAD_PLAN`` names). It is loaded before the locustfile that
defines the users (the generic ``harness_locustfile.py`` or your own), so your locustfile can
``import harness_hooks`` and reuse :func:`send`, :func:`pacing` and :class:`PlanShape`.

Why each part exists:

* **Raw samples.** Locust keeps response times in buckets of about two significant digits
  (a 812 ms request is counted as 810), which makes a p95 threshold flap at its boundary. Every
  request event is written here with its exact duration, status, outcome and stage, to
  ``samples-<role>-<pid>.jsonl`` (flushed twice a second), and the harness computes
  percentiles, rates and the time series from those. Workers send their samples to the
  master over Locust's own messages, so workers on other machines need no shared disk.
* **Progress.** The master (or the single local process) prints one ``HARNESS-PROGRESS {json}``
  line a second: users, requests/s, p95, failures. The harness shows it while the run goes.
* **Pacing.** The arrival rate comes from Locust's own ``constant_throughput`` (one per stage,
  rate / users per user) and users are spawned at the arrival rate, so arrivals are evenly
  spread from the first second; :class:`PlanShape` is a ``LoadTestShape`` that follows the
  plan's stages and ends the run.
* **Auth.** One token per process, fetched (and refreshed before it expires, or after a 401)
  by whichever user needs it first while the others wait on a lock: the provider sees what a
  well-behaved integration would send, not one token request per user.
* **Client-side limiter.** Stages that model the integration's own limiter send through a
  per-process slot scheduler at the plan's rate, split between the processes.

Only the standard library, gevent and Locust are imported: this runs in Locust's processes.
"""

from __future__ import annotations

import base64
import json
import os
import random
import resource
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlencode

import gevent  # type: ignore[import-untyped, unused-ignore]
from gevent.lock import Semaphore  # type: ignore[import-untyped, unused-ignore]
from locust import LoadTestShape, events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from locust.user.wait_time import constant_throughput

PLAN_ENV = "HARNESS_LOAD_PLAN"
PROGRESS_PREFIX = "HARNESS-PROGRESS "
SAMPLES_MESSAGE = "harness_samples"
CAPPED_MESSAGE = "harness_capped"
CPU_MESSAGE = "harness_cpu"
FLUSH_SECONDS = 0.5


def _load_plan() -> dict[str, Any]:
    """The plan: from ``harness_plan`` (loaded by Locust before this file, and downloaded with
    it by workers started with ``-f -``), else from the JSON file ``HARNESS_LOAD_PLAN`` names."""
    module = sys.modules.get("harness_plan")
    if module is not None and isinstance(getattr(module, "PLAN", None), dict):
        return dict(module.PLAN)
    path = os.environ.get(PLAN_ENV)
    if not path:
        raise SystemExit(f"{PLAN_ENV} is not set: this locustfile is run by `harness load`")
    with open(path, encoding="utf-8") as stream:
        plan: dict[str, Any] = json.load(stream)
    return plan


PLAN = _load_plan()


@dataclass(frozen=True)
class Stage:
    """A part of the run: its time window (seconds from the start), users and rates."""

    index: int
    name: str
    start: float
    end: float
    users: int
    spawn_rate: float
    rps: float | None
    limiter_rps: float | None
    expect_429: bool


@dataclass(frozen=True)
class Request:
    url: str
    body: str | None
    content_type: str | None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Operation:
    id: str
    method: str
    weight: int
    requests: tuple[Request, ...]


STAGES = tuple(
    Stage(
        index=i,
        name=str(s["name"]),
        start=float(s["start"]),
        end=float(s["end"]),
        users=int(s["users"]),
        spawn_rate=float(s["spawn_rate"]),
        rps=None if s.get("rps") is None else float(s["rps"]),
        limiter_rps=None if s.get("limiter_rps") is None else float(s["limiter_rps"]),
        expect_429=bool(s.get("expect_429")),
    )
    for i, s in enumerate(PLAN["stages"])
)
DURATION = STAGES[-1].end
OPERATIONS = tuple(
    Operation(
        id=str(op["id"]),
        method=str(op["method"]),
        weight=int(op["weight"]),
        requests=tuple(
            Request(
                str(r["url"]),
                r.get("body"),
                r.get("content_type"),
                tuple((str(k), str(v)) for k, v in (r.get("headers") or {}).items()),
            )
            for r in op["requests"]
        ),
    )
    for op in PLAN["operations"]
)
BASE_URL = str(PLAN["base_url"])
TIMEOUT = float(PLAN["timeout_seconds"])
PROCESSES = max(1, int(PLAN.get("processes", 1)))
_random = random.Random(f"{PLAN.get('seed', 0)}-{os.getpid()}")


# --- the run's clock and stages ------------------------------------------------------------


class _Clock:
    """When this process's run started (``test_start``), on the wall clock and a monotonic one."""

    wall: float | None = None
    mono: float = 0.0


def elapsed() -> float:
    """Seconds since this process's run started (0 before it starts)."""
    return 0.0 if _Clock.wall is None else time.monotonic() - _Clock.mono


def stage_at(seconds: float) -> Stage:
    for stage in STAGES:
        if seconds < stage.end:
            return stage
    return STAGES[-1]


_ONE_STAGE = len(STAGES) == 1


def current_stage() -> Stage:
    return STAGES[0] if _ONE_STAGE else stage_at(elapsed())


# --- pacing: Locust's own constant_throughput, one per stage -------------------------------


_pacers: dict[int, Callable[[Any], float]] = {}


def pacing(user: Any) -> float:
    """The wait before the user's next task: ``constant_throughput(stage rps / stage users)``.

    Use it as your User's ``wait_time``. Unpaced stages (no rate) do not wait.
    """
    stage = STAGES[0] if _ONE_STAGE else stage_at(elapsed())
    if stage.rps is None:
        return 0.0
    pacer = _pacers.get(stage.index)
    if pacer is None:
        pacer = _pacers[stage.index] = constant_throughput(stage.rps / max(stage.users, 1))
    return pacer(user)


class _Started:
    users = 0


def stagger(user: Any) -> None:
    """Delay a new user's first task to its own slot in the pacing interval.

    Call it from ``on_start``. Users are spawned together, and ``constant_throughput`` keeps
    each one on its start's phase; without this every user would fire at the same instant,
    once per interval. User *n* of process *p* starts at slot ``n * processes + p``, one slot
    per ``1 / rps`` seconds, so the arrivals of the whole run are evenly spaced.
    """
    stage = current_stage()
    if stage.rps is None:
        return
    runner = user.environment.runner
    index = max(int(getattr(runner, "worker_index", 0)), 0)
    slot = _Started.users * PROCESSES + index
    _Started.users += 1
    gevent.sleep((slot % max(stage.users, 1)) / stage.rps)
    # constant_throughput counts from the user's creation; count from its first task instead.
    user._cp_last_run = time.perf_counter()
    user._cp_last_wait_time = 0.0


class PlanShape(LoadTestShape):
    """The plan's stages as a ``LoadTestShape``: users and spawn rate per stage, then the end.

    Abstract, so loading this module adds no shape; subclass it (``class Shape(PlanShape):
    pass``) in the locustfile that should follow the plan.
    """

    abstract = True

    def tick(self) -> tuple[int, float] | None:
        run_time = time.perf_counter() - self.start_time
        if run_time >= DURATION:
            return None
        stage = stage_at(run_time)
        return stage.users, stage.spawn_rate


# --- the client-side limiter ---------------------------------------------------------------


class _Limiter:
    """Evenly spaced send slots at a rate (this process's share of the plan's limiter rate)."""

    def __init__(self) -> None:
        self._next = 0.0

    def wait(self, rate: float) -> None:
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + 1.0 / rate
        if slot > now:
            gevent.sleep(slot - now)


LIMITER = _Limiter()


# --- auth: one token per process, shared by its users --------------------------------------


def _env(name: str | None) -> str:
    if not name:
        return ""
    return os.environ.get(name, "")


class _Tokens:
    """The process's access token: fetched once, refreshed before expiry or after a 401."""

    def __init__(self, auth: dict[str, Any]) -> None:
        self.auth = auth
        self.lock = Semaphore()
        self.access: str | None = None
        self.refresh: str | None = None
        self.expires_at = 0.0
        self.failed_until = 0.0

    def get(self, user: Any) -> str | None:
        if self.access is not None and time.monotonic() < self.expires_at:
            return self.access
        if time.monotonic() < self.failed_until:
            return None
        with self.lock:
            now = time.monotonic()
            if self.access is not None and now < self.expires_at:
                return self.access
            if now < self.failed_until:
                return None
            self._fetch(user)
            return self.access

    def invalidate(self, token: str | None) -> None:
        if token is not None and token == self.access:
            self.access = None

    def _fetch(self, user: Any) -> None:
        auth = self.auth
        form: dict[str, str] = {
            "client_id": _env(auth.get("client_id_env")),
            "client_secret": _env(auth.get("client_secret_env")),
        }
        if self.refresh and auth.get("refresh"):
            form.update(grant_type="refresh_token", refresh_token=self.refresh)
        else:
            form["grant_type"] = "client_credentials"
            if auth.get("scope"):
                form["scope"] = str(auth["scope"])
        self.access = self.refresh = None
        response = user.client.request(
            "POST",
            str(auth["token_url"]),
            name=str(auth.get("token_name") or "token"),
            data=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            data = response.json() if 200 <= response.status_code < 300 else None
        except Exception:
            data = None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            self.failed_until = time.monotonic() + 1.0  # others go without rather than queue up
            return
        lifetime = data.get("expires_in") if isinstance(data, dict) else None
        seconds = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 3600.0
        self.access = token
        refresh = data.get("refresh_token") if isinstance(data, dict) else None
        self.refresh = refresh if isinstance(refresh, str) and refresh else None
        # Renew at 90% of the lifetime, so no request is sent with a token about to expire.
        self.expires_at = time.monotonic() + seconds * 0.9


class Auth:
    """Headers (and query parameters) that authenticate a request, as the spec declares."""

    def __init__(self, spec: dict[str, Any] | None) -> None:
        self.kind = (spec or {}).get("kind", "none")
        self.spec = spec or {}
        self.tokens = _Tokens(self.spec) if self.kind == "oauth2_client_credentials" else None

    def apply(self, user: Any, url: str, headers: dict[str, str]) -> tuple[str, str | None]:
        """``(url, bearer token used)``: headers are filled in place."""
        spec = self.spec
        if self.tokens is not None:
            token = self.tokens.get(user)
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            return url, token
        if self.kind == "bearer":
            headers["Authorization"] = f"Bearer {_env(spec.get('token_env'))}"
        elif self.kind == "basic":
            import base64

            pair = f"{_env(spec.get('username_env'))}:{_env(spec.get('password_env'))}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif self.kind == "api_key":
            value = _env(spec.get("api_key_env"))
            if spec.get("key_in") == "query":
                url += ("&" if "?" in url else "?") + urlencode({spec["key_name"]: value})
            else:
                headers[str(spec["key_name"])] = value
        return url, None


AUTH = Auth(PLAN.get("auth"))


def send(user: Any, operation: Operation) -> None:
    """Send one request of ``operation`` as ``user``: limiter, auth, a generated variant.

    This and the request listener run once per request: they stay lean (the benchmark holds
    them to within 5 % of a plain locustfile's requests per second).
    """
    stage = current_stage()
    if stage.limiter_rps:
        LIMITER.wait(stage.limiter_rps / PROCESSES)
    requests = operation.requests
    request = requests[0] if len(requests) == 1 else _random.choice(requests)
    headers = dict(request.headers)
    if request.content_type:
        headers["Content-Type"] = request.content_type
    if AUTH.kind == "none":
        url, token = request.url, None
    else:
        url, token = AUTH.apply(user, request.url, headers)
    # No redirects: a redirect could lead off the spec's allowed hosts.
    response = user.client.request(
        operation.method,
        url,
        name=operation.id,
        data=request.body,
        headers=headers,
        allow_redirects=False,
    )
    if token is not None and response.status_code == 401 and AUTH.tokens is not None:
        AUTH.tokens.invalidate(token)


# --- raw samples ---------------------------------------------------------------------------


def _is_timeout(error: BaseException | None) -> bool:
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, TimeoutError | gevent.Timeout):
            return True
        if "timed out" in str(error) or "timeout" in type(error).__name__.lower():
            return True
        original = getattr(error, "original", None)
        error = original if isinstance(original, BaseException) else error.__cause__
        seen += 1
    return False


KINDS = ("ok", "fail", "timeout", "error")
"""Outcome codes of the samples: ok; an HTTP status Locust counts as failed; no response
because the client timed out; no response for another reason (refused, reset)."""


class _Recorder:
    """Every request event as one row, in columns (``array``: appending a float costs tens of
    nanoseconds, and a flush packs thousands of rows with no per-row formatting), flushed
    twice a second to this process's samples file, or to the master from a worker."""

    def __init__(self) -> None:
        self.stream: IO[str] | None = None
        self.role = "local"
        self.runner: Any = None
        self.names: dict[str, int] = {}
        self._reset()

    def _reset(self) -> None:
        self.start_col = array("d")
        self.duration_col = array("d")
        self.status_col = array("H")
        self.kind_col = array("B")
        self.stage_col = array("H")
        self.name_col = array("H")
        self.retry_after: dict[str, str] = {}

    def open(self, role: str, runner: Any) -> None:
        """Workers send their rows to the master (they may run on other machines); the master
        and a single local process write them to ``samples-<role>-<pid>.jsonl``."""
        self.role = role
        if role == "worker":
            self.runner = runner
            return
        folder = str(PLAN["samples_dir"])
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"samples-{role}-{os.getpid()}.jsonl")
        self.stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the run

    def write(self, chunk: dict[str, Any]) -> None:
        if self.stream is not None and chunk.get("rows"):
            self.stream.write(json.dumps(chunk) + "\n")
            self.stream.flush()

    def start(self, wall: float) -> None:
        if self.stream is not None:
            self.stream.write(json.dumps({"start": wall, "role": self.role}) + "\n")
            self.stream.flush()

    def name_index(self, name: str) -> int:
        index = self.names.get(name)
        if index is None:
            index = self.names[name] = len(self.names)
        return index

    def record(
        self,
        name: str,
        response_time: float,
        response: Any,
        exception: BaseException | None,
        start_time: float | None,
    ) -> None:
        """The general case (failures, several stages); the listener inlines the common one."""
        status = int(getattr(response, "status_code", 0) or 0)
        if exception is None:
            kind = 0
        elif status == 0:
            kind = 2 if _is_timeout(exception) else 3
        else:
            kind = 1
        started = start_time if start_time is not None else time.time() - response_time / 1000
        if status == 429:
            headers = getattr(response, "headers", None)
            value = headers.get("retry-after") if headers is not None else None
            if value is not None:
                self.retry_after[str(len(self.start_col))] = str(value)
        stage = stage_at(started - _Clock.wall).index if _Clock.wall is not None else 0
        self.start_col.append(started)
        self.duration_col.append(response_time)
        self.status_col.append(min(max(status, 0), 65535))
        self.kind_col.append(kind)
        self.stage_col.append(stage)
        self.name_col.append(self.name_index(name))

    def chunk(self) -> dict[str, Any] | None:
        """The rows since the last flush, packed (base64 of each column), or ``None``."""
        rows = len(self.start_col)
        if not rows:
            return None
        columns: dict[str, array[Any]] = {
            "t": self.start_col,
            "duration": self.duration_col,
            "status": self.status_col,
            "kind": self.kind_col,
            "stage": self.stage_col,
            "name": self.name_col,
        }
        chunk: dict[str, Any] = {
            "rows": rows,
            "byteorder": sys.byteorder,
            "names": list(self.names),
            "kinds": list(KINDS),
            "retry_after": self.retry_after,
            **{key: base64.b64encode(column.tobytes()).decode() for key, column in columns.items()},
        }
        self._reset()
        return chunk

    def flush(self) -> None:
        chunk = self.chunk()
        if chunk is None:
            return
        if self.role == "worker":
            self.runner.send_message(SAMPLES_MESSAGE, chunk)
        else:
            self.write(chunk)

    def loop(self) -> None:
        while True:
            gevent.sleep(FLUSH_SECONDS)
            self.flush()


RECORDER = _Recorder()


def _progress_loop(environment: Environment) -> None:
    interval = float(PLAN.get("progress_seconds", 1.0))
    while True:
        gevent.sleep(interval)
        runner = environment.runner
        if runner is None:
            continue
        total = runner.stats.total
        line = {
            "t": round(elapsed(), 1),
            "stage": current_stage().name,
            "users": runner.user_count,
            "rps": round(total.current_rps, 2),
            "p95_ms": total.get_current_response_time_percentile(0.95),
            "requests": total.num_requests,
            "failures": total.num_failures,
        }
        sys.stdout.write(PROGRESS_PREFIX + json.dumps(line) + "\n")
        sys.stdout.flush()


class _Cap:
    """The run's request cap (this process's share): a safety net should pacing ever fail."""

    limit: int | None = (
        None if PLAN.get("max_requests") is None else max(1, int(PLAN["max_requests"]) // PROCESSES)
    )
    count = 0
    reached = False
    environment: Environment | None = None


def _mark_capped(count: int) -> None:
    folder = str(PLAN["samples_dir"])
    with open(os.path.join(folder, f"capped-{os.getpid()}"), "w", encoding="utf-8") as mark:
        mark.write(f"{count}\n")


def _cap_reached() -> None:
    """Stop this process's users and leave a mark (on the master) the harness reports."""
    _Cap.reached = True
    runner = _Cap.environment.runner if _Cap.environment is not None else None
    if isinstance(runner, WorkerRunner):
        RECORDER.flush()
        runner.send_message(CAPPED_MESSAGE, {"count": _Cap.count})
        gevent.spawn(runner.stop)
    else:
        _mark_capped(_Cap.count)
        if runner is not None:
            gevent.spawn(runner.quit)


class _Greenlets:
    progress: Any = None
    flusher: Any = None


def _on_init(environment: Environment, **_kwargs: Any) -> None:
    runner = environment.runner
    role = (
        "master"
        if isinstance(runner, MasterRunner)
        else "worker"
        if isinstance(runner, WorkerRunner)
        else "local"
    )
    RECORDER.open(role, runner)
    _Cap.environment = environment
    if role == "master" and runner is not None:
        runner.register_message(SAMPLES_MESSAGE, lambda msg, **_kw: RECORDER.write(msg.data))
        runner.register_message(
            CAPPED_MESSAGE, lambda msg, **_kw: _mark_capped(int(msg.data["count"]))
        )
        runner.register_message(CPU_MESSAGE, lambda msg, **_kw: _write_cpu(dict(msg.data)))
    else:
        _Greenlets.flusher = gevent.spawn(RECORDER.loop)


class _Cpu:
    """CPU seconds and requests of this process while the test ran: its cost per request."""

    start = 0.0
    requests = 0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _write_cpu(data: dict[str, Any]) -> None:
    folder = str(PLAN["samples_dir"])
    name = f"cpu-{data['role']}-{data['pid']}.json"
    with open(os.path.join(folder, name), "w", encoding="utf-8") as stream:
        json.dump(data, stream)


def _on_test_start(environment: Environment, **_kwargs: Any) -> None:
    _Clock.wall = time.time()
    _Clock.mono = time.monotonic()
    _Cpu.start, _Cpu.requests = _cpu_seconds(), _Cap.count
    RECORDER.start(_Clock.wall)
    if not isinstance(environment.runner, WorkerRunner) and _Greenlets.progress is None:
        _Greenlets.progress = gevent.spawn(_progress_loop, environment)


def _on_request(
    name: str,
    response_time: float,
    response: Any = None,
    exception: BaseException | None = None,
    start_time: float | None = None,
    **_kwargs: Any,
) -> None:
    recorder = RECORDER
    if exception is None and start_time is not None and _ONE_STAGE:
        recorder.start_col.append(start_time)
        recorder.duration_col.append(response_time)
        recorder.status_col.append(response.status_code)
        recorder.kind_col.append(0)
        recorder.stage_col.append(0)
        index = recorder.names.get(name)
        recorder.name_col.append(recorder.name_index(name) if index is None else index)
    else:
        recorder.record(name, response_time, response, exception, start_time)
    _Cap.count += 1
    if _Cap.limit is not None and _Cap.count > _Cap.limit and not _Cap.reached:
        _cap_reached()


def _on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    RECORDER.flush()
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        return
    data = {
        "role": RECORDER.role,
        "pid": os.getpid(),
        "cpu_seconds": _cpu_seconds() - _Cpu.start,
        "requests": _Cap.count - _Cpu.requests,
    }
    if isinstance(runner, WorkerRunner):
        runner.send_message(CPU_MESSAGE, data)
    else:
        _write_cpu(data)


def _on_quitting(**_kwargs: Any) -> None:
    RECORDER.flush()
    if _Greenlets.progress is not None:
        _Greenlets.progress.kill(block=False)


def _listen(hook: Any, handler: Callable[..., None]) -> None:
    hook.add_listener(handler)


_listen(events.init, _on_init)
_listen(events.test_start, _on_test_start)
_listen(events.request, _on_request)
_listen(events.test_stop, _on_test_stop)
_listen(events.quitting, _on_quitting)
