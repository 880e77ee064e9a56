"""From a spec, a profile and the command's options to a concrete, safe load plan.

Everything that can be wrong is found here, before anything starts: an operation the document
lacks, a request that cannot be generated, a target host the spec does not allow, a live run
above the provider's declared rate limit, credentials missing from the environment. Each is a
located problem (``InputError``), so a load run never starts half-configured, and never sends a
third party more than its spec says it accepts.

The plan is data: the harness writes it as JSON for the locustfile (with the *names* of the
credential variables, never their values, which travel in the subprocess environment).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from harness.load.data import PlannedRequest, RequestDataError, generate_requests
from harness.load.profiles import ResolvedProfile
from harness.openapi.document import OpenAPIDocument, load_document
from harness.openapi.operations import compile_document
from harness.problems import InputError, PathPart, Problem
from harness.project import Project
from harness.provider.faults import (
    FaultMatch,
    FaultPlan,
    FaultRule,
    LatencyFault,
    WhenEvery,
    load_fault_plan,
    unknown_operation_problems,
)
from harness.spec.model import LoadOperation, RateLimits
from harness.spec.secrets import env_name

Target = Literal["simulated", "live", "integration"]
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_TIMEOUT_SECONDS = 30.0
UNLIMITED = 1e9
"""Requests per second (and burst) the simulator allows when a profile is not about the limit."""


@dataclass(frozen=True)
class PlannedOperation:
    id: str
    method: str
    weight: int
    requests: tuple[PlannedRequest, ...]


@dataclass(frozen=True)
class PlannedStage:
    """One stage on the run's clock: ``start``/``end`` in seconds from the start."""

    name: str
    start: float
    end: float
    users: int
    spawn_rate: float
    rps: float | None
    """Offered arrival rate (``None``: unpaced, as fast as the users go)."""
    limiter_rps: float | None
    """Client-side limiter rate (total over all processes), when the stage uses one."""
    expect_429: bool

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def send_rps(self) -> float | None:
        """The rate requests actually leave at: the offered rate, capped by the limiter."""
        if self.rps is None:
            return self.limiter_rps
        return min(self.rps, self.limiter_rps) if self.limiter_rps else self.rps


@dataclass(frozen=True)
class LoadPlan:
    """Everything a run needs, decided and checked."""

    profile: ResolvedProfile
    target: Target
    base_url: str | None
    """``None`` for the simulated target until the simulator is up."""
    operations: tuple[PlannedOperation, ...]
    stages: tuple[PlannedStage, ...]
    timeout_seconds: float
    rate_rps: float | None
    rate_basis: str
    """How the rate was derived, in words: ``performance.throughput 300/min x 1``."""
    auth: Mapping[str, Any] | None
    credential_env: Mapping[str, str]
    """Variables (name -> value) the Locust processes need; never written to the plan file."""
    secrets: tuple[str, ...]
    """Every credential value in play, for the redactor."""
    workers: int
    remote_workers: int
    seed: int
    declared_limit_rps: float | None
    simulator_limits: RateLimits | None
    fault_plan: FaultPlan | None
    slow_share: float | None
    locustfile: Path | None
    token_operation: str | None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def duration(self) -> float:
        return self.stages[-1].end

    @property
    def users(self) -> int:
        return max(s.users for s in self.stages)

    @property
    def max_requests(self) -> int | None:
        """The most requests a healthy run sends: twice the planned arrivals (ten times with
        your own locustfile, whose tasks may send several requests), plus token fetches and
        requests in flight. Unpaced runs are bounded by their time only."""
        if any(s.send_rps is None for s in self.stages):
            return None
        planned = sum(math.ceil(s.duration * (s.send_rps or 0)) for s in self.stages)
        return (10 if self.locustfile else 2) * planned + 4 * self.users + 100

    @property
    def stop_timeout(self) -> float:
        """How long users get to finish the request they are in when the run ends."""
        return self.timeout_seconds + 2.0

    def to_json(self, base_url: str, samples_dir: Path) -> dict[str, Any]:
        """The plan file the locustfile reads (no credential values)."""
        return {
            "version": 1,
            "profile": self.profile.name,
            "base_url": base_url.rstrip("/"),
            "samples_dir": str(samples_dir),
            "timeout_seconds": self.timeout_seconds,
            "processes": max(self.workers + self.remote_workers, 1),
            "seed": self.seed,
            "progress_seconds": 1.0,
            "max_requests": self.max_requests,
            "stages": [
                {
                    "name": s.name,
                    "start": s.start,
                    "end": s.end,
                    "users": s.users,
                    "spawn_rate": s.spawn_rate,
                    "rps": s.rps,
                    "limiter_rps": s.limiter_rps,
                    "expect_429": s.expect_429,
                }
                for s in self.stages
            ],
            "operations": [
                {
                    "id": op.id,
                    "method": op.method,
                    "weight": op.weight,
                    "requests": [
                        {
                            "url": r.url,
                            "body": r.body,
                            "content_type": r.content_type,
                            "headers": dict(r.headers),
                        }
                        for r in op.requests
                    ],
                }
                for op in self.operations
            ],
            "auth": dict(self.auth) if self.auth is not None else None,
        }


