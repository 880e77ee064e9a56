"""Operations compiled for serving: routing patterns, parameter and body validators, responses.

Everything that can be decided once per document is decided here, at start-up, so the engine's
per-request work is a dictionary lookup, a regular-expression match and jsonschema_rs calls.
Validation errors are worded by ``jsonschema`` (slower, clearer), only when a request fails.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import parse_qs, unquote

import jsonschema
import jsonschema_rs
import orjson

from harness.openapi.document import OpenAPIDocument, Operation, Ref
from harness.openapi.generate import GenerationError, ValueGenerator
from harness.openapi.jsonschema import Direction, SchemaConverter

_PARAM = re.compile(r"\{([^}/]+)\}")


@dataclass(frozen=True)
class Violation:
    """One way a request breaks the document: where (path/query/header/body), what, why."""

    location: str
    name: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"in": self.location, "name": self.name, "message": self.message}

    def __str__(self) -> str:
        return (
            f"{self.location} {self.name}: {self.message}"
            if self.name
            else f"{self.location}: {self.message}"
        )


@dataclass
class CompiledSchema:
    """A standalone JSON Schema with a fast validator, a clear one, and a value generator."""

    schema: dict[str, Any]
    fast: Any = field(init=False, repr=False)
    _generator: ValueGenerator | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.fast = jsonschema_rs.validator_for(self.schema, validate_formats=True)

    def is_valid(self, value: Any) -> bool:
        return bool(self.fast.is_valid(value))

    def messages(self, value: Any) -> list[tuple[str, str]]:
        """(JSON path, message) for every violation, worded for humans."""
        validator = jsonschema.Draft202012Validator(
            self.schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        out = []
        for error in sorted(
            validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path))
        ):
            out.append((error.json_path, error.message))
        return out or [("$", "does not match the schema")]

    @property
    def generator(self) -> ValueGenerator:
        if self._generator is None:
            self._generator = ValueGenerator(self.schema)
        return self._generator


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str
    required: bool
    schema: CompiledSchema | None
    kind: str | None
    item_kind: str | None
    explode: bool


@dataclass(frozen=True)
class ResponseSpec:
    """One documented response: its status, body media type and schema, documented headers."""

    status: int
    media_type: str | None
    body: CompiledSchema | None
    headers: dict[str, CompiledSchema | None]
    required_headers: tuple[str, ...]


@dataclass
class CompiledOperation:
    operation: Operation
    pattern: re.Pattern[str] | None
    parameters: list[Parameter]
    body_required: bool
    bodies: dict[str, CompiledSchema | None]
    responses: dict[int, ResponseSpec]
    default_response: ResponseSpec | None
    secured: bool
    _success_memo: dict[tuple[int, ...], ResponseSpec | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # Cached: the simulator reads these several times per request under load.
    @cached_property
    def operation_id(self) -> str:
        return self.operation.operation_id

    @cached_property
    def method(self) -> str:
        return self.operation.method.upper()

    @cached_property
    def path(self) -> str:
        return self.operation.path

    @cached_property
    def header_names(self) -> tuple[str, ...]:
        """The lower-cased names of the header parameters (what a request's validity may
        depend on besides its URL and body)."""
        return tuple(p.name.lower() for p in self.parameters if p.location == "header")

    def success(self, preferred: tuple[int, ...] = (200, 201, 202, 204)) -> ResponseSpec | None:
        """The response to serve on success: the first of ``preferred`` documented, else any 2xx.

        Computed once per ``preferred``: the same object comes back every time (callers cache
        by it)."""
        memo = self._success_memo
        if preferred not in memo:
            memo[preferred] = self._success(preferred)
        return memo[preferred]

    def _success(self, preferred: tuple[int, ...]) -> ResponseSpec | None:
        for status in preferred:
            if status in self.responses:
                return self.responses[status]
        twos = sorted(s for s in self.responses if 200 <= s < 300)
        if twos:
            return self.responses[twos[0]]
        if self.default_response is not None:
            # Only a `default` response: it is what the provider answers, success included.
            return replace(self.default_response, status=200)
        redirects = sorted(s for s in self.responses if 300 <= s < 400)
        return self.responses[redirects[0]] if redirects else None

    def rejection(self, preferred: int, *, path_only: bool = False) -> ResponseSpec | None:
        """The documented response for a rejected request: ``preferred`` if documented, else
        another 4xx the operation documents (400 first), else ``default``. A malformed path
        parameter names no resource, so a documented 404 answers it when 400 is not documented."""
        if preferred in self.responses:
            return self.responses[preferred]
        if path_only and 400 not in self.responses and 404 in self.responses:
            return self.responses[404]
        for status in (400, 422, 415, *sorted(s for s in self.responses if 400 <= s < 500)):
            if status in self.responses and status not in (401, 403, 404, 429):
                return self.responses[status]
        return self.default_response

    def error(self, status: int) -> ResponseSpec | None:
        return self.responses.get(status) or self.default_response

    # --- request validation ---------------------------------------------------------------

    def validate(
        self,
        path_params: dict[str, str],
        query: str,
        headers: dict[str, str],
        body: bytes,
        content_type: str | None,
    ) -> tuple[list[Violation], Any]:
        """Every violation of the request against the document, and the parsed body."""
        problems: list[Violation] = []
        parsed_query = parse_qs(query, keep_blank_values=True) if query else {}
        for param in self.parameters:
            if param.location == "path":
                raw: list[str] | None = (
                    [path_params[param.name]] if param.name in path_params else None
                )
            elif param.location == "query":
                raw = parsed_query.get(param.name)
            elif param.location == "header":
                value = headers.get(param.name.lower())
                raw = None if value is None else [value]
            else:
                continue
            if raw is None:
                if param.required:
                    problems.append(Violation(param.location, param.name, "required but missing"))
                continue
            if param.schema is None:
                continue
            value_ = _coerce(raw, param)
            if not param.schema.is_valid(value_):
                for _path, message in param.schema.messages(value_):
                    problems.append(Violation(param.location, param.name, message))
        parsed_body: Any = None
        if not body:
            if self.body_required:
                problems.append(Violation("body", "", "a request body is required"))
            return problems, None
        if not self.bodies:
            return problems, None
        media = (content_type or "").split(";", 1)[0].strip().lower()
        schema_key = _match_media(media, self.bodies)
        if schema_key is None:
            problems.append(
                Violation(
                    "header",
                    "content-type",
                    f"'{media or '(none)'}' is not accepted; expected {', '.join(self.bodies)}",
                )
            )
            return problems, None
        compiled = self.bodies[schema_key]
        if media == "application/x-www-form-urlencoded":
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            parsed_body = _coerce_form(form, compiled)
        elif media == "multipart/form-data":
            parsed_body = _coerce_form(_multipart(body, content_type or ""), compiled)
        elif _is_json(media):
            try:
                parsed_body = parse_json(body)
            except (ValueError, UnicodeDecodeError) as exc:
                problems.append(Violation("body", "", f"not valid JSON: {exc}"))
                return problems, None
        else:
            return problems, body
        if compiled is not None and not compiled.is_valid(parsed_body):
            for json_path, message in compiled.messages(parsed_body):
                problems.append(Violation("body", json_path, message))
        return problems, parsed_body


def parse_json(body: bytes) -> Any:
    """A JSON body off the wire: orjson for speed (the simulator parses a request body, the
    proxy a response body, per exchange of a load run); the json module for what orjson
    refuses and JSON allows in practice (integers beyond 64 bits, ``NaN``), and for its error
    messages, which name the line and column. Raises ``ValueError`` as ``json.loads`` does."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _match_media(media: str, accepted: dict[str, Any]) -> str | None:
    if media in accepted:
        return media
    for key in accepted:
        if key in ("*/*", "application/*") or (key.endswith("/*") and media.startswith(key[:-1])):
            return key
    if _is_json(media):
        for key in accepted:
            if _is_json(key):
                return key
    return None


