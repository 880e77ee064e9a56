"""The scenario stage: run the integration under each scenario and judge it.

Per scenario: a fresh simulated provider (the scenario's fault plan, records and token
lifetime) and destination, the integration started as a subprocess with their URLs, its
credentials and an output folder in its environment (``collect``), then the evidence gathered
while the simulators still run and judged (``checks``), and one ``CheckResult`` made of it
(``verdict``). Inputs are checked before anything starts (``prepare``).
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.problems import InputError
from harness.project import Project
from harness.provider.api import RunningProvider, simulate
from harness.provider.faults import FaultPlan
from harness.results.model import CheckResult, Progress, StageInterrupted, StageResult, Status
from harness.scenarios.alerts import Alert, WebhookReceiver, serve_webhook
from harness.scenarios.checks import JUDGES, Judgement
from harness.scenarios.collect import (
    LOG_BODY_LIMIT,
    Watch,
    destination_contents,
    environment,
    fault_counts,
    observed_alerts,
    revoke,
    settle,
    source_ledger,
)
from harness.scenarios.criteria import scenario_criteria
from harness.scenarios.loader import select
from harness.scenarios.model import Scenario
from harness.scenarios.observe import Observation
from harness.scenarios.prepare import (
    Integration,
    ScenarioOptions,
    ScenariosOptions,
    discover,
    integration,
    list_scenarios,
    operations,
    prepare,
    record_count,
)
from harness.scenarios.process import Launch, run_integration
from harness.scenarios.verdict import check_result
from harness.spec.model import IntegrationSpec


def run_scenarios(
    project: Project, options: ScenariosOptions, out_dir: Path, progress: Progress
) -> StageResult:
    """Run the selected scenarios (``repeat`` times each) and judge them."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.monotonic()
    scenarios = select(discover(project, options), options.only)
    prepared = [prepare(project, scenario) for scenario in scenarios]
    target = integration(project, options)
    n = record_count(project, options)
    checks: list[CheckResult] = []
    artifacts: dict[str, str] = {}
    stage_dir = out_dir / "scenarios"
    try:
        for item in prepared:
            scenario = item.scenario
            if item.skip is not None or item.plan is None:
                progress(f"scenario {scenario.name}: skipped ({item.skip})")
                checks.append(_skipped(scenario, item.skip or "not applicable"))
                continue
            runs: list[CheckResult] = []
            for repeat in range(1, options.repeat + 1):
                folder = stage_dir / scenario.name / (f"run-{repeat}" if options.repeat > 1 else "")
                label = f" (run {repeat}/{options.repeat})" if options.repeat > 1 else ""
                progress(f"scenario {scenario.name}{label}: running")
                try:
                    result = run_one(
                        project, item.plan, scenario, target, n, options, folder, out_dir, repeat
                    )
                except InputError:
                    raise
                except Exception as error:
                    # A harness fault: this scenario is unjudged, the others still run.
                    result = _crashed(scenario, error)
                progress(f"scenario {scenario.name}{label}: {result.status} - {result.summary}")
                runs.append(result)
            checks.append(_combine(runs))
            artifacts[f"scenarios/{scenario.name}"] = str(
                (stage_dir / scenario.name).relative_to(out_dir)
            )
    except KeyboardInterrupt as interrupt:
        partial = _stage_result(
            checks, started_at, clock, options, artifacts, spec=project.spec.spec, incomplete=True
        )
        raise StageInterrupted(partial) from interrupt
    return _stage_result(checks, started_at, clock, options, artifacts, spec=project.spec.spec)


