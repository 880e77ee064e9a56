"""Breaking changes between two versions of a provider document, from a client's point of view.

``harness contract diff OLD NEW [--spec SPEC]`` lists every change that matters to a client of
the provider - operations, parameters, request and response bodies, response codes and media
types, auth - each classified *breaking* or *non-breaking* by the rules below. With a spec, each
change is also marked *used* when it touches what the integration relies on (the operations it
calls, the fields its mapping reads, what it sends), and only used breaking changes fail.

Rules (the direction decides: a client *sends* requests and *reads* responses):

* operation removed or moved to another path: breaking; added: non-breaking;
* parameter removed, newly required, added as required: breaking; optional added or required
  made optional: non-breaking;
* request body: field removed, newly required, added as required, type changed (other than
  widened), enum narrowed, format added or changed, constraint tightened: breaking; the
  opposite changes are non-breaking;
* response body: field removed, made optional, type changed (other than narrowed), made
  nullable, enum widened (a mapping that translates the field meets a value it has no
  translation for), format removed or changed: breaking; field added, made required, enum
  narrowed, type narrowed (``number`` to ``integer``): non-breaking;
* response code removed: breaking; added: non-breaking; response media type or header removed:
  breaking;
* auth: a security scheme removed or changed (type, location, name, flow, token URL, scopes
  removed), an operation's security requirements changed or added: breaking; only new
  alternatives or scopes: non-breaking.

With a spec, a widened response enum stays breaking only when the mapping translates that field
(``transformation.kind: enum``); a field the integration copies as it is meets no missing
translation. Parameters of a used operation count as used (the spec does not list the query
parameters the integration sends), request body fields count when the integration sends them (or
when they become required and it does not), response fields count when the mapping reads them or
anything inside or around them, in 2xx bodies only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import unquote, urljoin, urlsplit

from harness.contract.relies import (
    node_paths,
    records_json_path,
    scheme_serves,
    security_schemes,
)
from harness.openapi.document import OpenAPIDocument, Operation, Ref
from harness.openapi.fields import records_schema
from harness.problems import PathPart
from harness.spec.model import IntegrationSpec

Direction = Literal["request", "response"]
_JSON_SUFFIX = "+json"
_LOWER_BOUNDS = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
_UPPER_BOUNDS = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")


@dataclass(frozen=True)
class Change:
    """One difference between the two documents, classified."""

    kind: str
    """``operation-removed``, ``field-removed``, ``type-changed``, ``enum-widened``..."""
    breaking: bool
    operation: str
    """The operationId (``METHOD /path`` when the document gives none); ``*`` for the document."""
    method: str
    path: str
    where: str
    """``response 200 body``, ``request body``, ``parameter query page``, ``security``..."""
    message: str
    json_path: str | None = None
    old_line: int | None = None
    new_line: int | None = None
    used: bool | None = None
    """With a spec: whether the integration relies on what changed. ``None``: no spec given."""
    note: str = ""

    @property
    def severity(self) -> str:
        return "breaking" if self.breaking else "non-breaking"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "operation": self.operation,
            "method": self.method,
            "path": self.path,
            "where": self.where,
            "json_path": self.json_path,
            "message": self.message,
            "old_line": self.old_line,
            "new_line": self.new_line,
            "used": self.used,
            "note": self.note,
        }


@dataclass(frozen=True)
class DiffReport:
    """Every change between OLD and NEW; with a spec, marked by what the integration uses."""

    old: str
    new: str
    changes: tuple[Change, ...]
    spec: str | None = None

    @property
    def breaking(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.breaking)

    @property
    def used_breaking(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.breaking and c.used)

    @property
    def exit_code(self) -> int:
        """1 when a used part breaks (with a spec) or anything breaks (without); else 0."""
        failing = self.used_breaking if self.spec is not None else self.breaking
        return 1 if failing else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "spec": self.spec,
            "breaking": len(self.breaking),
            "non_breaking": len(self.changes) - len(self.breaking),
            "used_breaking": None if self.spec is None else len(self.used_breaking),
            "changes": [c.as_dict() for c in self.changes],
        }


def diff_documents(
    old: OpenAPIDocument,
    new: OpenAPIDocument,
    spec: IntegrationSpec | None = None,
    spec_name: str | None = None,
) -> DiffReport:
    """Every change from ``old`` to ``new``, classified; marked used/unused when a spec is given."""
    changes = list(_Differ(old, new).run())
    if spec is not None:
        usage = _Usage.of(spec, old)
        changes = [usage.apply(c) for c in changes]
    changes.sort(key=lambda c: (not c.breaking, c.used is False, c.operation, c.where))
    return DiffReport(
        old=old.display,
        new=new.display,
        changes=tuple(changes),
        spec=None if spec is None else (spec_name or spec.name),
    )


# -- schema views ----------------------------------------------------------------------------------


@dataclass
class _View:
    """What one schema says, ``allOf`` merged, alternatives (``oneOf``/``anyOf``) united."""

    types: frozenset[str] | None = None
    """``None``: any type."""
    nullable: bool = False
    enum: tuple[Any, ...] | None = None
    format: str | None = None
    properties: dict[str, tuple[Any, str, tuple[PathPart, ...] | None]] = field(
        default_factory=dict
    )
    required: set[str] = field(default_factory=set)
    items: tuple[Any, str, tuple[PathPart, ...] | None] | None = None
    constraints: dict[str, Any] = field(default_factory=dict)
    pointer: tuple[PathPart, ...] | None = None
    read_only: bool = False
    write_only: bool = False


def _resolve(
    doc: OpenAPIDocument, node: Any, uri: str, pointer: tuple[PathPart, ...] | None
) -> tuple[Any, str, tuple[PathPart, ...] | None]:
    """Follow ``$ref``; the pointer is the target's path when it is in the document itself."""
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        target = urljoin(uri, node["$ref"])
        doc_uri, _, fragment = target.partition("#")
        pointer = (
            tuple(
                unquote(t).replace("~1", "/").replace("~0", "~") for t in fragment.split("/") if t
            )
            if doc_uri in ("", doc.uri)
            else None
        )
        resolved = doc.deref(node, uri)
        return resolved.node, resolved.uri, pointer
    return node, uri, pointer


