"""Load scenario files: the built-in ones shipped in the package and the user's own.

Scenario files are validated by ``harness/schemas/scenario.schema.json``, whose ``faults``
section *is* the fault-plan schema (a ``$ref`` resolved through a local registry, so the two
cannot drift). Every problem in every file is reported at once, ``FILE:LINE: path: message``,
as for specs and fault plans.

Where scenarios come from, in order: the built-ins (``harness/scenarios/builtin/*.yaml``), then
a ``scenarios/`` folder next to the spec, then each ``--scenarios DIR``. A user scenario with a
built-in's name replaces it (that is how a team tunes a built-in); two user files with the same
name are an error.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from harness.problems import InputError, PathPart, Problem
from harness.provider.faults import fault_plan_schema, parse_fault_plan
from harness.scenarios.model import (
    CATEGORY_ORDER,
    CHECK_NAMES,
    PLACEHOLDERS,
    Expectation,
    Scenario,
    Setup,
)
from harness.schema_errors import describe, located_problems
from harness.spec.schema import spec_schema
from harness.yamlsource import SourceMap, load_file, parse_text

SCENARIO_SUFFIXES = (".yaml", ".yml")


@cache
def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file, as shipped in the package."""
    text = resources.files("harness").joinpath("schemas/scenario.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft202012Validator:
    plan = fault_plan_schema()
    registry: Registry[Any] = Registry().with_resource(plan["$id"], Resource.from_contents(plan))
    return Draft202012Validator(scenario_schema(), registry=registry)


def _choice_noun(path: list[PathPart]) -> str | None:
    """Fault rules choose exactly one action and at most one condition (as in fault plans)."""
    if path and path[-1] == "action":
        return "action"
    if path and path[-1] == "when":
        return "condition"
    return None


def parse_scenario(
    data: Any, source: SourceMap, *, path: Path | None = None, builtin: bool = False
) -> Scenario:
    """Validate parsed scenario data and build the model; ``InputError`` lists every problem."""
    if not isinstance(data, dict):
        got = "an empty document" if data is None else describe(data)
        raise InputError([source.problem([], f"expected a scenario mapping, got {got}")])
    problems = located_problems(_validator().iter_errors(data), source, choice_noun=_choice_noun)
    if problems:
        raise InputError(problems)
    problems = _consistency_problems(data, source)
    if problems:
        raise InputError(problems)
    raw_setup = data.get("setup", {})
    setup = Setup(
        records=raw_setup.get("records", 120),
        token_ttl_seconds=_float_or_none(raw_setup.get("token_ttl_seconds")),
        credentials=raw_setup.get("credentials", "valid"),
        timeout_seconds=_float_or_none(raw_setup.get("timeout_seconds")),
    )
    expect: list[Expectation] = []
    for index, item in enumerate(data["expect"]):
        ((check, params),) = item.items()
        if check == "outcome" and isinstance(params, str):
            params = {"expect": params}
        expect.append(
            Expectation(
                check,
                dict(params) if isinstance(params, dict) else {},
                source.line_of(["expect", index]),
            )
        )
    return Scenario(
        name=data["name"],
        title=data["title"],
        category=data["category"],
        description=" ".join(str(data.get("description", "")).split()),
        requires=tuple(data.get("requires", ())),
        setup=setup,
        faults=data.get("faults"),
        expect=tuple(sorted(expect, key=lambda e: CHECK_NAMES.index(e.check))),
        path=path,
        builtin=builtin,
        source=source,
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _consistency_problems(data: dict[str, Any], source: SourceMap) -> list[Problem]:
    """What the schema cannot say: spec paths that exist, known placeholders, one check each,
    and the fault plan's own consistency rules (located in this file, under ``faults``)."""
    problems: list[Problem] = []
    for index, requirement in enumerate(data.get("requires", ())):
        if not _spec_path_exists(requirement):
            problems.append(
                source.problem(["requires", index], f"'{requirement}' is not a spec path")
            )
    seen: dict[str, int] = {}
    for index, item in enumerate(data["expect"]):
        (check,) = item
        if check in seen:
            problems.append(
                source.problem(
                    ["expect", index, check],
                    f"'{check}' is already expected (expect[{seen[check]}])",
                )
            )
        seen.setdefault(check, index)
        params = item[check]
        operation = params.get("operation") if isinstance(params, dict) else None
        if isinstance(operation, str):
            problems.extend(
                _placeholder_problems(operation, source, ["expect", index, check, "operation"])
            )
    faults = data.get("faults")
    if isinstance(faults, dict):
        for index, rule in enumerate(faults.get("rules", [])):
            operations = rule.get("match", {}).get("operation")
            listed = [operations] if isinstance(operations, str) else list(operations or [])
            for position, operation in enumerate(listed):
                where: list[PathPart] = ["faults", "rules", index, "match", "operation"]
                if not isinstance(operations, str):
                    where.append(position)
                problems.extend(_placeholder_problems(operation, source, where))
        problems.extend(_fault_plan_problems(faults, source))
    return problems


def _placeholder_problems(
    operation: str, source: SourceMap, where: list[PathPart]
) -> list[Problem]:
    if not operation.startswith("$") or operation in PLACEHOLDERS:
        return []
    hint = difflib.get_close_matches(operation, list(PLACEHOLDERS), n=1, cutoff=0.5)
    message = f"unknown placeholder '{operation}'"
    message += f" (did you mean '{hint[0]}'?)" if hint else f"; known: {', '.join(PLACEHOLDERS)}"
    return [source.problem(where, message)]


def _fault_plan_problems(faults: dict[str, Any], source: SourceMap) -> list[Problem]:
    """The fault plan's consistency checks, with paths and lines of this file."""
    sub = SourceMap(
        source.file,
        {key[1:]: line for key, line in source.lines.items() if key[:1] == ("faults",)},
    )
    try:
        parse_fault_plan(faults, sub)
    except InputError as error:
        return [
            Problem(p.file, p.line, f"faults.{p.path}" if p.path else "faults", p.message)
            for p in error.problems
        ]
    return []


def _spec_path_exists(dotted: str) -> bool:
    """Whether ``a.b.c`` names a property in the spec's JSON Schema (through ``$ref``s)."""
    schema = spec_schema()
    defs = schema["$defs"]
    node: dict[str, Any] = schema
    for part in dotted.split("."):
        while "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        properties = node.get("properties", {})
        if part not in properties:
            return False
        node = properties[part]
    return True


def load_scenario_file(
    path: Path, *, builtin: bool = False, display: str | None = None
) -> Scenario:
    """Load and validate one scenario file; ``InputError`` lists every problem in it."""
    document = load_file(path, display)
    return parse_scenario(document.data, document.source, path=path, builtin=builtin)


def builtin_scenarios() -> list[Scenario]:
    """The scenarios shipped in the package, by name."""
    folder = resources.files("harness.scenarios").joinpath("builtin")
    found: list[Scenario] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(SCENARIO_SUFFIXES):
            continue
        display = f"harness/scenarios/builtin/{entry.name}"
        document = parse_text(entry.read_text(encoding="utf-8"), display)
        found.append(parse_scenario(document.data, document.source, builtin=True))
    return found


def scenario_files(folder: Path) -> list[Path]:
    """The scenario files of a folder (``*.yaml``/``*.yml``, not recursive), sorted."""
    return sorted(p for p in folder.iterdir() if p.suffix in SCENARIO_SUFFIXES and p.is_file())


def load_scenarios(folders: Iterable[Path], *, include_builtin: bool = True) -> list[Scenario]:
    """Built-ins plus every scenario file in ``folders``; every problem of every file at once."""
    problems: list[Problem] = []
    by_name: dict[str, Scenario] = {}
    if include_builtin:
        for scenario in builtin_scenarios():
            by_name[scenario.name] = scenario
    user_origin: dict[str, str] = {}
    for folder in folders:
        if not folder.is_dir():
            problems.append(Problem(str(folder), None, "", "scenario folder not found"))
            continue
        for path in scenario_files(folder):
            try:
                scenario = load_scenario_file(path, display=_display(path))
            except InputError as error:
                problems.extend(error.problems)
                continue
            if scenario.name in user_origin:
                assert scenario.source is not None
                problems.append(
                    scenario.source.problem(
                        ["name"],
                        f"scenario '{scenario.name}' is also defined in {user_origin[scenario.name]}",
                    )
                )
                continue
            user_origin[scenario.name] = _display(path)
            by_name[scenario.name] = scenario
    if problems:
        raise InputError(problems)
    return sorted(by_name.values(), key=lambda s: (CATEGORY_ORDER.index(s.category), s.name))


def select(scenarios: Sequence[Scenario], only: Sequence[str]) -> list[Scenario]:
    """The scenarios named in ``only`` (all when empty); unknown names are an ``InputError``."""
    if not only:
        return list(scenarios)
    names = [s.name for s in scenarios]
    problems: list[Problem] = []
    for name in only:
        if name not in names:
            hint = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
            suffix = f" (did you mean '{hint[0]}'?)" if hint else " (see --list)"
            problems.append(Problem("--only", None, "", f"no scenario named '{name}'{suffix}"))
    if problems:
        raise InputError(problems)
    return [s for s in scenarios if s.name in only]


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
