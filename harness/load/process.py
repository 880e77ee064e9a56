"""Locust as subprocesses: started, watched, and always stopped, whatever happens.

Locust monkey-patches the standard library with gevent, so it never runs in the harness's own
process: the harness starts ``python -m locust`` (headless; a master and N workers for
``--workers N``), reads its progress lines, and watches every process. All of them live in one
process group of their own, so one ``killpg`` ends them all, and the terminal's Ctrl-C reaches
only the harness, which then stops them in order: SIGTERM to the master (it writes its
statistics), a short wait, SIGKILL to the group. That happens on every way out (normal end,
worker death, crash, overrun of the run's time bound, Ctrl-C, an exception in the harness), so
no Locust process outlives a run.

What goes wrong becomes one line in ``LocustRun.error``: Locust failing to start (its last error
line, e.g. an exception in a locustfile), exiting mid-run, a worker dying, or the run not
ending within its bound.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

PROGRESS_PREFIX = "HARNESS-PROGRESS "
STARTUP_SECONDS = 30.0
"""How long Locust (and its workers) may take to start before the run is called failed."""
REMOTE_STARTUP_SECONDS = 300.0
"""How long the master waits for remote workers to connect."""
GRACE_SECONDS = 5.0
"""How long the master gets to write its statistics after SIGTERM, before SIGKILL."""

ProgressCallback = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class LocustCommand:
    """What to run: locustfiles, where outputs go, how many workers, the time bound."""

    locustfiles: tuple[Path, ...]
    base_url: str
    out_dir: Path
    env: Mapping[str, str]
    workers: int = 0
    """Local worker processes the harness starts."""
    remote_workers: int = 0
    """Workers started elsewhere (other machines, Kubernetes) that connect to the master."""
    master_bind: tuple[str, int] | None = None
    """Where the master listens (default: 127.0.0.1, any free port)."""
    stop_timeout: float = 2.0
    run_seconds: float = 5.0
    users: int = 1
    spawn_rate: float = 1.0
    own_shape: bool = True
    """The locustfile follows the plan's shape; else ``-u/-r/-t`` drive it."""

    @property
    def csv_prefix(self) -> Path:
        return self.out_dir / "locust"

    @property
    def html(self) -> Path:
        return self.out_dir / "locust-report.html"

    @property
    def json_stats(self) -> Path:
        return self.out_dir / "locust-stats.json"

    @property
    def log(self) -> Path:
        return self.out_dir / "locust.log"

    def worker_log(self, index: int) -> Path:
        return self.out_dir / f"locust-worker-{index}.log"

    @property
    def distributed(self) -> bool:
        return self.workers + self.remote_workers > 0

    @property
    def startup_seconds(self) -> float:
        """How long the master waits for its workers: remote ones may have pods to start."""
        return REMOTE_STARTUP_SECONDS if self.remote_workers else STARTUP_SECONDS

    @property
    def bound_seconds(self) -> float:
        """The most a healthy run can take; past it, the run is stopped and called failed."""
        return self.startup_seconds + self.run_seconds + self.stop_timeout + 15.0


@dataclass(frozen=True)
class LocustRun:
    exit_code: int | None
    started: bool
    error: str | None
    interrupted: bool
    seconds: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def master_args(command: LocustCommand, master: tuple[str, int] | None) -> list[str]:
    files = ",".join(str(p) for p in command.locustfiles)
    args = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        files,
        "--headless",
        "--only-summary",
        "-H",
        command.base_url,
        "--csv",
        str(command.csv_prefix),
        "--html",
        str(command.html),
        "--json-file",
        str(command.json_stats.with_suffix("")),  # Locust appends ".json"
        "--stop-timeout",
        str(math.ceil(command.stop_timeout)),
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "INFO",
    ]
    if not command.own_shape:
        args += [
            "-u",
            str(command.users),
            "-r",
            f"{command.spawn_rate:g}",
            "-t",
            f"{max(1, round(command.run_seconds))}s",
        ]
    if master is not None:
        args += [
            "--master",
            "--master-bind-host",
            master[0],
            "--master-bind-port",
            str(master[1]),
            "--expect-workers",
            str(command.workers + command.remote_workers),
            "--expect-workers-max-wait",
            f"{command.startup_seconds:g}",
        ]
    return args


def worker_args(command: LocustCommand, master_port: int) -> list[str]:
    files = ",".join(str(p) for p in command.locustfiles)
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        files,
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        str(master_port),
        "--loglevel",
        "INFO",
    ]


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


_ERROR_LINE = re.compile(r"^\s*([\w.]*(Error|Exception|Exit)\b.*|.*\bERROR/.*)$")


def last_error_line(path: Path) -> str:
    """The line that best explains a failure: the last exception or ERROR line, else the last."""
    try:
        lines = [
            line.rstrip()
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
            if line.strip() and not line.startswith(PROGRESS_PREFIX)
        ]
    except OSError:
        return ""
    for line in reversed(lines):
        if _ERROR_LINE.match(line):
            return line.strip()[:300]
    return lines[-1].strip()[:300] if lines else ""