def _view(
    doc: OpenAPIDocument, node: Any, uri: str, pointer: tuple[PathPart, ...] | None, depth: int = 0
) -> _View:
    node, uri, pointer = _resolve(doc, node, uri, pointer)
    view = _View(pointer=pointer)
    if not isinstance(node, dict) or depth > 16:
        return view
    declared = node.get("type")
    if declared is not None:
        names = [declared] if isinstance(declared, str) else list(declared)
        view.nullable = "null" in names
        view.types = frozenset(str(t) for t in names if t != "null")
    view.nullable = view.nullable or bool(node.get("nullable")) or bool(node.get("x-nullable"))
    if "enum" in node and isinstance(node["enum"], list):
        view.nullable = view.nullable or None in node["enum"]
        view.enum = tuple(v for v in node["enum"] if v is not None)
    if "const" in node:
        view.enum = (node["const"],)
    view.format = node.get("format")
    view.read_only = bool(node.get("readOnly"))
    view.write_only = bool(node.get("writeOnly"))
    for key in (*_LOWER_BOUNDS, *_UPPER_BOUNDS, "pattern", "multipleOf"):
        if key in node and not isinstance(node[key], bool):
            view.constraints[key] = node[key]
    base = pointer if pointer is not None else None
    for name, prop in (node.get("properties") or {}).items():
        view.properties[str(name)] = (
            prop,
            uri,
            None if base is None else (*base, "properties", str(name)),
        )
    view.required.update(str(r) for r in node.get("required") or [])
    if isinstance(node.get("items"), dict):
        view.items = (node["items"], uri, None if base is None else (*base, "items"))
    for index, part in enumerate(node.get("allOf") or []):
        sub = _view(doc, part, uri, None if base is None else (*base, "allOf", index), depth + 1)
        _merge(view, sub)
    for key in ("oneOf", "anyOf"):
        alternatives = node.get(key) or []
        if not alternatives:
            continue
        subs = [
            _view(doc, alt, uri, None if base is None else (*base, key, index), depth + 1)
            for index, alt in enumerate(alternatives)
        ]
        united = _View()
        kinds: set[str] = set()
        any_type = False
        for sub in subs:
            for name, prop in sub.properties.items():
                united.properties.setdefault(name, prop)
            if sub.types is None:
                any_type = True
            else:
                kinds |= sub.types
            united.nullable = united.nullable or sub.nullable
        united.required = set.intersection(*(s.required for s in subs)) if subs else set()
        if not any_type and kinds and view.types is None:
            view.types = frozenset(kinds)
        view.nullable = view.nullable or united.nullable
        for name, prop in united.properties.items():
            view.properties.setdefault(name, prop)
        view.required |= united.required
    return view


def _merge(view: _View, sub: _View) -> None:
    if sub.types is not None:
        view.types = sub.types if view.types is None else (view.types & sub.types) or sub.types
    view.nullable = view.nullable and (sub.nullable or sub.types is None)
    if sub.enum is not None:
        view.enum = sub.enum if view.enum is None else tuple(v for v in view.enum if v in sub.enum)
    view.format = view.format or sub.format
    for name, prop in sub.properties.items():
        view.properties.setdefault(name, prop)
    view.required |= sub.required
    view.items = view.items or sub.items
    for key, value in sub.constraints.items():
        view.constraints.setdefault(key, value)


# -- the differ ------------------------------------------------------------------------------------


def _normal_path(path: str) -> str:
    """``/pets/{petId}`` and ``/pets/{id}`` are the same route."""
    out, depth = [], 0
    for char in path:
        if char == "{":
            depth += 1
            if depth == 1:
                out.append("{}")
            continue
        if char == "}":
            depth = max(0, depth - 1)
            continue
        if depth == 0:
            out.append(char)
    return "".join(out)


