"""The harness's own response checks, run by schemathesis next to its built-in ones.

schemathesis already checks status codes, content types, headers and bodies; these checks are a
second, independent opinion from the harness's side of the contract: bodies are validated by
``jsonschema`` (with format checking) against the schemas the simulator itself serves from
(``harness.openapi`` conversion: ``nullable``, ``readOnly``, int32/int64 bounds), the documented
status, content type and headers are looked up the way the provider engine looks them up, and
the rate-limit headers are held to what the spec's ``rate_limits`` section promises - something
the OpenAPI document cannot say.

They are registered once, process-wide, as ordinary schemathesis checks (``@schemathesis.check``)
so per-operation configuration can switch them off like any other. Outside a harness run they do
nothing: each looks up the run by the schema's configuration object and returns "not applicable"
when there is none, so a plain schemathesis run in the same process is unaffected.

Every failure is a ``schemathesis`` ``Failure`` subclass with a stable ``HCxxx`` code, the JSON
path of the violation and a coarse identity (what went wrong where, never the wording), so
hypothesis shrinks each distinct problem to its own minimal case.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import jsonschema
import schemathesis
from schemathesis.core.failures import Failure, Severity
from schemathesis.generation.meta import REQUEST_SHAPE_PROBES, coverage_scenario

from harness.openapi.document import OpenAPIDocument
from harness.openapi.operations import (
    CompiledOperation,
    CompiledSchema,
    DocumentedResponse,
    documented_response,
)
from harness.spec.model import RateLimits

if TYPE_CHECKING:
    from schemathesis import Case, CheckContext, Response

HARNESS_CHECK_CODES: dict[str, str] = {
    "response_body_schema": "HC101",
    "documented_status_code": "HC102",
    "documented_content_type": "HC103",
    "documented_headers": "HC104",
    "rate_limit_headers": "HC105",
}
"""Per-response checks of the harness, by name, with their stable codes."""

RUN_CHECK_CODES: dict[str, str] = {
    "auth_accepted": "HC301",
}
"""Checks the harness judges over a whole run (not per response)."""

_INTEGER = re.compile(r"^-?[0-9]+$")


class HarnessFailure(Failure):
    """A harness check failed. ``json_path`` locates the violation (``$.items[0].status``,
    ``headers.RateLimit-Limit``, ``status``); ``key`` is its identity for shrinking."""

    code = "HC100"
    kind_title = "Harness check failed"
    check_name = ""

    __slots__ = ("json_path", "key")

    def __init__(
        self, *, operation: str, message: str, json_path: str | None, key: str, title: str
    ) -> None:
        super().__init__(operation=operation, title=title, message=message, severity=Severity.HIGH)
        self.json_path = json_path
        self.key = key

    @property
    def _unique_key(self) -> str:
        return self.key


def _failure_class(name: str, code: str, title: str) -> type[HarnessFailure]:
    return type(
        f"Harness_{name}",
        (HarnessFailure,),
        {"code": code, "kind_title": title, "check_name": name, "__slots__": ()},
    )


FAILURE_CLASSES: dict[str, type[HarnessFailure]] = {
    "response_body_schema": _failure_class(
        "response_body_schema", "HC101", "Response body breaks its schema"
    ),
    "documented_status_code": _failure_class(
        "documented_status_code", "HC102", "Undocumented status code"
    ),
    "documented_content_type": _failure_class(
        "documented_content_type", "HC103", "Undocumented content type"
    ),
    "documented_headers": _failure_class(
        "documented_headers", "HC104", "Documented header missing or invalid"
    ),
    "rate_limit_headers": _failure_class(
        "rate_limit_headers", "HC105", "Rate-limit headers break the spec's contract"
    ),
}


Documented = DocumentedResponse


@dataclass
class HarnessRun:
    """What the checks of one run need to know, beyond the response in front of them."""

    document: OpenAPIDocument
    operations: Mapping[tuple[str, str], CompiledOperation]
    """(METHOD, path template) -> compiled operation."""
    rate_limits: RateLimits | None
    token_operation: str | None
    _documented: dict[tuple[str, int], Documented | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def operation_for(self, case: Case[Any]) -> CompiledOperation | None:
        return self.operations.get((case.operation.method.upper(), case.operation.path))

    def documented(self, op: CompiledOperation, status: int) -> Documented | None:
        key = (op.operation_id, status)
        with self._lock:
            if key in self._documented:
                return self._documented[key]
        found = _documented(self.document, op, status)
        with self._lock:
            self._documented[key] = found
        return found


_RUNS: dict[int, tuple[object, HarnessRun]] = {}
_RUNS_LOCK = threading.Lock()


def register_run(config: object, run: HarnessRun) -> None:
    """Make the checks active for schemas with this configuration object."""
    with _RUNS_LOCK:
        _RUNS[id(config)] = (config, run)


def unregister_run(config: object) -> None:
    with _RUNS_LOCK:
        _RUNS.pop(id(config), None)


def active_run(case: Case[Any]) -> HarnessRun | None:
    """The harness run a case belongs to, or ``None`` outside the harness."""
    config = case.operation.schema.config
    entry = _RUNS.get(id(config))
    if entry is None or entry[0] is not config:
        return None
    return entry[1]


def _documented(document: OpenAPIDocument, op: CompiledOperation, status: int) -> Documented | None:
    """The documented response covering ``status`` (see ``openapi.operations``)."""
    return documented_response(document, op, status)


def bare_media_type(value: str) -> str:
    """``Application/JSON; charset=utf-8`` -> ``application/json``."""
    return value.partition(";")[0].strip().lower()


def is_json_media(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def header(response: Response, name: str) -> str | None:
    """The first value of a response header, case-insensitively."""
    wanted = name.lower()
    for key, values in response.headers.items():
        if key.lower() == wanted:
            if isinstance(values, list):
                return str(values[0]) if values else ""
            return str(values)
    return None


def json_path(parts: Iterator[Any] | list[Any] | tuple[Any, ...]) -> str:
    """``["items", 0, "status"]`` -> ``$.items[0].status``."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            out += f".{part}"
        else:
            out += f"[{json.dumps(str(part))}]"
    return out