def _coerce_one(text: str, kind: str | None) -> Any:
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        return text
    if kind == "boolean":
        return {"true": True, "false": False}.get(text.lower(), text)
    return text


def _coerce(raw: list[str], param: Parameter) -> Any:
    if param.kind == "array":
        values = raw if param.explode or len(raw) > 1 else raw[0].split(",")
        return [_coerce_one(v, param.item_kind) for v in values]
    return _coerce_one(raw[-1], param.kind)


def _properties_of(compiled: CompiledSchema | None) -> dict[str, Any]:
    """Top-level property schemas of an object schema (through ``$ref`` and ``allOf``)."""
    if compiled is None:
        return {}
    defs = compiled.schema.get("$defs", {})
    found: dict[str, Any] = {}
    stack: list[Any] = [compiled.schema]
    while stack:
        node = stack.pop()
        while isinstance(node, dict) and "$ref" in node:
            node = defs.get(str(node["$ref"]).rsplit("/", 1)[-1], {})
        if isinstance(node, dict):
            for name, prop in (node.get("properties") or {}).items():
                while isinstance(prop, dict) and "$ref" in prop:
                    prop = defs.get(str(prop["$ref"]).rsplit("/", 1)[-1], {})
                found.setdefault(name, prop)
            stack.extend(node.get("allOf", []))
    return found