class _Pump(threading.Thread):
    """Copies the master's output to its log, and hands progress lines to the main thread."""

    def __init__(self, stream: IO[bytes], log: IO[bytes], lines: queue.Queue[dict[str, Any]]):
        super().__init__(name="locust-output", daemon=True)
        self.stream = stream
        self.log = log
        self.lines = lines

    def run(self) -> None:
        prefix = PROGRESS_PREFIX.encode()
        for raw in iter(self.stream.readline, b""):
            if raw.startswith(prefix):
                with contextlib.suppress(ValueError):
                    self.lines.put(json.loads(raw[len(prefix) :]))
                continue
            self.log.write(raw)
            self.log.flush()


class LocustProcesses:
    """The master and its workers as one process group; :meth:`stop` ends all of them."""

    def __init__(self, command: LocustCommand) -> None:
        self.command = command
        self.master: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.groups: list[int] = []
        self._logs: list[IO[bytes]] = []
        self.progress: queue.Queue[dict[str, Any]] = queue.Queue()
        self._pump: _Pump | None = None

    def start(self) -> None:
        command = self.command
        command.out_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **command.env, "PYTHONUNBUFFERED": "1"}
        master = (
            (command.master_bind or ("127.0.0.1", _free_port())) if command.distributed else None
        )
        port = master[1] if master is not None else None
        log = open(command.log, "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        self.master = subprocess.Popen(
            master_args(command, master),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=command.out_dir,
            start_new_session=True,
        )
        self.groups.append(self.master.pid)
        self._pump = _Pump(self.master.stdout, log, self.progress)  # type: ignore[arg-type]
        self._pump.start()
        for index in range(command.workers):
            assert port is not None
            worker_log = open(command.worker_log(index + 1), "wb")  # noqa: SIM115
            self._logs.append(worker_log)
            try:
                worker = subprocess.Popen(
                    worker_args(command, port),
                    stdout=worker_log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=command.out_dir,
                    process_group=self.master.pid,
                )
            except OSError:  # the master's group is gone already: a group of its own
                worker = subprocess.Popen(
                    worker_args(command, port),
                    stdout=worker_log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=command.out_dir,
                    start_new_session=True,
                )
                self.groups.append(worker.pid)
            self.workers.append(worker)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in [*([self.master] if self.master else []), *self.workers]]

    def stop(self, graceful: bool = True) -> None:
        """End every process: SIGTERM to the master first (when graceful), then SIGKILL all."""
        master = self.master
        if graceful and master is not None and master.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                master.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                master.wait(GRACE_SECONDS)
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        for process in [*([master] if master else []), *self.workers]:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        if self._pump is not None:
            self._pump.join(2)
        for log in self._logs:
            log.close()
        self._logs = []


def run_locust(
    command: LocustCommand,
    on_progress: ProgressCallback,
    sleep: Callable[[float], None] = time.sleep,
) -> LocustRun:
    """Run Locust to its end (or its time bound); never leaves a process behind."""
    processes = LocustProcesses(command)
    started_at = time.monotonic()
    started = False
    run_started: float | None = None
    error: str | None = None
    interrupted = False
    try:
        processes.start()
        master = processes.master
        assert master is not None
        while master.poll() is None:
            while True:
                try:
                    line = processes.progress.get_nowait()
                except queue.Empty:
                    break
                if run_started is None:
                    run_started = time.monotonic() - float(line.get("t") or 0.0)
                started = True
                on_progress(line)
            # Workers exit 0 when the master ends the run; any other exit, or an exit 0 before
            # the run's time is up, is a worker lost mid-run.
            early = run_started is None or time.monotonic() - run_started < command.run_seconds
            dead = [
                (i, w.returncode)
                for i, w in enumerate(processes.workers, start=1)
                if w.poll() is not None and (w.returncode != 0 or early)
            ]
            if dead:
                index, code = dead[0]
                error = (
                    f"Locust worker {index} of {command.workers} died mid-run "
                    f"({_describe_exit(code)}); the run was stopped and its figures are partial"
                )
                break
            if time.monotonic() - started_at > command.bound_seconds:
                error = (
                    f"Locust did not finish within {command.bound_seconds:.0f} s "
                    f"(run {command.run_seconds:g} s); stopped"
                )
                break
            sleep(0.1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        # A second Ctrl-C must not cut the clean-up short: hold SIGINT until it is done.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            processes.stop(graceful=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    while True:
        try:
            line = processes.progress.get_nowait()
        except queue.Empty:
            break
        started = True
        on_progress(line)
    master = processes.master
    code = master.returncode if master is not None else None
    if error is None and not interrupted and command.distributed:
        missing = _missing_worker(command.log)
        if missing:
            error = f"a Locust worker went missing mid-run ({missing}); its figures are partial"
    if error is None and not interrupted and code not in (0, None):
        reason = last_error_line(command.log)
        where = "mid-run" if started else "before the run started"
        error = f"Locust stopped {where} ({_describe_exit(code)})" + (
            f": {reason}" if reason else ""
        )
    return LocustRun(code, started, error, interrupted, time.monotonic() - started_at)


def _missing_worker(log: Path) -> str | None:
    """The master's word for a worker that stopped sending heartbeats (any machine)."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(r"Worker (\S+) failed to send heartbeat", text)
    return match.group(1) if match else None


def leftover(pids: Sequence[int]) -> list[int]:
    """Which of ``pids`` still exist (for tests and the benchmark)."""
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        except PermissionError:
            pass
        alive.append(pid)
    return alive
