"""Run the integration under test as a subprocess, and always clean it up.

The integration is the team's real program, in any language: the harness knows only its
command. It runs in its own session (so its process group is its own), its stdout and stderr
are streamed through the redactor into files as they arrive (nothing unredacted touches the
disk, and a killed process keeps what it printed), and whatever happens - normal exit, timeout,
a watcher that has seen enough, Ctrl-C - the whole process group is killed before we return, so
no child it started outlives the scenario.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

POLL_SECONDS = 0.05
TERMINATE_GRACE_SECONDS = 1.0
READER_JOIN_SECONDS = 2.0

Watch = Callable[[], str | None]
"""Called every poll while the integration runs; a non-empty reason stops it (the verdict is
already known, e.g. a hung request was held past the declared timeout)."""


@dataclass(frozen=True)
class Launch:
    """Everything needed to start the integration once."""

    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    timeout_seconds: float
    stdout_path: Path
    stderr_path: Path


@dataclass(frozen=True)
class ProcessOutcome:
    """How one run of the integration went, as the judge needs it."""

    started: float
    """Monotonic time just before the process was started (the scenario's time zero)."""
    ended: float
    exit_code: int | None
    """The process's status; negative: killed by that signal; None: it never started."""
    timed_out: bool = False
    stopped: str | None = None
    """Why the harness stopped it before it ended on its own (a watcher's reason)."""
    start_error: str | None = None
    stdout: str = ""
    stderr: str = ""

    @property
    def duration(self) -> float:
        return self.ended - self.started

    @property
    def ended_on_its_own(self) -> bool:
        return self.start_error is None and not self.timed_out and self.stopped is None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def command_argv(command: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """A command as argv: strings are split like a POSIX shell would (no shell runs), and
    ``{python}`` becomes this interpreter, so specs stay portable across virtualenvs."""
    parts = shlex.split(command) if isinstance(command, str) else list(command)
    return tuple(part.replace("{python}", sys.executable) for part in parts)


def callable_argv(target: str) -> tuple[str, ...]:
    """``module:function`` run in a fresh interpreter; an int return value is the exit status."""
    module, function = target.split(":", 1)
    code = (
        "import importlib, sys\n"
        f"result = getattr(importlib.import_module({module!r}), {function!r})()\n"
        "sys.exit(result if isinstance(result, int) else 0)\n"
    )
    return (sys.executable, "-c", code)


def find_executable(argv0: str, cwd: Path, path: str | None) -> str | None:
    """Where ``argv0`` resolves, or None: a path (relative to ``cwd``) or a name on ``PATH``."""
    if os.sep in argv0 or (os.altsep and os.altsep in argv0):
        candidate = Path(argv0) if Path(argv0).is_absolute() else cwd / argv0
        return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None
    return shutil.which(argv0, path=path)


def run_integration(
    launch: Launch,
    redact: Callable[[str], str],
    watch: Watch | None = None,
) -> ProcessOutcome:
    """Run the integration to its end, its timeout, or a watcher's stop; then kill its group."""
    launch.stdout_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            launch.argv,
            cwd=launch.cwd,
            env=dict(launch.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as error:
        reason = error.strerror or str(error)
        launch.stdout_path.write_text("", encoding="utf-8")
        launch.stderr_path.write_text("", encoding="utf-8")
        return ProcessOutcome(
            started,
            time.monotonic(),
            None,
            start_error=f"cannot start {launch.argv[0]!r}: {reason}",
        )
    assert process.stdout is not None and process.stderr is not None
    out_lines: list[str] = []
    err_lines: list[str] = []
    readers = [
        _reader(process.stdout, launch.stdout_path, redact, out_lines),
        _reader(process.stderr, launch.stderr_path, redact, err_lines),
    ]
    timed_out = False
    stopped: str | None = None
    try:
        deadline = started + launch.timeout_seconds
        while True:
            try:
                process.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() >= deadline:
                timed_out = True
                break
            if watch is not None:
                stopped = watch()
                if stopped:
                    break
    finally:
        # Always: on a normal exit this removes children it left behind; on a timeout, a stop
        # or an exception (Ctrl-C) it ends the integration itself.
        ended = time.monotonic() if process.poll() is not None else None
        kill_group(process)
        for reader in readers:
            reader.join(READER_JOIN_SECONDS)
    return ProcessOutcome(
        started,
        ended if ended is not None else time.monotonic(),
        process.returncode,
        timed_out=timed_out,
        stopped=stopped,
        stdout="".join(out_lines),
        stderr="".join(err_lines),
    )


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """Terminate the process group (SIGTERM, a grace period, then SIGKILL) and reap the leader."""
    group = process.pid  # start_new_session: the leader's pid is the group id
    if process.poll() is None:
        _signal_group(group, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=TERMINATE_GRACE_SECONDS)
    _signal_group(group, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=TERMINATE_GRACE_SECONDS)


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _reader(
    stream: IO[bytes], path: Path, redact: Callable[[str], str], lines: list[str]
) -> threading.Thread:
    """Copy a pipe line by line through the redactor into ``path`` and ``lines``."""

    def pump() -> None:
        with path.open("w", encoding="utf-8") as sink, stream:
            for raw in iter(stream.readline, b""):
                text = redact(raw.decode("utf-8", "replace"))
                lines.append(text)
                sink.write(text)
                sink.flush()

    thread = threading.Thread(target=pump, name=f"harness-output-{path.name}", daemon=True)
    thread.start()
    return thread
