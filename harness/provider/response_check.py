"""Does a real provider's response match its OpenAPI document? The fault proxy's evidence.

The simulator's answers conform by construction; a real provider's do not have to. The proxy
checks each response it forwards - is the status documented for the operation, is the content
type one the document lists for it, does the body match the schema, are required headers there -
and logs what it finds in the traffic record's ``validation_errors``. It never changes the
response: the integration must see exactly what the provider sent, and the stages judge later.

Everything per operation and status is looked up once and cached; the per-response work is a
header scan, ``parse_json`` (orjson) and a jsonschema_rs check. Wording (``jsonschema``, slower) happens
only for a body that fails.

The verdict on a body is cached too, keyed by the schema, the content encoding and the body's
bytes (``_VERDICTS`` entries, bodies up to ``_VERDICT_BODY_LIMIT`` bytes): the same bytes against
the same schema always get the same verdict, and the proxy's budget is a fraction of a
millisecond. A provider that repeats itself (a reference-data endpoint, a health check, the same
broken body over and over) then costs a dictionary lookup instead of a parse, a validation and,
for a failing body, a ``jsonschema`` wording each time. Bodies that differ every time (ids,
timestamps) miss the cache and pay the full check, as before.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Final

from harness.openapi.document import OpenAPIDocument
from harness.openapi.operations import (
    CompiledOperation,
    CompiledSchema,
    documented_response,
    parse_json,
)
from harness.provider.messages import Headers

__all__ = ["ResponseChecker"]

_VERDICTS: Final = 512
"""Body verdicts a checker keeps (oldest dropped first)."""
_VERDICT_BODY_LIMIT: Final = 16 * 1024
"""Bodies larger than this are checked every time, never kept (bounds the cache's memory)."""


@dataclass(frozen=True)
class _Documented:
    """One documented response of an operation, prepared for cheap checks of many responses.

    ``key`` as written (``200``, ``2XX``, ``default``); ``media_types`` as written, for messages;
    ``exact`` and ``prefixes`` the same types lower-cased for matching (``image/*`` -> prefix
    ``image/``, ``*/*`` -> prefix ``''``); ``required`` (lower-cased, as written) header names;
    ``schema`` the body schema when the documented type is JSON.
    """

    key: str
    media_types: tuple[str, ...]
    exact: frozenset[str]
    prefixes: tuple[str, ...]
    required: tuple[tuple[str, str], ...]
    schema: CompiledSchema | None


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _bare(media: str) -> str:
    """``Application/JSON; charset=utf-8`` -> ``application/json``."""
    return media.partition(";")[0].strip().lower()


class ResponseChecker:
    """Checks responses of one document's operations; cached, so keep one per engine."""

    def __init__(self, document: OpenAPIDocument) -> None:
        self.document = document
        self._cache: dict[tuple[str, int], _Documented | None] = {}
        self._verdicts: dict[tuple[int, str | None, bytes], tuple[str, ...]] = {}

    def check(
        self,
        op: CompiledOperation,
        status: int,
        headers: Headers,
        body: bytes,
        *,
        head_only: bool = False,
    ) -> tuple[str, ...]:
        """Every way the response breaks the document, worded for the traffic log (``()``: none)."""
        key = (op.operation_id, status)
        documented = self._cache.get(key, _MISSING)
        if documented is _MISSING:
            documented = self._cache[key] = self._documented(op, status)
        if documented is None:
            return (f"response status {status} is not documented for {op.operation_id}",)
        assert isinstance(documented, _Documented)
        content_type = encoding = None
        for name, value in headers:
            lname = name.lower()
            if lname == "content-type":
                content_type = value
            elif lname == "content-encoding":
                encoding = value
        problems: list[str] = []
        if documented.required:
            names = {name.lower() for name, _ in headers}
            problems.extend(
                f"response header {name} is required but missing"
                for lname, name in documented.required
                if lname not in names
            )
        if head_only or status in (204, 304):
            return tuple(problems)
        where = f"{op.operation_id} {documented.key}"
        types = documented.media_types
        media = _bare(content_type) if content_type else ""
        if not types:
            if body:
                problems.append(
                    f"response has a {media or 'untyped'} body but {where} documents none"
                )
        elif not body:
            problems.append(f"response has no body; {where} documents {', '.join(types)}")
        elif not media:
            problems.append(f"response has no Content-Type; {where} documents {', '.join(types)}")
        elif media not in documented.exact and not any(
            media.startswith(prefix) for prefix in documented.prefixes
        ):
            problems.append(
                f"response content type {media} is not documented for {where}"
                f" (documented: {', '.join(types)})"
            )
        elif documented.schema is not None and _is_json(media):
            problems.extend(self._body_verdict(documented.schema, body, encoding))
        return tuple(problems) if problems else ()

    def _body_verdict(
        self, schema: CompiledSchema, body: bytes, encoding: str | None
    ) -> tuple[str, ...]:
        """``_body_problems``, remembered for bodies seen before (see the module docstring)."""
        if len(body) > _VERDICT_BODY_LIMIT:
            return tuple(_body_problems(schema, body, encoding))
        # id(): the schema lives as long as this checker's ``_cache`` that holds it.
        key = (id(schema), encoding, body)
        verdicts = self._verdicts
        verdict = verdicts.get(key)
        if verdict is None:
            verdict = tuple(_body_problems(schema, body, encoding))
            if len(verdicts) >= _VERDICTS:
                del verdicts[next(iter(verdicts))]
            verdicts[key] = verdict
        return verdict

    def _documented(self, op: CompiledOperation, status: int) -> _Documented | None:
        """The documented response that covers ``status``: exact code, then ``2XX``, then default."""
        documented = documented_response(self.document, op, status)
        if documented is None:
            return None
        key, types, spec = documented.key, documented.media_types, documented.spec
        bare = [_bare(t) for t in types]
        prefixes = tuple("" if t == "*/*" else t[:-1] for t in bare if t.endswith("/*"))
        required = tuple((n.lower(), n) for n in spec.required_headers) if spec else ()
        # The compiled schema belongs to the first JSON type documented: check JSON bodies only.
        json_spec = spec is not None and _is_json(_bare(spec.media_type or "application/json"))
        schema = spec.body if spec is not None and json_spec else None
        return _Documented(key, types, frozenset(bare), prefixes, required, schema)


_MISSING: Any = object()


def _body_problems(schema: CompiledSchema, body: bytes, encoding: str | None) -> list[str]:
    encoding = encoding.strip().lower() if encoding else None
    if encoding and encoding != "identity":
        try:
            if encoding in ("gzip", "x-gzip"):
                body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            else:
                return []  # an encoding we cannot undo (br, zstd): no verdict on the body
        except zlib.error as error:
            return [f"response body does not decode as {encoding}: {error}"]
    try:
        value = parse_json(body)
    except ValueError as error:  # UnicodeDecodeError is one too
        return [f"response body is not valid JSON: {error}"]
    if schema.is_valid(value):
        return []
    return [f"response body {path}: {message}" for path, message in schema.messages(value)]
