"""The provider engine's answers conform to the documents it simulates, per an independent judge.

The engine validates and generates with its own schema converter and generator; checking its
answers with that same code would prove nothing. So this module builds every request with its
own small builder (the document's examples first, then a minimal walk of the schema), and
judges every response twice, with code that shares nothing with ``harness``:

* a JSON Schema check written here: OpenAPI 3.0 / Swagger 2.0 schemas are converted by this
  module (nullable, x-nullable, boolean exclusive bounds, readOnly/writeOnly), 3.1 schemas are
  used as they are; plus what JSON Schema cannot say: discriminator values, writeOnly
  properties in responses, documented statuses, media types and headers;
* openapi-core's response validation for 3.0 and 3.1, when openapi-core is installed (it is
  not one of the project's test dependencies: its releases pin openapi-spec-validator below the
  version the harness uses, so it is an optional second opinion, skipped where absent).

Every operation of every document under ``tests/data/openapi`` and of the bundled petstore
contracts is exercised twice: against a stateful engine (the store answers; an unknown id may
get a documented 404) and a stateless one (the generated success response). Known engine bugs
are strict xfails, so fixing one turns its test red until the marker goes.

The last tests run schemathesis (``st run``) against the simulator for one document of each
version family, as a subprocess with a fixed seed, an empty config file and bounded time.
"""

from __future__ import annotations

import base64
import binascii
import copy
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jsonschema
import pytest
import requests
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from harness.openapi.document import OpenAPIDocument, load_document
from harness.provider.api import RunningProvider, serve
from harness.provider.engine import EngineOptions
from harness.provider.faults import parse_fault_plan

try:  # optional second opinion, see the module docstring
    from jsonschema_path import SchemaPath
    from openapi_core import Config, OpenAPI
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
    from openapi_core.validation.request.validators import (
        V30RequestBodyValidator,
        V30RequestParametersValidator,
        V31RequestBodyValidator,
        V31RequestParametersValidator,
    )

    HAVE_OPENAPI_CORE = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_OPENAPI_CORE = False

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "openapi"
DOCUMENTS: list[Path] = [
    *sorted(DATA.glob("*.yaml")),
    *sorted(DATA.glob("*.json")),
    REPO / "contracts" / "petstore" / "provider.openapi.yaml",
    REPO / "contracts" / "petstore" / "destination.openapi.yaml",
]
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
REQUEST_TIMEOUT = 10.0
MODES = ("stateful", "stateless")

# How many operations each document has: a document silently losing operations (or this
# module skipping some) would otherwise go unnoticed.
EXPECTED_OPERATIONS = {
    "articles-jsonapi.yaml": 9,
    "cluster-k8s.yaml": 21,
    "code-hosting-github.yaml": 18,
    "helpdesk-swagger2.yaml": 11,
    "payments-form.yaml": 9,
    "petstore-expanded.yaml": 4,
    "petstore-swagger2.yaml": 17,
    "status-page.yaml": 3,
    "telemetry-drf.yaml": 9,
    "workspace-large.json": 122,
    "provider.openapi.yaml": 4,
    "destination.openapi.yaml": 3,
}

# Engine bugs these documents expose (each test that hits one is a strict xfail, so the fix
# shows up as an XPASS that asks for the marker to go). Fixed so far: store media types, item
# envelopes, DELETE bodies, writeOnly echoes, ids with a pattern, form coercion, Swagger
# operation-level produces, redirect/default-only operations, minProperties maps, documented
# rejections, request formats, Swagger formData validation, discriminators (both styles).

# (document file name, operationId, the modes it fails in, why).
KNOWN_BUGS: list[tuple[str, str, tuple[str, ...], str]] = []


def _known_bug(document: str, operation_id: str, mode: str) -> str | None:
    reasons = [
        reason
        for doc, op_id, modes, reason in KNOWN_BUGS
        if doc == document and op_id == operation_id and mode in modes
    ]
    return "; ".join(reasons) or None


# --- documents: loading and $ref resolution (independent of harness.openapi) ----------------


@cache
def _document(path: Path) -> OpenAPIDocument:
    """The document as ``harness validate`` loads it (must not raise: part of the contract)."""
    return load_document(str(path))


def _version(data: dict[str, Any]) -> str:
    if "swagger" in data:
        return "2.0"
    return "3.1" if str(data["openapi"]).startswith("3.1") else "3.0"


