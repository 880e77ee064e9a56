"""The contract stage: schemathesis' engine against the provider, judged per operation x check.

``run_contract`` starts the target (the simulator, a live provider behind the safety rules, or
the recorded cassettes), loads the provider document into schemathesis with an explicit
configuration, installs the spec's auth, the harness checks and the rate limiter on that one
schema, runs every phase of the engine (examples, coverage, fuzzing with positive and negative
cases, stateful sequences where the document has links) and turns what it recorded into one
``CheckResult`` per operation and check. Static checks of what the integration relies on and of
its data mapping run first; a baseline of accepted findings is applied last.

Generation and checking are schemathesis'; this module only decides what runs, where, under
which rules, and how the outcome is told.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from harness.contract import auth as auth_mod
from harness.contract.baseline import apply_baseline, load_baseline
from harness.contract.checks import (
    HARNESS_CHECK_CODES,
    RUN_CHECK_CODES,
    HarnessRun,
    all_check_names,
    builtin_codes,
    register_run,
    unregister_run,
)
from harness.contract.config import RunConfig, build_config, excluded_checks, hypothesis_profile
from harness.contract.drift import check_cassettes
from harness.contract.findings import Occurrence, build_finding, revalidate, smallest
from harness.contract.mapping_check import check_data_mapping
from harness.contract.options import DEFAULT_MAX_EXAMPLES, ContractOptions
from harness.contract.relies import check_relies_on
from harness.contract.safety import (
    SAFE_METHODS,
    AuthMonitor,
    RatePlan,
    build_limiter,
    check_allowed_host,
    check_reachable,
    live_base_url,
    rate_plan,
    refuse_unsafe_methods,
)
from harness.openapi.operations import compile_document
from harness.problems import InputError, Problem
from harness.project import Project
from harness.redact import Redactor
from harness.results.model import (
    CheckResult,
    Finding,
    Progress,
    StageInterrupted,
    StageResult,
    Status,
)
from harness.spec.model import RateLimits
from harness.spec.secrets import resolve_secrets

if TYPE_CHECKING:
    from schemathesis import Case, HookContext, Response
    from schemathesis.engine.events import EngineEvent
    from schemathesis.engine.recorder import ScenarioRecorder
    from schemathesis.schemas import BaseSchema

UNTHROTTLED_BURST = 1_000_000
"""Simulated runs lift the simulator's bucket to this size: the headers stay, the 429s go."""
LIVE_DEFAULT_RATE = RateLimits(requests_per_second=5)
"""How fast a live run goes when the spec declares no rate limit: slowly."""


# --- what will run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The operations and checks of a run, decided before anything is sent."""

    operations: tuple[str, ...]
    """Selected operationIds, in document order (including ones not sent, see ``not_sent``)."""
    labels: Mapping[str, str]
    """operationId -> ``METHOD /path`` (schemathesis' label)."""
    check_names: tuple[str, ...]
    excluded: Mapping[str, Mapping[str, str]]
    """operationId -> check name -> why it is switched off."""
    not_sent: Mapping[str, str]
    """operationId -> why none of its requests are sent (unsafe methods on a live provider)."""
    max_examples: int
    modes: tuple[str, ...]
    stateful: bool

    def pairs(self) -> list[tuple[str, str]]:
        """(operationId, check) for every judged item, in report order."""
        return [(op, name) for op in self.operations for name in self.check_names]


def resolve(project: Project, options: ContractOptions) -> ContractOptions:
    """The options with the target decided (``None`` -> the spec's ``provider.mode``)."""
    if options.target is not None:
        return options
    return replace(options, target=project.spec.spec.provider.mode)