def _key(op: Operation) -> tuple[str, str]:
    return op.method.upper(), _normal_path(op.path)


class _Differ:
    def __init__(self, old: OpenAPIDocument, new: OpenAPIDocument) -> None:
        self.old = old
        self.new = new
        self._paths = {id(old): node_paths(old.data), id(new): node_paths(new.data)}

    def where_of(self, doc: OpenAPIDocument, node: Any) -> tuple[PathPart, ...] | None:
        """The path of a node of ``doc`` (found by identity), when it is in the file itself."""
        return self._paths[id(doc)].get(id(node))

    def line(self, doc: OpenAPIDocument, pointer: tuple[PathPart, ...] | None) -> int | None:
        return None if pointer is None else doc.source.line_of(pointer)

    def run(self) -> Iterator[Change]:
        yield from self._servers()
        yield from self._schemes()
        old_ops = {_key(op): op for op in self.old.operations.values()}
        new_ops = {_key(op): op for op in self.new.operations.values()}
        new_by_id = {op.operation_id: op for op in self.new.operations.values()}
        moved: set[tuple[str, str]] = set()
        for key, op in old_ops.items():
            counterpart = new_ops.get(key)
            if counterpart is not None:
                yield from self._operation(op, counterpart)
                continue
            renamed = new_by_id.get(op.operation_id)
            if renamed is not None and _key(renamed) not in old_ops:
                moved.add(_key(renamed))
                yield self._change(
                    "operation-moved",
                    True,
                    op,
                    "operation",
                    f"{op.method.upper()} {op.path} moved to {renamed.method.upper()} "
                    f"{renamed.path}",
                    old=op.pointer,
                    new=renamed.pointer,
                )
                yield from self._operation(op, renamed)
                continue
            yield self._change(
                "operation-removed",
                True,
                op,
                "operation",
                f"{op.method.upper()} {op.path} was removed",
                old=op.pointer,
            )
        for key, op in new_ops.items():
            if key not in old_ops and key not in moved:
                yield self._change(
                    "operation-added",
                    False,
                    op,
                    "operation",
                    f"{op.method.upper()} {op.path} was added",
                    new=op.pointer,
                )

    def _change(
        self,
        kind: str,
        breaking: bool,
        op: Operation | None,
        where: str,
        message: str,
        *,
        json_path: str | None = None,
        old: tuple[PathPart, ...] | None = None,
        new: tuple[PathPart, ...] | None = None,
    ) -> Change:
        return Change(
            kind=kind,
            breaking=breaking,
            operation=op.operation_id if op is not None else "*",
            method=op.method.upper() if op is not None else "",
            path=op.path if op is not None else "",
            where=where,
            message=message,
            json_path=json_path,
            old_line=self.line(self.old, old),
            new_line=self.line(self.new, new),
        )

    # -- document level ----------------------------------------------------------------------

    def _servers(self) -> Iterator[Change]:
        old, new = _base_path(self.old), _base_path(self.new)
        if old is not None and new is not None and old != new:
            pointer = ("basePath",) if self.old.version == "2.0" else ("servers",)
            yield self._change(
                "server-path-changed",
                True,
                None,
                "servers",
                f"the base path changed from '{old or '/'}' to '{new or '/'}': every URL moves",
                old=pointer,
                new=("basePath",) if self.new.version == "2.0" else ("servers",),
            )

    def _schemes(self) -> Iterator[Change]:
        old, new = security_schemes(self.old), security_schemes(self.new)
        old_root = "securityDefinitions" if self.old.version == "2.0" else "components"
        new_root = "securityDefinitions" if self.new.version == "2.0" else "components"

        def pointer(root: str, name: str) -> tuple[PathPart, ...]:
            return (
                (root, name) if root == "securityDefinitions" else (root, "securitySchemes", name)
            )

        for name, scheme in old.items():
            if name not in new:
                change = self._change(
                    "security-scheme-removed",
                    True,
                    None,
                    f"security scheme {name}",
                    f"security scheme '{name}' ({_scheme_text(scheme)}) was removed",
                    old=pointer(old_root, name),
                )
                yield replace(change, note=_scheme_note(scheme))
                continue
            for breaking, message in _scheme_changes(scheme, new[name]):
                change = self._change(
                    "security-scheme-changed" if breaking else "security-scheme-extended",
                    breaking,
                    None,
                    f"security scheme {name}",
                    message,
                    old=pointer(old_root, name),
                    new=pointer(new_root, name),
                )
                yield replace(change, note=_scheme_note(scheme))
        for name, scheme in new.items():
            if name not in old:
                change = self._change(
                    "security-scheme-added",
                    False,
                    None,
                    f"security scheme {name}",
                    f"security scheme '{name}' ({_scheme_text(scheme)}) was added",
                    new=pointer(new_root, name),
                )
                yield replace(change, note=_scheme_note(scheme))

    # -- operations --------------------------------------------------------------------------

    def _operation(self, old: Operation, new: Operation) -> Iterator[Change]:
        yield from self._parameters(old, new)
        yield from self._request_body(old, new)
        yield from self._responses(old, new)
        yield from self._security(old, new)

    def _parameters(self, old: Operation, new: Operation) -> Iterator[Change]:
        def index(doc: OpenAPIDocument, op: Operation) -> dict[tuple[str, str], Ref]:
            out: dict[tuple[str, str], Ref] = {}
            for ref in doc.parameters(op):
                where = str(ref.node.get("in"))
                if where == "body":
                    continue
                name = str(ref.node.get("name"))
                out[(where, name.lower() if where == "header" else name)] = ref
            return out

        old_params, new_params = index(self.old, old), index(self.new, new)
        for (where, name), ref in old_params.items():
            label = f"parameter {where} {name}"
            other = new_params.get((where, name))
            old_at = self.where_of(self.old, ref.node)
            if other is None:
                yield self._change(
                    "parameter-removed",
                    True,
                    old,
                    label,
                    f"{where} parameter '{name}' was removed",
                    old=old_at,
                )
                continue
            new_at = self.where_of(self.new, other.node)
            was, now = _param_required(ref), _param_required(other)
            if now and not was:
                yield self._change(
                    "parameter-now-required",
                    True,
                    old,
                    label,
                    f"{where} parameter '{name}' became required",
                    old=old_at,
                    new=new_at,
                )
            elif was and not now:
                yield self._change(
                    "parameter-now-optional",
                    False,
                    old,
                    label,
                    f"{where} parameter '{name}' became optional",
                    old=old_at,
                    new=new_at,
                )
            o_schema = _param_schema(self.old, ref)
            n_schema = _param_schema(self.new, other)
            if o_schema is not None and n_schema is not None:
                yield from self._schema(
                    old,
                    label,
                    "request",
                    o_schema,
                    n_schema,
                    json_path=None,
                    seen=set(),
                    old_pointer=old_at,
                    new_pointer=new_at,
                )
        for (where, name), ref in new_params.items():
            if (where, name) in old_params:
                continue
            required = _param_required(ref)
            yield self._change(
                "parameter-added-required" if required else "parameter-added",
                required,
                old,
                f"parameter {where} {name}",
                f"{'required' if required else 'optional'} {where} parameter '{name}' was added",
                new=self.where_of(self.new, ref.node),
            )

    def _request_body(self, old: Operation, new: Operation) -> Iterator[Change]:
        o_types, o_schema, o_required = _request(self.old, old)
        n_types, n_schema, n_required = _request(self.new, new)
        where = "request body"
        if o_types and not n_types:
            yield self._change(
                "request-body-removed",
                True,
                old,
                where,
                "the request body was removed",
                old=(*old.pointer, "requestBody"),
            )
            return
        if n_required and not o_required:
            yield self._change(
                "request-body-required",
                True,
                old,
                where,
                "a request body became required",
                new=(*new.pointer, "requestBody"),
            )
        for media in o_types:
            if media not in n_types:
                yield self._change(
                    "request-media-type-removed",
                    True,
                    old,
                    where,
                    f"request media type {media} is no longer accepted",
                    old=(*old.pointer, "requestBody"),
                )
        for media in n_types:
            if o_types and media not in o_types:
                yield self._change(
                    "request-media-type-added",
                    False,
                    old,
                    where,
                    f"request media type {media} is now accepted",
                    new=(*new.pointer, "requestBody"),
                )
        if o_schema is not None and n_schema is not None:
            yield from self._schema(old, where, "request", o_schema, n_schema, "$", set())

    def _responses(self, old: Operation, new: Operation) -> Iterator[Change]:
        o_responses = self.old.deref(old.definition.get("responses") or {}).node
        n_responses = self.new.deref(new.definition.get("responses") or {}).node
        for status in o_responses:
            where = f"response {status}"
            pointer = (*old.pointer, "responses", str(status))
            if status not in n_responses:
                yield self._change(
                    "response-removed",
                    True,
                    old,
                    where,
                    f"response {status} is no longer documented",
                    old=pointer,
                )
                continue
            new_pointer = (*new.pointer, "responses", str(status))
            o_types, o_schema, o_headers = _response(self.old, o_responses[status], pointer)
            n_types, n_schema, n_headers = _response(self.new, n_responses[status], new_pointer)
            for media in o_types:
                if media not in n_types:
                    yield self._change(
                        "response-media-type-removed",
                        True,
                        old,
                        where,
                        f"response {status} no longer comes as {media}",
                        old=pointer,
                    )
            for media in n_types:
                if media not in o_types:
                    yield self._change(
                        "response-media-type-added",
                        False,
                        old,
                        where,
                        f"response {status} may now come as {media}",
                        new=new_pointer,
                    )
            for header in o_headers:
                if header not in n_headers:
                    yield self._change(
                        "response-header-removed",
                        True,
                        old,
                        where,
                        f"response {status} no longer documents header {header}",
                        old=pointer,
                    )
            if o_schema is not None and n_schema is not None:
                yield from self._schema(
                    old, f"{where} body", "response", o_schema, n_schema, "$", set()
                )
        for status in n_responses:
            if status not in o_responses:
                yield self._change(
                    "response-added",
                    False,
                    old,
                    f"response {status}",
                    f"response {status} is now documented",
                    new=(*new.pointer, "responses", str(status)),
                )

    def _security(self, old: Operation, new: Operation) -> Iterator[Change]:
        was = _requirements(self.old, old)
        now = _requirements(self.new, new)
        if was == now:
            return
        where = "security"
        pointer = (*new.pointer, "security") if "security" in new.definition else ("security",)
        if was is None:
            yield self._change(
                "auth-added",
                True,
                old,
                where,
                f"the operation now requires {_requirements_text(now)}",
                new=pointer,
            )
        elif now is None:
            yield self._change(
                "auth-removed",
                False,
                old,
                where,
                "the operation no longer requires credentials",
                new=pointer,
            )
        elif was <= now:
            yield self._change(
                "auth-extended",
                False,
                old,
                where,
                f"the operation also accepts {_requirements_text(now - was)}",
                new=pointer,
            )
        else:
            yield self._change(
                "auth-changed",
                True,
                old,
                where,
                f"the operation required {_requirements_text(was)}, now {_requirements_text(now)}",
                new=pointer,
            )

    # -- schemas -------------------------------------------------------------------------------

    def _schema(
        self,
        op: Operation,
        where: str,
        direction: Direction,
        old: Ref,
        new: Ref,
        json_path: str | None,
        seen: set[tuple[int, int]],
        old_pointer: tuple[PathPart, ...] | None = None,
        new_pointer: tuple[PathPart, ...] | None = None,
    ) -> Iterator[Change]:
        o_node, o_uri, o_pointer = _resolve(self.old, old.node, old.uri, old_pointer)
        n_node, n_uri, n_pointer = _resolve(self.new, new.node, new.uri, new_pointer)
        o_pointer = self.where_of(self.old, o_node) or o_pointer
        n_pointer = self.where_of(self.new, n_node) or n_pointer
        key = (id(o_node), id(n_node))
        if key in seen:
            return
        seen.add(key)
        o = _view(self.old, o_node, o_uri, o_pointer)
        n = _view(self.new, n_node, n_uri, n_pointer)
        request = direction == "request"
        at = f" at {json_path}" if json_path and json_path != "$" else ""

        def change(kind: str, breaking: bool, message: str) -> Change:
            return replace(
                self._change(
                    kind, breaking, op, where, message, json_path=json_path, old=o.pointer
                ),
                new_line=self.line(self.new, n.pointer),
            )

        # types
        if o.types != n.types:
            old_types = _widen(o.types)
            new_types = _widen(n.types)
            widened = new_types is None or (old_types is not None and old_types <= new_types)
            narrowed = old_types is None or (new_types is not None and new_types <= old_types)
            breaking = not widened if request else not narrowed
            yield change(
                "type-changed",
                breaking,
                f"type changed from {_types(o.types)} to {_types(n.types)}{at}",
            )
        if o.nullable != n.nullable:
            if n.nullable:
                yield change("nullable-added", not request, f"may now be null{at}")
            else:
                yield change("nullable-removed", request, f"may no longer be null{at}")
        if o.format != n.format:
            if o.format is None:
                yield change("format-added", request, f"format {n.format} added{at}")
            elif n.format is None:
                yield change("format-removed", not request, f"format {o.format} removed{at}")
            else:
                yield change(
                    "format-changed", True, f"format changed from {o.format} to {n.format}{at}"
                )
        yield from self._enums(o, n, request, change, at)
        for keyword in (*_LOWER_BOUNDS, *_UPPER_BOUNDS, "pattern", "multipleOf"):
            before, after = o.constraints.get(keyword), n.constraints.get(keyword)
            if before == after:
                continue
            tightened = _tightened(keyword, before, after)
            yield change(
                "constraint-tightened" if tightened else "constraint-loosened",
                request and tightened,
                f"{keyword} changed from {_show(before)} to {_show(after)}{at}",
            )
        if (
            o.types is not None
            and n.types is not None
            and not (_widen(o.types) or set()) & (_widen(n.types) or set())
        ):
            return  # a different kind of value altogether: its insides are not comparable
        yield from self._properties(op, where, direction, o, n, json_path, seen)
        if o.items is not None and n.items is not None:
            base = json_path or "$"
            yield from self._schema(
                op,
                where,
                direction,
                Ref(o.items[0], o.items[1]),
                Ref(n.items[0], n.items[1]),
                f"{base}[*]",
                seen,
                o.items[2],
                n.items[2],
            )

    def _enums(self, o: _View, n: _View, request: bool, change: Any, at: str) -> Iterator[Change]:
        if o.enum == n.enum:
            return
        if o.enum is None and n.enum is not None:
            yield change("enum-narrowed", request, f"values restricted to {_values(n.enum)}{at}")
            return
        if n.enum is None and o.enum is not None:
            yield change(
                "enum-widened", not request, f"any value is allowed now (was {_values(o.enum)}){at}"
            )
            return
        assert o.enum is not None and n.enum is not None
        removed = [v for v in o.enum if v not in n.enum]
        added = [v for v in n.enum if v not in o.enum]
        if removed:
            yield change("enum-narrowed", request, f"enum value(s) {_values(removed)} removed{at}")
        if added:
            yield change("enum-widened", not request, f"enum value(s) {_values(added)} added{at}")

    def _properties(
        self,
        op: Operation,
        where: str,
        direction: Direction,
        o: _View,
        n: _View,
        json_path: str | None,
        seen: set[tuple[int, int]],
    ) -> Iterator[Change]:
        request = direction == "request"
        base = json_path or "$"
        o_props = self._visible(self.old, o, direction)
        n_props = self._visible(self.new, n, direction)
        for name, (node, uri, pointer) in o_props.items():
            path = f"{base}.{name}"
            if name not in n_props:
                yield Change(
                    kind="field-removed",
                    breaking=True,
                    operation=op.operation_id,
                    method=op.method.upper(),
                    path=op.path,
                    where=where,
                    message=f"field '{name}' was removed{_at(path)}",
                    json_path=path,
                    old_line=self.line(self.old, pointer),
                    new_line=self.line(self.new, n.pointer),
                )
                continue
            n_node, n_uri, n_pointer = n_props[name]
            was, now = name in o.required, name in n.required
            if was != now:
                if request:
                    kind, breaking = (
                        ("field-now-required", True) if now else ("field-now-optional", False)
                    )
                else:
                    kind, breaking = (
                        ("field-now-optional", True) if was else ("field-now-required", False)
                    )
                yield Change(
                    kind=kind,
                    breaking=breaking,
                    operation=op.operation_id,
                    method=op.method.upper(),
                    path=op.path,
                    where=where,
                    message=f"field '{name}' became {'required' if now else 'optional'}{_at(path)}",
                    json_path=path,
                    old_line=self.line(self.old, pointer),
                    new_line=self.line(self.new, n_pointer),
                )
            yield from self._schema(
                op,
                where,
                direction,
                Ref(node, uri),
                Ref(n_node, n_uri),
                path,
                seen,
                pointer,
                n_pointer,
            )
        for name, (_node, _uri, pointer) in n_props.items():
            if name in o_props:
                continue
            path = f"{base}.{name}"
            required = name in n.required
            yield Change(
                kind="field-added-required" if request and required else "field-added",
                breaking=request and required,
                operation=op.operation_id,
                method=op.method.upper(),
                path=op.path,
                where=where,
                message=f"{'required ' if required else ''}field '{name}' was added{_at(path)}",
                json_path=path,
                new_line=self.line(self.new, pointer),
            )

    def _visible(
        self, doc: OpenAPIDocument, view: _View, direction: Direction
    ) -> dict[str, tuple[Any, str, tuple[PathPart, ...] | None]]:
        """Properties seen in this direction: requests never carry readOnly ones, responses
        never writeOnly ones."""
        out = {}
        for name, (node, uri, pointer) in view.properties.items():
            resolved, _uri, _pointer = _resolve(doc, node, uri, pointer)
            if isinstance(resolved, dict):
                if direction == "request" and resolved.get("readOnly") is True:
                    continue
                if direction == "response" and resolved.get("writeOnly") is True:
                    continue
            out[name] = (node, uri, pointer)
        return out


