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
        self._discriminators = _inheritance_discriminators(document)

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

    def _node(
        self,
        node: Any,
        uri: str,
        direction: Direction,
        defs: dict[str, Any],
        *,
        plain: bool = False,
    ) -> Any:
        """Convert ``node``; ``plain`` asks for a discriminator base's own structure (what its
        subtypes extend) rather than the polymorphic "the base or any subtype"."""
        if isinstance(node, bool) or not isinstance(node, dict):
            return node
        if isinstance(node.get("$ref"), str):
            from urllib.parse import urljoin

            target = urljoin(uri, node["$ref"])
            pointer = target.partition("#")[2]
            rule = self._discriminators.get(pointer)
            is_base = rule is not None and rule[2] is not None
            name = self._def_name(target) + ("__plain" if plain and is_base else "")
            if name not in defs:
                defs[name] = {}  # placeholder first: recursive schemas terminate
                resolved = self._doc.deref(node, uri)
                converted = self._node(resolved.node, resolved.uri, direction, defs)
                if rule is not None and isinstance(converted, dict) and not (plain and is_base):
                    converted = self._discriminated(
                        converted, rule, target, node, uri, direction, defs
                    )
                defs[name] = converted
            return {"$ref": f"#/$defs/{name}"}
        return self._object(node, uri, direction, defs)

    def _discriminated(
        self,
        converted: dict[str, Any],
        rule: tuple[str, str, tuple[str, ...] | None],
        target: str,
        node: dict[str, Any],
        uri: str,
        direction: Direction,
        defs: dict[str, Any],
    ) -> dict[str, Any]:
        prop, value, subtypes = rule
        if subtypes is None:  # a subtype: its discriminator names it
            return {"allOf": [converted, {"properties": {prop: {"const": value}}}]}
        # A base: either the base itself (naming itself), or any of its subtypes, whole.
        plain_ref = self._node(node, uri, direction, defs, plain=True)
        own = {"allOf": [plain_ref, {"properties": {prop: {"const": subtypes[0]}}}]}
        branches = [own]
        base_doc = target.partition("#")[0]
        for sub_pointer, (sub_prop, _sub_value, sub_subtypes) in self._discriminators.items():
            if (
                sub_subtypes is None
                and sub_prop == prop
                and self._extends(sub_pointer, target.partition("#")[2])
            ):
                branches.append(
                    self._node({"$ref": f"{base_doc}#{sub_pointer}"}, uri, direction, defs)
                )
        return {"anyOf": branches} if len(branches) > 1 else own

    def _extends(self, sub_pointer: str, base_pointer: str) -> bool:
        schema = _component_pointers(self._doc).get(sub_pointer)
        parts = schema.get("allOf", []) if isinstance(schema, dict) else []
        return any(
            isinstance(p, dict) and str(p.get("$ref", "")).partition("#")[2] == base_pointer
            for p in parts
        )

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
            elif key == "allOf":
                # A subtype extends its discriminator base's own structure, not "any subtype".
                out[key] = [self._node(v, uri, direction, defs, plain=True) for v in value]
            elif key in ("anyOf", "oneOf", "prefixItems"):
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
        discriminator = node.get("discriminator")
        if isinstance(discriminator, dict) and isinstance(
            out.get("oneOf") or out.get("anyOf"), list
        ):
            _tag_branches(out, node, discriminator)
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


def _component_pointers(document: OpenAPIDocument) -> dict[str, Any]:
    """Fragment (``/components/schemas/X``) -> schema, for every named schema of the document."""
    data = document.data
    if document.version == "2.0":
        return {f"/definitions/{k}": v for k, v in (data.get("definitions") or {}).items()}
    schemas = (data.get("components") or {}).get("schemas") or {}
    return {f"/components/schemas/{k}": v for k, v in schemas.items()}


def _inheritance_discriminators(
    document: OpenAPIDocument,
) -> dict[str, tuple[str, str, tuple[str, ...] | None]]:
    """Discriminators by inheritance (Swagger 2.0, and OpenAPI 3 ``allOf`` with a base that has
    a discriminator): fragment -> (property, "const" value or "enum", allowed values).

    A base schema's discriminator must name the base or one of its subtypes; a subtype's must
    name the subtype (its mapping key when the base maps it, else its schema name)."""
    pointers = _component_pointers(document)
    rules: dict[str, tuple[str, str, tuple[str, ...] | None]] = {}
    for base_pointer, base in pointers.items():
        if (
            not isinstance(base, dict)
            or "discriminator" not in base
            or "oneOf" in base
            or "anyOf" in base
        ):
            continue
        raw = base["discriminator"]
        prop = (
            raw
            if isinstance(raw, str)
            else raw.get("propertyName")
            if isinstance(raw, dict)
            else None
        )
        if not prop:
            continue
        mapping = raw.get("mapping", {}) if isinstance(raw, dict) else {}
        by_target = {
            str(v).partition("#")[2] or f"/components/schemas/{v}": str(k)
            for k, v in mapping.items()
        }
        names = [by_target.get(base_pointer, base_pointer.rsplit("/", 1)[-1])]
        for pointer, schema in pointers.items():
            parts = schema.get("allOf", []) if isinstance(schema, dict) else []
            if any(
                isinstance(p, dict) and str(p.get("$ref", "")).partition("#")[2] == base_pointer
                for p in parts
            ):
                value = by_target.get(pointer, pointer.rsplit("/", 1)[-1])
                names.append(value)
                rules[pointer] = (prop, value, None)
        rules[base_pointer] = (prop, "enum", tuple(names))
    return rules


def _tag_branches(out: dict[str, Any], node: dict[str, Any], discriminator: dict[str, Any]) -> None:
    """``oneOf`` + discriminator: each branch carries the value that selects it."""
    prop = discriminator.get("propertyName")
    if not isinstance(prop, str):
        return
    mapping = {str(v): str(k) for k, v in (discriminator.get("mapping") or {}).items()}
    key = "oneOf" if "oneOf" in out else "anyOf"
    raw_branches = node.get(key) or []
    tagged = []
    for raw, converted in zip(raw_branches, out[key], strict=False):
        ref = raw.get("$ref") if isinstance(raw, dict) else None
        if not isinstance(ref, str):
            tagged.append(converted)
            continue
        value = (
            mapping.get(ref)
            or next(
                (k for v, k in mapping.items() if v.rsplit("/", 1)[-1] == ref.rsplit("/", 1)[-1]),
                None,
            )
            or ref.rsplit("/", 1)[-1]
        )
        tagged.append(
            {"allOf": [converted, {"properties": {prop: {"const": value}}, "required": [prop]}]}
        )
    out[key] = tagged


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