def select(project: Project, options: ContractOptions) -> Selection:
    """Validate the options against the spec and document; ``InputError`` on anything wrong."""
    options = resolve(project, options)
    spec = project.spec.spec
    document = project.provider
    ops = document.operations
    problems: list[Problem] = []
    for op_id in options.operations:
        if op_id not in ops:
            known = ", ".join(sorted(ops)) or "none"
            problems.append(
                Problem(
                    "--operations", None, "", f"unknown operation '{op_id}' (operations: {known})"
                )
            )
    if options.base_url is not None and options.target != "live":
        problems.append(Problem("--base-url", None, "", "only for --target live"))
    names = all_check_names()
    contract = spec.contract
    excluded: dict[str, dict[str, str]] = defaultdict(dict)
    selected = [op for op in ops if not options.operations or op in options.operations]
    for index, rule in enumerate((contract.checks or ()) if contract else ()):
        for position, name in enumerate(rule.exclude):
            if name not in names:
                problems.append(
                    project.spec.source.problem(
                        ["contract", "checks", index, "exclude", position],
                        f"unknown check '{name}' (checks: {', '.join(names)})",
                    )
                )
        for op_id in rule.operations or ():
            if op_id not in ops:
                known = ", ".join(sorted(ops)) or "none"
                problems.append(
                    project.spec.source.problem(
                        ["contract", "checks", index, "operations"],
                        f"operation '{op_id}' is not in {document.display} (operations: {known})",
                    )
                )
        for op_id in rule.operations or selected:
            for name in rule.exclude:
                excluded[op_id].setdefault(name, rule.reason)
    if problems:
        raise InputError(problems)
    not_sent: dict[str, str] = {}
    live = spec.provider.live
    if options.target == "live" and not (live is not None and live.allow_unsafe_methods):
        for op_id in selected:
            if ops[op_id].method.upper() not in SAFE_METHODS:
                not_sent[op_id] = (
                    f"{ops[op_id].method.upper()} not sent to a live provider:"
                    " provider.live.allow_unsafe_methods is false"
                )
    max_examples = options.max_examples or (
        contract.max_examples if contract and contract.max_examples else DEFAULT_MAX_EXAMPLES
    )
    modes = (
        tuple(contract.generation) if contract and contract.generation else ("positive", "negative")
    )
    return Selection(
        operations=tuple(selected),
        labels={op: f"{ops[op].method.upper()} {ops[op].path}" for op in selected},
        check_names=names,
        excluded={k: dict(v) for k, v in excluded.items()},
        not_sent=not_sent,
        max_examples=max_examples,
        modes=modes,
        stateful=contract.stateful if contract else True,
    )


def plan_contract(project: Project, options: ContractOptions) -> list[tuple[str, str]]:
    """The (operationId, check) items a run with these options will judge: what the pytest
    plugin collects before running anything."""
    return select(project, options).pairs()


# --- the run ------------------------------------------------------------------------------------


def run_contract(
    project: Project, options: ContractOptions, out_dir: Path, progress: Progress
) -> StageResult:
    """Run the contract stage; the face writes the returned result as ``contract.json``."""
    options = resolve(project, options)
    selection = select(project, options)
    baseline = load_baseline(options.baseline) if options.baseline is not None else None
    live = live_endpoint(project, options) if options.target == "live" else None
    cassettes_dir = options.cassettes_dir or Path("cassettes")
    if options.target == "cassettes" and not cassettes_dir.exists():
        raise InputError(
            [Problem(str(cassettes_dir), None, "", "no such cassettes file or folder")]
        )
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.monotonic()
    stage_dir = out_dir / "contract"
    stage_dir.mkdir(parents=True, exist_ok=True)

    checks: list[CheckResult] = []
    metrics: dict[str, float] = {}
    artifacts: dict[str, str] = {}
    notes: list[str] = []
    error: str | None = None
    interrupted = False
    try:
        if options.static_checks:
            progress("contract: checking what the integration relies on in the document")
            checks.extend(check_relies_on(project))
            progress("contract: checking the data mapping with generated records")
            checks.extend(
                check_data_mapping(project, seed=options.seed, max_examples=selection.max_examples)
            )
        if options.target == "cassettes":
            progress(f"contract: validating recorded responses in {cassettes_dir}")
            checks.extend(check_cassettes(project, cassettes_dir))
        else:
            outcome = _run_dynamic(project, options, selection, live, stage_dir, progress)
            checks.extend(outcome.checks)
            metrics.update(outcome.metrics)
            notes.extend(outcome.notes)
            artifacts.update(
                {name: str(path.relative_to(out_dir)) for name, path in outcome.artifacts.items()}
            )
            error = outcome.error
            interrupted = outcome.interrupted
    except InputError:
        raise
    except KeyboardInterrupt:
        interrupted = True
    except Exception as crash:  # a tool crashed mid-run: a verdict of "error", not a traceback
        lines = str(crash).strip().splitlines()
        error = f"{type(crash).__name__}: {lines[0] if lines else 'no message'}"
        progress(f"contract: stopped by an error: {error}")

    if baseline is not None:
        checks = list(apply_baseline(checks, baseline, date.today()))
    result = _stage_result(
        checks,
        selection=selection,
        options=options,
        started_at=started_at,
        duration=time.monotonic() - clock,
        metrics=metrics,
        artifacts=artifacts,
        notes=notes,
        error=error,
        interrupted=interrupted,
    )
    if interrupted:
        raise StageInterrupted(result)
    return result


