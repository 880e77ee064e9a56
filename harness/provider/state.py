"""The simulator's memory: what clients created, per client, so POST then GET returns it.

Collections are found from the document's paths: ``/pets`` and ``/pets/{petId}`` share the
collection ``/pets``, keyed by ``petId``. Each collection starts with a seeded dataset (so a list
operation serves realistic, stable records and an item operation can find them), and every write
lands in the calling client's own copy. All of it runs on the engine's single event-loop thread,
so each transition is atomic without locks.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import re
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from harness.openapi.operations import CompiledOperation, CompiledSchema, ResponseSpec

_RECORD_ARRAYS = ("items", "data", "results", "records", "entries", "values", "content")
_PAGE = ("page", "page_number", "pageNumber")
_SIZE = ("per_page", "perPage", "page_size", "pageSize", "limit", "size")
_OFFSET = ("offset", "skip")
_TOTAL = ("total", "total_count", "totalCount", "count", "total_items", "totalItems")
_NEXT = ("next_page", "nextPage")
_HAS_MORE = ("has_more", "hasMore")


@dataclass(frozen=True)
class StoredResponse:
    """What the store answers: a status from the document and a JSON body (or none)."""

    status: int
    body: Any
    spec: ResponseSpec | None


@functools.lru_cache(maxsize=1024)
def _collection_of(path: str) -> tuple[str, str | None]:
    """``/pets/{petId}`` -> (``/pets``, ``petId``); ``/pets`` -> (``/pets``, None)."""
    match = re.fullmatch(r"(.*)/\{([^}/]+)\}", path)
    if match:
        return match.group(1) or "/", match.group(2)
    return path, None


def _concrete(template: str, params: dict[str, str]) -> str:
    if "{" not in template:
        return template
    return re.sub(r"\{([^}/]+)\}", lambda m: params.get(m.group(1), m.group(0)), template)


def _record_schema(body: CompiledSchema) -> tuple[CompiledSchema, str | None] | None:
    """The schema of one record in a list response, and the property that holds the list."""
    root = body.schema
    defs = root.get("$defs", {})

    def resolve(node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            node = defs.get(str(node["$ref"]).rsplit("/", 1)[-1], {})
        return node

    node = resolve(root)
    if isinstance(node, dict) and (
        node.get("type") == "array" or ("items" in node and "properties" not in node)
    ):
        return CompiledSchema({**resolve(node.get("items", {})), "$defs": defs}), None
    props = node.get("properties", {}) if isinstance(node, dict) else {}
    arrays = [
        name
        for name, prop in props.items()
        if isinstance(resolve(prop), dict) and resolve(prop).get("type") == "array"
    ]
    if not arrays:
        return None
    chosen = next((a for a in _RECORD_ARRAYS if a in arrays), arrays[0])
    items = resolve(resolve(props[chosen]).get("items", {}))
    return CompiledSchema({**items, "$defs": defs}), chosen


def _property_schemas(schema: CompiledSchema) -> dict[str, Any]:
    """Top-level property schemas (through ``$ref`` and ``allOf``), references resolved."""
    node = schema.schema
    defs = node.get("$defs", {})
    props: dict[str, Any] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        while isinstance(current, dict) and "$ref" in current:
            current = defs.get(str(current["$ref"]).rsplit("/", 1)[-1], {})
        if isinstance(current, dict):
            for name, prop in current.get("properties", {}).items():
                while isinstance(prop, dict) and "$ref" in prop:
                    prop = defs.get(str(prop["$ref"]).rsplit("/", 1)[-1], {})
                props.setdefault(name, prop)
            stack.extend(current.get("allOf", []))
    return props


def _write_only(schema: CompiledSchema | None) -> frozenset[str]:
    """Properties a provider accepts but never returns (passwords, keys)."""
    if schema is None:
        return frozenset()
    return frozenset(
        n
        for n, p in _property_schemas(schema).items()
        if isinstance(p, dict) and p.get("writeOnly") is True
    )


def _id_field(record: CompiledSchema, key_param: str | None) -> tuple[str | None, str]:
    """The record property that carries its id, and the kind of id to mint."""
    props = _property_schemas(record)
    candidates = ["id"]
    if key_param:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", key_param).lower()
        candidates += [key_param, snake]
    candidates += [name for name in props if name.lower().endswith("id")]
    name = next((c for c in candidates if c in props), None)
    if name is None:
        return None, "integer"
    prop = props[name]
    kind = prop.get("type") if isinstance(prop, dict) else None
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "string" and isinstance(prop, dict) and prop.get("format") == "uuid":
        return name, "uuid"
    return name, "integer" if kind in ("integer", "number") else "string"


@dataclass
class _Collection:
    template: str
    key_param: str | None
    record: CompiledSchema | None
    id_field: str | None
    id_kind: str

    @functools.cached_property
    def id_schema(self) -> CompiledSchema | None:
        """The id property's own schema, to mint ids that satisfy its pattern or format."""
        if self.record is None or self.id_field is None:
            return None
        prop = _property_schemas(self.record).get(self.id_field)
        if not isinstance(prop, dict):
            return None
        return CompiledSchema({**prop, "$defs": self.record.schema.get("$defs", {})})

    @functools.cached_property
    def hidden(self) -> frozenset[str]:
        return _write_only(self.record)