def run_one(
    project: Project,
    plan: FaultPlan,
    scenario: Scenario,
    target: Integration,
    n: int,
    options: ScenariosOptions,
    folder: Path,
    out_dir: Path,
    repeat: int = 1,
) -> CheckResult:
    """One run of one scenario, judged."""
    spec = project.spec.spec
    ops = operations(project)
    records = n if scenario.setup.records == "auto" else scenario.setup.records
    output_dir = folder / "output"
    output_dir.mkdir(parents=True, exist_ok=True)
    destination = spec.destination
    channel = spec.monitoring.alert_channel if spec.monitoring else None
    timeout = target.timeout_seconds
    if scenario.setup.timeout_seconds is not None:
        timeout = min(timeout, scenario.setup.timeout_seconds)
    seed = options.seed
    # --seed drives every random choice; a seed in the scenario's own plan is added to it.
    plan = replace(plan, seed=plan.seed + seed) if plan.rules else plan
    with contextlib.ExitStack() as stack:
        provider = stack.enter_context(
            simulate(
                project,
                side="provider",
                seed=seed,
                faults=plan,
                records=records,
                traffic_path=folder / "provider.traffic.jsonl",
                token_ttl_seconds=scenario.setup.token_ttl_seconds,
                log_body_limit=LOG_BODY_LIMIT,
            )
        )
        sink: RunningProvider | None = None
        if (
            destination is not None
            and destination.kind == "api"
            and project.destination is not None
        ):
            sink = stack.enter_context(
                simulate(
                    project,
                    side="destination",
                    seed=seed,
                    faults=plan,
                    records=0,
                    traffic_path=folder / "destination.traffic.jsonl",
                    log_body_limit=LOG_BODY_LIMIT,
                )
            )
        webhook: WebhookReceiver | None = None
        if channel is not None and channel.kind == "webhook" and channel.path is not None:
            webhook = stack.enter_context(serve_webhook(channel.path))
        if scenario.setup.credentials == "revoked":
            provider.call(revoke)
        env = environment(project, target, provider, sink, webhook, output_dir)
        watch = Watch(provider, plan, spec, records)
        # Fault windows count from here, not from when the simulator started.
        provider.call(lambda engine: engine.faults.reset())
        if sink is not None:
            sink.call(lambda engine: engine.faults.reset())
        outcome = run_integration(
            Launch(
                target.argv,
                target.cwd,
                env,
                timeout,
                folder / "stdout.txt",
                folder / "stderr.txt",
            ),
            provider.traffic.redactor.text,
            watch,
        )
        settle(provider, sink, plan)
        provider_traffic = tuple(provider.records())
        sink_traffic = tuple(sink.records()) if sink is not None else ()
        counts = fault_counts(provider, sink)
        ledger = source_ledger(project, provider, sink, ops, provider_traffic)
        contents = destination_contents(project, sink, output_dir)
        alerts = observed_alerts(channel, webhook, outcome, provider.traffic.redactor.text)
    observation = Observation(
        scenario=scenario,
        spec=spec,
        operations=ops,
        plan=plan,
        process=outcome,
        provider=provider_traffic,
        destination_traffic=sink_traffic,
        fault_counts=counts,
        destination=contents,
        ledger=ledger,
        alerts=alerts,
        output_dir=output_dir,
        records=records,
        token_ttl_seconds=scenario.setup.token_ttl_seconds,
        repeat=repeat,
    )
    judgements = judge(observation)
    reproduce = _reproduce(project, scenario, options, n)
    topics = _topics(scenario, judgements, alerts)
    return check_result(
        observation,
        judgements,
        reproduce=reproduce,
        seed=seed,
        attributes={
            "scenario": scenario.name,
            "category": scenario.category,
            "description": scenario.description,
            "source": str(scenario.path) if scenario.path else f"built-in: {scenario.name}",
            "seed": seed,
            "records": records,
            "integration": target.display,
            "exit_status": outcome.exit_code,
            "stdout": _relative(folder / "stdout.txt", out_dir),
            "stderr": _relative(folder / "stderr.txt", out_dir),
            "provider_traffic": _relative(folder / "provider.traffic.jsonl", out_dir),
            **(
                {"destination_traffic": _relative(folder / "destination.traffic.jsonl", out_dir)}
                if sink
                else {}
            ),
            "output_dir": _relative(output_dir, out_dir),
            "reproduce": reproduce,
            **topics,
            **({"repeat": repeat} if options.repeat > 1 else {}),
        },
    )


CATEGORY_POLICY = {
    "connection_failures": "connection_failures",
    "rate_limit": "rate_limit",
    "invalid_data": "invalid_data",
    "authentication": "authentication_failures",
    "service_unavailable": "service_unavailable",
    "timeouts": "request_timeout",
}


def _topics(
    scenario: Scenario, judgements: Sequence[Judgement], alerts: Sequence[Alert]
) -> dict[str, Any]:
    """Attributes the readiness checklist reads: the policy, the checks judged, the alerts."""
    out: dict[str, Any] = {"checks": [j.check for j in judgements if j.status != "skipped"]}
    if scenario.category in CATEGORY_POLICY:
        out["policy"] = CATEGORY_POLICY[scenario.category]
    expectation = scenario.expectation("alert")
    judged = next((j for j in judgements if j.check == "alert"), None)
    if expectation is not None and judged is not None and judged.status != "skipped":
        wanted = list(expectation.params.get("kinds") or [])
        seen = sorted({kind for alert in alerts for kind in alert.kinds} & set(wanted))
        if expectation.params.get("expect", "fired") == "fired" and wanted:
            out["alert"] = seen if judged.status == "passed" and seen else wanted
    return out


