"""Find a field of a record inside an OpenAPI schema: does it exist, of what type, is it required.

The data mapping names fields as dotted paths (``tags[].name``). Answering "is this field in the
provider's contract" needs ``$ref``, ``allOf`` merging and ``oneOf``/``anyOf`` alternatives to be
understood; this module does that and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from harness.openapi.document import OpenAPIDocument, Ref


@dataclass(frozen=True)
class FieldInfo:
    """What the document says about one field."""

    types: frozenset[str]
    required: bool
    nullable: bool
    enum: tuple[object, ...] | None
    format: str | None


def _branches(doc: OpenAPIDocument, ref: Ref) -> Iterator[Ref]:
    """The schema and every ``allOf`` part it is built from (all of which apply)."""
    schema = doc.deref(ref.node, ref.uri)
    yield schema
    if isinstance(schema.node, dict):
        for part in schema.node.get("allOf") or []:
            yield from _branches(doc, Ref(part, schema.uri))


def _alternatives(doc: OpenAPIDocument, ref: Ref) -> list[Ref]:
    schema = doc.deref(ref.node, ref.uri)
    if isinstance(schema.node, dict):
        alts = schema.node.get("oneOf") or schema.node.get("anyOf")
        if alts:
            return [Ref(a, schema.uri) for a in alts]
    return []


def property_names(doc: OpenAPIDocument, ref: Ref) -> set[str]:
    """Every property name an object schema may carry (for "did you mean" hints)."""
    names: set[str] = set()
    for part in _branches(doc, ref):
        if isinstance(part.node, dict):
            names.update((part.node.get("properties") or {}).keys())
            for alt in _alternatives(doc, part):
                names.update(property_names(doc, alt))
    return names


def _child(doc: OpenAPIDocument, ref: Ref, name: str) -> tuple[Ref, bool] | None:
    """The schema of property ``name`` and whether it is required, or None if absent."""
    found: Ref | None = None
    required = False
    for part in _branches(doc, ref):
        node = part.node
        if not isinstance(node, dict):
            continue
        if name in (node.get("properties") or {}):
            found = found or Ref(node["properties"][name], part.uri)
        if name in (node.get("required") or []):
            required = True
        alternatives = _alternatives(doc, part)
        if alternatives:
            hits = [_child(doc, alt, name) for alt in alternatives]
            present = [h for h in hits if h is not None]
            if present:
                found = found or present[0][0]
                required = required or (len(present) == len(hits) and all(h[1] for h in present))
    return None if found is None else (found, required)


def _items(doc: OpenAPIDocument, ref: Ref) -> Ref | None:
    for part in _branches(doc, ref):
        if (
            isinstance(part.node, dict)
            and "items" in part.node
            and isinstance(part.node["items"], dict)
        ):
            return Ref(part.node["items"], part.uri)
    return None


def _describe(doc: OpenAPIDocument, ref: Ref, required: bool) -> FieldInfo:
    types: set[str] = set()
    nullable = False
    enum: tuple[object, ...] | None = None
    fmt: str | None = None
    for part in _branches(doc, ref):
        node = part.node
        if not isinstance(node, dict):
            continue
        declared = node.get("type")
        for t in [declared] if isinstance(declared, str) else (declared or []):
            if t == "null":
                nullable = True
            else:
                types.add(str(t))
        nullable = nullable or bool(node.get("nullable")) or bool(node.get("x-nullable"))
        if "enum" in node:
            values = tuple(v for v in node["enum"] if v is not None)
            nullable = nullable or None in node["enum"]
            enum = values if enum is None else tuple(v for v in enum if v in values)
        fmt = fmt or node.get("format")
    return FieldInfo(frozenset(types), required, nullable, enum, fmt)


def records_schema(doc: OpenAPIDocument, body: Ref, records_path: str | None) -> Ref | None:
    """The schema of one record: follow ``records_path`` into the body, then into array items."""
    current: Ref | None = body
    for name in [p for p in (records_path or "").split(".") if p]:
        if current is None:
            return None
        hit = _child(doc, current, name)
        current = None if hit is None else hit[0]
    if current is None:
        return None
    items = _items(doc, current)
    return items if items is not None else current


def lookup_field(doc: OpenAPIDocument, record: Ref, dotted: str) -> FieldInfo | str:
    """The field at ``dotted`` (e.g. ``tags[].name``) in a record schema, or why it is not there."""
    current = record
    required_all = True
    parts = dotted.split(".")
    for index, raw in enumerate(parts):
        is_array = raw.endswith("[]")
        name = raw[:-2] if is_array else raw
        hit = _child(doc, current, name)
        if hit is None:
            known = sorted(property_names(doc, current))
            where = ".".join(parts[:index]) or "the record"
            listing = ", ".join(known) if known else "none documented"
            return f"'{name}' is not a field of {where} (fields: {listing})"
        current, required = hit
        required_all = required_all and required
        if is_array:
            items = _items(doc, current)
            if items is None:
                return f"'{name}' is not an array in the document, but the mapping says {raw}"
            current = items
    return _describe(doc, current, required_all)


def record_fields(doc: OpenAPIDocument, record: Ref) -> list[tuple[str, FieldInfo]]:
    """Every top-level field of a record schema with what the document says of it, sorted by name."""
    fields: list[tuple[str, FieldInfo]] = []
    for name in sorted(property_names(doc, record)):
        hit = _child(doc, record, name)
        if hit is not None:
            fields.append((name, _describe(doc, hit[0], hit[1])))
    return fields


def field_schema(doc: OpenAPIDocument, record: Ref, dotted: str) -> Ref | None:
    """The schema node of the field at ``dotted`` (array items for a trailing ``[]``), or None.

    :func:`lookup_field` answers *what* the document says of a field; this answers *where* it
    says it, so a finding can name the document line of the field's definition.
    """
    current = record
    for raw in dotted.split("."):
        is_array = raw.endswith("[]")
        hit = _child(doc, current, raw[:-2] if is_array else raw)
        if hit is None:
            return None
        current = hit[0]
        if is_array:
            items = _items(doc, current)
            if items is None:
                return None
            current = items
    return doc.deref(current.node, current.uri)