@dataclass(frozen=True)
class PlanOptions:
    profile: ResolvedProfile
    target: Target = "simulated"
    users: int | None = None
    duration_seconds: float | None = None
    workers: int = 0
    remote_workers: int = 0
    allow_over_limit: bool = False
    base_url: str | None = None
    seed: int = 0
    locustfile: Path | None = None
    environ: Mapping[str, str] | None = None
    simulated_credentials: Mapping[str, str] | None = None
    """Simulated target: the credential values the simulator accepts (by env var name)."""


def _problem(project: Project, path: list[PathPart], message: str) -> Problem:
    return project.spec.source.problem(path, message)


def _flag(flag: str, message: str) -> Problem:
    return Problem(flag, None, "", message)


def build_plan(project: Project, options: PlanOptions) -> LoadPlan:
    """The checked plan, or ``InputError`` with every problem found."""
    spec = project.spec.spec
    profile = options.profile
    problems: list[Problem] = []
    target = options.target

    document, mix, mix_path = _mix(project, target, problems)
    base_url = _base_url(project, options, problems)

    operations = _operations(project, options, document, mix, mix_path, problems)

    # --- the timeout and the rate -------------------------------------------------------
    handling = spec.error_handling
    timeout = profile.timeout_seconds or (
        handling.request_timeout.seconds
        if handling is not None and handling.request_timeout is not None
        else DEFAULT_TIMEOUT_SECONDS
    )
    rate, basis_words = _rate(project, profile, problems)
    declared_limit = spec.rate_limits.per_second if spec.rate_limits is not None else None
    duration = options.duration_seconds or profile.duration_seconds
    users = options.users or profile.users or _users(project, profile, rate, timeout)
    stages = _stages(project, profile, rate, users, duration, declared_limit, problems)

    problems.extend(_limit_problems(profile.name, target, stages, declared_limit, options))

    # --- auth and credentials ------------------------------------------------------------
    auth, credential_env, token_operation = _auth(project, options, problems)

    # --- faults and the simulator's rate limit -------------------------------------------
    fault_plan, slow = _faults(project, profile, target, mix, timeout, options.seed, problems)
    limits = spec.rate_limits
    if limits is None and (
        profile.provider_rate_limit == "declared" or "rate_limit" in profile.judge
    ):
        problems.append(
            _flag(
                "--profile",
                f"profile '{profile.name}' needs the provider's rate limit "
                "(rate_limits), which the spec does not declare",
            )
        )
    simulator_limits = (
        limits
        if profile.provider_rate_limit == "declared" or limits is None
        else replace(
            limits,
            requests_per_second=UNLIMITED,
            requests_per_minute=None,
            requests_per_hour=None,
            burst=int(UNLIMITED),
        )
    )

    if options.remote_workers and target == "simulated":
        problems.append(
            _flag(
                "--remote-workers",
                "the embedded simulator listens on 127.0.0.1 only: remote workers need "
                "--target live or --target integration",
            )
        )
    locustfile = options.locustfile or profile.locustfile
    if locustfile is not None and not locustfile.is_file():
        problems.append(_flag("--locustfile", f"locustfile '{locustfile}' not found"))
    if not mix and not problems:
        problems.append(
            _problem(
                project,
                ["load", "operations"],
                "no operation to load: add load.operations (or data_mapping.source_operation)",
            )
        )
    if problems:
        raise InputError(problems)
    secrets = tuple(v for v in credential_env.values() if v)
    return LoadPlan(
        profile=profile,
        target=target,
        base_url=base_url,
        operations=tuple(operations),
        stages=stages,
        timeout_seconds=float(timeout),
        rate_rps=rate,
        rate_basis=basis_words,
        auth=auth,
        credential_env=credential_env,
        secrets=secrets,
        workers=options.workers,
        remote_workers=options.remote_workers,
        seed=options.seed,
        declared_limit_rps=declared_limit,
        simulator_limits=simulator_limits,
        fault_plan=fault_plan,
        slow_share=slow,
        locustfile=locustfile,
        token_operation=token_operation,
    )


