"""Start the provider engine from Python: ``with simulate(project) as provider: provider.url``.

This is what the stages and the tests use. It resolves the spec's credentials (from the
environment, or minted for the simulation so nothing real is needed), builds the redactor from
them, opens the traffic log and runs the engine's HTTP server on 127.0.0.1 in a background
thread until the ``with`` block ends.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from harness.openapi.document import OpenAPIDocument
from harness.problems import InputError, Problem
from harness.project import Project
from harness.provider.cassettes import load_cassettes
from harness.provider.engine import EngineOptions, OnMiss, ProviderEngine
from harness.provider.faults import FaultPlan, load_fault_plan, unknown_operation_problems
from harness.provider.server import ServerThread
from harness.provider.traffic import TrafficLog, TrafficRecord
from harness.redact import Redactor
from harness.spec.secrets import env_name

Side = Literal["provider", "destination"]


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

    def call(self, function):  # type: ignore[no-untyped-def]
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
    traffic = TrafficLog.open(traffic_path, scrubber)
    engine = ProviderEngine(document, options, traffic)
    server = ServerThread(engine.handle, engine.complete, port=port)
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
        server.stop()
        traffic.close()


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
) -> Iterator[RunningProvider]:
    """Simulate the project's provider (or destination) as its spec and documents describe it."""
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
        authentication=spec.authentication if side == "provider" else None,
        credentials=creds.by_field,
        token_ttl_seconds=token_ttl_seconds,
        rate_limits=spec.rate_limits if side == "provider" else None,
        fault_plan=plan,
        cassettes=interactions,
        on_miss=on_miss,
    )
    with serve(
        document, options, traffic_path=traffic_path, port=port, credentials=creds
    ) as running:
        yield running


__all__ = [
    "RunningProvider",
    "SimulatedCredentials",
    "replace",
    "serve",
    "simulate",
    "simulation_credentials",
]
