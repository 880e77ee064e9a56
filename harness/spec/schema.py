"""Validate spec data against the shipped JSON Schema and word the errors for humans.

jsonschema finds the errors; this module only locates them (file and line via the source map)
and rewrites its messages so they name keys the way users write them, suggest the key they
probably meant, and never echo a value that sits where a credential belongs.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from harness.problems import Problem
from harness.schema_errors import located_problems
from harness.yamlsource import SourceMap


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
    return located_problems(_validator().iter_errors(data), source)