# --- pieces ---------------------------------------------------------------------------------


def _operations(
    project: Project,
    options: PlanOptions,
    document: OpenAPIDocument,
    mix: tuple[LoadOperation, ...],
    mix_path: list[PathPart],
    problems: list[Problem],
) -> list[PlannedOperation]:
    """The mix's operations with their generated requests; unknown, unsafe (live) or
    ungenerable ones become located problems."""
    target = options.target
    spec = project.spec.spec
    operations: list[PlannedOperation] = []
    compiled = {c.operation_id: c for c in compile_document(document)} if mix else {}
    live = spec.provider.live
    for index, entry in enumerate(mix):
        where: list[PathPart] = [*mix_path, index, "operation"]
        op = compiled.get(entry.operation)
        if op is None:
            known = ", ".join(sorted(compiled))
            problems.append(
                _problem(
                    project,
                    where,
                    f"'{entry.operation}' is not an operation of {document.title} "
                    f"(operations: {known})",
                )
            )
            continue
        if (
            target == "live"
            and op.method in UNSAFE_METHODS
            and not (live is not None and live.allow_unsafe_methods)
        ):
            problems.append(
                _problem(
                    project,
                    where,
                    f"{op.method} {op.path} changes data on the live provider; set "
                    "provider.live.allow_unsafe_methods: true to load it",
                )
            )
            continue
        try:
            requests = generate_requests(op, entry.parameters, options.seed)
        except RequestDataError as error:
            problems.append(
                _problem(
                    project,
                    where,
                    f"cannot generate a valid request for '{entry.operation}': {error} "
                    "(fix the values with parameters:)",
                )
            )
            continue
        operations.append(PlannedOperation(op.operation_id, op.method, entry.weight, requests))
    return operations