def _fit(spec: ResponseSpec | None, record: Any) -> Any:
    """``record`` as this response documents it: as is, inside the documented envelope
    (``{"ticket": ...}``, ``{"data": ...}``), or - if neither fits - a generated body."""
    if spec is None or spec.body is None or spec.body.is_valid(record):
        return record
    wrapper = spec.body.generator.static()
    if isinstance(wrapper, dict):
        for name in list(wrapper):
            trial = {**wrapper, name: record}
            if spec.body.is_valid(trial):
                return trial
    return wrapper


class ResourceStore:
    """Stateful answers for the operations whose meaning the document's paths make clear."""

    def __init__(
        self, operations: list[CompiledOperation], *, seed: int = 0, records: int = 3
    ) -> None:
        self._seed = seed
        self._records = records
        self._collections: dict[str, _Collection] = {}
        self._data: dict[tuple[str, str], dict[str, Any]] = {}
        self._counters: dict[tuple[str, str], int] = {}
        self._names: dict[int, tuple[set[str], frozenset[str]]] = {}
        self._shapes: dict[int, tuple[str | None, dict[str, Any]] | None] = {}
        self._next_may_be_null: dict[int, bool] = {}
        self._bases: dict[int, Any] = {}
        self.version = 0
        """Bumped by every write: a GET answered at one version is answered alike until then."""
        for op in operations:
            template, key_param = _collection_of(op.path)
            success = op.success()
            record: CompiledSchema | None = None
            if (
                op.method == "GET"
                and key_param is None
                and success is not None
                and success.body is not None
            ):
                found = _record_schema(success.body)
                record = found[0] if found else None
            elif (
                key_param is not None
                and op.method == "GET"
                and success is not None
                and success.body is not None
            ):
                record = success.body
            existing = self._collections.get(template)
            if existing is None:
                name, kind = (
                    _id_field(record, key_param) if record is not None else (None, "string")
                )
                self._collections[template] = _Collection(template, key_param, record, name, kind)
            else:
                if existing.key_param is None and key_param is not None:
                    existing.key_param = key_param
                if record is not None and (existing.record is None or key_param is None):
                    existing.record = record
                    existing.id_field, existing.id_kind = _id_field(record, existing.key_param)

    def reset(self) -> None:
        self.version += 1
        self._data.clear()
        self._counters.clear()

    def items(self, client: str, collection: str) -> list[Any]:
        """Every record a client's copy of a collection holds (the destination side reads this)."""
        template = self._template_for(collection)
        if template is None:
            return []
        records = self._records_of(client, collection, self._collections[template])
        copied: list[Any] = _clone(list(records.values()))
        return copied

    def snapshot(self) -> dict[str, dict[str, list[Any]]]:
        """client -> collection -> records, for the admin API and the stages."""
        out: dict[str, dict[str, list[Any]]] = {}
        for (client, collection), records in self._data.items():
            out.setdefault(client, {})[collection] = list(records.values())
        copied: dict[str, dict[str, list[Any]]] = _clone(out)
        return copied

    def _template_for(self, collection: str) -> str | None:
        if collection in self._collections:
            return collection
        for template in self._collections:
            if re.fullmatch(re.sub(r"\\\{[^}/]+\\\}", "[^/]+", re.escape(template)), collection):
                return template
        return None

    def _mint(self, coll: _Collection, index: int) -> Any:
        value = self._plain_id(coll, index)
        id_schema = coll.id_schema
        if id_schema is not None and not id_schema.is_valid(value):
            # The id has a shape of its own (``cus_`` + 14 characters): generate one, per index.
            value = id_schema.generator.varied(
                zlib.crc32(f"{self._seed}:{coll.template}:id:{index}".encode())
            )
        return value

    def _plain_id(self, coll: _Collection, index: int) -> Any:
        if coll.id_kind == "integer":
            return index
        if coll.id_kind == "uuid":
            return str(
                uuid.UUID(
                    int=zlib.crc32(f"{self._seed}:{coll.template}:{index}".encode()) << 64 | index,
                    version=4,
                )
            )
        return str(index)

    def _records_of(self, client: str, collection: str, coll: _Collection) -> dict[str, Any]:
        key = (client, collection)
        if key not in self._data:
            records: dict[str, Any] = {}
            if coll.record is not None:
                for index in range(1, self._records + 1):
                    seed = zlib.crc32(f"{self._seed}:{collection}:{index}".encode())
                    record = coll.record.generator.varied(seed)
                    if isinstance(record, dict) and coll.id_field is not None:
                        record[coll.id_field] = self._mint(coll, index)
                        if not coll.record.is_valid(record):
                            continue
                    record_id = (
                        record.get(coll.id_field, index)
                        if isinstance(record, dict) and coll.id_field
                        else index
                    )
                    records[str(record_id)] = record
            self._data[key] = records
            self._counters[key] = self._records
        return self._data[key]

    def answer(
        self,
        op: CompiledOperation,
        params: dict[str, str],
        query: dict[str, list[str]],
        body: Any,
        client: str,
    ) -> StoredResponse | None:
        """The stateful response, or None when the operation is not a plain collection/item one."""
        template, key_param = _collection_of(op.path)
        coll = self._collections.get(template)
        if coll is None:
            return None
        collection = _concrete(template, params)
        records = self._records_of(client, collection, coll)
        method = op.method
        if method != "GET":
            self.version += 1
        if key_param is None:
            if method == "GET":
                return self._list(op, records, query)
            if method == "POST":
                return self._create(op, coll, client, collection, records, body)
            return None
        key = params.get(key_param, "")
        hidden = coll.hidden
        if method == "GET":
            if key in records:
                spec = op.success()
                return StoredResponse(
                    self._status(op), _fit(spec, _without(records[key], hidden)), spec
                )
            return self._not_found(op)
        if method == "DELETE":
            removed = records.pop(key, None)
            if removed is None:
                return self._not_found(op)
            success = op.success((204, 200, 202))
            if success is None or success.body is None:
                return StoredResponse(success.status if success else 204, None, success)
            return StoredResponse(success.status, _fit(success, _without(removed, hidden)), success)
        if method in ("PUT", "PATCH"):
            if method == "PATCH":
                if key not in records:
                    return self._not_found(op)
                merged = (
                    {**records[key], **body}
                    if isinstance(records[key], dict) and isinstance(body, dict)
                    else body
                )
            else:
                merged = body
            created = key not in records
            records[key] = _clone(merged)
            status = 201 if created and 201 in op.responses else self._status(op)
            spec = op.responses.get(status) or op.success()
            return StoredResponse(status, _fit(spec, _without(merged, hidden)), spec)
        return None

    def _schema_names(
        self, shape: CompiledSchema, reply: CompiledSchema
    ) -> tuple[set[str], frozenset[str]]:
        """(property names of ``shape``, write-only names of ``reply``), computed once each."""
        key = id(shape) ^ (id(reply) << 1)
        cached = self._names.get(key)
        if cached is None:
            cached = self._names[key] = (_properties(shape), _write_only(reply))
        return cached

    @staticmethod
    def _status(op: CompiledOperation) -> int:
        success = op.success()
        return success.status if success else 200

    @staticmethod
    def _not_found(op: CompiledOperation) -> StoredResponse | None:
        spec = op.error(404)
        if spec is None:
            return None
        body = spec.body.generator.static() if spec.body is not None else None
        if isinstance(body, dict):
            for key, value in (
                ("title", "Not Found"),
                ("status", 404),
                ("detail", "no such resource"),
            ):
                if key in body and isinstance(body[key], type(value)):
                    body[key] = value
            if spec.body is not None and not spec.body.is_valid(body):
                body = spec.body.generator.static()
        return StoredResponse(404, body, spec)

    def _create(
        self,
        op: CompiledOperation,
        coll: _Collection,
        client: str,
        collection: str,
        records: dict[str, Any],
        body: Any,
    ) -> StoredResponse | None:
        spec = op.responses.get(201) or op.success()
        if spec is None or spec.body is None:
            return None
        key = (client, collection)
        self._counters[key] = self._counters.get(key, 0) + 1
        index = self._counters[key]
        # The stored record has the collection's record shape (what lists and item GETs
        # return); the reply wraps it the way this operation documents.
        shape = coll.record if coll.record is not None else spec.body
        known, reply_hidden = self._schema_names(shape, spec.body)
        hidden = coll.hidden | reply_hidden
        # A conforming base generated once per shape, overlaid with what the client sent:
        # generating a whole new record per request cost more than the rest of the request.
        base = self._bases.get(id(shape))
        if base is None:
            base = self._bases[id(shape)] = shape.generator.static()
        # A new top level over the base's nested values: records are never changed in place
        # (writes replace them whole, and readers outside the store get copies).
        record = dict(base) if isinstance(base, dict) else _clone(base)
        if isinstance(record, dict) and isinstance(body, dict):
            candidate = {
                **record,
                **{
                    k: v for k, v in body.items() if (k in record or k in known) and k not in hidden
                },
            }
            if shape.is_valid(candidate):
                record = candidate
        if isinstance(record, dict) and coll.id_field is not None:
            record[coll.id_field] = self._mint(coll, index)
        record = _without(record, hidden)
        record_key = (
            str(record.get(coll.id_field, index))
            if isinstance(record, dict) and coll.id_field
            else str(index)
        )
        # Not a second copy: ``record`` is new (a copy of the base overlaid with a body parsed
        # for this request), the store never changes a record in place (writes replace it),
        # and the engine encodes the reply at once.
        records[record_key] = record
        return StoredResponse(spec.status, _fit(spec, record), spec)

    def _list(
        self, op: CompiledOperation, records: dict[str, Any], query: dict[str, list[str]]
    ) -> StoredResponse | None:
        spec = op.success()
        if spec is None or spec.body is None:
            return None
        shape = self._list_shape(op, spec.body)
        if shape is None:
            return None
        holder, wrapper_template = shape
        total = len(records)
        page, size, offset = _paging(op, query, total)
        start = offset if offset is not None else (page - 1) * size
        start = max(0, start)
        # References, not copies: the engine serialises the page at once.
        chunk = list(
            itertools.islice(records.values(), min(start, total), min(start + size, total))
        )
        more = start + size < total
        if holder is None:
            return StoredResponse(spec.status, chunk, spec)
        wrapper = dict(wrapper_template)
        wrapper[holder] = chunk
        for name in wrapper_template:
            if name in _TOTAL:
                wrapper[name] = total
            elif name in _PAGE:
                wrapper[name] = page
            elif name in _SIZE:
                wrapper[name] = size
            elif name in _OFFSET:
                wrapper[name] = start
            elif name in _HAS_MORE:
                wrapper[name] = more
            elif name in _NEXT:
                wrapper[name] = page + 1 if more else None
        if not more and not self._next_may_be_null.get(id(op), True):
            for name in _NEXT:
                wrapper.pop(name, None)
        if not spec.body.is_valid(wrapper):
            wrapper = _clip(spec.body, wrapper)
        return StoredResponse(spec.status, wrapper, spec)

    def _list_shape(
        self, op: CompiledOperation, body: CompiledSchema
    ) -> tuple[str | None, dict[str, Any]] | None:
        """(the property holding the records, a template of the wrapper), worked out once per
        operation: the schema walk and the wrapper generation are the costly part of a list."""
        key = id(op)
        if key in self._shapes:
            return self._shapes[key]
        found = _record_schema(body)
        shape: tuple[str | None, dict[str, Any]] | None = None
        if found is not None:
            holder = found[1]
            template = body.generator.static() if holder is not None else {}
            if isinstance(template, dict):
                shape = (holder, template)
                probe = dict(template)
                required = _required(body)
                nexts = [n for n in _NEXT if n in probe]
                for name in nexts:
                    probe[name] = None
                # May a last page say "next_page: null", or must it leave the key out?
                self._next_may_be_null[key] = (
                    not nexts or body.is_valid(probe) or any(n in required for n in nexts)
                )
        self._shapes[key] = shape
        return shape