# -- helpers ---------------------------------------------------------------------------------------


def _at(path: str) -> str:
    return f" ({path})"


def _widen(types: frozenset[str] | None) -> frozenset[str] | None:
    """Integers are numbers: ``number`` includes ``integer`` when comparing."""
    if types is None:
        return None
    return types | ({"integer"} if "number" in types else set())


def _tightened(key: str, before: Any, after: Any) -> bool:
    if key in _LOWER_BOUNDS:
        return before is None or (after is not None and after > before)
    if key in _UPPER_BOUNDS:
        return before is None or (after is not None and after < before)
    return after is not None  # pattern, multipleOf: new or different restricts


def _types(types: frozenset[str] | None) -> str:
    return "any" if types is None else " or ".join(sorted(types)) or "any"


def _show(value: Any) -> str:
    return "none" if value is None else repr(value)


def _values(values: Any) -> str:
    return ", ".join(repr(v) for v in values)


def _param_required(ref: Ref) -> bool:
    return bool(ref.node.get("required")) or ref.node.get("in") == "path"


def _param_schema(doc: OpenAPIDocument, ref: Ref) -> Ref | None:
    if doc.version == "2.0":
        keep = {k: v for k, v in ref.node.items() if k not in ("name", "in", "required")}
        return Ref(keep, ref.uri)
    if "schema" in ref.node:
        return Ref(ref.node["schema"], ref.uri)
    return None


