"""The load stage: plan, start the target, run Locust, judge, cross-check, report.

``run_load`` follows the shared stage contract: bad input is an ``InputError`` before anything
starts; a crash mid-run is ``status="error"`` with one line; Ctrl-C stops everything and raises
``StageInterrupted`` with the partial result. Its artifacts live in ``out_dir/load/``: the plan,
Locust's CSV statistics, stats history, HTML report and logs, the raw samples, and (against the
simulator) the traffic log.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.load.crosscheck import CrossCheck, cross_check
from harness.load.locust_results import LocustTotals, read_totals, read_users
from harness.load.plan import LoadPlan, PlanOptions, Target, build_plan
from harness.load.process import LocustCommand, LocustRun, run_locust
from harness.load.profiles import ASSETS, resolve_profile
from harness.load.samples import Sample, Samples, buckets, histogram, read_samples, summarize
from harness.load.thresholds import Evaluation, evaluate
from harness.project import Project
from harness.provider.api import (
    RunningProvider,
    SimulatedCredentials,
    simulate,
    simulation_credentials,
)
from harness.provider.traffic import TrafficRecord
from harness.redact import Redactor
from harness.results.model import (
    CheckResult,
    Progress,
    Series,
    StageInterrupted,
    StageResult,
    Status,
)
from harness.spec.secrets import resolve_secrets

SIMULATOR_RECORDS = 20
"""Records each simulated collection starts with (a realistic page, ids 1..20 exist)."""
SETTLE_SECONDS = 3.0
"""How long to wait after Locust exits for the simulator to log connections it closed."""


@dataclass(frozen=True)
class LoadOptions:
    profile: str = "smoke"
    users: int | None = None
    duration_seconds: float | None = None
    workers: int = 0
    remote_workers: int = 0
    """Workers started on other machines (docs/distributed.md); they connect to ``master_bind``."""
    master_bind: tuple[str, int] | None = None
    target: Target = "simulated"
    allow_over_limit: bool = False
    base_url: str | None = None
    locustfile: Path | None = None
    seed: int = 0
    cwd: Path | None = None
    """Where ``loadtests/profiles`` is looked for (default: the working directory)."""
    environ: Mapping[str, str] | None = None
    """Credentials for live targets (default: the process environment)."""


@dataclass
class _Progress:
    """Turns Locust's progress lines into short lines for the face."""

    report: Progress
    plan: LoadPlan
    last_t: float = 0.0
    last_requests: int = 0
    shown_at: float = -1e9

    def __call__(self, line: Mapping[str, Any]) -> None:
        t = float(line.get("t") or 0.0)
        requests = int(line.get("requests") or 0)
        dt = t - self.last_t
        rps = (requests - self.last_requests) / dt if dt > 0 else 0.0
        self.last_t, self.last_requests = t, requests
        every = 1.0 if self.plan.duration <= 120 else 10.0
        if t - self.shown_at < every - 0.05:
            return
        self.shown_at = t
        p95 = line.get("p95_ms")
        stage = f" {line.get('stage')}" if len(self.plan.stages) > 1 else ""
        self.report(
            f"load {self.plan.profile.name}{stage} {t:5.0f}/{self.plan.duration:g} s  "
            f"users {line.get('users')}  {rps:6.1f} req/s  "
            f"p95 {'-' if p95 is None else p95} ms  "
            f"failures {line.get('failures')}/{requests}"
        )


