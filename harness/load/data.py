"""Request variants for a load mix, generated from the operation's request schemas.

Generated here, in the harness (where the OpenAPI tooling lives), and handed to Locust as data:
Locust's processes then only pick a variant and send it, which keeps the per-request cost of a
load run on the wire rather than in schema walking. Every variant is checked against the
operation with the same validator the simulator uses, so the load tests the provider, not the
generator: a run against the simulator sees no 400s unless the provider is wrong.

Path parameters keep the document's first value (the example, default or minimum: an id the
simulator's seeded store has); query, header and body values vary by seed. ``parameters`` in
``load.operations`` fixes any of them, e.g. ids that exist on a live sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from harness.openapi.generate import GenerationError
from harness.openapi.operations import CompiledOperation, Parameter

VARIANTS = 16
_SKIPPED_HEADERS = frozenset({"authorization", "content-type", "accept", "content-length", "host"})


@dataclass(frozen=True)
class PlannedRequest:
    """One concrete request: path and query (relative to the base URL), body, headers."""

    url: str
    body: str | None = None
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class RequestDataError(Exception):
    """No valid request could be generated; the message says why, for the located problem."""


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _value(param: Parameter, variant: int, seed: int) -> Any:
    if param.schema is None:
        return "1"
    generator = param.schema.generator
    if param.location == "path" or variant == 0:
        return generator.static()
    return generator.varied(seed * 1000 + variant)


def _media(compiled: CompiledOperation) -> str | None:
    media = list(compiled.bodies)
    for candidate in media:
        if candidate == "application/json" or candidate.endswith("+json"):
            return candidate
    if "application/x-www-form-urlencoded" in media:
        return "application/x-www-form-urlencoded"
    return None


def _variant(
    compiled: CompiledOperation, fixed: Mapping[str, Any], variant: int, seed: int
) -> PlannedRequest:
    path = compiled.path
    path_values: dict[str, str] = {}
    query: list[tuple[str, str]] = []
    headers: dict[str, str] = {}
    for param in compiled.parameters:
        if param.location == "cookie" or (
            param.location == "header" and param.name.lower() in _SKIPPED_HEADERS
        ):
            continue
        if param.name in fixed:
            value = fixed[param.name]
        elif param.location == "path" or param.required or variant % 2 == 1:
            value = _value(param, variant, seed)
        else:
            continue
        if param.location == "path":
            path_values[param.name] = _text(value)
        elif param.location == "query":
            if isinstance(value, list) and param.explode:
                query.extend((param.name, _text(v)) for v in value)
            elif isinstance(value, list):
                query.append((param.name, ",".join(_text(v) for v in value)))
            else:
                query.append((param.name, _text(value)))
        else:
            headers[param.name] = _text(value)
    for name, value in path_values.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    body: str | None = None
    content_type: str | None = None
    media = _media(compiled)
    if compiled.bodies and (compiled.body_required or variant % 2 == 1):
        if media is None:
            raise RequestDataError(
                f"request bodies of type {', '.join(compiled.bodies)} are not generated"
            )
        schema = compiled.bodies[media]
        data: Any = {}
        if schema is not None:
            data = (
                schema.generator.static()
                if variant == 0
                else schema.generator.varied(seed * 1000 + variant)
            )
        if media == "application/x-www-form-urlencoded":
            if not isinstance(data, dict):
                raise RequestDataError("a form body must be an object")
            body = urlencode({k: _text(v) for k, v in data.items()})
        else:
            body = json.dumps(data, separators=(",", ":"))
        content_type = media
    qs = urlencode(query)
    violations, _ = compiled.validate(
        path_values,
        qs,
        {k.lower(): v for k, v in headers.items()},
        (body or "").encode(),
        content_type,
    )
    if violations:
        raise RequestDataError("; ".join(str(v) for v in violations[:3]))
    return PlannedRequest(
        url=path + (f"?{qs}" if qs else ""),
        body=body,
        content_type=content_type,
        headers=headers,
    )


def generate_requests(
    compiled: CompiledOperation,
    fixed: Mapping[str, Any] | None,
    seed: int,
    count: int = VARIANTS,
) -> tuple[PlannedRequest, ...]:
    """Up to ``count`` distinct valid requests; ``RequestDataError`` when none is valid."""
    fixed = dict(fixed or {})
    known = {p.name for p in compiled.parameters}
    unknown = sorted(set(fixed) - known)
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise RequestDataError(
            f"{', '.join(unknown)}: not a parameter of {compiled.operation_id} (parameters: {listed})"
        )
    out: list[PlannedRequest] = []
    seen: set[tuple[str, str | None, tuple[tuple[str, str], ...]]] = set()
    last_error = "no request generated"
    for variant in range(count):
        try:
            request = _variant(compiled, fixed, variant, seed)
        except (GenerationError, RequestDataError) as error:
            last_error = str(error)
            continue
        key = (request.url, request.body, tuple(sorted(request.headers.items())))
        if key not in seen:
            seen.add(key)
            out.append(request)
    if not out:
        raise RequestDataError(last_error)
    return tuple(out)