def judge(observation: Observation) -> list[Judgement]:
    """Every expectation of the scenario, plus the ones judged in every scenario."""
    wanted: list[tuple[str, dict[str, Any]]] = [("no_crash", {})] + [
        (e.check, dict(e.params)) for e in observation.scenario.expect
    ]
    if observation.scenario.expectation("sync_accuracy") is None:
        wanted.append(("sync_accuracy", {}))
    return [JUDGES[check](observation, params) for check, params in wanted]


def _reproduce(project: Project, scenario: Scenario, options: ScenariosOptions, n: int) -> str:
    """The command that runs this scenario again, the same way (N included, however it was set)."""
    parts = [
        "harness",
        "scenarios",
        str(project.spec.path),
        "--only",
        scenario.name,
        "--seed",
        str(options.seed),
    ]
    if options.integration is not None:
        parts += ["--integration", options.integration]
    if options.records is not None or scenario.setup.records == "auto":
        parts += ["--records", str(n)]
    for folder in options.scenario_dirs:
        parts += ["--scenarios", str(folder)]
    return shlex.join(parts)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _crashed(scenario: Scenario, error: Exception) -> CheckResult:
    """The verdict when the harness itself failed running a scenario: ``error``, one line."""
    return CheckResult(
        id=f"scenarios/{scenario.name}",
        name=scenario.title,
        status="error",
        summary=f"error: the harness failed running this scenario: {type(error).__name__}: {error}",
        attributes={"scenario": scenario.name, "category": scenario.category},
    )


def _skipped(scenario: Scenario, reason: str) -> CheckResult:
    return CheckResult(
        id=f"scenarios/{scenario.name}",
        name=scenario.title,
        status="skipped",
        summary=f"skipped: {reason}",
        attributes={
            "scenario": scenario.name,
            "category": scenario.category,
            "description": scenario.description,
        },
    )


_SEVERITY: dict[Status, int] = {"failed": 4, "error": 3, "passed": 1, "skipped": 0, "not_run": 0}


def _combine(runs: list[CheckResult]) -> CheckResult:
    """One result for a scenario run several times: the worst run, and every run's verdict."""
    if len(runs) == 1:
        return runs[0]
    worst = max(runs, key=lambda r: _SEVERITY[r.status])
    statuses = [r.status for r in runs]
    summary = worst.summary
    if len(set(statuses)) > 1:
        summary = (
            f"inconsistent over {len(runs)} runs ({', '.join(statuses)}); worst: {worst.summary}"
        )
    return replace(
        worst,
        summary=summary,
        duration_seconds=round(sum(r.duration_seconds for r in runs), 3),
        attributes={**worst.attributes, "runs": statuses},
    )


def _stage_result(
    checks: list[CheckResult],
    started_at: str,
    clock: float,
    options: ScenariosOptions,
    artifacts: Mapping[str, str],
    *,
    spec: IntegrationSpec,
    incomplete: bool = False,
) -> StageResult:
    counts = {
        status: sum(1 for c in checks if c.status == status)
        for status in ("passed", "failed", "error", "skipped")
    }
    judged = counts["passed"] + counts["failed"] + counts["error"]
    if counts["failed"]:
        status: Status = "failed"
    elif counts["error"] or judged == 0:
        status = "error"
    else:
        status = "passed"
    summary = ", ".join(f"{n} {name}" for name, n in counts.items() if n) or "no scenario run"
    if incomplete:
        summary += " (interrupted)"
    return StageResult(
        stage="scenarios",
        status=status,
        summary=f"{len(checks)} scenarios: {summary}",
        started_at=started_at,
        duration_seconds=round(time.monotonic() - clock, 3),
        checks=tuple(checks),
        criteria=scenario_criteria(spec, checks),
        metrics={"scenarios": float(len(checks)), **{k: float(v) for k, v in counts.items()}},
        artifacts=dict(artifacts),
        seed=options.seed,
        incomplete=incomplete,
        error=None if judged or not checks else "every scenario was skipped",
    )


__all__ = [
    "ScenarioOptions",
    "ScenariosOptions",
    "judge",
    "list_scenarios",
    "run_one",
    "run_scenarios",
]