def _is_json(media: str) -> bool:
    bare = media.split(";", 1)[0].strip().lower()
    return bare == "application/json" or bare.endswith(_JSON_SUFFIX)


def _request(doc: OpenAPIDocument, op: Operation) -> tuple[list[str], Ref | None, bool]:
    """Media types, the body schema (JSON first, else form) and whether a body is required."""
    if doc.version == "2.0":
        for ref in doc.parameters(op):
            if ref.node.get("in") == "body":
                consumes = (
                    op.definition.get("consumes")
                    or doc.data.get("consumes")
                    or ["application/json"]
                )
                body_schema = Ref(ref.node.get("schema", {}), ref.uri)
                return [str(m) for m in consumes], body_schema, bool(ref.node.get("required"))
        return [], None, False
    raw = op.definition.get("requestBody")
    if raw is None:
        return [], None, False
    body = doc.deref(raw)
    content = body.node.get("content") or {}
    types = [str(m) for m in content]
    chosen = next((m for m in content if _is_json(str(m))), None) or next(iter(content), None)
    schema: Ref | None = None
    if chosen is not None and isinstance(content[chosen], dict) and "schema" in content[chosen]:
        schema = Ref(content[chosen]["schema"], body.uri)
    return types, schema, bool(body.node.get("required"))


