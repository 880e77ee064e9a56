"""Provider and destination OpenAPI documents: loading, validation, ``$ref`` resolution, operations.

Swagger 2.0, OpenAPI 3.0 and 3.1 are read from a local file or an http(s) URL. The document is
validated by openapi-spec-validator (its problems located to the line, like spec problems) and
kept as plain data; ``$ref`` is followed lazily, so recursive schemas cost nothing until used.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from openapi_spec_validator import (
    OpenAPIV2SpecValidator,
    OpenAPIV30SpecValidator,
    OpenAPIV31SpecValidator,
)

from harness.problems import InputError, PathPart, Problem
from harness.yamlsource import LoadedDocument, SourceMap, load_file, parse_text

Version = Literal["2.0", "3.0", "3.1"]
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_FETCH_TIMEOUT_SECONDS = 15.0
_MAX_VALIDATION_PROBLEMS = 50


@dataclass(frozen=True)
class Operation:
    """One operation of a document, with its definition still as written (refs unresolved)."""

    operation_id: str
    method: str
    path: str
    definition: Mapping[str, Any]
    path_item: Mapping[str, Any]

    @property
    def pointer(self) -> tuple[str, ...]:
        return ("paths", self.path, self.method)


@dataclass(frozen=True)
class Ref:
    """A node reached through ``$ref``, with the document it lives in (refs inside resolve there)."""

    node: Any
    uri: str


@dataclass
class OpenAPIDocument:
    """A loaded, valid OpenAPI document. Mutable only in its private cache of external files."""

    uri: str
    display: str
    data: dict[str, Any]
    source: SourceMap
    version: Version
    _external: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def title(self) -> str:
        return str(self.data.get("info", {}).get("title", self.display))

    @property
    def operations(self) -> dict[str, Operation]:
        """Operations by operationId; operations without one get ``METHOD /path`` as their id."""
        found: dict[str, Operation] = {}
        for path, item in (self.data.get("paths") or {}).items():
            if not isinstance(item, dict):
                continue
            item = self.deref(item).node
            for method in HTTP_METHODS:
                definition = item.get(method)
                if isinstance(definition, dict):
                    op_id = definition.get("operationId") or f"{method.upper()} {path}"
                    found[str(op_id)] = Operation(str(op_id), method, path, definition, item)
        return found

    def deref(self, node: Any, uri: str | None = None) -> Ref:
        """Follow ``$ref`` until a node that is not a reference (cycles raise ``InputError``)."""
        base = uri or self.uri
        seen: set[str] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            target = urljoin(base, node["$ref"])
            if target in seen:
                raise InputError([Problem(self.display, None, "", f"$ref cycle at {node['$ref']}")])
            seen.add(target)
            node, base = self._lookup(target), target.split("#", 1)[0]
        return Ref(node, base)

    def _lookup(self, target: str) -> Any:
        doc_uri, _, fragment = target.partition("#")
        if doc_uri in ("", self.uri):
            root: Any = self.data
        else:
            if doc_uri not in self._external:
                self._external[doc_uri] = _read(doc_uri, doc_uri).data
            root = self._external[doc_uri]
        node = root
        for token in [t for t in fragment.split("/") if t]:
            key = unquote(token).replace("~1", "/").replace("~0", "~")
            if isinstance(node, list) and key.isdigit():
                node = node[int(key)]
            elif isinstance(node, dict) and key in node:
                node = node[key]
            else:
                raise InputError([Problem(self.display, None, "", f"unresolvable $ref '{target}'")])
        return node

    def success_responses(self, op: Operation) -> Iterator[tuple[str, Ref]]:
        """(status, response object) for each documented 2xx response, in document order."""
        responses = self.deref(op.definition.get("responses") or {}).node
        for status, response in responses.items():
            if str(status).startswith("2"):
                yield str(status), self.deref(response)

    def response_body_schema(self, op: Operation) -> Ref | None:
        """The JSON body schema of the first 2xx response that has one."""
        for _status, response in self.success_responses(op):
            schema = self._body_schema(response.node, response.uri, in_response=True)
            if schema is not None:
                return schema
        return None

    def request_body_schema(self, op: Operation) -> Ref | None:
        """The JSON schema of the request body (``requestBody``, or a Swagger 2.0 body parameter)."""
        if self.version == "2.0":
            for param in self.parameters(op):
                if param.node.get("in") == "body" and "schema" in param.node:
                    return self.deref(param.node["schema"], param.uri)
            return None
        body = op.definition.get("requestBody")
        if body is None:
            return None
        ref = self.deref(body)
        return self._body_schema(ref.node, ref.uri, in_response=False)

    def parameters(self, op: Operation) -> list[Ref]:
        """Path-level and operation-level parameters, the operation's overriding by (name, in)."""
        merged: dict[tuple[str, str], Ref] = {}
        for param in [
            *(op.path_item.get("parameters") or []),
            *(op.definition.get("parameters") or []),
        ]:
            ref = self.deref(param)
            merged[(str(ref.node.get("name")), str(ref.node.get("in")))] = ref
        return list(merged.values())

    def _body_schema(self, holder: Mapping[str, Any], uri: str, *, in_response: bool) -> Ref | None:
        if self.version == "2.0":
            return self.deref(holder["schema"], uri) if in_response and "schema" in holder else None
        content = holder.get("content") or {}
        for media_type, media in content.items():
            if _is_json(media_type) and isinstance(media, dict) and "schema" in media:
                return self.deref(media["schema"], uri)
        return None