def run_load(
    project: Project, options: LoadOptions, out_dir: Path, progress: Progress
) -> StageResult:
    """Run one load profile against the target and judge it (see the module docstring)."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.monotonic()
    # Locust runs in its own working folder: every path handed to it must be absolute.
    out_dir = out_dir.resolve()
    cwd = options.cwd or Path.cwd()
    profile = resolve_profile(project, options.profile, cwd)
    credentials = (
        simulation_credentials(project, options.environ) if options.target == "simulated" else None
    )
    plan = build_plan(
        project,
        PlanOptions(
            profile=profile,
            target=options.target,
            users=options.users,
            duration_seconds=options.duration_seconds,
            workers=options.workers,
            remote_workers=options.remote_workers,
            allow_over_limit=options.allow_over_limit,
            base_url=options.base_url,
            seed=options.seed,
            locustfile=options.locustfile,
            environ=options.environ,
            simulated_credentials=credentials.by_env if credentials is not None else None,
        ),
    )
    load_dir = out_dir / "load"
    samples_dir = load_dir / "samples"
    if samples_dir.exists():
        shutil.rmtree(samples_dir)
    samples_dir.mkdir(parents=True)
    progress(_announce(plan))

    run: LocustRun | None = None
    records: list[TrafficRecord] | None = None
    interrupted = False
    try:
        with _target(project, plan, load_dir, credentials) as (base_url, running):
            run = _run(
                plan,
                base_url,
                load_dir,
                samples_dir,
                _Progress(progress, plan),
                options.master_bind,
            )
            interrupted = run.interrupted
            if running is not None:
                _settle(running)
                records = running.records()
    except KeyboardInterrupt:
        interrupted = True
    result = _result(project, plan, out_dir, load_dir, run, records, started_at, clock, interrupted)
    if interrupted:
        raise StageInterrupted(result)
    return result


def _announce(plan: LoadPlan) -> str:
    rate = f"{plan.rate_rps:g} req/s ({plan.rate_basis})" if plan.rate_rps else plan.rate_basis
    workers = f", {plan.workers} workers" if plan.workers else ""
    if plan.remote_workers:
        workers += f", {plan.remote_workers} remote workers"
    mix = ", ".join(f"{op.id} x{op.weight}" for op in plan.operations)
    return (
        f"load {plan.profile.name}: {rate} for {plan.duration:g} s, {plan.users} users{workers}, "
        f"target {plan.target}; mix {mix}"
    )


@contextmanager
def _target(
    project: Project, plan: LoadPlan, load_dir: Path, credentials: SimulatedCredentials | None
) -> Iterator[tuple[str, RunningProvider | None]]:
    """The URL to load: the embedded simulator (started here), or the planned live/service URL."""
    if plan.target != "simulated":
        assert plan.base_url is not None
        yield plan.base_url, None
        return
    spec = dataclasses.replace(project.spec.spec, rate_limits=plan.simulator_limits)
    simulated = dataclasses.replace(project, spec=dataclasses.replace(project.spec, spec=spec))
    with simulate(
        simulated,
        seed=plan.seed,
        faults=plan.fault_plan,
        records=SIMULATOR_RECORDS,
        traffic_path=load_dir / "traffic.jsonl",
        credentials=credentials,
    ) as running:
        yield running.url, running


def _settle(running: RunningProvider) -> None:
    """Wait until the simulator has closed (and logged) every connection Locust left."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while running.server.server.open_connections and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)


def write_plan(plan: LoadPlan, base_url: str, load_dir: Path, samples_dir: Path) -> Path:
    """``plan.json`` (to read) and ``harness_plan.py`` (what Locust's processes load: workers
    started with ``-f -`` download it from the master with the other locustfiles)."""
    text = json.dumps(plan.to_json(base_url, samples_dir), indent=2)
    (load_dir / "plan.json").write_text(text + "\n", encoding="utf-8")
    module = load_dir / "harness_plan.py"
    module.write_text(
        '"""The plan of one `harness load` run (no credentials: those travel in the environment)."""\n\n'
        "import json\n\n"
        f"PLAN = json.loads({text!r})\n",
        encoding="utf-8",
    )
    return module


def _run(
    plan: LoadPlan,
    base_url: str,
    load_dir: Path,
    samples_dir: Path,
    on_progress: _Progress,
    master_bind: tuple[str, int] | None = None,
) -> LocustRun:
    plan_path = load_dir / "plan.json"
    module = write_plan(plan, base_url, load_dir, samples_dir)
    hooks = ASSETS / "harness_hooks.py"
    if plan.locustfile is not None:
        files: tuple[Path, ...] = (module, hooks, plan.locustfile)
        text = plan.locustfile.read_text(encoding="utf-8", errors="replace")
        own_shape = "PlanShape" in text or "LoadTestShape" in text
    else:
        files, own_shape = (module, hooks, ASSETS / "harness_locustfile.py"), True
    command = LocustCommand(
        locustfiles=files,
        base_url=base_url,
        out_dir=load_dir,
        env={**plan.credential_env, "HARNESS_LOAD_PLAN": str(plan_path)},
        workers=plan.workers,
        remote_workers=plan.remote_workers,
        master_bind=master_bind,
        stop_timeout=plan.stop_timeout,
        run_seconds=plan.duration,
        users=plan.users,
        spawn_rate=float(plan.users),
        own_shape=own_shape,
    )
    return run_locust(command, on_progress)