def _limit_problems(
    profile: str,
    target: Target,
    stages: tuple[PlannedStage, ...],
    declared_limit: float | None,
    options: PlanOptions,
) -> list[Problem]:
    """Never above the provider's declared rate limit on a live target (``--allow-over-limit``
    is refused there); against the simulator only with the flag, or on purpose (429 stages)."""
    out: list[Problem] = []
    over_stage = any(s.expect_429 for s in stages)
    highest = max((s.send_rps for s in stages if s.send_rps is not None), default=None)
    if target == "live":
        if options.allow_over_limit:
            out.append(
                _flag(
                    "--allow-over-limit",
                    "refused for live targets: a live provider is never loaded above its "
                    "declared rate limit",
                )
            )
        if over_stage:
            out.append(
                _flag(
                    "--profile",
                    f"profile '{profile}' goes over the provider's rate limit on purpose; "
                    "run it against the simulator (--target simulated)",
                )
            )
        elif any(s.rps is None and s.limiter_rps is None for s in stages):
            out.append(
                _flag(
                    "--profile",
                    f"profile '{profile}' is unpaced (no arrival rate): refused for a live "
                    "target, whose rate limit it could exceed",
                )
            )
        elif highest is not None and declared_limit is not None and highest > declared_limit:
            out.append(
                _flag(
                    "--target",
                    f"profile '{profile}' sends {highest:g} req/s, above the provider's "
                    f"declared rate limit ({declared_limit:g} req/s): refused for a live target",
                )
            )
    elif (
        target == "simulated"
        and not over_stage
        and not options.allow_over_limit
        and highest is not None
        and declared_limit is not None
        and highest > declared_limit * 1.000001
    ):
        out.append(
            _flag(
                "--profile",
                f"profile '{profile}' sends {highest:g} req/s, above the provider's declared "
                f"rate limit ({declared_limit:g} req/s): the real provider would answer 429; "
                "lower the rate or pass --allow-over-limit",
            )
        )
    return out


def _mix(
    project: Project, target: Target, problems: list[Problem]
) -> tuple[OpenAPIDocument, tuple[LoadOperation, ...], list[PathPart]]:
    """The document the mix is sent against, the mix, and where the mix is in the spec."""
    spec = project.spec.spec
    load = spec.load
    if target == "integration":
        integration = load.integration if load is not None else None
        if integration is None:
            problems.append(
                _problem(
                    project,
                    ["load"] if load is not None else [],
                    "--target integration needs load.integration (the service's url, openapi "
                    "and operations)",
                )
            )
            return project.provider, (), []
        try:
            document = load_document(integration.openapi, project.spec.base_dir)
        except InputError as error:
            problems.extend(error.problems)
            return project.provider, (), []
        return document, integration.operations, ["load", "integration", "operations"]
    if load is not None and load.operations:
        return project.provider, load.operations, ["load", "operations"]
    if spec.data_mapping is not None:
        return (
            project.provider,
            (LoadOperation(operation=spec.data_mapping.source_operation),),
            ["data_mapping", "source_operation"],
        )
    return project.provider, (), []


def _host_allowed(project: Project, url: str, what: str, problems: list[Problem]) -> None:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    live = project.spec.spec.provider.live
    allowed = {h.lower() for h in live.allowed_hosts} if live is not None else set()
    if parts.scheme not in ("http", "https") or not host:
        problems.append(_flag(what, f"not an http:// or https:// URL: {url!r}"))
    elif host not in allowed:
        listed = ", ".join(sorted(allowed)) or "none"
        problems.append(
            _flag(
                what,
                f"host '{host}' is not on provider.live.allowed_hosts ({listed}): the harness "
                "sends load only to allowed hosts",
            )
        )


def _base_url(project: Project, options: PlanOptions, problems: list[Problem]) -> str | None:
    spec = project.spec.spec
    if options.target == "simulated":
        if options.base_url is not None:
            problems.append(_flag("--base-url", "only for --target live or integration"))
        return None
    if options.target == "live":
        live = spec.provider.live
        url = options.base_url or (live.base_url if live is not None else None)
        if url is None:
            problems.append(
                _problem(
                    project,
                    ["provider"],
                    "--target live needs provider.live (base_url and allowed_hosts)",
                )
            )
            return None
        _host_allowed(project, url, "--base-url" if options.base_url else "provider.live", problems)
        return url
    load = spec.load
    url = options.base_url or (
        load.integration.url if load is not None and load.integration is not None else None
    )
    if url is not None and urlsplit(url).scheme not in ("http", "https"):
        problems.append(_flag("--base-url", f"not an http:// or https:// URL: {url!r}"))
    return url