def _pointer(data: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        raise AssertionError(f"only local $refs are used in the test documents, got {ref!r}")
    node = data
    for token in [t for t in ref[1:].split("/") if t]:
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def _resolve(data: Any, node: Any) -> Any:
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        node = _pointer(data, node["$ref"])
        seen += 1
        assert seen < 50, "reference cycle"
    return node


@dataclass(frozen=True)
class Op:
    """One operation as written in the document."""

    operation_id: str
    method: str
    path: str
    definition: dict[str, Any]
    path_item: dict[str, Any]


def _operations(data: dict[str, Any]) -> list[Op]:
    out: list[Op] = []
    for path, item in (data.get("paths") or {}).items():
        item = _resolve(data, item)
        for method in HTTP_METHODS:
            if isinstance(item.get(method), dict):
                op_id = item[method].get("operationId") or f"{method.upper()} {path}"
                out.append(Op(str(op_id), method, path, item[method], item))
    return out


def _parameters(data: dict[str, Any], op: Op) -> list[dict[str, Any]]:
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in [*(op.path_item.get("parameters") or []), *(op.definition.get("parameters") or [])]:
        param = _resolve(data, raw)
        merged[(param["name"], param["in"])] = param
    return list(merged.values())


def _base_path(data: dict[str, Any]) -> str:
    if _version(data) == "2.0":
        return str(data.get("basePath") or "").rstrip("/")
    servers = data.get("servers") or []
    url = str(servers[0].get("url", "")) if servers else ""
    return urlsplit(url).path.rstrip("/")


# --- JSON Schema for a document's schema objects ----------------------------------------------

_ANNOTATIONS = {
    "discriminator",
    "example",
    "xml",
    "externalDocs",
    "deprecated",
    "readOnly",
    "writeOnly",
    "nullable",
    "x-nullable",
}


def _legacy_to_json_schema(data: dict[str, Any], root: Any, *, response: bool) -> dict[str, Any]:
    """A Draft 2020-12 schema for a Swagger 2.0 / OpenAPI 3.0 schema object (refs into $defs)."""
    defs: dict[str, Any] = {}

    def convert(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = str(node["$ref"])
            key = re.sub(r"[^A-Za-z0-9_.-]", "_", ref.lstrip("#/").replace("/", "."))
            if key not in defs:
                defs[key] = True
                defs[key] = convert(_pointer(data, ref))
            return {"$ref": f"#/$defs/{key}"}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _ANNOTATIONS or key.startswith("x-"):
                continue
            if key in ("properties", "patternProperties"):
                out[key] = {name: convert(sub) for name, sub in value.items()}
            elif key in ("allOf", "anyOf", "oneOf"):
                out[key] = [convert(sub) for sub in value]
            elif key in ("items", "not", "additionalProperties"):
                out[key] = convert(value)
            elif key in ("exclusiveMinimum", "exclusiveMaximum") and isinstance(value, bool):
                continue
            else:
                out[key] = value
        for bound, flag in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
            if node.get(flag) is True and bound in node:
                out[flag] = out.pop(bound)
        if out.get("type") == "file":
            out["type"] = "string"
        if response and isinstance(out.get("required"), list):
            # writeOnly properties are never in a response: not required there (and the
            # semantic walk below reports them if they do appear).
            props = node.get("properties") or {}
            hidden = {n for n, p in props.items() if _resolve(data, p).get("writeOnly") is True}
            out["required"] = [n for n in out["required"] if n not in hidden]
        if node.get("nullable") is True or node.get("x-nullable") is True:
            return {"anyOf": [out, {"type": "null"}]}
        return out

    schema = convert(root)
    result: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
    }
    if defs:
        result["$defs"] = defs
    return result


def _format_checker() -> jsonschema.FormatChecker:
    """jsonschema's checkers plus the OpenAPI formats it does not know."""
    checker = jsonschema.FormatChecker()

    def int_range(bits: int) -> Callable[[object], bool]:
        def check(value: object) -> bool:
            if not isinstance(value, int) or isinstance(value, bool):
                return True
            return bool(-(2 ** (bits - 1)) <= value < 2 ** (bits - 1))

        return check

    def is_byte(value: object) -> bool:
        if not isinstance(value, str):
            return True
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        return True

    def is_uri(value: object) -> bool:
        return not isinstance(value, str) or bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", value))

    def is_uri_reference(value: object) -> bool:
        return not isinstance(value, str) or not re.search(r"\s", value)

    checker.checks("int32")(int_range(32))
    checker.checks("int64")(int_range(64))
    checker.checks("byte")(is_byte)
    checker.checks("uri")(is_uri)
    checker.checks("uri-reference")(is_uri_reference)
    return checker


FORMATS = _format_checker()


class Judge:
    """Validates instances against a document's schema objects, the document's way."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.version = _version(data)
        self._registry: Registry[Any] = Registry().with_resource(
            "urn:document", DRAFT202012.create_resource(data)
        )

    def schema_errors(self, schema_node: Any, instance: Any, *, response: bool) -> list[str]:
        """JSON Schema violations, then the OpenAPI-only ones."""
        errors = self.json_errors(schema_node, instance, response=response)
        return errors + self.semantic_errors(schema_node, instance, "$", response=response)

    def json_errors(self, schema_node: Any, instance: Any, *, response: bool) -> list[str]:
        """JSON Schema violations alone (3.1 as written; 2.0 and 3.0 converted first)."""
        if self.version == "3.1":
            if isinstance(schema_node, dict) and "$ref" in schema_node and len(schema_node) == 1:
                schema: Any = {"$ref": "urn:document" + schema_node["$ref"]}
            else:
                schema = self._rebase(schema_node)
        else:
            schema = _legacy_to_json_schema(self.data, schema_node, response=response)
        validator = jsonschema.Draft202012Validator(
            schema, registry=self._registry, format_checker=FORMATS
        )
        return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(instance)]

    def _rebase(self, node: Any) -> Any:
        """Inline 3.1 schema: point its local refs into the registered document."""
        if isinstance(node, dict):
            return {
                k: ("urn:document" + v if k == "$ref" and isinstance(v, str) else self._rebase(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [self._rebase(v) for v in node]
        return node

    def _name_of(self, ref: str) -> str:
        return ref.rsplit("/", 1)[-1]

    def _schemas(self) -> dict[str, Any]:
        if self.version == "2.0":
            return dict(self.data.get("definitions") or {})
        return dict((self.data.get("components") or {}).get("schemas") or {})

    def _ref_prefix(self) -> str:
        return "#/definitions/" if self.version == "2.0" else "#/components/schemas/"

    def _discriminator_targets(
        self, schema: dict[str, Any], own_name: str | None
    ) -> dict[str, str]:
        """Allowed discriminator values -> the $ref of the schema each one selects."""
        disc = schema["discriminator"]
        targets: dict[str, str] = {}
        if isinstance(disc, dict):
            for value, target in (disc.get("mapping") or {}).items():
                targets[str(value)] = (
                    target if target.startswith("#") else self._ref_prefix() + target
                )
        branches = [*(schema.get("oneOf") or []), *(schema.get("anyOf") or [])]
        if branches:
            for branch in branches:
                if isinstance(branch, dict) and "$ref" in branch:
                    targets.setdefault(self._name_of(branch["$ref"]), branch["$ref"])
        elif own_name is not None:
            # allOf inheritance: the base itself and every schema that extends it.
            own_ref = self._ref_prefix() + own_name
            targets.setdefault(own_name, own_ref)
            for name, candidate in self._schemas().items():
                parts = candidate.get("allOf") or [] if isinstance(candidate, dict) else []
                if any(isinstance(p, dict) and p.get("$ref") == own_ref for p in parts):
                    targets.setdefault(name, self._ref_prefix() + name)
        return targets

    def semantic_errors(
        self, node: Any, instance: Any, where: str, *, response: bool, name: str | None = None
    ) -> list[str]:
        """What JSON Schema cannot express: discriminator values, writeOnly in responses."""
        while isinstance(node, dict) and "$ref" in node:
            name = self._name_of(node["$ref"])
            node = _pointer(self.data, node["$ref"])
        if not isinstance(node, dict):
            return []
        errors: list[str] = []
        if isinstance(instance, dict) and "discriminator" in node:
            disc = node["discriminator"]
            prop = disc if isinstance(disc, str) else disc["propertyName"]
            targets = self._discriminator_targets(node, name)
            value = instance.get(prop)
            if value not in targets:
                errors.append(
                    f"{where}.{prop}: discriminator value {value!r} names none of {sorted(targets)}"
                )
            elif targets[value] != (self._ref_prefix() + name if name else None):
                target = {"$ref": targets[value]}
                for error in self.json_errors(target, instance, response=response):
                    errors.append(f"{where} (as {value}): {error}")
        for part in node.get("allOf") or []:
            errors += self.semantic_errors(part, instance, where, response=response)
        for key in ("oneOf", "anyOf"):
            for branch in node.get(key) or []:
                if not self._fails(branch, instance, response=response):
                    errors += self.semantic_errors(branch, instance, where, response=response)
        if isinstance(instance, dict):
            props = node.get("properties") or {}
            for prop_name, value in instance.items():
                sub = props.get(prop_name)
                if sub is None:
                    extra = node.get("additionalProperties")
                    if isinstance(extra, dict):
                        errors += self.semantic_errors(
                            extra, value, f"{where}.{prop_name}", response=response
                        )
                    continue
                if response and _resolve(self.data, sub).get("writeOnly") is True:
                    errors.append(f"{where}.{prop_name}: writeOnly property in a response")
                errors += self.semantic_errors(
                    sub, value, f"{where}.{prop_name}", response=response
                )
        if isinstance(instance, list) and isinstance(node.get("items"), dict):
            for index, item in enumerate(instance):
                errors += self.semantic_errors(
                    node["items"], item, f"{where}[{index}]", response=response
                )
        return errors

    def _fails(self, schema_node: Any, instance: Any, *, response: bool) -> bool:
        """True when ``instance`` fails the JSON Schema part (picks the oneOf branches to walk)."""
        if self.version == "3.1":
            schema: Any = self._rebase(schema_node)
        else:
            schema = _legacy_to_json_schema(self.data, schema_node, response=response)
        validator = jsonschema.Draft202012Validator(schema, registry=self._registry)
        return not validator.is_valid(instance)


# --- an independent request builder -------------------------------------------------------

_STRING_FORMATS = {
    "date": "2024-02-29",
    "date-time": "2024-02-29T12:30:00Z",
    "email": "someone@example.org",
    "uuid": "6f1c2a34-9b7e-4d21-8c3f-5a6b7c8d9e0f",
    "uri": "https://example.org/thing",
    "uri-reference": "/thing",
    "byte": "dGVzdA==",
    "ipv4": "198.51.100.7",
    "password": "correct horse",
}
_PATTERN_CANDIDATES = ("1", "value", "abc", "ABC-1234", "default", "a1", "x")
FORM = "application/x-www-form-urlencoded"


class Builder:
    """Builds one valid request per operation from the document alone."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.version = _version(data)

    def example_of(self, schema: dict[str, Any]) -> tuple[bool, Any]:
        if "example" in schema:
            return True, schema["example"]
        if isinstance(schema.get("examples"), list) and schema["examples"]:
            return True, schema["examples"][0]
        return False, None

    def value(self, node: Any, depth: int = 0) -> Any:
        """A minimal valid value: examples, defaults and enums first, then the type's simplest."""
        schema = _resolve(self.data, node)
        if not isinstance(schema, dict) or depth > 12:
            return None
        found, example = self.example_of(schema)
        if found:
            return copy.deepcopy(example)
        if "default" in schema:
            return copy.deepcopy(schema["default"])
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return next((v for v in schema["enum"] if v is not None), None)
        if schema.get("allOf"):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                piece = self.value(part, depth + 1)
                if isinstance(piece, dict):
                    merged.update(piece)
                else:
                    return piece
            own = {k: v for k, v in schema.items() if k != "allOf"}
            if own.get("properties"):
                merged.update(self.value(own, depth + 1) or {})
            return merged
        for key in ("oneOf", "anyOf"):
            if schema.get(key):
                branches = [
                    b for b in schema[key] if _resolve(self.data, b).get("type") != "null"
                ] or schema[key]
                return self.value(branches[0], depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = (
                "object" if "properties" in schema else "array" if "items" in schema else "string"
            )
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            count = max(int(schema.get("minItems", 0)), 1)
            return [self.value(schema.get("items", {}), depth + 1) for _ in range(count)]
        if kind == "integer":
            return int(self._number(schema, integer=True))
        if kind == "number":
            return self._number(schema, integer=False)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self._string(schema)

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        required = set(schema.get("required") or [])
        out: dict[str, Any] = {}
        for name, sub in (schema.get("properties") or {}).items():
            resolved = _resolve(self.data, sub)
            if resolved.get("readOnly") is True:
                continue  # the server sets these; clients do not send them
            if name in required or self.example_of(resolved)[0]:
                out[name] = self.value(sub, depth + 1)
        wanted = int(schema.get("minProperties", 0))
        for name, sub in (schema.get("properties") or {}).items():
            if len(out) >= wanted:
                break
            if name not in out and _resolve(self.data, sub).get("readOnly") is not True:
                out[name] = self.value(sub, depth + 1)
        extra = schema.get("additionalProperties")
        if len(out) < wanted and isinstance(extra, dict):
            out["key"] = self.value(extra, depth + 1)
        return out

    def _number(self, schema: dict[str, Any], *, integer: bool) -> float:
        low, high = schema.get("minimum"), schema.get("maximum")
        ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if ex_low is True:
            ex_low, low = low, None
        if ex_high is True:
            ex_high, high = high, None
        ex_low = None if isinstance(ex_low, bool) else ex_low
        ex_high = None if isinstance(ex_high, bool) else ex_high
        if low is None and ex_low is not None:
            low = math.floor(ex_low) + 1 if integer else None
        if high is None and ex_high is not None:
            high = math.ceil(ex_high) - 1 if integer else None
        if not integer and ex_low is not None:
            top = ex_high if ex_high is not None else high if high is not None else ex_low + 2
            return float((ex_low + top) / 2)
        value = low if low is not None else 1
        if high is not None and value > high:
            value = high
        return float(value)

    def _string(self, schema: dict[str, Any]) -> str:
        pattern = schema.get("pattern")
        if pattern:
            for candidate in _PATTERN_CANDIDATES:
                if re.search(pattern, candidate):
                    return candidate
            raise AssertionError(f"give the document an example for the pattern {pattern!r}")
        text = _STRING_FORMATS.get(str(schema.get("format")), "sample")
        low = int(schema.get("minLength", 0))
        return text + "x" * max(0, low - len(text))


@dataclass
class BuiltRequest:
    """What to send: ``path`` is relative to the document's base path."""

    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    form: dict[str, str] | None = None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _form_pairs(body: dict[str, Any], encoding: dict[str, Any]) -> list[tuple[str, str]]:
    """application/x-www-form-urlencoded pairs: OpenAPI's default style (form, exploded), or
    deepObject (``metadata[key]=value``) where the media type's encoding asks for it."""
    pairs: list[tuple[str, str]] = []
    for name, value in body.items():
        if value is None:
            continue
        if isinstance(value, dict):
            deep = (encoding.get(name) or {}).get("style") == "deepObject"
            pairs += [(f"{name}[{k}]" if deep else k, _text(v)) for k, v in value.items()]
        elif isinstance(value, list):
            pairs += [(name, _text(item)) for item in value]
        else:
            pairs.append((name, _text(value)))
    return pairs


def build_request(data: dict[str, Any], op: Op) -> BuiltRequest:
    """A valid request for ``op``: required parameters, those with examples, and a body."""
    builder = Builder(data)
    version = _version(data)
    built = BuiltRequest(op.method.upper(), op.path)
    form_params: dict[str, Any] = {}
    body_value: Any = None
    has_body = False
    for param in _parameters(data, op):
        where = param["in"]
        if version == "2.0":
            schema: dict[str, Any] = param.get("schema") or param
        else:
            schema = _resolve(data, param.get("schema") or {})
        if where == "body":
            body_value, has_body = builder.value(schema), True
            continue
        explicit = (
            "example" in param
            or "x-example" in param
            or param.get("examples")
            or builder.example_of(schema)[0]
        )
        if not (param.get("required") or where == "path" or explicit):
            continue
        if "example" in param or "x-example" in param:
            value = param.get("example", param.get("x-example"))
        elif param.get("examples"):
            value = _resolve(data, next(iter(param["examples"].values())))["value"]
        elif where == "formData" and schema.get("type") == "file":
            value = b"\x89PNG fake image bytes"
        else:
            value = builder.value(schema)
        name = param["name"]
        if where == "formData":
            form_params[name] = value
        elif where == "path":
            text = ",".join(map(_text, value)) if isinstance(value, list) else _text(value)
            built.path = built.path.replace("{" + name + "}", text)
        elif where == "header":
            built.headers[name] = _text(value)
        elif where == "query":
            if isinstance(value, list):
                if version == "2.0":
                    multi = param.get("collectionFormat") == "multi"
                else:
                    multi = param.get("explode", param.get("style", "form") == "form")
                if multi:
                    built.query += [(name, _text(v)) for v in value]
                else:
                    built.query.append((name, ",".join(map(_text, value))))
            else:
                built.query.append((name, _text(value)))
    consumes = op.definition.get("consumes") or data.get("consumes") or ["application/json"]
    if version == "2.0":
        if has_body:
            built.headers["Content-Type"] = consumes[0]
            built.body = json.dumps(body_value).encode()
        elif form_params:
            if any(isinstance(v, bytes) for v in form_params.values()):
                built.files = {
                    k: ("upload.png", v, "image/png")
                    for k, v in form_params.items()
                    if isinstance(v, bytes)
                }
                built.form = {
                    k: _text(v) for k, v in form_params.items() if not isinstance(v, bytes)
                }
            else:
                built.headers["Content-Type"] = "application/x-www-form-urlencoded"
                built.body = urlencode(_form_pairs(form_params, {})).encode()
        return built
    request_body = _resolve(data, op.definition.get("requestBody"))
    if request_body:
        media_type, media = next(iter(request_body["content"].items()))
        if "example" in media:
            value = media["example"]
        elif media.get("examples"):
            value = _resolve(data, next(iter(media["examples"].values())))["value"]
        else:
            value = builder.value(media.get("schema") or {})
        built.headers["Content-Type"] = media_type
        if media_type == FORM:
            built.body = urlencode(_form_pairs(value, media.get("encoding") or {})).encode()
        else:
            built.body = json.dumps(value).encode()
    return built


# --- judging a response -------------------------------------------------------------------


def request_body_errors(judge: Judge, op: Op, built: BuiltRequest) -> list[str]:
    """The built JSON body against its schema: the builder must be right for a test to mean
    anything (form and multipart bodies are checked by openapi-core, or not at all for 2.0)."""
    media = _media(built.headers.get("Content-Type"))
    if built.body is None or not _is_json(media):
        return []
    data = judge.data
    if judge.version == "2.0":
        schema = next(p["schema"] for p in _parameters(data, op) if p["in"] == "body")
    else:
        content = _resolve(data, op.definition["requestBody"])["content"]
        schema = content[next(m for m in content if _media(m) == media)].get("schema", {})
    return judge.json_errors(schema, json.loads(built.body), response=False)


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _media_matches(actual: str, documented: str) -> bool:
    documented = documented.lower()
    if documented in ("*/*", actual):
        return True
    return documented.endswith("/*") and actual.startswith(documented[:-1])


def _documented_response(data: dict[str, Any], op: Op, status: int) -> dict[str, Any] | None:
    responses = _resolve(data, op.definition.get("responses") or {})
    for key in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default"):
        if key in responses:
            found: dict[str, Any] = _resolve(data, responses[key])
            return found
    return None


def _header_value(raw: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        return raw
    if kind == "boolean":
        return {"true": True, "false": False}.get(raw, raw)
    return raw


def judge_response(judge: Judge, op: Op, response: requests.Response) -> list[str]:
    """Every way ``response`` breaks the document: status, media type, body, headers."""
    data = judge.data
    documented = _documented_response(data, op, response.status_code)
    if documented is None:
        return [f"status {response.status_code} is not documented for {op.operation_id}"]
    errors: list[str] = []
    media = _media(response.headers.get("content-type"))
    body_schema: Any = None
    if judge.version == "2.0":
        if "schema" in documented:
            produces = op.definition.get("produces") or data.get("produces") or []
            if produces and not any(_media_matches(media, p) for p in produces):
                errors.append(f"content type {media!r} is not one of {produces}")
            body_schema = documented["schema"]
    else:
        content = documented.get("content") or {}
        if content:
            matching = [m for m in content if _media_matches(media, m)]
            if not matching:
                errors.append(f"content type {media!r} is not one of {sorted(content)}")
                # Still judge a JSON body against the documented JSON-ish schema.
                matching = [m for m in content if _is_json(media) and _is_json(_media(m))]
            if matching:
                body_schema = (content[matching[0]] or {}).get("schema")
    if (documented.get("content") or "schema" in documented) and not response.content:
        errors.append("the body is empty but the document describes one")
    elif body_schema is None:
        if response.content and documented.get("content") is None and "schema" not in documented:
            errors.append(
                f"a body was sent where the document describes none: {response.content[:80]!r}"
            )
    else:
        if _is_json(media):
            try:
                instance: Any = response.json()
            except ValueError as error:
                return [*errors, f"the body is not JSON: {error}"]
        else:
            instance = response.text
        errors += judge.schema_errors(body_schema, instance, response=True)
    for name, header in (documented.get("headers") or {}).items():
        header = _resolve(data, header)
        raw = response.headers.get(name)
        if raw is None:
            if header.get("required"):
                errors.append(f"required header {name} is missing")
            continue
        schema = header if judge.version == "2.0" else header.get("schema") or {}
        schema = {k: v for k, v in schema.items() if k != "description"}
        value = _header_value(raw, _resolve(data, schema))
        errors += [f"header {name}: {e}" for e in judge.schema_errors(schema, value, response=True)]
    return errors


# --- openapi-core, the second opinion -------------------------------------------------------


def _json_loads(value: bytes, **_parameters: str) -> Any:
    return json.loads(value)


def _media_types(node: Any) -> set[str]:
    """Every media type named under a ``content`` map anywhere in the document."""
    found: set[str] = set()
    if isinstance(node, dict):
        content = node.get("content")
        if isinstance(content, dict):
            found.update(str(media) for media in content)
        for value in node.values():
            found |= _media_types(value)
    elif isinstance(node, list):
        for value in node:
            found |= _media_types(value)
    return found


class CoreJudge:
    """openapi-core's request and response validation against one served document."""

    def __init__(self, data: dict[str, Any], server_url: str) -> None:
        spec_dict = copy.deepcopy(data)
        spec_dict["servers"] = [{"url": server_url}]
        spec = SchemaPath.from_dict(spec_dict)
        # openapi-core parses application/json and application/vnd.api+json only; other JSON
        # media types (problem+json, merge-patch+json...) would reach it as bytes.
        json_media: dict[str, Callable[[bytes], Any]] = {
            m: _json_loads for m in _media_types(data) if _is_json(_media(m))
        }
        # None skips openapi-core's own check of the document (load_document made it already).
        config = Config(
            spec_validator_cls=None,  # type: ignore[arg-type]
            extra_media_type_deserializers=json_media,
        )
        self.app = OpenAPI(spec, config=config)
        v31 = _version(data) == "3.1"
        params = V31RequestParametersValidator if v31 else V30RequestParametersValidator
        body = V31RequestBodyValidator if v31 else V30RequestBodyValidator
        self.request_validators = [
            params(spec),
            body(spec, extra_media_type_deserializers=json_media),
        ]

    def request_errors(self, response: requests.Response) -> list[str]:
        request = RequestsOpenAPIRequest(response.request)
        return [
            f"{type(e).__name__}: {e} {getattr(e, '__cause__', '') or ''}"
            for validator in self.request_validators
            for e in validator.iter_errors(request)
        ]

    def response_errors(self, response: requests.Response) -> list[str]:
        request = RequestsOpenAPIRequest(response.request)
        errors = self.app.iter_response_errors(request, RequestsOpenAPIResponse(response))
        out = []
        for error in errors:
            cause = error.__cause__
            details = getattr(cause, "schema_errors", None) or ([cause] if cause else [])
            out.append(f"openapi-core {type(error).__name__}: {error} {list(map(str, details))}")
        return out


# --- the simulator under test ----------------------------------------------------------------


@dataclass
class Served:
    """One running simulator and everything needed to talk to it and judge its answers."""

    data: dict[str, Any]
    base: str
    running: RunningProvider
    judge: Judge
    core: CoreJudge | None
    session: requests.Session


class Simulators:
    """One engine per (document, mode), kept for as long as that document's tests run."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._current: Path | None = None
        self._served: dict[str, Served] = {}

    def get(self, path: Path, mode: str) -> Served:
        if self._current != path:
            self.close()
            self._stack = ExitStack()
            self._current = path
            document = _document(path)
            data = document.data
            for each in MODES:
                options = EngineOptions(records=3, seed=0, stateful=each == "stateful")
                running = self._stack.enter_context(serve(document, options))
                base = running.url + _base_path(data)
                core = (
                    CoreJudge(data, base) if HAVE_OPENAPI_CORE and _version(data) != "2.0" else None
                )
                session = self._stack.enter_context(requests.Session())
                self._served[each] = Served(data, base, running, Judge(data), core, session)
        return self._served[mode]

    def close(self) -> None:
        self._stack.close()
        self._served.clear()
        self._current = None


@pytest.fixture(scope="module")
def simulators() -> Iterator[Simulators]:
    sims = Simulators()
    yield sims
    sims.close()


# Per document and mode: statuses seen, for the summary printed at the end of the module.
SEEN: dict[str, Counter[str]] = {}


@pytest.fixture(scope="module", autouse=True)
def _summary(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print, per document, how many operations were checked and what they answered."""
    yield
    if not SEEN:
        return
    lines = ["", "conformance: operations checked per document [mode]: {status: count}"]
    for name, counts in sorted(SEEN.items()):
        lines.append(f"  {name}: {sum(counts.values())} checked, {dict(sorted(counts.items()))}")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():  # shown even with -q and passing tests
        print("\n".join(lines))


def _cases() -> Iterator[Any]:
    for path in DOCUMENTS:
        data = _document(path).data
        for op in _operations(data):
            for mode in MODES:
                bug = _known_bug(path.name, op.operation_id, mode)
                marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
                yield pytest.param(
                    path, op, mode, id=f"{path.stem}:{op.operation_id}:{mode}", marks=marks
                )


def _send(served: Served, built: BuiltRequest) -> requests.Response:
    return served.session.request(
        built.method,
        served.base + built.path,
        params=built.query,
        headers=built.headers,
        data=built.body if built.files is None else built.form,
        files=built.files,
        timeout=REQUEST_TIMEOUT,
        allow_redirects=False,
    )


def _fill(template: str, path: str, key: str, value: str) -> str:
    """``path`` (built from ``template``) with the last segment, ``{key}``, set to ``value``."""
    assert template.endswith("{" + key + "}")
    return path.rsplit("/", 1)[0] + "/" + value


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def discover_id(served: Served, op: Op) -> tuple[str, str] | None:
    """For ``/things/{key}``: the key of a record the list operation ``GET /things`` shows, so
    item operations reach a stored record instead of a 404 (when the list shows one)."""
    match = re.fullmatch(r"(.*)/\{([^}/]+)\}", op.path)
    if match is None:
        return None
    collection, key = match.groups()
    data = served.data
    lister = next(
        (o for o in _operations(data) if o.method == "get" and o.path == collection), None
    )
    if lister is None:
        return None
    response = _send(served, build_request(data, lister))
    if response.status_code != 200 or not _is_json(_media(response.headers.get("content-type"))):
        return None
    body = response.json()
    records = body if isinstance(body, list) else []
    if isinstance(body, dict):
        records = next((v for v in body.values() if isinstance(v, list) and v), [])
    param = next(p for p in _parameters(data, op) if p["in"] == "path" and p["name"] == key)
    schema = param if _version(data) == "2.0" else param.get("schema") or {}
    schema = {k: v for k, v in schema.items() if k not in ("name", "in", "required", "description")}
    for record in records:
        for name in dict.fromkeys((key, _snake(key), "id")):
            value = record.get(name) if isinstance(record, dict) else None
            usable = isinstance(value, str | int) and not isinstance(value, bool)
            if usable and not served.judge.json_errors(schema, value, response=False):
                return key, str(value)
    return None


def _success_statuses(data: dict[str, Any], op: Op) -> set[int]:
    responses = _resolve(data, op.definition.get("responses") or {})
    codes = {int(s) for s in responses if str(s).isdigit()}
    twos = {s for s in codes if 200 <= s < 300}
    # Only redirects documented: one of them. Only "default": any success it then covers.
    return twos or {s for s in codes if 300 <= s < 400} or set(range(200, 300))


@pytest.mark.parametrize(("path", "op", "mode"), list(_cases()))
def test_operation_conforms(simulators: Simulators, path: Path, op: Op, mode: str) -> None:
    """A valid request gets a documented, conforming success (or a documented 404 for an unknown
    id when the store answers)."""
    served = simulators.get(path, mode)
    reset = served.session.post(served.running.url + "/__harness/reset", timeout=REQUEST_TIMEOUT)
    assert reset.status_code == 204
    built = build_request(served.data, op)
    found = discover_id(served, op) if mode == "stateful" else None
    if found is not None:
        key, value = found
        built.path = _fill(op.path, built.path, key, value)
    response = _send(served, built)
    SEEN.setdefault(f"{path.name} [{mode}]", Counter())[str(response.status_code)] += 1
    invalid = request_body_errors(served.judge, op, built)
    if served.core is not None and built.files is None:
        invalid += served.core.request_errors(response)
    assert invalid == [], "the test built an invalid request:\n" + "\n".join(invalid)
    summary = f"{built.method} {built.path} -> {response.status_code} {response.text[:300]!r}"
    expected = _success_statuses(served.data, op)
    has_404 = _documented_response(served.data, op, 404) is not None and "{" in op.path
    if mode == "stateful" and has_404 and found is None:
        expected = expected | {404}  # the builder's id may name no stored record
    wanted = "any 2xx" if len(expected) > 50 else f"one of {sorted(expected)}"
    assert response.status_code in expected, f"expected {wanted}: {summary}"
    errors = judge_response(served.judge, op, response)
    if served.core is not None:
        errors += served.core.response_errors(response)
    assert errors == [], summary + "\n" + "\n".join(errors)


def test_every_document_loads_and_is_counted() -> None:
    """Each document passes ``harness validate``'s check and has the operations listed above."""
    counts = {path.name: len(_document(path).operations) for path in DOCUMENTS}
    assert counts == EXPECTED_OPERATIONS
    versions = Counter(_version(_document(path).data) for path in DOCUMENTS if path.parent == DATA)
    assert versions["2.0"] >= 2 and versions["3.0"] >= 4 and versions["3.1"] >= 3
    assert max(counts.values()) >= 100
    print(counts)


def test_large_document_is_generated_output() -> None:
    """The committed large document is exactly what ``make_large.py`` writes."""
    spec = importlib.util.spec_from_file_location("make_large", DATA / "make_large.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = json.loads((DATA / "workspace-large.json").read_text())
    assert committed == module.build()


# --- rejections and not-found answers ------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """A request the engine must turn down: with a documented, conforming error response
    ("documented"), or at least with a 4xx ("rejected")."""

    document: str
    operation_id: str
    path: str
    body: bytes | None = None
    content_type: str | None = None
    expect: str = "documented"
    bug: str | None = None


PROBES = [
    # the bundled contract: createPet documents 400 (problem+json) for a bad request
    Probe(
        "provider.openapi.yaml",
        "createPet",
        "/v1/pets",
        b"{}",
        "application/json",
    ),
    # the bundled contract: an unknown pet is a documented 404 application/problem+json
    Probe("provider.openapi.yaml", "getPet", "/v1/pets/999999"),
    # default: application/json {code, message} covers every error
    Probe(
        "petstore-expanded.yaml",
        "addPet",
        "/api/pets",
        b"{}",
        "application/json",
    ),
    # 422 application/problem+json is what this one documents: the engine's own format
    Probe("workspace-large.json", "createProject", "/api/v5/projects", b"{}", "application/json"),
    Probe(
        "telemetry-drf.yaml",
        "devices_retrieve",
        "/api/devices/not-a-uuid/",
        expect="rejected",
    ),
    Probe(
        "petstore-swagger2.yaml",
        "updatePetWithForm",
        "/v2/pet/1",
        b"status=bogus",
        "application/x-www-form-urlencoded",
        expect="rejected",
    ),
]


def _probe_cases() -> Iterator[Any]:
    for probe in PROBES:
        marks = [pytest.mark.xfail(strict=True, reason=probe.bug)] if probe.bug else []
        yield pytest.param(probe, id=f"{probe.document}:{probe.operation_id}", marks=marks)


@pytest.mark.parametrize("probe", list(_probe_cases()))
def test_rejection_conforms(probe: Probe) -> None:
    """An invalid request or an unknown id is turned down the way the document describes."""
    path = next(p for p in DOCUMENTS if p.name == probe.document)
    document = _document(path)
    data = document.data
    op = next(o for o in _operations(data) if o.operation_id == probe.operation_id)
    with (
        serve(document, EngineOptions(records=3, seed=0)) as running,
        requests.Session() as session,
    ):
        headers = {"Content-Type": probe.content_type} if probe.content_type else {}
        response = session.request(
            op.method.upper(),
            running.url + probe.path,
            data=probe.body,
            headers=headers,
            timeout=REQUEST_TIMEOUT,
        )
        summary = (
            f"{op.method.upper()} {probe.path} -> {response.status_code} {response.text[:300]!r}"
        )
        assert 400 <= response.status_code < 500, summary
        if probe.expect == "rejected":
            return
        errors = judge_response(Judge(data), op, response)
        if HAVE_OPENAPI_CORE and _version(data) != "2.0":
            errors += CoreJudge(data, running.url + _base_path(data)).response_errors(response)
        assert errors == [], summary + "\n" + "\n".join(errors)


@pytest.mark.parametrize("violation", ["missing_required", "wrong_type", "enum_outside"])
@pytest.mark.parametrize(
    ("document", "operation_id", "path"),
    [
        (
            "helpdesk-swagger2.yaml",
            "showSatisfactionRating",
            "/api/v2/satisfaction_ratings/SR-000123",
        ),
        ("provider.openapi.yaml", "getPet", "/v1/pets/1"),
        ("destination.openapi.yaml", "getItem", "/items/1"),
    ],
)
def test_judges_see_a_broken_answer(
    document: str, operation_id: str, path: str, violation: str
) -> None:
    """The checks above are not vacuous: a body the engine's fault plan breaks on purpose is
    reported by this module's judge and, where installed, by openapi-core."""
    doc_path = next(p for p in DOCUMENTS if p.name == document)
    loaded = _document(doc_path)
    data = loaded.data
    op = next(o for o in _operations(data) if o.operation_id == operation_id)
    plan = parse_fault_plan(
        {
            "rules": [
                {
                    "name": "break",
                    "match": {"operation": operation_id},
                    "action": {"schema_violation": violation},
                }
            ]
        }
    )
    options = EngineOptions(records=3, seed=0, stateful=False, fault_plan=plan)
    with serve(loaded, options) as running, requests.Session() as session:
        response = session.get(running.url + path, timeout=REQUEST_TIMEOUT)
        assert response.status_code == 200, response.text
        assert judge_response(Judge(data), op, response) != []
        if HAVE_OPENAPI_CORE and _version(data) != "2.0":
            core = CoreJudge(data, running.url + _base_path(data))
            assert core.response_errors(response) != []


# --- schemathesis ----------------------------------------------------------------------------

# Checks left out of every run, and why. Everything else of --checks all stays on.
ST_EXCLUDED_CHECKS = {
    # The simulator runs without authentication on purpose (auth is not under test here), so
    # "the API accepts requests without valid credentials" is true by construction.
    "ignored_auth": "all",
    # schemathesis' Swagger 2.0 adapter documents the operation's `produces` for every response,
    # so a 204 No Content or a schema-less 404 (no body, rightly no Content-Type) fails as
    # "Missing Content-Type header". test_operation_conforms checks 2.0 media types instead.
    "content_type_conformance": "2.0",
}
# Negative data only: where an operation documents no 4xx at all, rejecting invalid input
# (negative_data_rejection, ST201) and answering only documented statuses (ST103) cannot both
# hold. The engine rejects (the documented 400/422/404 or `default` when there is one); the
# positive runs keep status_code_conformance on for every valid request.
ST_EXCLUDED_IN_NEGATIVE = ("status_code_conformance",)


@dataclass(frozen=True)
class StRun:
    family: str
    document: Path
    mode: str
    exclude_operations: tuple[str, ...] = ()
    bug: str | None = None


# Per version family: the run the brief asks for (--mode all: positive and negative data) and
# a run with valid data only (every check on), leaving out only operations that are strict
# xfails in test_operation_conforms.
ENGINE_NO_DOCUMENT_SECURITY = (
    "engine limitation: without a spec `authentication` the simulator does not enforce the "
    "document's own security requirements, so a request missing the api_key header is accepted "
    "(ST201); also schemathesis sends numbers in multipart fields that are text on the wire"
)
ST_RUNS = [
    StRun("2.0", DATA / "petstore-swagger2.yaml", "all", bug=ENGINE_NO_DOCUMENT_SECURITY),
    StRun("2.0", DATA / "petstore-swagger2.yaml", "positive", ("createUser", "logoutUser")),
    StRun("3.0", DATA / "petstore-expanded.yaml", "all"),
    StRun("3.0", DATA / "petstore-expanded.yaml", "positive"),
    StRun(
        "3.1",
        DATA / "telemetry-drf.yaml",
        "all",
    ),
    StRun("3.1", DATA / "telemetry-drf.yaml", "positive", ("devices_create",)),
]


def _schemathesis_cases() -> Iterator[Any]:
    for run in ST_RUNS:
        marks = [pytest.mark.xfail(strict=True, reason=run.bug)] if run.bug else []
        yield pytest.param(run, id=f"{run.family}:{run.document.stem}:{run.mode}", marks=marks)


class Schemathesis:
    """Runs ``st run`` as a subprocess against a fresh simulator served from this process.

    One run at a time: running two at once was slower here (the simulators share this
    process), and a loaded machine would make request timeouts likelier.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.config = workdir / "schemathesis.toml"
        self.config.write_text("")  # explicit and empty: no schemathesis.toml is discovered
        self._stack = ExitStack()
        self._running: dict[StRun, tuple[subprocess.Popen[bytes], Path]] = {}

    def _start(self, run: StRun) -> None:
        st = Path(sys.executable).with_name("st")
        command = [str(st)] if st.exists() else [sys.executable, "-m", "schemathesis.cli"]
        excluded = [n for n, family in ST_EXCLUDED_CHECKS.items() if family in ("all", run.family)]
        if run.mode == "all":
            excluded += ST_EXCLUDED_IN_NEGATIVE
        document = _document(run.document)
        running = self._stack.enter_context(serve(document, EngineOptions(records=3, seed=0)))
        args = [
            *command,
            "--config-file",
            str(self.config),
            "run",
            str(run.document),
            "--url",
            running.url + _base_path(document.data),
            "--checks",
            "all",
            "--exclude-checks",
            ",".join(excluded),
            "--mode",
            run.mode,
            "--max-examples",
            "10",
            "--seed",
            "1",
            "--phases",
            "examples,fuzzing",
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--request-timeout",
            "5",
            "--no-color",
        ]
        for operation_id in run.exclude_operations:
            args += ["--exclude-operation-id", operation_id]
        # Hypothesis picks a "ci" settings profile when CI is set; keep CI runs like local ones.
        env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("HYPOTHESIS")}
        log = self.workdir / f"{run.family}-{run.document.stem}-{run.mode}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                args, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        self._running[run] = (process, log)

    def result(self, run: StRun) -> tuple[int, str]:
        """(exit code, output) of ``run``, starting it and its family's other runs if needed."""
        if run not in self._running:
            self._start(run)
        process, log = self._running[run]
        try:
            code = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        return code, log.read_text(errors="replace")

    def close(self) -> None:
        for process, _log in self._running.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        self._stack.close()


@pytest.fixture(scope="module")
def schemathesis_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Schemathesis]:
    runner = Schemathesis(tmp_path_factory.mktemp("schemathesis"))
    yield runner
    runner.close()


@pytest.mark.slow
@pytest.mark.parametrize("run", list(_schemathesis_cases()))
def test_schemathesis_finds_nothing(run: StRun, schemathesis_runs: Schemathesis) -> None:
    """`st run --checks all` (less the exclusions above) reports no failure on the simulator."""
    code, output = schemathesis_runs.result(run)
    assert code == 0, output[-8000:]
    assert " passed" in output, output[-8000:]
