"""Preparing a scenario run: which scenarios, which integration, how many records.

Everything that can be wrong with the input - a scenario naming an operation the spec's
documents lack, an integration command that does not exist, an unset ``${VAR}`` - is found
here, before the first simulator starts, as one ``InputError``. A scenario the spec cannot run
(an undeclared policy, no token endpoint) is not an error: it is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.problems import InputError, Problem
from harness.project import Project
from harness.provider.faults import (
    FaultPlan,
    parse_fault_plan,
    unknown_operation_problems,
)
from harness.scenarios.loader import load_scenarios
from harness.scenarios.model import PLACEHOLDERS, Scenario
from harness.scenarios.observe import (
    Operations,
)
from harness.scenarios.process import (
    callable_argv,
    command_argv,
    find_executable,
)
from harness.spec.secrets import env_name
from harness.yamlsource import SourceMap

DEFAULT_RECORDS = 100
"""N when the spec has no ``launch.success_criteria.records_synced``."""


SCALE_ENV = "HARNESS_SCALE"


@dataclass(frozen=True)
class ScenariosOptions:
    """How to run the stage (the command's flags)."""

    only: tuple[str, ...] = ()
    seed: int = 0
    integration: str | None = None
    """A command that replaces the spec's ``integration_under_test`` (same working folder)."""
    scenario_dirs: tuple[Path, ...] = ()
    """Folders of scenario files besides ``scenarios/`` next to the spec."""
    records: int | None = None
    """N for ``records: auto`` scenarios; default: success_criteria.records_synced x scale."""
    scale: float | None = None
    """Scale for the spec's records_synced (default: $HARNESS_SCALE, else 1)."""
    repeat: int = 1


ScenarioOptions = ScenariosOptions
"""The name ``harness.pipeline`` imports."""


@dataclass(frozen=True)
class Integration:
    """How to start the integration under test, resolved and checked."""

    argv: tuple[str, ...]
    cwd: Path
    timeout_seconds: float
    env: Mapping[str, str]
    display: str


@dataclass(frozen=True)
class Prepared:
    """A scenario ready to run against this project, or the reason it does not apply."""

    scenario: Scenario
    plan: FaultPlan | None
    skip: str | None = None


# --- preparing ------------------------------------------------------------------------------


def scenario_folders(project: Project, options: ScenariosOptions) -> list[Path]:
    """``scenarios/`` next to the spec, the repository's ``scenarios/`` when the spec sits in
    ``<repo>/contracts/<name>/`` (what ``harness init`` lays out), then each ``--scenarios``."""
    spec_dir = project.spec.base_dir.resolve()
    candidates = [spec_dir / "scenarios"]
    if spec_dir.parent.name == "contracts":
        candidates.append(spec_dir.parent.parent / "scenarios")
    folders: list[Path] = []
    for folder in [*(c for c in candidates if c.is_dir()), *options.scenario_dirs]:
        if all(folder.resolve() != known.resolve() for known in folders):
            folders.append(folder)
    return folders


def discover(project: Project, options: ScenariosOptions) -> list[Scenario]:
    """Every scenario available to this project (built-ins, then the user's)."""
    return load_scenarios(scenario_folders(project, options))


def operations(project: Project) -> Operations:
    """The spec's source, token and destination operations."""
    spec = project.spec.spec
    auth = spec.authentication
    token: str | None = None
    token_path: str | None = None
    if auth is not None and auth.kind == "oauth2_client_credentials":
        token = auth.token_operation
        if token is not None and token in project.provider.operations:
            token_path = project.provider.operations[token].path
        elif auth.token_url is not None:
            token_path = urlsplit(auth.token_url).path or None
            token = next(
                (
                    op_id
                    for op_id, op in project.provider.operations.items()
                    if op.path == token_path
                ),
                None,
            )
    destination = spec.destination
    return Operations(
        source=spec.data_mapping.source_operation if spec.data_mapping else None,
        token=token,
        token_path=token_path,
        destination=destination.operation
        if destination is not None and destination.kind == "api"
        else None,
    )


def prepare(project: Project, scenario: Scenario) -> Prepared:
    """Resolve placeholders and check the plan against the documents; a scenario the spec cannot
    run (undeclared policy, no token endpoint) is skipped with the reason, not failed."""
    spec = project.spec.spec
    for requirement in scenario.requires:
        if _spec_value(spec, requirement) is None:
            return Prepared(scenario, None, f"the spec does not declare {requirement}")
    ops = operations(project)
    values = {"$source": ops.source, "$token": ops.token, "$destination": ops.destination}
    used = _placeholders_used(scenario)
    for placeholder in sorted(used):
        if values[placeholder] is None:
            return Prepared(
                scenario, None, f"the spec has no {PLACEHOLDERS[placeholder]} ({placeholder})"
            )
    auth = spec.authentication
    if scenario.setup.credentials == "revoked" and (
        auth is None or auth.kind in ("none", "custom")
    ):
        return Prepared(scenario, None, "the provider has no credentials to revoke")
    uses_tokens = scenario.setup.token_ttl_seconds is not None or any(
        "token_expiry" in rule.get("action", {})
        for rule in (scenario.faults or {}).get("rules", [])
    )
    if uses_tokens and (auth is None or auth.kind != "oauth2_client_credentials"):
        return Prepared(scenario, None, "the provider issues no expiring tokens (not OAuth2)")
    if scenario.faults is None:
        return Prepared(scenario, FaultPlan())
    data = json.loads(json.dumps(scenario.faults))
    for rule in data.get("rules", []):
        match = rule.get("match", {})
        operation = match.get("operation")
        if isinstance(operation, str):
            match["operation"] = values.get(operation, operation)
        elif isinstance(operation, list):
            match["operation"] = [values.get(o, o) for o in operation]
    source = scenario.source or SourceMap(scenario.name)
    plan = parse_fault_plan(
        data,
        SourceMap(source.file, {k[1:]: v for k, v in source.lines.items() if k[:1] == ("faults",)}),
    )
    known = set(project.provider.operations)
    if project.destination is not None:
        known |= set(project.destination.operations)
    problems = unknown_operation_problems(plan, known)
    if problems:
        raise InputError(
            Problem(p.file, p.line, f"faults.{p.path}" if p.path else "faults", p.message)
            for p in problems
        )
    return Prepared(scenario, plan)


def _placeholders_used(scenario: Scenario) -> set[str]:
    used: set[str] = set()
    for rule in (scenario.faults or {}).get("rules", []):
        operation = rule.get("match", {}).get("operation")
        for name in [operation] if isinstance(operation, str) else list(operation or []):
            if name in PLACEHOLDERS:
                used.add(name)
    for expectation in scenario.expect:
        operation = expectation.params.get("operation")
        if isinstance(operation, str) and operation in PLACEHOLDERS:
            used.add(operation)
    return used


def _spec_value(spec: Any, dotted: str) -> Any:
    node = spec
    for part in dotted.split("."):
        node = getattr(node, part, None)
        if node is None:
            return None
    return node


def record_count(project: Project, options: ScenariosOptions) -> int:
    """N: ``--records``, else the spec's records_synced times the scale (``HARNESS_SCALE``)."""
    if options.records is not None:
        return options.records
    scale = options.scale
    if scale is None:
        raw = os.environ.get(SCALE_ENV)
        try:
            scale = float(raw) if raw else 1.0
        except ValueError:
            raise InputError(
                [Problem(SCALE_ENV, None, "", f"must be a number, got {raw!r}")]
            ) from None
        if scale <= 0:
            raise InputError([Problem(SCALE_ENV, None, "", f"must be > 0, got {raw!r}")])
    launch = project.spec.spec.launch
    criteria = launch.success_criteria if launch is not None else None
    base = (
        criteria.records_synced
        if criteria is not None and criteria.records_synced
        else DEFAULT_RECORDS
    )
    return max(1, round(base * scale))


def integration(project: Project, options: ScenariosOptions) -> Integration:
    """The integration's argv, folder, time limit and extra environment, checked."""
    loaded = project.spec
    iut = loaded.spec.integration_under_test
    cwd = (
        loaded.resolve(iut.working_dir) if iut is not None and iut.working_dir else loaded.base_dir
    )
    timeout = iut.timeout_seconds if iut is not None else 120.0
    where: Problem
    if options.integration is not None:
        try:
            argv = command_argv(options.integration)
        except ValueError as error:
            raise InputError(
                [Problem("--integration", None, "", f"cannot parse the command: {error}")]
            ) from None
        if not argv:
            raise InputError([Problem("--integration", None, "", "the command is empty")])
        where = Problem("--integration", None, "", "")
        display = options.integration
    elif iut is None or (iut.command is None and iut.callable is None):
        raise InputError(
            [
                loaded.source.problem(
                    ["integration_under_test"] if iut else [],
                    'no integration_under_test to run (or give --integration "COMMAND")',
                )
            ]
        )
    elif iut.command is not None:
        argv = command_argv(iut.command)
        where = loaded.source.problem(["integration_under_test", "command"], "")
        display = iut.command if isinstance(iut.command, str) else shlex.join(iut.command)
    else:
        assert iut.callable is not None
        argv = callable_argv(iut.callable)
        where = loaded.source.problem(["integration_under_test", "callable"], "")
        display = iut.callable
    if find_executable(argv[0], cwd, os.environ.get("PATH")) is None:
        raise InputError(
            [replace(where, message=f"command not found: {argv[0]!r} (looked in PATH and {cwd})")]
        )
    env: dict[str, str] = {}
    problems: list[Problem] = []
    for name, value in ((iut.env or {}) if iut is not None else {}).items():
        var = env_name(value)
        if var is None:
            env[name] = value
        elif os.environ.get(var):
            env[name] = os.environ[var]
        else:
            problems.append(
                loaded.source.problem(
                    ["integration_under_test", "env", name],
                    f"${{{var}}} is not set in the environment",
                )
            )
    if problems:
        raise InputError(problems)
    return Integration(argv, cwd, timeout, env, display)


# --- running --------------------------------------------------------------------------------


def list_scenarios(
    project: Project, options: ScenariosOptions
) -> list[tuple[Scenario, str | None]]:
    """Every available scenario with the reason it would be skipped for this spec (None: runs)."""
    out = []
    for scenario in discover(project, options):
        prepared = prepare(project, scenario)
        out.append((scenario, prepared.skip))
    return out
