"""Validate spec data against the shipped JSON Schema and word the errors for humans.

jsonschema finds the errors; this module only locates them (file and line via the source map)
and rewrites its messages so they name keys the way users write them, suggest the key they
probably meant, and never echo a value that sits where a credential belongs.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from harness.problems import Problem, format_path
from harness.yamlsource import SourceMap

_JSON_TYPES = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "empty (null)",
}


@cache
def spec_schema() -> dict[str, Any]:
    """The JSON Schema of ``integration.yaml``, as shipped in the package."""
    text = resources.files("harness").joinpath("schemas/integration-spec.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(spec_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_problems(data: Any, source: SourceMap) -> list[Problem]:
    """Every schema violation in ``data``, one ``Problem`` each, in file order."""
    problems: set[Problem] = set()
    for error in _validator().iter_errors(data):
        problems.update(_explain(error, source))
    return sorted(problems, key=lambda p: (p.line or 0, p.path, p.message))


def _describe(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _is_secret(error: ValidationError) -> bool:
    return isinstance(error.schema, dict) and bool(error.schema.get("x-secret"))


def _explain(error: ValidationError, source: SourceMap) -> Iterator[Problem]:
    path = list(error.absolute_path)
    # jsonschema types these as possibly "Unset"; errors from iter_errors always have them.
    kind: str = str(error.validator)
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
                # Located at the parent mapping (the key has no line of its own yet).
                yield Problem(
                    source.file,
                    source.line_of(path),
                    format_path([*path, key]),
                    "required but missing",
                )
        return
    if kind in ("anyOf", "oneOf") and all(
        isinstance(s, dict) and set(s) <= {"required", "not"} for s in value
    ):
        options = [s["required"][0] for s in value]
        how = "exactly one" if kind == "oneOf" else "at least one"
        yield source.problem(path, f"give {how} of: {', '.join(options)}")
        return
    if kind in ("anyOf", "oneOf") and error.context:
        # Report the branch that got furthest, as jsonschema's best_match would.
        deepest = max(error.context, key=lambda e: len(e.absolute_path))
        yield from _explain(deepest, source)
        return

    yield source.problem(path, _message(error, kind, value, instance))


def _message(error: ValidationError, kind: str, value: Any, instance: Any) -> str:
    secret = _is_secret(error)
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    if secret and kind in ("pattern", "type", "minLength"):
        return (
            "credentials must be environment references such as ${MY_API_SECRET}; "
            "a literal value is not allowed here (value not shown)"
        )
    shown = "" if secret else f" (got {json.dumps(instance)})"
    if kind == "type":
        expected = value if isinstance(value, str) else " or ".join(value)
        return f"expected {expected}, got {_describe(instance)}"
    if kind == "enum":
        return f"must be one of: {', '.join(map(str, value))}{shown}"
    if kind == "const":
        return f"must be {json.dumps(value)}{shown}"
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
        return f"must be {op[kind]} {value}{shown}"
    if kind == "minLength":
        return "must not be empty"
    if kind == "minItems":
        return f"needs at least {value} item{'s' if value != 1 else ''}"
    if kind == "minProperties":
        return f"needs at least {value} key{'s' if value != 1 else ''}"
    if kind == "maxProperties":
        return f"give at most {value} key{'s' if value != 1 else ''}"
    if kind == "uniqueItems":
        return "items must be unique"
    if kind == "format":
        return f"not a valid {value}{shown}"
    if kind == "pattern" and "x-hint" in schema:
        return f"{schema['x-hint']}{shown}"
    if kind == "pattern":
        return f"does not match the expected form {value}{shown}"
    return error.message if not secret else f"invalid value ({kind}; value not shown)"