def _rate(
    project: Project, profile: ResolvedProfile, problems: list[Problem]
) -> tuple[float | None, str]:
    spec = project.spec.spec
    basis = profile.basis
    rate: float | None
    if basis == "unpaced":
        return None, "unpaced (as fast as the users go)"
    if basis == "fixed":
        if profile.rps is None:
            problems.append(_flag("--profile", f"profile '{profile.name}': basis fixed needs rps"))
            return None, ""
        rate, words = profile.rps, f"fixed {profile.rps:g} req/s"
    elif basis == "throughput":
        throughput = spec.performance.throughput if spec.performance is not None else None
        if throughput is not None:
            rate = throughput.per_second * profile.factor
            words = (
                f"performance.throughput {throughput.per_second * 60:g}/min x {profile.factor:g}"
            )
        elif profile.rps is not None:
            rate, words = profile.rps, f"{profile.rps:g} req/s (no performance.throughput)"
        else:
            problems.append(
                _flag(
                    "--profile",
                    f"profile '{profile.name}' derives its rate from performance.throughput, "
                    "which the spec does not declare (or give the profile an rps)",
                )
            )
            return None, ""
    else:
        limits = spec.rate_limits
        if limits is None:
            problems.append(
                _flag(
                    "--profile",
                    f"profile '{profile.name}' derives its rate from rate_limits, which the "
                    "spec does not declare",
                )
            )
            return None, ""
        rate = limits.per_second * profile.factor
        words = f"rate limit {limits.per_second * 60:g}/min x {profile.factor:g}"
    if profile.max_rps is not None and rate > profile.max_rps:
        rate, words = profile.max_rps, f"{words}, capped at {profile.max_rps:g} req/s"
    return rate, words


def _users(project: Project, profile: ResolvedProfile, rate: float | None, timeout: float) -> int:
    """Enough users that one slow (but acceptable) response does not cost an arrival.

    Each user sends one request per ``users / rate`` seconds; that interval must hold the
    slowest response the spec accepts (max_response_time_seconds, else twice p99, else a
    second), or the request timeout when the profile makes responses slow on purpose.
    """
    if rate is None:
        return 10
    spec = project.spec.spec
    criteria = spec.launch.success_criteria if spec.launch is not None else None
    response_time = spec.performance.response_time if spec.performance is not None else None
    if profile.slow_responses is not None:
        budget = timeout + 1.0
    elif criteria is not None and criteria.max_response_time_seconds is not None:
        budget = criteria.max_response_time_seconds
    elif response_time is not None and response_time.p99_ms is not None:
        budget = 2 * response_time.p99_ms / 1000
    else:
        budget = 1.0
    budget = max(0.5, min(budget, timeout + 1.0))
    return max(1, min(5000, math.ceil(rate * budget)))


def _stages(
    project: Project,
    profile: ResolvedProfile,
    rate: float | None,
    users: int,
    duration: float,
    declared_limit: float | None,
    problems: list[Problem],
) -> tuple[PlannedStage, ...]:
    handling = project.spec.spec.error_handling
    client_rate = (
        handling.rate_limit.client_requests_per_second
        if handling is not None and handling.rate_limit is not None
        else None
    )
    total_share = sum(s.share for s in profile.stages)
    out: list[PlannedStage] = []
    start = 0.0
    for stage in profile.stages:
        length = duration * stage.share / total_share
        limiter: float | None = None
        if stage.client_limiter:
            limiter = client_rate or (declared_limit * 0.9 if declared_limit else None)
            if limiter is None:
                problems.append(
                    _flag(
                        "--profile",
                        f"stage '{stage.name}' uses a client-side limiter, but the spec declares "
                        "neither error_handling.rate_limit.client_requests_per_second nor "
                        "rate_limits",
                    )
                )
        out.append(
            PlannedStage(
                name=stage.name,
                start=round(start, 6),
                end=round(start + length, 6),
                users=users,
                spawn_rate=float(users),
                rps=rate,
                limiter_rps=limiter,
                expect_429=stage.expect_429,
            )
        )
        start += length
    return tuple(out)