def _shape(path: str) -> str:
    """A JSON path with indices dropped: the identity of "the same problem" across cases."""
    return re.sub(r"\[[0-9]+\]", "[]", path)


def _fail(name: str, case: Case[Any], message: str, path: str | None, key: str) -> HarnessFailure:
    cls = FAILURE_CLASSES[name]
    return cls(
        operation=case.operation.label,
        message=message,
        json_path=path,
        key=key,
        title=cls.kind_title,
    )


def _context(case: Case[Any]) -> tuple[HarnessRun, CompiledOperation] | None:
    run = active_run(case)
    if run is None:
        return None
    op = run.operation_for(case)
    if op is None or case.method.upper() != case.operation.method.upper():
        return None  # a probe with another method: schemathesis' unsupported_method judges it
    if coverage_scenario(case) in REQUEST_SHAPE_PROBES:
        return None  # a malformed Content-Type on purpose: the answer says nothing of the contract
    return run, op


# --- the checks --------------------------------------------------------------------------------


@schemathesis.check
def documented_status_code(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """The status is documented for the operation (exact code, ``NXX`` range or ``default``)."""
    found = _context(case)
    if found is None:
        return True
    run, op = found
    if run.documented(op, response.status_code) is not None:
        return None
    listed = ", ".join(str(k) for k in (op.operation.definition.get("responses") or {}))
    raise _fail(
        "documented_status_code",
        case,
        f"{op.operation_id} answered {response.status_code}, which its document does not list"
        f" (documented: {listed or 'none'})",
        "status",
        f"status:{response.status_code}",
    )


@schemathesis.check
def documented_content_type(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A body comes with a Content-Type the documented response lists (none when it lists none)."""
    found = _context(case)
    if found is None:
        return True
    run, op = found
    documented = run.documented(op, response.status_code)
    if documented is None or response.status_code in (204, 304) or case.method.upper() == "HEAD":
        return True
    where = f"{op.operation_id} {documented.key}"
    raw = header(response, "content-type")
    media = bare_media_type(raw) if raw else ""
    types = documented.media_types
    if not types:
        if response.content:
            raise _fail(
                "documented_content_type",
                case,
                f"response has a {media or 'untyped'} body but {where} documents none",
                "headers.Content-Type",
                "unexpected-body",
            )
        return None
    if not response.content:
        raise _fail(
            "documented_content_type",
            case,
            f"response has no body; {where} documents {', '.join(types)}",
            "body",
            "empty-body",
        )
    if not media:
        raise _fail(
            "documented_content_type",
            case,
            f"response has no Content-Type; {where} documents {', '.join(types)}",
            "headers.Content-Type",
            "missing",
        )
    bare = [bare_media_type(t) for t in types]
    prefixes = tuple("" if t == "*/*" else t[:-1] for t in bare if t.endswith("/*"))
    if media in bare or any(media.startswith(p) for p in prefixes):
        return None
    raise _fail(
        "documented_content_type",
        case,
        f"response content type {media} is not documented for {where}"
        f" (documented: {', '.join(types)})",
        "headers.Content-Type",
        f"type:{media}",
    )


@schemathesis.check
def response_body_schema(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A JSON body validates against the documented schema (jsonschema, formats checked)."""
    found = _context(case)
    if found is None:
        return True
    run, op = found
    documented = run.documented(op, response.status_code)
    if documented is None or documented.spec is None or documented.spec.body is None:
        return True
    raw = header(response, "content-type")
    media = bare_media_type(raw) if raw else ""
    if not response.content or not is_json_media(media):
        return True  # documented_content_type judges a missing or non-JSON body
    try:
        value = response.json()  # parsed once per response, shared with schemathesis' checks
    except ValueError as error:
        raise _fail(
            "response_body_schema",
            case,
            f"{op.operation_id} {documented.key}: body is not valid JSON ({error})",
            "$",
            "malformed",
        ) from None
    violation = first_violation(documented.spec.body, value)
    if violation is None:
        return None
    path, message, keyword = violation
    raise _fail(
        "response_body_schema",
        case,
        f"{op.operation_id} {documented.key}: {path}: {message}",
        path,
        f"{keyword}:{_shape(path)}",
    )


def first_violation(schema: CompiledSchema, value: Any) -> tuple[str, str, str] | None:
    """(JSON path, message, failing keyword) of the first violation, or ``None`` when valid.

    jsonschema_rs decides (fast); jsonschema words and locates, with its format checker.
    """
    if schema.is_valid(value):
        return None
    validator = jsonschema.Draft202012Validator(
        schema.schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return ("$", "does not match the schema", "schema")
    best = jsonschema.exceptions.best_match(errors) or errors[0]
    return (json_path(list(best.absolute_path)), best.message, str(best.validator))


@schemathesis.check
def documented_headers(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Required documented headers are present; present documented headers fit their schema."""
    found = _context(case)
    if found is None:
        return True
    run, op = found
    documented = run.documented(op, response.status_code)
    if documented is None or documented.spec is None or not documented.spec.headers:
        return True
    spec = documented.spec
    for name in spec.required_headers:
        if header(response, name) is None:
            raise _fail(
                "documented_headers",
                case,
                f"{op.operation_id} {documented.key}: required header {name} is missing",
                f"headers.{name}",
                f"missing:{name.lower()}",
            )
    for name, schema in spec.headers.items():
        value = header(response, name)
        if value is None or schema is None:
            continue
        parsed = _header_value(value, schema.schema)
        violation = first_violation(schema, parsed)
        if violation is not None:
            raise _fail(
                "documented_headers",
                case,
                f"{op.operation_id} {documented.key}: header {name}: {value!r} {violation[1]}",
                f"headers.{name}",
                f"invalid:{name}",
            )
    return None


def _header_value(value: str, schema: Mapping[str, Any]) -> Any:
    """A header string as the type its schema expects (``"42"`` -> 42 for an integer)."""
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    text = value.strip()
    if "integer" in kinds and _INTEGER.match(text):
        return int(text)
    if "number" in kinds:
        try:
            return float(text)
        except ValueError:
            return value
    if "boolean" in kinds and text in ("true", "false"):
        return text == "true"
    return value


RATE_HEADER_FAMILIES: dict[str, tuple[str, str, str]] = {
    "ietf": ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"),
    "x-ratelimit": ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"),
}


@schemathesis.check
def rate_limit_headers(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """The rate-limit contract the spec declares: the announced header family on successful
    and 429 answers, consistent values, and a ``Retry-After`` in the declared format on 429."""
    found = _context(case)
    if found is None:
        return True
    run, op = found
    limits = run.rate_limits
    status = response.status_code
    if limits is None or op.operation_id == run.token_operation:
        return True
    if not (200 <= status < 300 or status == 429):
        return True
    families = limits.headers
    present = [
        family
        for family, names in RATE_HEADER_FAMILIES.items()
        if any(header(response, name) is not None for name in names)
    ]
    if families:
        for family in families:
            for name in RATE_HEADER_FAMILIES[family]:
                if header(response, name) is None:
                    raise _fail(
                        "rate_limit_headers",
                        case,
                        f"{op.operation_id} {status}: {name} is missing (rate_limits.headers"
                        f" declares {family})",
                        f"headers.{name}",
                        f"missing:{name.lower()}",
                    )
    for sent in present:
        _check_family(case, op, status, sent, response)
    if status == 429:
        _check_retry_after(case, op, limits, response)
    return None


def _check_family(
    case: Case[Any], op: CompiledOperation, status: int, family: str, response: Response
) -> None:
    values: dict[str, int] = {}
    for name in RATE_HEADER_FAMILIES[family]:
        raw = header(response, name)
        if raw is None:
            raise _fail(
                "rate_limit_headers",
                case,
                f"{op.operation_id} {status}: {name} is missing while the other {family}"
                " headers are sent",
                f"headers.{name}",
                f"missing:{name.lower()}",
            )
        if not _INTEGER.match(raw.strip()) or int(raw) < 0:
            raise _fail(
                "rate_limit_headers",
                case,
                f"{op.operation_id} {status}: {name} {raw!r} is not a non-negative integer",
                f"headers.{name}",
                f"invalid:{name.lower()}",
            )
        values[name.rsplit("-", 1)[-1]] = int(raw)
    if values["Remaining"] > values["Limit"]:
        limit_name, remaining_name, _ = RATE_HEADER_FAMILIES[family]
        raise _fail(
            "rate_limit_headers",
            case,
            f"{op.operation_id} {status}: {remaining_name} {values['Remaining']} exceeds"
            f" {limit_name} {values['Limit']}",
            f"headers.{remaining_name}",
            f"inconsistent:{family}",
        )


def _check_retry_after(
    case: Case[Any], op: CompiledOperation, limits: RateLimits, response: Response
) -> None:
    raw = header(response, "retry-after")
    if raw is None:
        raise _fail(
            "rate_limit_headers",
            case,
            f"{op.operation_id} 429 has no Retry-After",
            "headers.Retry-After",
            "missing:retry-after",
        )
    text = raw.strip()
    if limits.retry_after_format == "seconds":
        ok = bool(_INTEGER.match(text)) and int(text) >= 0
    else:
        try:
            ok = parsedate_to_datetime(text) is not None and text.endswith("GMT")
        except (TypeError, ValueError):
            ok = False
    if not ok:
        raise _fail(
            "rate_limit_headers",
            case,
            f"{op.operation_id} 429: Retry-After {raw!r} is not in the declared"
            f" {limits.retry_after_format} format",
            "headers.Retry-After",
            "format:retry-after",
        )


def all_check_names() -> tuple[str, ...]:
    """Every check a contract run can run: schemathesis' built-in ones, then the harness's."""
    return (*builtin_check_names(), *HARNESS_CHECK_CODES, *RUN_CHECK_CODES)


def builtin_check_names() -> tuple[str, ...]:
    """schemathesis' own checks, in its order (custom checks others registered are left out)."""
    from schemathesis.checks import CHECKS, load_all_checks
    from schemathesis.failure_codes import FAILURE_CLASSES

    load_all_checks()
    builtin = {name for cls in FAILURE_CLASSES for name in cls.checks}
    return tuple(n for n in CHECKS.get_all_names() if n in builtin)


def builtin_codes() -> dict[str, tuple[str, ...]]:
    """schemathesis' stable failure codes, by the check that reports them."""
    from schemathesis.failure_codes import FAILURE_CLASSES

    out: dict[str, list[str]] = {}
    for cls in FAILURE_CLASSES:
        for name in cls.checks:
            out.setdefault(name, []).append(cls.code)
    return {name: tuple(codes) for name, codes in out.items()}