def _response(
    doc: OpenAPIDocument, raw: Any, pointer: tuple[PathPart, ...]
) -> tuple[list[str], Ref | None, list[str]]:
    """Media types, the JSON body schema and the header names of one documented response."""
    ref = doc.deref(raw)
    node = ref.node if isinstance(ref.node, dict) else {}
    headers = [str(h) for h in (node.get("headers") or {})]
    if doc.version == "2.0":
        if "schema" not in node:
            return [], None, headers
        return ["application/json"], Ref(node["schema"], ref.uri), headers
    content = node.get("content") or {}
    types = [str(m) for m in content]
    chosen = next((m for m in content if _is_json(str(m))), None)
    schema: Ref | None = None
    if chosen is not None and isinstance(content[chosen], dict) and "schema" in content[chosen]:
        schema = Ref(content[chosen]["schema"], ref.uri)
    return types, schema, headers


Requirements = frozenset[frozenset[tuple[str, frozenset[str]]]]


def _requirements(doc: OpenAPIDocument, op: Operation) -> Requirements | None:
    """The operation's alternatives of (scheme, scopes); ``None`` when it needs no credentials."""
    raw = op.definition.get("security", doc.data.get("security"))
    if not raw:
        return None
    alternatives = []
    for requirement in raw:
        if not isinstance(requirement, dict) or not requirement:
            return None  # an empty alternative: credentials are optional
        alternatives.append(
            frozenset((str(k), frozenset(map(str, v or []))) for k, v in requirement.items())
        )
    return frozenset(alternatives)


