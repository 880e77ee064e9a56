"""The JSON Schema of results.json, shipped in the package, and validation against it.

results.json is the one file CI systems and other tools read, so its keys are described by a
schema (draft 2020-12) that mirrors :mod:`harness.results.model` field for field; a test keeps
the two in step. ``harness report`` validates what it reads with it before rendering.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from harness.problems import InputError, Problem
from harness.results.model import RunResult
from harness.results.serialize import from_data

RESULTS_SCHEMA_FILE = "schemas/results.schema.json"


@cache
def results_schema() -> dict[str, Any]:
    """The JSON Schema of results.json, as shipped in the package."""
    text = resources.files("harness").joinpath(RESULTS_SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(results_schema())


def results_problems(data: Any) -> list[str]:
    """Every schema violation in ``data``, one line each (``path: message``), in path order."""
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.path])
    lines = []
    for error in errors:
        where = ".".join(str(part) for part in error.absolute_path) or "(root)"
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        lines.append(f"{where}: {message}")
    return lines


def read_results(path: Path) -> RunResult:
    """Read and validate a results.json (or the results.json in folder ``path``).

    Bad input - missing, unreadable, not JSON, not matching the schema - is an
    :class:`InputError` with one problem per line, never a traceback.
    """
    if path.is_dir():
        path = path / "results.json"
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError([Problem(name, None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise InputError([Problem(name, None, "", f"cannot read: {reason}")]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError([Problem(name, error.lineno, "", f"not JSON: {error.msg}")]) from None
    problems = results_problems(data)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise InputError([Problem(name, None, "", f"not a results.json: {problems[0]}{more}")])
    return from_data(data, RunResult)