def _stage_result(
    checks: list[CheckResult],
    *,
    selection: Selection,
    options: ContractOptions,
    started_at: str,
    duration: float,
    metrics: Mapping[str, float],
    artifacts: Mapping[str, str],
    notes: list[str],
    error: str | None,
    interrupted: bool,
) -> StageResult:
    counts = Counter(c.status for c in checks)
    status: Status
    if counts["failed"]:
        status = "failed"
    elif error is not None or counts["error"]:
        status = "error"
    elif counts["passed"]:
        status = "passed"
    else:
        status = "error"
        error = error or "nothing was tested: no check applied to any response"
    operations = len(selection.operations)
    planned = len(selection.pairs())
    static = len(checks) - planned if options.target != "cassettes" else len(checks)
    scope = (
        f"{operations} operation{'s' if operations != 1 else ''} x"
        f" {len(selection.check_names)} checks"
        if options.target != "cassettes"
        else "recorded responses"
    )
    summary = (
        f"{counts['failed']} failed, {counts['passed']} passed, {counts['skipped']} skipped,"
        f" {counts['not_run'] + counts['error']} not judged of {len(checks)} checks ({scope}"
        f"{f' + {static} static' if static > 0 and options.target != 'cassettes' else ''};"
        f" {options.target}, seed {options.seed}, {selection.max_examples} examples)"
    )
    if notes:
        summary += "; " + "; ".join(notes)
    return StageResult(
        stage="contract",
        status=status,
        summary=summary,
        started_at=started_at,
        duration_seconds=round(duration, 3),
        checks=tuple(checks),
        metrics=dict(metrics),
        artifacts=dict(artifacts),
        seed=options.seed,
        incomplete=interrupted,
        error=error,
    )


# --- the dynamic part: schemathesis against a target --------------------------------------------


@dataclass
class Endpoint:
    """Where requests go and with what: the base URL (with the document's base path) and the
    credential values by spec field."""

    base_url: str
    credentials: Mapping[str, str]
    live: bool
    limiter_plan: RatePlan | None = None


@dataclass
class DynamicOutcome:
    checks: list[CheckResult]
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    artifacts: dict[str, Path] = field(default_factory=dict)
    error: str | None = None
    interrupted: bool = False


def _document_base_path(project: Project) -> str:
    data = project.provider.data
    if project.provider.version == "2.0":
        return str(data.get("basePath") or "").rstrip("/")
    servers = data.get("servers") or []
    url = str(servers[0].get("url", "")) if servers and isinstance(servers[0], dict) else ""
    return urlsplit(url).path.rstrip("/")


def live_endpoint(project: Project, options: ContractOptions) -> Endpoint:
    """Check a live target before anything is sent: the URL on the allow-list, the
    credentials set, the host reachable, the pace from the spec's rate limit (``InputError``)."""
    spec = project.spec.spec
    base_url = live_base_url(project, options.base_url)
    auth = spec.authentication
    if auth is not None and auth.token_url and "://" in auth.token_url:
        check_allowed_host(project, auth.token_url, "authentication.token_url")
    credentials = auth_mod.live_credentials(project)
    check_reachable(base_url, timeout=min(5.0, options.request_timeout_seconds))
    plan = rate_plan(spec.rate_limits or LIVE_DEFAULT_RATE)
    return Endpoint(base_url, credentials, live=True, limiter_plan=plan)