def _requirements_text(requirements: Requirements | None) -> str:
    if not requirements:
        return "no credentials"
    parts = []
    for alternative in sorted(requirements, key=lambda a: sorted(n for n, _ in a)):
        parts.append(
            " + ".join(
                f"{name}" + (f" [{', '.join(sorted(scopes))}]" if scopes else "")
                for name, scopes in sorted(alternative)
            )
        )
    return " or ".join(parts)


def _scheme_text(scheme: dict[str, Any]) -> str:
    kind = str(scheme.get("type", "?"))
    if kind == "http":
        return f"http {scheme.get('scheme', '?')}"
    if kind == "apiKey":
        return f"apiKey in {scheme.get('in')} '{scheme.get('name')}'"
    return kind


def _scheme_note(scheme: dict[str, Any]) -> str:
    """Which spec auth kinds this scheme serves (how usage is decided for scheme changes)."""
    kinds = [
        kind
        for kind in ("oauth2_client_credentials", "api_key", "basic", "bearer")
        if scheme_serves(scheme, kind)
    ]
    return "serves: " + ", ".join(kinds) if kinds else ""


def _flows(scheme: dict[str, Any]) -> dict[str, dict[str, Any]]:
    flows = scheme.get("flows")
    if isinstance(flows, dict):
        return {str(k): v for k, v in flows.items() if isinstance(v, dict)}
    if scheme.get("type") == "oauth2":  # Swagger 2.0: one flow on the scheme itself
        return {str(scheme.get("flow")): scheme}
    return {}