def _coerce_form(form: dict[str, list[str]], compiled: CompiledSchema | None) -> dict[str, Any]:
    """Form fields are strings; give them the types the schema declares (``deepObject``
    ``a[b]=c`` keys become nested objects, repeated or ``a[]`` keys become arrays)."""
    props = _properties_of(compiled)
    out: dict[str, Any] = {}
    for raw_key, values in form.items():
        parts = re.findall(r"[^\[\]]+|\[\]", raw_key)
        if not parts:
            out[raw_key] = values[-1]  # a nameless field is still a field the schema may forbid
            continue
        name, rest = parts[0], [p for p in parts[1:] if p != "[]"]
        prop = props.get(name, {}) if isinstance(props.get(name), dict) else {}
        kind = _kind(prop)
        if rest:
            target = out.setdefault(name, {})
            if isinstance(target, dict):
                for part in rest[:-1]:
                    target = target.setdefault(part, {})
                target[rest[-1]] = values[-1]
            continue
        if kind == "array" or raw_key.endswith("[]"):
            items = prop.get("items", {}) if isinstance(prop.get("items"), dict) else {}
            out.setdefault(name, [])
            out[name].extend(_coerce_one(v, _kind(items)) for v in values)
        else:
            out[name] = _coerce_one(values[-1], kind)
    return out


