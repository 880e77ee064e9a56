"""jsonschema errors reworded for people, and located to the line.

Every file the harness reads that has a JSON Schema (the integration spec, fault plans) reports
its problems through here, so they all speak alike: keys named as users write them, "did you
mean" for unknown keys, one line per problem, and never a value that sits where a credential
belongs (schemas mark such fields ``x-secret``; ``x-hint`` words a pattern or alternative).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jsonschema.exceptions import ValidationError

from harness.problems import PathPart, Problem, format_path
from harness.yamlsource import SourceMap

_JSON_TYPES: dict[type, str] = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "empty (null)",
}
_BOUNDS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
SECRET_MESSAGE = (
    "credentials must be environment references such as ${MY_API_SECRET}; "
    "a literal value is not allowed here (value not shown)"
)

# How an "exactly one of these keys" rule names what it chooses between ("action", "condition").
ChoiceNoun = Callable[[list[PathPart]], str | None]


def describe(value: Any) -> str:
    """What a YAML value is, in words (``a mapping``, ``an integer``)."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def located_problems(
    errors: Iterable[ValidationError],
    source: SourceMap,
    *,
    type_names: Mapping[str, str] | None = None,
    choice_noun: ChoiceNoun | None = None,
) -> list[Problem]:
    """Every error as located problems, without duplicates, in file order."""
    problems: set[Problem] = set()
    for error in errors:
        problems.update(explain(error, source, type_names=type_names, choice_noun=choice_noun))
    return sorted(problems, key=lambda p: (p.line or 0, p.path, p.message))


def explain(
    error: ValidationError,
    source: SourceMap,
    *,
    type_names: Mapping[str, str] | None = None,
    choice_noun: ChoiceNoun | None = None,
) -> Iterator[Problem]:
    """One error as one or more problems (an unknown-keys error names each key)."""
    path: list[PathPart] = list(error.absolute_path)
    # jsonschema types these as possibly "Unset"; errors from iter_errors always have them.
    kind = str(error.validator)
    value: Any = error.validator_value
    instance: Any = error.instance
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}

    if kind == "additionalProperties" and value is False and isinstance(instance, dict):
        known = sorted(schema.get("properties", {}))
        for key in sorted(set(instance) - set(known)):
            hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            message = f"unknown key '{key}'"
            message += f" (did you mean '{hint[0]}'?)" if hint else f"; allowed: {', '.join(known)}"
            yield source.problem([*path, key], message)
        return
    if kind == "required" and isinstance(instance, dict):
        for key in value:
            if key not in instance:
                # The key has no line of its own: locate it at its parent mapping.
                yield Problem(
                    source.file,
                    source.line_of(path),
                    format_path([*path, key]),
                    "required but missing",
                )
        return
    if kind == "dependentRequired" and isinstance(instance, dict):
        for key, needs in value.items():
            if key in instance and any(need not in instance for need in needs):
                yield source.problem([*path, key], f"only allowed together with {', '.join(needs)}")
        return
    if kind in ("anyOf", "oneOf") and all(
        isinstance(s, dict) and set(s) <= {"required", "not"} for s in value
    ):
        if not isinstance(instance, dict):
            return  # not a mapping at all: the "type" error says so
        options = [s["required"][0] for s in value]
        how = "exactly one" if kind == "oneOf" else "at least one"
        noun = choice_noun(path) if choice_noun is not None else None
        present = [key for key in options if key in instance]
        if noun and kind == "oneOf" and len(present) > 1:
            yield source.problem(
                path, f"give exactly one {noun}, not {len(present)}: {', '.join(present)}"
            )
        else:
            yield source.problem(
                path, f"give {how}{f' {noun}' if noun else ''} of: {', '.join(options)}"
            )
        return
    if kind in ("anyOf", "oneOf"):
        deeper = [e for e in error.context or () if len(e.absolute_path) > len(path)]
        if deeper:
            # Report the branch that got furthest, as jsonschema's best_match would.
            deepest = max(deeper, key=lambda e: len(e.absolute_path))
            yield from explain(deepest, source, type_names=type_names, choice_noun=choice_noun)
        else:
            yield source.problem(path, str(schema.get("x-hint", error.message)))
        return
    yield source.problem(path, wording(error, kind, value, instance, schema, type_names))


def wording(
    error: ValidationError,
    kind: str,
    value: Any,
    instance: Any,
    schema: dict[str, Any],
    type_names: Mapping[str, str] | None = None,
) -> str:
    """The one-line wording of a single-keyword error."""
    secret = bool(schema.get("x-secret"))
    if secret and kind in ("pattern", "type", "minLength"):
        return SECRET_MESSAGE
    shown = "" if secret else f" (got {json.dumps(instance)})"
    if kind == "type":
        names = [value] if isinstance(value, str) else list(value)
        expected = " or ".join((type_names or {}).get(n, n) for n in names)
        return f"expected {expected}, got {describe(instance)}"
    if kind == "enum":
        return f"must be one of: {', '.join(map(str, value))}{shown}"
    if kind == "const":
        return f"must be {json.dumps(value)}{shown}"
    if kind in _BOUNDS:
        return f"must be {_BOUNDS[kind]} {value}{shown}"
    if kind == "minLength":
        return "must not be empty"
    if kind == "minItems":
        return f"needs at least {value} item{'s' if value != 1 else ''}"
    if kind == "minProperties":
        return f"needs at least {value} key{'s' if value != 1 else ''}"
    if kind == "maxProperties":
        return f"give at most {value} key{'s' if value != 1 else ''}"
    if kind == "uniqueItems":
        return f"items must be unique{shown}"
    if kind == "format":
        return f"not a valid {value}{shown}"
    if kind == "pattern" and "x-hint" in schema:
        return f"{schema['x-hint']}{shown}"
    if kind == "pattern":
        return f"does not match the expected form {value}{shown}"
    return error.message if not secret else f"invalid value ({kind}; value not shown)"
