"""Start the provider engine from Python: ``with simulate(project) as provider: provider.url``.

This is what the stages and the tests use. It resolves the spec's credentials (from the
environment, or minted for the simulation so nothing real is needed), builds the redactor from
them, opens the traffic log and runs the engine's HTTP server on 127.0.0.1 in a background
thread until the ``with`` block ends.

``proxy(project, upstream)`` is the engine's other face: the same faults, rate limits and traffic
log in front of the real provider (a sandbox), whose responses are checked against the document.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from harness.openapi.document import OpenAPIDocument
from harness.problems import InputError, Problem
from harness.project import Project
from harness.provider.cassettes import load_cassettes
from harness.provider.engine import DEFAULT_LOG_BODY_LIMIT, EngineOptions, OnMiss, ProviderEngine
from harness.provider.faults import FaultPlan, load_fault_plan, unknown_operation_problems
from harness.provider.server import ServerThread
from harness.provider.traffic import TrafficLog, TrafficRecord
from harness.provider.upstream import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_TIMEOUT_SECONDS,
    UpstreamPool,
)
from harness.redact import Redactor
from harness.spec.secrets import env_name, resolve_secrets

Side = Literal["provider", "destination"]
T = TypeVar("T")


@dataclass(frozen=True)
class SimulatedCredentials:
    """Credential values the simulated provider accepts, by the spec's environment variable names.

    ``minted`` names the variables the harness made up (not set in the environment): passing
    them to the integration is safe, they open nothing real.
    """

    by_field: Mapping[str, str] = field(default_factory=dict)
    by_env: Mapping[str, str] = field(default_factory=dict)
    minted: frozenset[str] = frozenset()


def simulation_credentials(
    project: Project, environ: Mapping[str, str] | None = None
) -> SimulatedCredentials:
    """Values for every ``${VAR}`` credential: the environment's when set, else minted ones."""
    env = os.environ if environ is None else environ
    auth = project.spec.spec.authentication
    by_field: dict[str, str] = {}
    by_env: dict[str, str] = {}
    minted: set[str] = set()
    if auth is not None:
        for name, reference in auth.credential_refs().items():
            var = env_name(reference)
            if var is None:
                continue
            value = env.get(var)
            if not value:
                value = f"sim-{name.replace('_', '-')}-{secrets.token_hex(8)}"
                minted.add(var)
            by_field[name] = value
            by_env[var] = value
    return SimulatedCredentials(by_field, by_env, frozenset(minted))


@dataclass
class RunningProvider:
    """A running engine: its URL, its traffic, and the engine for inspection."""

    url: str
    engine: ProviderEngine
    traffic: TrafficLog
    credentials: SimulatedCredentials
    server: ServerThread

    def records(self, since_seq: int = 0) -> list[TrafficRecord]:
        return self.traffic.records(since_seq)

    def call(self, function: Callable[[ProviderEngine], T]) -> T:
        """Run ``function(engine)`` on the server thread (the safe way to change engine state)."""
        return self.server.call(lambda: function(self.engine))


def load_faults(path: Path | None, documents: Mapping[str, OpenAPIDocument]) -> FaultPlan | None:
    """Load a fault plan and check that every operation it names exists on its side."""
    if path is None:
        return None
    plan = load_fault_plan(path)
    problems: list[Problem] = []
    known = {op for doc in documents.values() for op in doc.operations}
    problems.extend(unknown_operation_problems(plan, known))
    if problems:
        raise InputError(problems)
    return plan


@contextmanager
def serve(
    document: OpenAPIDocument,
    options: EngineOptions,
    *,
    traffic_path: Path | None = None,
    redactor: Redactor | None = None,
    port: int = 0,
    credentials: SimulatedCredentials | None = None,
) -> Iterator[RunningProvider]:
    """Serve ``document`` with ``options`` on 127.0.0.1 until the block ends."""
    creds = credentials or SimulatedCredentials()
    scrubber = redactor or Redactor(frozenset(creds.by_env.values()))
    # With a file, records live there, not in memory: millions of live record objects would
    # make every full garbage collection pause the server for a long time (p99 in load runs).
    traffic = TrafficLog.open(traffic_path, scrubber, keep_in_memory=traffic_path is None)
    engine = ProviderEngine(document, options, traffic)
    engine.defer_traffic_writes()
    server = ServerThread(
        engine.handle, engine.complete, port=port, before_send=engine.flush_traffic
    )
    try:
        try:
            url = server.start()
        except OSError as error:
            raise InputError(
                [
                    Problem(
                        f"127.0.0.1:{port}", None, "", f"cannot listen: {error.strerror or error}"
                    )
                ]
            ) from None
        yield RunningProvider(url, engine, traffic, creds, server)
    finally:
        if engine.upstream is not None:
            _close_upstream(server, engine.upstream)
        server.stop()
        traffic.close()


def _close_upstream(server: ServerThread, pool: UpstreamPool) -> None:
    """Stop serving (in-flight forwards are logged as stopped), then close the upstream
    connections on the server loop, so none is left open when the loop closes."""
    try:
        loop = server.loop
    except RuntimeError:
        return  # the server never started
    if not loop.is_closed():
        server.run_coroutine(server.server.stop())
        server.run_coroutine(pool.aclose())