def _multipart(body: bytes, content_type: str) -> dict[str, list[str]]:
    """Field name -> values of a multipart/form-data body (files as their file name)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, list[str]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = part.get_filename()
        if filename is not None:
            fields.setdefault(name, []).append(filename)
        else:
            payload = part.get_payload(decode=True)
            text = (
                payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
            )
            fields.setdefault(name, []).append(text)
    return fields


def _kind(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        concrete = [k for k in kind if k != "null"]
        return concrete[0] if concrete else None
    return kind if isinstance(kind, str) else None


def compile_document(document: OpenAPIDocument) -> list[CompiledOperation]:
    """Every operation of ``document``, ready to serve; static paths sort before templated ones."""
    converter = SchemaConverter(document)
    compiled = [_compile(document, converter, op) for op in document.operations.values()]
    compiled.sort(key=lambda c: (c.pattern is not None, -len(c.path.split("/")), c.path))
    return compiled


def _schema(
    converter: SchemaConverter, ref: Ref | None, direction: Direction
) -> CompiledSchema | None:
    if ref is None:
        return None
    return CompiledSchema(converter.convert(ref, direction))


def _compile(
    document: OpenAPIDocument, converter: SchemaConverter, op: Operation
) -> CompiledOperation:
    params: list[Parameter] = []
    for ref in document.parameters(op):
        node = ref.node
        location = str(node.get("in"))
        if location == "body":
            continue
        if document.version == "2.0":
            raw_schema: Any = {
                k: v
                for k, v in node.items()
                if k
                not in (
                    "name",
                    "in",
                    "required",
                    "description",
                    "collectionFormat",
                    "allowEmptyValue",
                )
            }
            schema_ref: Ref | None = Ref(raw_schema, ref.uri)
            explode = node.get("collectionFormat", "csv") == "multi"
        else:
            schema_ref = Ref(node["schema"], ref.uri) if "schema" in node else None
            explode = bool(node.get("explode", node.get("style", "form") == "form"))
        compiled = _schema(converter, schema_ref, "request")
        resolved = document.deref(schema_ref.node, schema_ref.uri).node if schema_ref else {}
        items = (
            document.deref(resolved.get("items", {}), schema_ref.uri).node
            if schema_ref and isinstance(resolved, dict)
            else {}
        )
        params.append(
            Parameter(
                name=str(node.get("name")),
                location=location,
                required=bool(node.get("required")) or location == "path",
                schema=compiled,
                kind=_kind(resolved) if isinstance(resolved, dict) else None,
                item_kind=_kind(items) if isinstance(items, dict) else None,
                explode=explode,
            )
        )

    bodies: dict[str, CompiledSchema | None] = {}
    body_required = False
    if document.version == "2.0":
        for ref in document.parameters(op):
            if ref.node.get("in") == "body":
                body_required = bool(ref.node.get("required"))
                consumes = (
                    op.definition.get("consumes")
                    or document.data.get("consumes")
                    or ["application/json"]
                )
                schema = _schema(converter, Ref(ref.node.get("schema", {}), ref.uri), "request")
                bodies = {str(m).lower(): schema for m in consumes}
        form_params = [ref for ref in document.parameters(op) if ref.node.get("in") == "formData"]
        if form_params:
            # Swagger 2.0 form fields are parameters; validate them as one object body.
            properties = {
                str(p.node["name"]): {
                    k: v
                    for k, v in p.node.items()
                    if k
                    not in (
                        "name",
                        "in",
                        "required",
                        "description",
                        "collectionFormat",
                        "allowEmptyValue",
                    )
                }
                for p in form_params
            }
            for prop in properties.values():
                if prop.get("type") == "file":
                    prop.clear()
            required = [str(p.node["name"]) for p in form_params if p.node.get("required")]
            form_schema = {
                "type": "object",
                "properties": properties,
                "additionalProperties": False,
                **({"required": required} if required else {}),
            }
            consumes = (
                op.definition.get("consumes")
                or document.data.get("consumes")
                or ["application/x-www-form-urlencoded"]
            )
            compiled_form = _schema(converter, Ref(form_schema, document.uri), "request")
            bodies = {str(m).lower(): compiled_form for m in consumes}
            body_required = bool(required)
    elif "requestBody" in op.definition:
        body = document.deref(op.definition["requestBody"])
        body_required = bool(body.node.get("required"))
        for media, media_obj in (body.node.get("content") or {}).items():
            schema_node = media_obj.get("schema") if isinstance(media_obj, dict) else None
            bodies[str(media).lower()] = (
                _schema(converter, Ref(schema_node, body.uri), "request")
                if schema_node is not None
                else None
            )

    responses: dict[int, ResponseSpec] = {}
    default_response: ResponseSpec | None = None
    for status, response in (document.deref(op.definition.get("responses") or {}).node).items():
        spec = _response_spec(document, converter, str(status), document.deref(response), op)
        if str(status) == "default":
            default_response = spec
        elif str(status).isdigit():
            responses[int(status)] = spec
        elif re.fullmatch(r"[1-5]XX", str(status), flags=re.IGNORECASE):
            code = int(str(status)[0]) * 100
            responses.setdefault(code, spec)

    security = op.definition.get("security", document.data.get("security"))
    secured = bool(security) and not any(requirement == {} for requirement in security)
    pattern = None
    if "{" in op.path:
        regex = (
            "^"
            + _PARAM.sub(
                lambda m: f"(?P<{_group(m.group(1))}>[^/]+)",
                re.escape(op.path).replace(r"\{", "{").replace(r"\}", "}"),
            )
            + "$"
        )
        pattern = re.compile(regex)
    return CompiledOperation(
        op, pattern, params, body_required, bodies, responses, default_response, secured
    )


def _group(name: str) -> str:
    """Regex group names must be identifiers; path parameter names need not be."""
    return "p_" + re.sub(r"\W", "_", name)


@lru_cache(maxsize=4096)
def _group_names(path: str) -> dict[str, str]:
    return {_group(p): p for p in _PARAM.findall(path)}


def path_params(compiled: CompiledOperation, match: re.Match[str]) -> dict[str, str]:
    """Path parameter values by their document names, percent-decoded."""
    names = _group_names(compiled.path)
    return {names[g]: unquote(v) if "%" in v else v for g, v in match.groupdict().items()}


def _response_spec(
    document: OpenAPIDocument,
    converter: SchemaConverter,
    status: str,
    response: Ref,
    op: Operation,
) -> ResponseSpec:
    node = response.node
    media_type: str | None = None
    body: CompiledSchema | None = None
    if document.version == "2.0":
        if "schema" in node:
            produces = (
                op.definition.get("produces")
                or document.data.get("produces")
                or ["application/json"]
            )
            media_type = next(
                (str(m) for m in produces if _is_json(str(m).lower())), str(produces[0])
            )
            body = _schema(converter, Ref(node["schema"], response.uri), "response")
    else:
        content = node.get("content") or {}
        chosen = next((m for m in content if _is_json(str(m).split(";")[0].lower())), None) or next(
            iter(content), None
        )
        if chosen is not None:
            media_type = str(chosen)
            media_obj = content[chosen] or {}
            if "schema" in media_obj:
                schema_node = (
                    dict(document.deref(media_obj["schema"], response.uri).node)
                    if isinstance(document.deref(media_obj["schema"], response.uri).node, dict)
                    else media_obj["schema"]
                )
                example = _media_example(document, media_obj, response.uri)
                if example is not None and isinstance(schema_node, dict):
                    # A media-level example wins over the schema's own (Prism's order).
                    schema_node = {**schema_node, "example": example[0]}
                    body = _schema(
                        converter,
                        Ref(schema_node, document.deref(media_obj["schema"], response.uri).uri),
                        "response",
                    )
                else:
                    body = _schema(converter, Ref(media_obj["schema"], response.uri), "response")
    headers: dict[str, CompiledSchema | None] = {}
    required_headers: list[str] = []
    for name, header in (node.get("headers") or {}).items():
        resolved = document.deref(header, response.uri)
        if document.version == "2.0":
            schema_ref: Ref | None = Ref(
                {k: v for k, v in resolved.node.items() if k != "description"}, resolved.uri
            )
        else:
            schema_ref = (
                Ref(resolved.node["schema"], resolved.uri) if "schema" in resolved.node else None
            )
        headers[str(name).lower()] = _schema(converter, schema_ref, "response")
        if resolved.node.get("required"):
            required_headers.append(str(name))
    code = int(status) if status.isdigit() else 0
    return ResponseSpec(code, media_type, body, headers, tuple(required_headers))


def _media_example(document: OpenAPIDocument, media: dict[str, Any], uri: str) -> tuple[Any] | None:
    if "example" in media:
        return (media["example"],)
    examples = media.get("examples") or {}
    for example in examples.values():
        resolved = document.deref(example, uri).node
        if isinstance(resolved, dict) and "value" in resolved:
            return (resolved["value"],)
    return None


__all__ = [
    "CompiledOperation",
    "CompiledSchema",
    "GenerationError",
    "Parameter",
    "ResponseSpec",
    "Violation",
    "compile_document",
    "path_params",
]


_STATUS_RANGE = re.compile(r"[1-5]XX", re.IGNORECASE)


@dataclass(frozen=True)
class DocumentedResponse:
    """The documented response covering one status: its key as written (``200``, ``2XX``,
    ``default``), its media types as written, and the compiled response (``None`` when the
    engine could not compile it). Shared by the proxy's response check and the contract stage,
    so both agree on which documented response judges a status."""

    key: str
    media_types: tuple[str, ...]
    spec: ResponseSpec | None


def documented_response(
    document: OpenAPIDocument, op: CompiledOperation, status: int
) -> DocumentedResponse | None:
    """The documented response covering ``status``: exact code, then ``2XX``, then default."""
    responses = document.deref(op.operation.definition.get("responses") or {}).node
    if not isinstance(responses, dict):
        return None
    keys = {str(k): k for k in responses}
    candidates = (str(status), f"{status // 100}XX", f"{status // 100}xx", "default")
    key = next((k for k in candidates if k in keys), None)
    if key is None:
        return None
    node = document.deref(responses[keys[key]]).node
    node = node if isinstance(node, dict) else {}
    if document.version == "2.0":
        produces = op.operation.definition.get("produces") or document.data.get("produces")
        types = (
            tuple(str(t) for t in (produces or ["application/json"])) if "schema" in node else ()
        )
    else:
        types = tuple(str(t) for t in (node.get("content") or {}))
    spec: ResponseSpec | None
    if key.isdigit():
        spec = op.responses.get(int(key))
    elif _STATUS_RANGE.fullmatch(key):
        ranged = op.responses.get(int(key[0]) * 100)
        spec = ranged if ranged is not None and ranged.status == 0 else None
    else:
        spec = op.default_response
    return DocumentedResponse(key, types, spec)