@contextmanager
def _endpoint(
    project: Project, options: ContractOptions, live: Endpoint | None, progress: Progress
) -> Iterator[Endpoint]:
    """Start the simulator, or use the checked live endpoint; yield where requests go."""
    spec = project.spec.spec
    if live is not None:
        assert live.limiter_plan is not None
        progress(f"contract: live provider {live.base_url}, {live.limiter_plan.describe()}")
        yield live
        return
    from harness.provider.api import simulate

    simulated = project
    if spec.rate_limits is not None:
        # The contract is tested, not the limiter: lift the bucket, keep the headers.
        limits = replace(spec.rate_limits, burst=UNTHROTTLED_BURST)
        simulated = replace(
            project, spec=replace(project.spec, spec=replace(spec, rate_limits=limits))
        )
    with simulate(
        simulated, seed=options.seed, token_ttl_seconds=options.token_ttl_seconds
    ) as running:
        base_url = running.url + _document_base_path(project)
        progress(f"contract: simulated provider at {running.url}")
        yield Endpoint(base_url, dict(running.credentials.by_field), live=False)


class _Recorder:
    """Everything the run learns while schemathesis works: check tallies, failure occurrences,
    per-operation answers to authenticated requests, engine errors, and the request log."""

    def __init__(
        self,
        labels: Mapping[str, str],
        log: IO[str] | None,
        redactor: Callable[[], Redactor],
        monitor: AuthMonitor,
        carried: Callable[[Any], bool],
    ) -> None:
        self.by_label = {label: op for op, label in labels.items()}
        self.tally: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        self.occurrences: dict[tuple[str, str, str, str], list[Occurrence]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.run_errors: list[str] = []
        self.requests: Counter[str] = Counter()
        self.authed: dict[str, Counter[int]] = defaultdict(Counter)
        self.cases = 0
        self.scenarios = 0
        self._log = log
        self._redactor = redactor
        self._monitor = monitor
        self._carried = carried
        self.on_response: Callable[[Any, int], None] | None = None
        self._started = time.monotonic()
        self._lock = threading.Lock()

    # schemathesis hook (schema scope): every answered request, replays and re-sends included
    def after_call(self, context: HookContext, case: Case[Any], response: Response) -> None:
        op = self.by_label.get(case.operation.label)
        if op is None:
            return
        # Answers to method probes (TRACE on a GET operation) say nothing about credentials.
        own_method = case.method.upper() == case.operation.method.upper()
        authed = own_method and self._carried(response.request)
        if self.on_response is not None:
            self.on_response(response.request, response.status_code)
        with self._lock:
            self.requests[op] += 1
            if authed:
                self.authed[op][response.status_code] += 1
            if self._log is not None:
                request = response.request
                parts = urlsplit(str(request.url))
                redactor = self._redactor()
                record = {
                    "t": round(time.monotonic() - self._started, 4),
                    "operation": op,
                    "method": request.method,
                    "path": redactor.text(parts.path),
                    "query": redactor.query(parts.query),
                    "status": response.status_code,
                    "elapsed_ms": round(response.elapsed * 1000, 2),
                    "authenticated": bool(authed),
                }
                self._log.write(json.dumps(record) + "\n")
        if authed:
            self._monitor.observe(response.status_code)

    def on_scenario(self, recorder: ScenarioRecorder, phase: str) -> None:
        self.scenarios += 1
        self.cases += len(recorder.cases)
        for case_id, node in recorder.cases.items():
            op = self.by_label.get(node.value.operation.label)
            if op is None:
                continue
            interaction = recorder.interactions.get(case_id)
            response = interaction.response if interaction is not None else None
            for check in recorder.checks.get(case_id, []):
                self.tally[(op, check.name)][str(check.status.value)] += 1
                info = check.failure_info
                if info is None:
                    continue
                occurrence = Occurrence(
                    operation=op,
                    check=check.name,
                    failure=info.failure,
                    case=node.value,
                    response=response,
                    code_sample=info.code_sample,
                    recorder=recorder,
                    phase=phase,
                )
                self.occurrences[occurrence.identity].append(occurrence)

    def on_error(self, label: str, title: str, message: str) -> None:
        op = self.by_label.get(label)
        text = f"{title}: {message.strip().splitlines()[0] if message.strip() else ''}".rstrip(": ")
        if op is None:
            self.run_errors.append(text)
        elif text not in self.errors[op]:
            self.errors[op].append(text)


def _load_schema(project: Project, config: Any) -> BaseSchema:
    import schemathesis

    uri = project.provider.uri
    if uri.startswith("file://"):
        from urllib.parse import unquote

        return schemathesis.openapi.from_path(unquote(urlsplit(uri).path), config=config)
    return schemathesis.openapi.from_dict(
        json.loads(json.dumps(project.provider.data)), config=config
    )


def _run_dynamic(
    project: Project,
    options: ContractOptions,
    selection: Selection,
    live: Endpoint | None,
    stage_dir: Path,
    progress: Progress,
) -> DynamicOutcome:
    spec = project.spec.spec
    with ExitStack() as stack:
        endpoint = stack.enter_context(_endpoint(project, options, live, progress))
        secrets = {*endpoint.credentials.values(), *resolve_secrets(spec).values()}
        holder = _RedactorHolder(Redactor.of(secrets))
        plan = auth_mod.plan_auth(project, endpoint.base_url, endpoint.credentials)
        limiter = build_limiter(endpoint.limiter_plan) if endpoint.limiter_plan else None
        token_client = None
        if plan.kind == "oauth2_client_credentials":
            token_client = auth_mod.TokenClient(
                plan,
                timeout=options.request_timeout_seconds,
                before_request=_limit_token_requests(limiter, endpoint.base_url),
                on_secret=holder.add,
            )
            try:
                auth_mod.preflight(token_client)
            except auth_mod.TokenRefused as refused:
                return _refused_outcome(project, selection, plan, refused, options)
        sendable = [op for op in selection.operations if op not in selection.not_sent]
        if not sendable:
            return DynamicOutcome(
                checks=_judge(selection, _EmptyRecorder(), {}, plan, options, holder.get(), None),
                notes=["no operation could be sent"],
            )
        config = build_config(
            RunConfig(
                base_url=endpoint.base_url,
                seed=options.seed,
                max_examples=selection.max_examples,
                modes=selection.modes,
                stateful=selection.stateful,
                request_timeout=options.request_timeout_seconds,
                excluded=excluded_checks(
                    [((op,), tuple(names)) for op, names in selection.excluded.items()]
                ),
                safe_methods_only=endpoint.live and not _unsafe_allowed(project),
            )
        )
        schema = _load_schema(project, config)
        schema = schema.include(name=[selection.labels[op] for op in sendable])
        project_config = schema.config
        if limiter is not None:
            project_config.rate_limit = limiter
        log_path = stage_dir / "requests.jsonl"
        log = stack.enter_context(log_path.open("w", encoding="utf-8"))
        monitor = AuthMonitor(options.max_auth_failures)
        carried = auth_mod.credential_matcher(plan, token_client)
        recorder = _Recorder(selection.labels, log, holder.get, monitor, carried)
        if token_client is not None:
            recorder.on_response = token_client.observe
        schema.hooks.register_hook_with_name(recorder.after_call, "after_call")
        tokens_fetched = auth_mod.install_auth(schema, plan, token_client)
        compiled = {(c.method, c.path): c for c in compile_document(project.provider)}
        register_run(
            project_config,
            HarnessRun(
                document=project.provider,
                operations=compiled,
                rate_limits=spec.rate_limits,
                token_operation=plan.token_operation,
            ),
        )
        stack.callback(unregister_run, project_config)
        if endpoint.live and not _unsafe_allowed(project):
            stack.enter_context(refuse_unsafe_methods(project_config))
        if token_client is not None:
            stack.enter_context(auth_mod.fresh_tokens_at_send(project_config, token_client))
        stack.enter_context(hypothesis_profile(selection.max_examples))
        progress(
            f"contract: {len(sendable)} operation{'s' if len(sendable) != 1 else ''},"
            f" {selection.max_examples} examples each,"
            f" {'+'.join(selection.modes)} cases, seed {options.seed}"
        )
        clock = time.monotonic()
        interrupted, stopped = _drive(schema, recorder, monitor, progress)
        elapsed = time.monotonic() - clock
        log.flush()
        notes: list[str] = []
        if stopped:
            notes.append(
                f"stopped early: {monitor.consecutive} consecutive {monitor.last_status} answers"
                " to requests with credentials (wrong, revoked or insufficient credentials?)"
            )
            progress("contract: " + notes[-1])
        confirmations: dict[tuple[str, str, str, str], Any] = {}
        if options.revalidate and not interrupted:
            confirmations = _revalidate_all(recorder, schema, plan, token_client, progress)
        checks = _judge(
            selection,
            recorder,
            confirmations,
            plan,
            options,
            holder.get(),
            monitor if stopped else None,
        )
        total = sum(recorder.requests.values())
        metrics = {
            "requests": float(total),
            "cases": float(recorder.cases),
            "operations": float(len(sendable)),
            "duration_seconds": round(elapsed, 3),
            "rps": round(total / elapsed, 2) if elapsed > 0 else 0.0,
            "tokens_fetched": float(tokens_fetched()),
        }
        if endpoint.limiter_plan is not None:
            metrics["rate_limit_interval_seconds"] = round(
                endpoint.limiter_plan.interval_seconds, 4
            )
        run_error = "; ".join(recorder.run_errors) if recorder.run_errors and not total else None
        return DynamicOutcome(
            checks=checks,
            metrics=metrics,
            notes=notes,
            artifacts={"requests": log_path},
            error=run_error,
            interrupted=interrupted,
        )
    raise AssertionError("unreachable")  # pragma: no cover - the with block always returns


def _unsafe_allowed(project: Project) -> bool:
    live = project.spec.spec.provider.live
    return live is not None and live.allow_unsafe_methods


class _RedactorHolder:
    """The run's redactor, grown with every token fetched (swapped atomically)."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor

    def add(self, secret: str) -> None:
        self._redactor = self._redactor.with_secrets([secret])

    def get(self) -> Redactor:
        return self._redactor


def _limit_token_requests(limiter: Any, base_url: str) -> Callable[[], None]:
    """Token requests count against the same limit as the test requests."""
    if limiter is None:
        return lambda: None
    from schemathesis.core.rate_limit import ratelimit

    def acquire() -> None:
        with ratelimit(limiter, base_url):
            pass

    return acquire


def _drive(
    schema: BaseSchema, recorder: _Recorder, monitor: AuthMonitor, progress: Progress
) -> tuple[bool, bool]:
    """Run the engine to its end; returns (interrupted, stopped early for auth)."""
    from schemathesis.engine import events, from_schema

    stream = from_schema(schema).execute()
    monitor.on_trip = stream.stop  # stop between two cases, not at the end of a batch
    interrupted = stopped = False
    phase_cases: Counter[str] = Counter()
    try:
        for event in stream:
            _on_event(event, recorder, progress, phase_cases)
            if isinstance(event, events.Interrupted) and not monitor.tripped:
                interrupted = True  # Ctrl-C, caught inside the engine
            if monitor.tripped and not stopped:
                stopped = True
                stream.stop()
    except KeyboardInterrupt:
        interrupted = True
        stream.stop()
        try:
            for event in stream:
                _on_event(event, recorder, lambda _: None, phase_cases)
        except KeyboardInterrupt:
            pass
    return interrupted, stopped


def _on_event(
    event: EngineEvent, recorder: _Recorder, progress: Progress, phase_cases: Counter[str]
) -> None:
    from schemathesis.engine import events

    if isinstance(event, events.ScenarioFinished):
        phase = str(event.phase.value)
        recorder.on_scenario(event.recorder, phase)
        phase_cases[phase] += len(event.recorder.cases)
        if phase != "stateful" and event.recorder.cases:
            failed = len(event.recorder.failing_case_ids())
            progress(
                f"contract: {phase:<8} {event.recorder.label}: {len(event.recorder.cases)} cases"
                + (f", {failed} failing" if failed else "")
            )
    elif isinstance(event, events.PhaseFinished):
        phase = str(event.phase.name.value)
        if phase == "stateful" and phase_cases[phase]:
            progress(f"contract: stateful sequences: {phase_cases[phase]} calls")
    elif isinstance(event, events.NonFatalError):
        recorder.on_error(event.label, event.info.title, event.info.message)
    elif isinstance(event, events.FatalError):
        recorder.run_errors.append(f"{type(event.exception).__name__}: {event.exception}")


def _revalidate_all(
    recorder: _Recorder,
    schema: BaseSchema,
    plan: auth_mod.AuthPlan,
    token_client: auth_mod.TokenClient | None,
    progress: Progress,
) -> dict[tuple[str, str, str, str], Any]:
    """Send the smallest case of every problem again and re-run its check."""
    from schemathesis.checks import CHECKS

    out: dict[tuple[str, str, str, str], Any] = {}
    if not recorder.occurrences:
        return out
    progress(f"contract: re-sending {len(recorder.occurrences)} failing cases to confirm them")

    def refresh(case: Case[Any]) -> None:
        from schemathesis.auths import refresh_auth

        refresh_auth(case)

    for identity, occurrences in recorder.occurrences.items():
        chosen = smallest(occurrences)
        try:
            check = CHECKS.get_one(chosen.check)
        except Exception:
            continue
        operation = chosen.case.operation
        kwargs: dict[str, Any] = {"headers": schema.config.headers_for(operation=operation)}
        timeout = schema.config.request_timeout_for(operation=operation)
        if timeout is not None:
            kwargs["timeout"] = timeout
        out[identity] = (
            chosen,
            revalidate(chosen, check, kwargs, refresh if token_client is not None else None),
        )
    return out


class _EmptyRecorder(_Recorder):
    def __init__(self) -> None:
        super().__init__({}, None, lambda: Redactor(), AuthMonitor(1), lambda _request: False)


def _judge(
    selection: Selection,
    recorder: _Recorder,
    confirmations: Mapping[tuple[str, str, str, str], Any],
    plan: auth_mod.AuthPlan,
    options: ContractOptions,
    redactor: Redactor,
    stopped: AuthMonitor | None,
) -> list[CheckResult]:
    """One CheckResult per selected operation x check."""
    codes = {
        **builtin_codes(),
        **{k: (v,) for k, v in {**HARNESS_CHECK_CODES, **RUN_CHECK_CODES}.items()},
    }
    by_pair: dict[tuple[str, str], list[tuple[Occurrence, int, Any]]] = defaultdict(list)
    for identity, occurrences in recorder.occurrences.items():
        chosen, revalidation = confirmations.get(identity, (smallest(occurrences), None))
        by_pair[(identity[0], identity[1])].append((chosen, len(occurrences), revalidation))
    results: list[CheckResult] = []
    for op, name in selection.pairs():
        check_id = f"contract/{op}/{name}"
        attributes: dict[str, Any] = {
            "operation": op,
            "check": name,
            "codes": list(codes.get(name, ())),
            "seed": options.seed,
        }
        if name in RUN_CHECK_CODES:
            results.append(_judge_auth(op, name, recorder, plan, selection, attributes, stopped))
            continue
        reason = selection.excluded.get(op, {}).get(name)
        if reason is not None:
            results.append(
                CheckResult(
                    check_id, name, "skipped", f"switched off: {reason}", attributes=attributes
                )
            )
            continue
        if op in selection.not_sent:
            results.append(
                CheckResult(
                    check_id, name, "skipped", selection.not_sent[op], attributes=attributes
                )
            )
            continue
        tally = recorder.tally.get((op, name), Counter())
        findings: list[Finding] = []
        unconfirmed: list[str] = []
        hint = f"harness contract SPEC --operations {op} --seed {options.seed}"
        for occurrence, count, revalidation in by_pair.get((op, name), []):
            if revalidation is not None and revalidation.reproduced is False:
                unconfirmed.append(f"{occurrence.failure.title} ({revalidation.note})")
                continue
            findings.append(
                build_finding(
                    occurrence,
                    count=count,
                    seed=options.seed,
                    redactor=redactor,
                    revalidation=revalidation,
                    reproduce_hint=hint,
                )
            )
        attributes.update(
            {
                "responses_checked": sum(tally.values()),
                "failed": tally.get("failure", 0),
            }
        )
        if unconfirmed:
            attributes["not_reproduced"] = unconfirmed
        errors = recorder.errors.get(op, [])
        status: Status
        if findings:
            status = "failed"
            summary = f"{len(findings)} finding(s): " + "; ".join(f.message for f in findings[:3])
        elif tally.get("error"):
            status = "error"
            summary = f"the check crashed on {tally['error']} response(s)"
        elif tally.get("success") or unconfirmed:
            status = "passed"
            summary = f"{tally.get('success', 0)} responses passed"
            if unconfirmed:
                summary += (
                    f"; {len(unconfirmed)} failure(s) did not reproduce on re-send (not counted)"
                )
        elif errors:
            status = "error"
            summary = "not judged: " + "; ".join(errors[:2])
        else:
            status = "not_run"
            summary = "no response this check applies to"
        results.append(
            CheckResult(
                check_id, name, status, summary, findings=tuple(findings), attributes=attributes
            )
        )
    return results


def _judge_auth(
    op: str,
    name: str,
    recorder: _Recorder,
    plan: auth_mod.AuthPlan,
    selection: Selection,
    attributes: dict[str, Any],
    stopped: AuthMonitor | None,
) -> CheckResult:
    """``auth_accepted``: with credentials configured, an operation whose every authenticated
    request was refused (401/403) fails - that is a broken integration, not a pass."""
    check_id = f"contract/{op}/{name}"
    if not plan.sends_credentials:
        return CheckResult(
            check_id,
            name,
            "skipped",
            f"no credentials to send ({plan.kind})",
            attributes=attributes,
        )
    reason = selection.excluded.get(op, {}).get(name)
    if reason is not None:
        return CheckResult(
            check_id, name, "skipped", f"switched off: {reason}", attributes=attributes
        )
    if selection.labels[op] in plan.unsecured:
        return CheckResult(
            check_id, name, "skipped", "the document secures nothing here", attributes=attributes
        )
    if op in selection.not_sent:
        return CheckResult(check_id, name, "skipped", selection.not_sent[op], attributes=attributes)
    statuses = recorder.authed.get(op, Counter())
    total = sum(statuses.values())
    refused = statuses.get(401, 0) + statuses.get(403, 0)
    attributes.update({"authenticated_requests": total, "refused": refused})
    if total == 0:
        return CheckResult(
            check_id, name, "not_run", "no request with credentials was sent", attributes=attributes
        )
    if refused < total:
        return CheckResult(
            check_id,
            name,
            "passed",
            f"{total - refused} of {total} requests with credentials were accepted",
            attributes=attributes,
        )
    message = (
        f"every one of {total} requests with credentials was refused"
        f" ({', '.join(f'{s}x{n}' for s, n in sorted(statuses.items()))})"
    )
    if stopped is not None:
        message += f"; the run stopped after {stopped.consecutive} in a row"
    finding = Finding(
        check=name,
        message=message,
        code=RUN_CHECK_CODES[name],
        operation=op,
        request=selection.labels[op],
        details={"statuses": {str(k): v for k, v in statuses.items()}},
    )
    return CheckResult(
        check_id, name, "failed", message, findings=(finding,), attributes=attributes
    )


def _refused_outcome(
    project: Project,
    selection: Selection,
    plan: auth_mod.AuthPlan,
    refused: auth_mod.TokenRefused,
    options: ContractOptions,
) -> DynamicOutcome:
    """The token request failed before anything else was sent: one failed check on the token
    operation, nothing else judged, a clear message."""
    token_op = plan.token_operation or "authentication"
    message = (
        f"stopped early: {refused.detail}; check the credentials"
        f" ({', '.join(sorted(project.spec.spec.authentication.credential_refs().values())) if project.spec.spec.authentication else ''})"
    )
    finding = Finding(
        check="auth_accepted",
        message=message,
        code=RUN_CHECK_CODES["auth_accepted"],
        operation=token_op,
        request=f"POST {plan.token_url}",
        seed=options.seed,
    )
    checks = [
        CheckResult(
            f"contract/{token_op}/auth_accepted",
            "auth_accepted",
            "failed",
            message,
            findings=(finding,),
            attributes={"operation": token_op, "check": "auth_accepted", "status": refused.status},
        )
    ]
    for op, name in selection.pairs():
        if (op, name) == (token_op, "auth_accepted"):
            continue
        checks.append(
            CheckResult(
                f"contract/{op}/{name}",
                name,
                "not_run",
                "not run: no token",
                attributes={"operation": op, "check": name},
            )
        )
    return DynamicOutcome(checks=checks, notes=[message])