# --- results --------------------------------------------------------------------------------


def _redact_artifacts(load_dir: Path, redactor: Redactor) -> None:
    """Scrub credential values from everything Locust wrote (error messages can hold URLs)."""
    patterns = ("locust*.log", "locust*.csv", "locust-report.html", "locust-stats.json")
    for pattern in patterns:
        for path in load_dir.glob(pattern):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            clean = redactor.text(text)
            if clean != text:
                path.write_text(clean, encoding="utf-8")


def _artifacts(out_dir: Path, load_dir: Path) -> dict[str, str]:
    names = {
        "plan": "plan.json",
        "locust_html_report": "locust-report.html",
        "locust_stats_csv": "locust_stats.csv",
        "locust_stats_history_csv": "locust_stats_history.csv",
        "locust_failures_csv": "locust_failures.csv",
        "locust_exceptions_csv": "locust_exceptions.csv",
        "locust_stats_json": "locust-stats.json",
        "locust_log": "locust.log",
        "samples": "samples",
        "traffic_log": "traffic.jsonl",
    }
    out = {
        key: str((load_dir / name).relative_to(out_dir))
        for key, name in names.items()
        if (load_dir / name).exists()
    }
    for path in sorted(load_dir.glob("locust-worker-*.log")):
        out[path.stem.replace("-", "_")] = str(path.relative_to(out_dir))
    return out


def _series(
    plan: LoadPlan, samples: Sequence[Sample], users: list[tuple[float, float]]
) -> tuple[Series, ...]:
    until = max(plan.duration, samples[-1].t if samples else 0.0)
    width = float(max(1, math.ceil(plan.duration / 120)))
    rows = buckets(samples, width, until)
    rps = tuple((i * width, len(b) / width) for i, b in enumerate(rows))
    p95 = tuple(
        (i * width, round(p, 3))
        for i, b in enumerate(rows)
        if b and (p := summarize(b).p95_ms) is not None
    )
    errors = tuple((i * width, float(sum(1 for s in b if s.failed))) for i, b in enumerate(rows))
    out = [
        Series("rps", "s", "req/s", rps),
        Series("p95", "s", "ms", p95),
        Series("errors", "s", "requests", errors),
        Series("latency distribution", "ms", "requests", tuple(histogram(samples))),
    ]
    if users:
        out.append(Series("users", "s", "users", tuple(users)))
    return tuple(out)


def _metrics(
    plan: LoadPlan, samples: Sequence[Sample], totals: LocustTotals, plan_samples_dir: Path
) -> dict[str, float]:
    summary = summarize(samples)
    mix = {op.id for op in plan.operations}
    sent = sum(1 for s in samples if s.name in mix and s.t < plan.duration)
    metrics: dict[str, float] = {
        "requests": float(summary.requests),
        "failures": float(summary.failures),
        "timeouts": float(summary.timeouts),
        "status_429": float(summary.status.get(429, 0)),
        "error_rate_percent": round(summary.error_rate_percent, 4),
        "rps": round(sent / plan.duration, 3) if plan.duration else 0.0,
        "duration_seconds": plan.duration,
        "users": float(plan.users),
        "workers": float(plan.workers + plan.remote_workers),
    }
    for key in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms"):
        value = getattr(summary, key)
        if value is not None:
            metrics[key] = round(value, 3)
    if plan.rate_rps is not None:
        metrics["planned_rps"] = round(plan.rate_rps, 3)
    if totals.requests is not None:
        metrics["locust_requests"] = float(totals.requests)
    cpu, requests = _locust_cpu(plan_samples_dir)
    if requests:
        # What one request cost the load generator: near 1e6 / (cores x rps) it was saturated.
        metrics["locust_cpu_seconds"] = round(cpu, 3)
        metrics["locust_cpu_us_per_request"] = round(cpu / requests * 1e6, 2)
    return metrics


