"""OpenAPI schema objects -> self-contained JSON Schema (Draft 2020-12).

OpenAPI 3.0 schema objects are not JSON Schema: ``nullable``, boolean ``exclusiveMinimum``,
``readOnly``/``writeOnly`` that change what is required depending on direction, ``example``,
``discriminator``. Swagger 2.0 adds ``x-nullable`` and ``type: file``. Validators and generators
(jsonschema, jsonschema_rs, hypothesis-jsonschema) need real JSON Schema, so we convert once per
(schema, direction) and bundle every ``$ref`` target into ``$defs`` so the result stands alone.
OpenAPI 3.1 schemas are JSON Schema already and only get bundled.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from harness.openapi.document import OpenAPIDocument, Ref

Direction = Literal["request", "response"]
_DROP = {"discriminator", "xml", "externalDocs", "example", "nullable", "x-nullable", "deprecated"}
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class SchemaConverter:
    """Converts schemas of one document; memoises ``$defs`` so shared components convert once."""

    def __init__(self, document: OpenAPIDocument) -> None:
        self._doc = document
        self._legacy = document.version in ("2.0", "3.0")

    def convert(self, ref: Ref, direction: Direction) -> dict[str, Any]:
        """A standalone JSON Schema for ``ref``, as seen by a request or a response."""
        defs: dict[str, Any] = {}
        root = self._node(ref.node, ref.uri, direction, defs)
        schema: dict[str, Any] = root if isinstance(root, dict) else {"allOf": [root]}
        if defs:
            schema = {**schema, "$defs": {**schema.get("$defs", {}), **defs}}
        schema.setdefault("$schema", "https://json-schema.org/draft/2020-12/schema")
        return schema

    def _def_name(self, target: str) -> str:
        doc_uri, _, fragment = target.partition("#")
        name = fragment.rsplit("/", 1)[-1] or "root"
        prefix = (
            ""
            if doc_uri in ("", self._doc.uri)
            else _SAFE.sub("_", doc_uri.rsplit("/", 1)[-1]) + "__"
        )
        return _SAFE.sub("_", f"{prefix}{fragment.strip('/').replace('/', '.')}" or name)

    def _node(self, node: Any, uri: str, direction: Direction, defs: dict[str, Any]) -> Any:
        if isinstance(node, bool) or not isinstance(node, dict):
            return node
        if isinstance(node.get("$ref"), str):
            from urllib.parse import urljoin

            target = urljoin(uri, node["$ref"])
            name = self._def_name(target)
            if name not in defs:
                defs[name] = {}  # placeholder first: recursive schemas terminate
                resolved = self._doc.deref(node, uri)
                defs[name] = self._node(resolved.node, resolved.uri, direction, defs)
            return {"$ref": f"#/$defs/{name}"}
        return self._object(node, uri, direction, defs)

    def _object(
        self, node: dict[str, Any], uri: str, direction: Direction, defs: dict[str, Any]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROP or key.startswith("x-"):
                continue
            if key in (
                "properties",
                "patternProperties",
                "$defs",
                "definitions",
                "dependentSchemas",
            ):
                out[key] = {k: self._node(v, uri, direction, defs) for k, v in value.items()}
            elif key in ("allOf", "anyOf", "oneOf", "prefixItems"):
                out[key] = [self._node(v, uri, direction, defs) for v in value]
            elif key in (
                "items",
                "additionalProperties",
                "not",
                "contains",
                "propertyNames",
                "if",
                "then",
                "else",
                "unevaluatedProperties",
                "unevaluatedItems",
                "additionalItems",
            ):
                out[key] = (
                    [self._node(v, uri, direction, defs) for v in value]
                    if isinstance(value, list)
                    else self._node(value, uri, direction, defs)
                )
            else:
                out[key] = value
        if self._legacy:
            _legacy_keywords(node, out)
        _integer_format_bounds(out)
        if "example" in node and "examples" not in out:
            out["examples"] = [node["example"]]
        _drop_directional_required(out, direction)
        return out


def _legacy_keywords(node: dict[str, Any], out: dict[str, Any]) -> None:
    """OpenAPI 3.0 / Swagger 2.0 keywords with JSON Schema equivalents."""
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if node.get(exclusive) is True and bound in node:
            out[exclusive] = node[bound]
            out.pop(bound, None)
        elif node.get(exclusive) is False:
            out.pop(exclusive, None)
    if out.get("type") == "file":
        out["type"] = "string"
    if node.get("nullable") is True or node.get("x-nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        elif kind is None:
            inner = {
                k: v
                for k, v in out.items()
                if k not in ("examples", "default", "description", "title")
            }
            for k in list(inner):
                out.pop(k)
            out["anyOf"] = [inner, {"type": "null"}]


_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _integer_format_bounds(out: dict[str, Any]) -> None:
    """``format: int32/int64`` promise a range; JSON Schema does not assert it, so spell it out."""
    bounds = _INT_RANGES.get(str(out.get("format")))
    if bounds is None or out.get("type") not in ("integer", ["integer", "null"]):
        return
    low, high = bounds
    if "minimum" not in out and "exclusiveMinimum" not in out:
        out["minimum"] = low
    if "maximum" not in out and "exclusiveMaximum" not in out:
        out["maximum"] = high


def _drop_directional_required(out: dict[str, Any], direction: Direction) -> None:
    """readOnly properties are not sent in requests; writeOnly ones are not returned."""
    props = out.get("properties")
    required = out.get("required")
    if not isinstance(props, dict) or not isinstance(required, list):
        return
    flag = "readOnly" if direction == "request" else "writeOnly"
    hidden = {
        name for name, prop in props.items() if isinstance(prop, dict) and prop.get(flag) is True
    }
    if hidden:
        out["required"] = [name for name in required if name not in hidden]