def _is_json(media_type: str) -> bool:
    base = media_type.split(";", 1)[0].strip().lower()
    return base == "application/json" or base.endswith("+json") or base == "*/*"


def _read(location: str, display: str) -> LoadedDocument:
    parts = urlsplit(location)
    if parts.scheme in ("http", "https"):
        try:
            response = httpx.get(location, timeout=_FETCH_TIMEOUT_SECONDS, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            reason = f"HTTP {exc.response.status_code} {exc.response.reason_phrase}".strip()
            raise InputError(
                [Problem(display, None, "", f"cannot fetch OpenAPI document: {reason}")]
            ) from None
        except httpx.HTTPError as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise InputError(
                [Problem(display, None, "", f"cannot fetch OpenAPI document: {reason}")]
            ) from None
        return parse_text(response.text, display)
    path = Path(unquote(parts.path)) if parts.scheme == "file" else Path(location)
    return load_file(path, display)


def _detect_version(data: Any, display: str) -> Version:
    if not isinstance(data, dict):
        raise InputError(
            [Problem(display, 1, "", "not an OpenAPI document: expected a mapping at the top")]
        )
    swagger, openapi = data.get("swagger"), data.get("openapi")
    if swagger is not None:
        if str(swagger) == "2.0":
            return "2.0"
        raise InputError(
            [Problem(display, 1, "swagger", f"unsupported Swagger version {swagger!r} (2.0 is)")]
        )
    if openapi is None:
        raise InputError(
            [Problem(display, 1, "", "not an OpenAPI document: no 'openapi' or 'swagger' key")]
        )
    text = str(openapi)
    if text.startswith("3.0"):
        return "3.0"
    if text.startswith("3.1"):
        return "3.1"
    raise InputError(
        [
            Problem(
                display,
                1,
                "openapi",
                f"unsupported OpenAPI version {text!r} (2.0, 3.0 and 3.1 are)",
            )
        ]
    )


_VALIDATORS = {
    "2.0": OpenAPIV2SpecValidator,
    "3.0": OpenAPIV30SpecValidator,
    "3.1": OpenAPIV31SpecValidator,
}


def _path_in_data(data: Any, raw_path: list[Any]) -> list[PathPart]:
    """The validator reports mapping keys like ``200`` as ints; our source map keys are strings."""
    out: list[PathPart] = []
    node = data
    for part in raw_path:
        if isinstance(node, list) and isinstance(part, int):
            out.append(part)
            node = node[part] if part < len(node) else None
        else:
            key = str(part)
            out.append(key)
            node = node.get(key) if isinstance(node, dict) else None
    return out


def validation_problems(document: LoadedDocument, version: Version, uri: str) -> list[Problem]:
    """Every violation of the OpenAPI specification itself, located to the line."""
    validator = _VALIDATORS[version](document.data, base_uri=uri)
    problems: list[Problem] = []
    try:
        for error in validator.iter_errors():
            message = str(error.message).splitlines()[0]
            path = _path_in_data(document.data, list(error.absolute_path))
            problems.append(document.source.problem(path, message))
            if len(problems) >= _MAX_VALIDATION_PROBLEMS:
                break
    except Exception as exc:
        problems.append(Problem(document.source.file, None, "", f"cannot validate document: {exc}"))
    return problems


def load_document(
    location: str, base_dir: Path | None = None, display: str | None = None
) -> OpenAPIDocument:
    """Load and validate an OpenAPI document; ``InputError`` lists everything wrong with it."""
    parts = urlsplit(location)
    if parts.scheme in ("http", "https"):
        uri, shown = location, display or location
    else:
        path = Path(location)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        uri, shown = path.resolve().as_uri(), display or str(path)
    document = _read(
        uri if parts.scheme in ("http", "https") else str(Path(urlsplit(uri).path)), shown
    )
    version = _detect_version(document.data, shown)
    problems = validation_problems(document, version, uri)
    if problems:
        raise InputError(problems)
    return OpenAPIDocument(
        uri=uri, display=shown, data=document.data, source=document.source, version=version
    )