def _scheme_changes(old: dict[str, Any], new: dict[str, Any]) -> Iterator[tuple[bool, str]]:
    for key in ("type", "in", "name", "scheme"):
        if str(old.get(key, "")).lower() != str(new.get(key, "")).lower():
            yield True, f"{key} changed from {old.get(key)!r} to {new.get(key)!r}"
    old_flows, new_flows = _flows(old), _flows(new)
    for name, flow in old_flows.items():
        other = new_flows.get(name)
        if other is None:
            yield True, f"flow {name} was removed"
            continue
        for url in ("tokenUrl", "authorizationUrl", "refreshUrl"):
            if flow.get(url) != other.get(url):
                yield (
                    True,
                    f"flow {name} {url} changed from {flow.get(url)!r} to {other.get(url)!r}",
                )
        removed = sorted(set(flow.get("scopes") or {}) - set(other.get("scopes") or {}))
        added = sorted(set(other.get("scopes") or {}) - set(flow.get("scopes") or {}))
        if removed:
            yield True, f"flow {name} no longer offers scope(s) {', '.join(removed)}"
        if added:
            yield False, f"flow {name} also offers scope(s) {', '.join(added)}"
    for name in new_flows:
        if name not in old_flows:
            yield False, f"flow {name} was added"


def _base_path(doc: OpenAPIDocument) -> str | None:
    if doc.version == "2.0":
        return str(doc.data.get("basePath") or "").rstrip("/")
    servers = doc.data.get("servers") or []
    if not servers or not isinstance(servers[0], dict):
        return None
    url = str(servers[0].get("url", ""))
    return None if "{" in url else urlsplit(url).path.rstrip("/")


# -- usage -----------------------------------------------------------------------------------------


def _segments(json_path: str) -> tuple[str, ...]:
    return tuple(s for s in json_path.replace("[*]", ".[*]").split(".") if s and s != "$")


def _related(a: str, b: str) -> bool:
    """One path is inside the other (or they are the same)."""
    x, y = _segments(a), _segments(b)
    shorter = min(len(x), len(y))
    return x[:shorter] == y[:shorter]


@dataclass(frozen=True)
class _Usage:
    """What the integration relies on in the old document, by operation key."""

    operations: frozenset[str]
    reads: dict[str, tuple[str, ...]]
    """operationId -> JSON paths of the 2xx response fields the integration reads."""
    sends: dict[str, tuple[str, ...]]
    """operationId -> JSON paths of the request body fields it sends."""
    translated: frozenset[tuple[str, str]]
    """(operationId, JSON path) of response fields an enum mapping translates."""
    auth_kind: str | None

    @classmethod
    def of(cls, spec: IntegrationSpec, doc: OpenAPIDocument) -> _Usage:
        operations: set[str] = set()
        reads: dict[str, tuple[str, ...]] = {}
        sends: dict[str, tuple[str, ...]] = {}
        translated: set[tuple[str, str]] = set()
        auth = spec.authentication
        if auth is not None and auth.token_operation:
            operations.add(auth.token_operation)
            reads[auth.token_operation] = (
                "$.access_token",
                "$.token_type",
                "$.expires_in",
                "$.refresh_token",
            )
            sent = ["$.grant_type", "$.client_id", "$.client_secret"]
            if auth.scopes:
                sent.append("$.scope")
            if auth.refresh_tokens:
                sent.append("$.refresh_token")
            sends[auth.token_operation] = tuple(sent)
        mapping = spec.data_mapping
        if mapping is not None:
            op_id = mapping.source_operation
            operations.add(op_id)
            op = doc.operations.get(op_id)
            body = doc.response_body_schema(op) if op is not None else None
            record = records_schema(doc, body, mapping.records_path) if body else None
            base = records_json_path(doc, body, mapping.records_path) if record else "$"
            paths = []
            for row in mapping.fields:
                path = base + "." + row.source.replace("[]", "[*]")
                paths.append(path)
                if row.transformation is not None and row.transformation.kind == "enum":
                    translated.add((op_id, path))
            reads[op_id] = tuple(paths)
        return cls(
            frozenset(operations),
            reads,
            sends,
            frozenset(translated),
            None if auth is None else auth.kind,
        )

    def apply(self, change: Change) -> Change:
        used = self._used(change)
        if (
            used
            and change.kind == "enum-widened"
            and change.where.startswith("response")
            and change.json_path is not None
            and (change.operation, change.json_path) not in self.translated
        ):
            return replace(
                change,
                used=True,
                breaking=False,
                note="the mapping copies this field as it is: a new value needs no translation",
            )
        return replace(change, used=used)

    def _used(self, change: Change) -> bool:
        if change.operation == "*":
            if change.where.startswith("security scheme"):
                serves = change.note.removeprefix("serves: ").split(", ")
                return self.auth_kind is not None and self.auth_kind in serves
            return True  # the base path: every operation moves
        if change.operation not in self.operations:
            return False
        where = change.where
        if where.startswith("request body"):
            sent = self.sends.get(change.operation, ())
            if change.json_path is None or change.json_path == "$":
                return True
            touches = any(_related(change.json_path, s) for s in sent)
            if change.kind in ("field-added-required", "field-now-required"):
                return not touches  # newly required and the integration does not send it
            return touches
        if where.startswith("response") and where.endswith("body"):
            status = where.split()[1]
            if not status.startswith("2"):
                return False  # the integration reads records from 2xx bodies only
            read = self.reads.get(change.operation, ())
            return change.json_path is None or any(_related(change.json_path, r) for r in read)
        return True  # the operation itself, parameters, responses, security, media types