def _auth(
    project: Project, options: PlanOptions, problems: list[Problem]
) -> tuple[dict[str, Any] | None, dict[str, str], str | None]:
    """The auth part of the plan, the credential variables to pass, the token operation."""
    spec = project.spec.spec
    auth = spec.authentication
    if options.target == "integration" or auth is None or auth.kind in ("none", "custom"):
        return None, {}, None
    refs = auth.credential_refs()
    names = {field_name: env_name(ref) or "" for field_name, ref in refs.items()}
    environ = os.environ if options.environ is None else options.environ
    values: dict[str, str] = {}
    missing: list[str] = []
    for field_name, var in names.items():
        if options.target == "simulated" and options.simulated_credentials is not None:
            value = options.simulated_credentials.get(var, "")
        else:
            value = environ.get(var, "")
        if not value:
            missing.append(f"{var} (authentication.{field_name})")
        values[var] = value
    if missing:
        problems.append(
            _problem(
                project,
                ["authentication"],
                f"missing credentials: {', '.join(missing)} not set in the environment",
            )
        )
    plan: dict[str, Any] = {"kind": auth.kind}
    token_operation: str | None = None
    if auth.kind == "oauth2_client_credentials":
        token_url = auth.token_url
        if token_url is None and auth.token_operation is not None:
            operation = project.provider.operations.get(auth.token_operation)
            token_url = operation.path if operation is not None else None
            token_operation = auth.token_operation
        if token_url is None:
            problems.append(
                _problem(project, ["authentication"], "no token endpoint (token_operation/url)")
            )
        elif urlsplit(token_url).scheme and options.target == "live":
            _host_allowed(project, token_url, "authentication.token_url", problems)
        plan.update(
            token_url=token_url,
            token_name=auth.token_operation or "token",
            scope=" ".join(auth.scopes or ()),
            refresh=bool(auth.refresh_tokens),
            client_id_env=names.get("client_id"),
            client_secret_env=names.get("client_secret"),
        )
    elif auth.kind == "api_key":
        plan.update(api_key_env=names.get("api_key"), key_in=auth.key_in, key_name=auth.key_name)
    elif auth.kind == "basic":
        plan.update(username_env=names.get("username"), password_env=names.get("password"))
    elif auth.kind == "bearer":
        plan.update(token_env=names.get("token"))
    return plan, values, token_operation


def _faults(
    project: Project,
    profile: ResolvedProfile,
    target: Target,
    mix: tuple[LoadOperation, ...],
    timeout: float,
    seed: int,
    problems: list[Problem],
) -> tuple[FaultPlan | None, float | None]:
    if profile.faults is None and profile.slow_responses is None:
        return None, None
    if target != "simulated":
        problems.append(
            _flag(
                "--target",
                f"profile '{profile.name}' injects faults into the provider: simulated target only",
            )
        )
        return None, None
    rules: list[FaultRule] = []
    plan_seed = seed
    if profile.faults is not None:
        try:
            loaded = load_fault_plan(profile.faults)
        except InputError as error:
            problems.extend(error.problems)
            return None, None
        known = set(project.provider.operations)
        bad = unknown_operation_problems(loaded, known)
        if bad:
            problems.extend(bad)
            return None, None
        rules.extend(loaded.rules)
        plan_seed = loaded.seed or seed
    slow = profile.slow_responses
    if slow is not None:
        rules.append(
            FaultRule(
                name="slow-responses",
                match=FaultMatch(operations=tuple(op.operation for op in mix) or None),
                when=WhenEvery(max(1, round(1 / slow.share))),
                action=LatencyFault(timeout * slow.latency_factor),
            )
        )
    return FaultPlan(tuple(rules), plan_seed), (slow.share if slow is not None else None)