@contextmanager
def simulate(
    project: Project,
    *,
    side: Side = "provider",
    seed: int = 0,
    faults: Path | FaultPlan | None = None,
    cassettes: Path | None = None,
    on_miss: OnMiss = "generate",
    records: int = 3,
    traffic_path: Path | None = None,
    port: int = 0,
    credentials: SimulatedCredentials | None = None,
    token_ttl_seconds: float | None = None,
    stateful: bool = True,
    validate_requests: bool = True,
    upstream: str | None = None,
    varied: bool = False,
    log_body_limit: int = DEFAULT_LOG_BODY_LIMIT,
) -> Iterator[RunningProvider]:
    """Simulate the project's provider (or destination) as its spec and documents describe it.

    ``varied`` answers operations the store does not answer with values generated from
    ``seed`` instead of the document's examples (same seed, same values). ``log_body_limit``
    raises how many bytes of each body the traffic log keeps (the traffic log's own cap,
    64 KiB, still applies).

    With cassettes and ``on_miss="passthrough"``, requests no cassette recorded are forwarded to
    ``upstream`` (an allowed host, see :func:`check_upstream`) and its answers logged.
    """
    if on_miss == "passthrough" and (upstream is None or cassettes is None):
        raise InputError(
            [Problem("--on-miss", None, "", "passthrough needs --cassettes and --upstream")]
        )
    if upstream is not None and on_miss != "passthrough":
        raise InputError(
            [Problem("--upstream", None, "", "only for --on-miss passthrough (see harness proxy)")]
        )
    if upstream is not None:
        check_upstream(project, upstream)
    spec = project.spec.spec
    if side == "destination":
        if project.destination is None:
            raise InputError(
                [
                    project.spec.source.problem(
                        ["destination"], "no destination OpenAPI document to simulate"
                    )
                ]
            )
        document = project.destination
    else:
        document = project.provider
    documents = {
        "provider": project.provider,
        **({"destination": project.destination} if project.destination else {}),
    }
    plan = load_faults(faults, documents) if isinstance(faults, Path) else faults
    interactions = tuple(load_cassettes(cassettes)) if cassettes is not None else ()
    creds = credentials or simulation_credentials(project)
    options = EngineOptions(
        side=side,
        seed=seed,
        stateful=stateful,
        records=records,
        validate_requests=validate_requests,
        varied=varied,
        authentication=spec.authentication if side == "provider" else None,
        credentials=creds.by_field,
        token_ttl_seconds=token_ttl_seconds,
        rate_limits=spec.rate_limits if side == "provider" else None,
        fault_plan=plan,
        cassettes=interactions,
        on_miss=on_miss,
        upstream=upstream,
        log_body_limit=log_body_limit,
    )
    # Every secret value of the spec: the credentials the simulator accepts, and any other
    # ${VAR} credential the spec names (integration_under_test.env) that is set.
    scrubber = Redactor.of([*creds.by_env.values(), *resolve_secrets(spec).values()])
    with serve(
        document,
        options,
        traffic_path=traffic_path,
        port=port,
        credentials=creds,
        redactor=scrubber,
    ) as running:
        yield running


@contextmanager
def proxy(
    project: Project,
    upstream: str,
    *,
    faults: Path | FaultPlan | None = None,
    traffic_path: Path | None = None,
    port: int = 0,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    log_bodies: bool = True,
) -> Iterator[RunningProvider]:
    """Stand in front of the real provider at ``upstream``, on 127.0.0.1, until the block ends.

    Requests pass through the spec's rate limits and the fault plan, then go upstream; the
    answers come back unchanged, checked against the provider document (violations in each
    record's ``validation_errors``). Auth is the real provider's: credentials pass through
    untouched, and the log is scrubbed of them (the spec's credentials set in the environment,
    plus sensitive headers, parameters and body keys by name). ``upstream`` must be on the
    spec's ``provider.live.allowed_hosts`` (loopback is always allowed, for tests).
    """
    check_upstream(project, upstream)
    plan = (
        load_faults(faults, {"provider": project.provider}) if isinstance(faults, Path) else faults
    )
    creds = simulation_credentials(project)
    real = frozenset(v for var, v in creds.by_env.items() if var not in creds.minted)
    real |= frozenset(resolve_secrets(project.spec.spec).values())
    options = EngineOptions(
        side="provider",
        stateful=False,
        validate_requests=False,  # the real provider judges requests; we judge its answers
        rate_limits=project.spec.spec.rate_limits,
        fault_plan=plan,
        log_bodies=log_bodies,
        upstream=upstream,
        upstream_timeout_seconds=timeout_seconds,
        upstream_max_connections=max_connections,
    )
    with serve(
        project.provider, options, traffic_path=traffic_path, redactor=Redactor(real), port=port
    ) as running:
        yield running


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def check_upstream(project: Project, upstream: str) -> None:
    """Refuse an upstream the spec does not allow: one located problem (``InputError``).

    The harness sends an integration's real traffic only where the spec says a live provider
    lives (``provider.live.allowed_hosts``), so a typo or a production URL cannot receive
    requests from a fault run. Loopback is always allowed: that is a local stand-in.
    """
    parts = urlsplit(upstream)
    try:
        valid = parts.scheme in ("http", "https") and (parts.port or 0) >= 0
    except ValueError:  # a port that is not a number in 0-65535
        valid = False
    if not valid or not parts.hostname:
        raise InputError(
            [Problem("--upstream", None, "", f"not an http:// or https:// URL: {upstream!r}")]
        )
    host = parts.hostname.lower()
    if host in LOOPBACK_HOSTS:
        return
    live = project.spec.spec.provider.live
    allowed = live.allowed_hosts if live is not None else ()
    if host not in {h.lower() for h in allowed}:
        listed = ", ".join(allowed) if allowed else "none"
        raise InputError(
            [
                project.spec.source.problem(
                    ["provider", "live", "allowed_hosts"] if live else ["provider"],
                    f"upstream host '{host}' is not allowed (allowed_hosts: {listed})",
                )
            ]
        )


__all__ = [
    "RunningProvider",
    "SimulatedCredentials",
    "check_upstream",
    "proxy",
    "serve",
    "simulate",
    "simulation_credentials",
]