def _locust_cpu(folder: Path) -> tuple[float, int]:
    """CPU seconds and requests of the Locust processes that sent requests, while the run ran."""
    cpu, requests = 0.0, 0
    for path in folder.glob("cpu-*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            cpu += float(data["cpu_seconds"])
            requests += int(data["requests"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return cpu, requests


def _crosscheck_result(plan: LoadPlan, check: CrossCheck) -> CheckResult:
    return CheckResult(
        id=f"load/{plan.profile.name}/traffic-cross-check",
        name="Traffic log agrees with Locust (nothing lost, nothing invented)",
        status="passed" if check.ok else "error",
        summary=check.summary,
        attributes={
            "traffic_records": check.traffic,
            "locust_requests": check.locust,
            "samples": check.samples,
            "status_traffic": check.status_traffic,
            "status_samples": check.status_samples,
        },
    )


def _result(
    project: Project,
    plan: LoadPlan,
    out_dir: Path,
    load_dir: Path,
    run: LocustRun | None,
    records: list[TrafficRecord] | None,
    started_at: str,
    clock: float,
    interrupted: bool,
) -> StageResult:
    redactor = Redactor.of([*plan.secrets, *resolve_secrets(project.spec.spec).values()])
    _redact_artifacts(load_dir, redactor)
    read: Samples = read_samples(load_dir / "samples")
    samples = read.items
    totals = read_totals(load_dir / "locust-stats.json", load_dir / "locust_exceptions.csv")
    users = read_users(load_dir / "locust_stats_history.csv", read.start_wall)
    evaluation: Evaluation = evaluate(project, plan, samples)
    checks = list(evaluation.checks)
    errors: list[str] = []
    if run is not None and run.error:
        errors.append(run.error)
    if records is not None and run is not None and not run.error and not interrupted:
        check = cross_check(records, samples, totals)
        checks.append(_crosscheck_result(plan, check))
        if not check.ok:
            errors.append(check.summary)
    capped = sorted((load_dir / "samples").glob("capped-*"))
    if capped:
        errors.append(
            f"the run reached its request cap ({plan.max_requests}) and was stopped: the "
            "locustfile sends more than the profile's pacing allows"
        )
    if totals.exceptions:
        first = totals.exception_messages[0] if totals.exception_messages else ""
        message = f"the locustfile raised {totals.exceptions} exception(s): {first}"
        checks.append(
            CheckResult(
                id=f"load/{plan.profile.name}/locustfile-exceptions",
                name="The locustfile ran without exceptions",
                status="error",
                summary=message,
            )
        )
        errors.append(message)
    if not samples and not interrupted and not errors:
        errors.append("the run sent no request: nothing was tested")
    statuses = {c.status for c in checks}
    status: Status
    if errors or interrupted:
        status = "error"
    elif "failed" in statuses:
        status = "failed"
    elif "error" in statuses or not checks:
        status = "error"
        if not checks:
            errors.append("no criterion applies to this profile and spec: nothing was judged")
    else:
        status = "passed"
    summary = summarize(samples)
    metrics = _metrics(plan, samples, totals, load_dir / "samples")
    passed = sum(1 for c in evaluation.criteria if c.passed)
    text = (
        f"{plan.profile.name} ({plan.target}): {summary.requests} requests, "
        f"{metrics['rps']:.1f} req/s, p95 "
        + (f"{summary.p95_ms:.1f} ms" if summary.p95_ms is not None else "-")
        + f", errors {summary.error_rate_percent:.2f} %; "
        f"{passed}/{len(evaluation.criteria)} criteria passed"
    )
    failing = [c.name for c in evaluation.criteria if c.passed is False]
    if failing:
        text += " - failed: " + ", ".join(failing)
    if errors:
        text += " - " + errors[0]
    return StageResult(
        stage="load",
        status=status,
        summary=text,
        started_at=started_at,
        duration_seconds=round(time.monotonic() - clock, 3),
        checks=tuple(checks),
        criteria=evaluation.criteria,
        series=_series(plan, samples, users),
        metrics=metrics,
        artifacts=_artifacts(out_dir, load_dir),
        seed=plan.seed,
        incomplete=interrupted or (run is not None and run.error is not None) or run is None,
        error=errors[0] if errors else None,
    )