def _clone(value: Any) -> Any:
    """A deep copy of JSON data; an orjson round trip is several times faster than deepcopy."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError:  # integers beyond 64 bits
        return copy.deepcopy(value)


def _without(record: Any, hidden: frozenset[str]) -> Any:
    """``record`` without the write-only fields a provider never returns. Not a copy: the
    engine serialises replies at once, and stores copies of what it is given."""
    if isinstance(record, dict) and hidden:
        return {k: v for k, v in record.items() if k not in hidden}
    return record


def _properties(schema: CompiledSchema) -> set[str]:
    node = schema.schema
    defs = node.get("$defs", {})
    names: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        while isinstance(current, dict) and "$ref" in current:
            current = defs.get(str(current["$ref"]).rsplit("/", 1)[-1], {})
        if isinstance(current, dict):
            names.update(current.get("properties", {}))
            stack.extend(current.get("allOf", []))
    return names


def _required(schema: CompiledSchema) -> set[str]:
    node = schema.schema
    return set(node.get("required", [])) if isinstance(node, dict) else set()


def _clip(schema: CompiledSchema, wrapper: dict[str, Any]) -> dict[str, Any]:
    """Last resort: keep the generated wrapper's valid shape with as many real values as fit."""
    static = schema.generator.static()
    if not isinstance(static, dict):
        return wrapper
    for name, value in wrapper.items():
        trial = {**static, name: value}
        if schema.is_valid(trial):
            static = trial
    return static


def _paging(
    op: CompiledOperation, query: dict[str, list[str]], total: int
) -> tuple[int, int, int | None]:
    def param_default(names: tuple[str, ...]) -> tuple[str | None, int | None]:
        for param in op.parameters:
            if param.location == "query" and param.name in names:
                default = param.schema.schema.get("default") if param.schema else None
                return param.name, default if isinstance(default, int) else None
        return None, None

    def read(names: tuple[str, ...], fallback: int | None) -> int | None:
        name, default = param_default(names)
        if name is None:
            return fallback
        values = query.get(name)
        try:
            return int(values[-1]) if values else (default if default is not None else fallback)
        except ValueError:
            return fallback

    page = read(_PAGE, 1) or 1
    size = read(_SIZE, max(total, 1)) or max(total, 1)
    offset_name, _ = param_default(_OFFSET)
    offset = read(_OFFSET, 0) if offset_name else None
    return max(page, 1), max(size, 1), offset


def dumps(value: Any) -> bytes:
    """JSON bytes as the engine sends them (compact, UTF-8; orjson for speed). Integers beyond
    64 bits (which orjson refuses) fall back to the json module."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
