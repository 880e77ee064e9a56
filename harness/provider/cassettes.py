"""VCR cassettes: export recorded traffic as vcrpy cassettes, load cassettes for replay.

Two formats come in, and they look alike (both are YAML "VCR" files) but are not the same:

* **vcrpy** (``version: 1``, ``interactions: [{request, response}]``): what vcrpy and
  pytest-recording record and replay, and what :func:`export_cassette` writes (through vcrpy's
  own serializer, so pytest-recording reads our files exactly as it reads its own);
* **schemathesis** (``command``, ``recorded_with``, ``seed``, ``http_interactions``): the VCR
  report ``st run --report vcr`` writes. Its status codes are strings, its headers are lists,
  bodies are ``{encoding, string}`` or ``{encoding, base64_string}`` (``--report-preserve-bytes``),
  and an interaction whose request failed has ``response: null``.

The format is decided by the top-level keys only, never guessed from the content; a file that is
neither is an error. Every problem in every file is reported at once as ``InputError``, located
to the line.

:class:`CassetteReplayer` answers requests from loaded interactions for the provider engine.
"""

from __future__ import annotations

import base64
import binascii
import http
import importlib
import json
import os
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, unquote, urlsplit

from harness.problems import InputError, PathPart, Problem, format_path
from harness.provider.messages import Headers, Respond
from harness.provider.traffic import TrafficRecord
from harness.redact import REDACTED, Redactor
from harness.yamlsource import read_text

OnMiss = Literal["fail", "generate", "passthrough"]
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Recorded values that stand for "whatever the live request carries": ours, and schemathesis'.
WILDCARDS = frozenset({REDACTED, "[Filtered]"})
CASSETTE_SUFFIXES = (".yaml", ".yml", ".json")
# Headers the server computes itself when it sends a body; replaying recorded ones would lie.
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


@dataclass(frozen=True)
class Source:
    """Where an interaction came from: the cassette file and its index in the interaction list."""

    file: str
    index: int

    def __str__(self) -> str:
        return f"{self.file}#{self.index}"


@dataclass(frozen=True)
class Interaction:
    """One recorded request and its response, whichever cassette format it came from.

    Header names are lower-cased (as in :mod:`harness.provider.messages`). ``request_json`` is
    the parsed request body when it is JSON, else ``None``. ``path`` and ``query`` are raw (still
    percent-encoded), as they appeared in the recorded URI.
    """

    method: str
    path: str
    query: str
    request_headers: Headers
    request_body: bytes
    request_json: Any
    status: int
    headers: Headers
    body: bytes
    source: Source

    def respond(self) -> Respond:
        """The engine's action replaying this response (length and framing headers dropped)."""
        kept = tuple((k, v) for k, v in self.headers if k not in _HOP_BY_HOP)
        return Respond(status=self.status, headers=kept, body=self.body)


# -- export ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_cassette` wrote, and which records it left out or wrote incomplete."""

    path: Path
    written: int
    skipped_seqs: tuple[int, ...] = ()
    truncated_seqs: tuple[int, ...] = ()


def export_cassette(
    records: Iterable[TrafficRecord], path: Path, redactor: Redactor, base_url: str
) -> ExportResult:
    """Write records as a vcrpy ``version: 1`` cassette at ``path``, using vcrpy's serializer.

    Each URI is ``base_url`` + the record's path and query. Records with ``status None`` (the
    connection was reset, hung or abandoned: no HTTP response exists) are skipped and listed in
    ``skipped_seqs``. Records whose body the log truncated are written as logged (a prefix) and
    listed in ``truncated_seqs``. Everything is redacted again on the way out (idempotent for
    records from a :class:`~harness.provider.traffic.TrafficLog`, necessary for any other).
    ``Content-Length`` is recomputed (redaction changes lengths); ``Transfer-Encoding`` and
    ``Content-Encoding`` are dropped because the logged body is the decoded text.

    A query value redacted to ``[REDACTED]`` will only match under vcrpy if the test's VCR
    config rewrites the live value the same way: ``filter_query_parameters=[("api_key",
    "[REDACTED]")]``. The file is replaced atomically.
    """
    # vcrpy costs ~0.35 s to import (it patches HTTP libraries); only exports pay for it.
    vcr_request: Any = importlib.import_module("vcr.request")
    vcr_serialize: Any = importlib.import_module("vcr.serialize")
    yamlserializer: Any = importlib.import_module("vcr.serializers.yamlserializer")

    base = base_url.rstrip("/")
    requests: list[Any] = []
    responses: list[dict[str, Any]] = []
    skipped: list[int] = []
    truncated: list[int] = []
    for record in records:
        if record.status is None:
            skipped.append(record.seq)
            continue
        if record.request_body_truncated or record.response_body_truncated:
            truncated.append(record.seq)
        query = redactor.query(record.query)
        uri = base + redactor.text(record.path) + (f"?{query}" if query else "")
        request_headers: dict[str, str] = {}
        for name, value in redactor.headers(record.request_headers):
            joined = request_headers.get(name)
            request_headers[name] = value if joined is None else f"{joined}, {value}"
        request_body = (
            redactor.body(record.request_body, record.request_header("content-type"))
            if record.request_body
            else None
        )
        requests.append(
            vcr_request.Request(record.method, uri, request_body or None, request_headers)
        )
        response_body = redactor.body(
            record.response_body or "", record.response_header("content-type")
        )
        response_headers: dict[str, list[str]] = {}
        for name, value in redactor.headers(record.response_headers):
            lower = name.lower()
            if lower in ("transfer-encoding", "content-encoding"):
                continue
            if lower == "content-length":
                value = str(len(response_body.encode("utf-8")))
            response_headers.setdefault(name, []).append(value)
        responses.append(
            {
                "status": {"code": record.status, "message": _reason(record.status)},
                "headers": response_headers,
                "body": {"string": response_body},
            }
        )
    text = vcr_serialize.serialize({"requests": requests, "responses": responses}, yamlserializer)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return ExportResult(path, len(requests), tuple(skipped), tuple(truncated))


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


# -- load --------------------------------------------------------------------------------------


def _yaml_loader() -> Any:
    """A safe YAML loader that also reads the benign Python tags vcrpy cassettes contain.

    Mirrors vcrpy's own cassette loader (which refuses arbitrary ``!!python/object`` tags) without
    importing vcrpy (slow) or its private names. Built lazily with ``type()`` because PyYAML ships
    without type information.
    """
    yaml: Any = importlib.import_module("yaml")
    base = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    loader: Any = type("_CassetteLoader", (base,), {})

    def python_str(ldr: Any, node: Any) -> Any:
        return ldr.construct_scalar(node)

    def python_tuple(ldr: Any, node: Any) -> Any:
        return tuple(ldr.construct_sequence(node))

    def bytes_io(ldr: Any, node: Any) -> Any:
        state = ldr.construct_mapping(node, deep=True).get("state") or (b"",)
        return state[0] if state else b""

    def iterator(ldr: Any, node: Any) -> Any:
        args: Any = ldr.construct_mapping(node, deep=True).get("args") or ([],)
        return list(args[0]) if args else []

    prefix = "tag:yaml.org,2002:python/"
    loader.add_constructor(prefix + "str", python_str)
    loader.add_constructor(prefix + "unicode", python_str)
    loader.add_constructor(prefix + "tuple", python_tuple)
    loader.add_constructor(prefix + "object/new:_io.BytesIO", bytes_io)
    loader.add_constructor(prefix + "object/apply:builtins.iter", iterator)
    return loader


_LOADER: Any = None
_LOADER_LOCK = threading.Lock()


def _parse_yaml(text: str, file: str) -> tuple[Any, dict[tuple[PathPart, ...], int]]:
    """Parse one YAML document; return the data and a path -> line table (1-based)."""
    global _LOADER
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = _yaml_loader()
    yaml: Any = importlib.import_module("yaml")
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or exc.context or "invalid YAML"
        raise InputError([Problem(file, line, "", f"invalid YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(file, None, "", f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    lines: dict[tuple[PathPart, ...], int] = {}
    if node is not None:
        _node_lines(yaml, node, (), lines)
    return data, lines


def _node_lines(
    yaml: Any, node: Any, path: tuple[PathPart, ...], lines: dict[tuple[PathPart, ...], int]
) -> None:
    # Iterative: cassettes are shallow but long, and this stays cheap next to the parse itself.
    stack = [(node, path)]
    while stack:
        current, where = stack.pop()
        lines.setdefault(where, current.start_mark.line + 1)
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                child = (*where, str(key_node.value))
                lines.setdefault(child, key_node.start_mark.line + 1)
                stack.append((value_node, child))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                stack.append((item, (*where, index)))


@dataclass
class _Reader:
    """Collects the problems of one cassette file, each located to its nearest line."""

    file: str
    lines: dict[tuple[PathPart, ...], int]
    problems: list[Problem] = field(default_factory=list)

    def problem(self, path: Sequence[PathPart], message: str) -> None:
        probe = tuple(path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe)
        self.problems.append(Problem(self.file, line, format_path(path), message))

    def mapping(self, value: Any, path: Sequence[PathPart], what: str) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.problem(path, f"{what} must be a mapping, not {_kind(value)}")
        return None

    def string(self, container: dict[str, Any], key: str, path: Sequence[PathPart]) -> str | None:
        if key not in container:
            self.problem(path, f"missing key '{key}'")
            return None
        value = container[key]
        if not isinstance(value, str) or not value:
            self.problem((*path, key), f"must be a non-empty string, not {_kind(value)}")
            return None
        return value

    def status(self, container: dict[str, Any], path: Sequence[PathPart]) -> int | None:
        status = self.mapping(container.get("status"), (*path, "status"), "'status'")
        if status is None:
            return None
        code = status.get("code")
        if isinstance(code, str) and code.strip().isdigit():
            code = int(code)
        if not isinstance(code, int) or isinstance(code, bool) or not 100 <= code <= 599:
            self.problem((*path, "status", "code"), f"not an HTTP status code: {code!r}")
            return None
        return code

    def headers(self, value: Any, path: Sequence[PathPart]) -> Headers | None:
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.problem(path, f"headers must be a mapping of name to values, not {_kind(value)}")
            return None
        pairs: list[tuple[str, str]] = []
        for name, values in value.items():
            items = values if isinstance(values, list | tuple) else [values]
            for item in items:
                if not isinstance(item, str | int | float) or isinstance(item, bool):
                    self.problem(
                        (*path, str(name)), f"header value must be text, not {_kind(item)}"
                    )
                    return None
                pairs.append((str(name).lower(), str(item)))
        return tuple(pairs)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if value == "":
        return "empty text"
    return {dict: "a mapping", list: "a list", str: "text", bytes: "bytes", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _as_bytes(value: Any) -> bytes | None:
    """A vcrpy body (text, bytes, a rebuilt BytesIO or iterator, or nothing) as bytes."""
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, list) and all(isinstance(v, bytes | str) for v in value):
        return b"".join(v.encode("utf-8") if isinstance(v, str) else v for v in value)
    return None


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _split_uri(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    return parts.path or "/", parts.query


def _read_vcrpy(data: dict[str, Any], reader: _Reader) -> list[Interaction]:
    version = data.get("version")
    if version != 1:
        reader.problem(("version",), f"unsupported vcrpy cassette version {version!r} (expected 1)")
        return []
    items = data.get("interactions")
    if items is None:
        return []
    if not isinstance(items, list):
        reader.problem(("interactions",), f"must be a list, not {_kind(items)}")
        return []
    out: list[Interaction] = []
    for index, item in enumerate(items):
        where: tuple[PathPart, ...] = ("interactions", index)
        entry = reader.mapping(item, where, "an interaction")
        if entry is None:
            continue
        before = len(reader.problems)
        request = reader.mapping(entry.get("request"), (*where, "request"), "'request'")
        response = reader.mapping(entry.get("response"), (*where, "response"), "'response'")
        if request is None or response is None:
            continue
        method = reader.string(request, "method", (*where, "request"))
        uri = reader.string(request, "uri", (*where, "request"))
        request_headers = reader.headers(request.get("headers"), (*where, "request", "headers"))
        request_body = _as_bytes(request.get("body"))
        if request_body is None:
            reader.problem((*where, "request", "body"), "body must be text or bytes")
        status = reader.status(response, (*where, "response"))
        headers = reader.headers(response.get("headers"), (*where, "response", "headers"))
        body_entry = response.get("body", {})
        body = _as_bytes(body_entry.get("string")) if isinstance(body_entry, dict) else None
        if body is None:
            reader.problem((*where, "response", "body"), "body must be a mapping with 'string'")
        if len(reader.problems) > before:
            continue
        assert method and uri and status and request_body is not None and body is not None
        assert request_headers is not None and headers is not None
        out.append(
            _interaction(
                method,
                uri,
                request_headers,
                request_body,
                status,
                headers,
                body,
                Source(reader.file, index),
            )
        )
    return out


def _schemathesis_body(value: Any, path: Sequence[PathPart], reader: _Reader) -> bytes | None:
    if value is None:
        return b""
    if not isinstance(value, dict):
        reader.problem(path, f"body must be a mapping, not {_kind(value)}")
        return None
    encoding = value.get("encoding") or "utf-8"
    if "base64_string" in value:
        try:
            return base64.b64decode(str(value["base64_string"]), validate=True)
        except (binascii.Error, ValueError):
            reader.problem((*path, "base64_string"), "not valid base64")
            return None
    if "string" in value:
        text = value["string"]
        if text is None:
            return b""
        try:
            return str(text).encode(str(encoding))
        except (LookupError, UnicodeEncodeError):
            return str(text).encode("utf-8")
    reader.problem(path, "body must have 'string' or 'base64_string'")
    return None


def _read_schemathesis(data: dict[str, Any], reader: _Reader) -> list[Interaction]:
    items = data.get("http_interactions")
    if items is None:  # a run with no interactions writes "http_interactions:" and nothing else
        return []
    if not isinstance(items, list):
        reader.problem(("http_interactions",), f"must be a list, not {_kind(items)}")
        return []
    out: list[Interaction] = []
    for index, item in enumerate(items):
        where: tuple[PathPart, ...] = ("http_interactions", index)
        entry = reader.mapping(item, where, "an interaction")
        if entry is None:
            continue
        if "request" not in entry or "response" not in entry:
            missing = "request" if "request" not in entry else "response"
            reader.problem(where, f"missing key '{missing}'")
            continue
        if entry["response"] is None:
            continue  # the request failed (connection error, timeout): nothing to replay
        before = len(reader.problems)
        request = reader.mapping(entry["request"], (*where, "request"), "'request'")
        response = reader.mapping(entry["response"], (*where, "response"), "'response'")
        if request is None or response is None:
            continue
        method = reader.string(request, "method", (*where, "request"))
        uri = reader.string(request, "uri", (*where, "request"))
        request_headers = reader.headers(request.get("headers"), (*where, "request", "headers"))
        request_body = _schemathesis_body(request.get("body"), (*where, "request", "body"), reader)
        status = reader.status(response, (*where, "response"))
        headers = reader.headers(response.get("headers"), (*where, "response", "headers"))
        body = _schemathesis_body(response.get("body"), (*where, "response", "body"), reader)
        if len(reader.problems) > before:
            continue
        assert method and uri and status and request_body is not None and body is not None
        assert request_headers is not None and headers is not None
        # schemathesis stores the decoded body but keeps Content-Encoding: drop it.
        headers = tuple((k, v) for k, v in headers if k != "content-encoding")
        out.append(
            _interaction(
                method,
                uri,
                request_headers,
                request_body,
                status,
                headers,
                body,
                Source(reader.file, index),
            )
        )
    return out


def _interaction(
    method: str,
    uri: str,
    request_headers: Headers,
    request_body: bytes,
    status: int,
    headers: Headers,
    body: bytes,
    source: Source,
) -> Interaction:
    """One interaction, whichever cassette format it was read from."""
    path, query = _split_uri(uri)
    return Interaction(
        method=method.upper(),
        path=path,
        query=query,
        request_headers=request_headers,
        request_body=request_body,
        request_json=_parse_json(request_body),
        status=status,
        headers=headers,
        body=body,
        source=source,
    )


def _load_one(path: Path) -> list[Interaction]:
    name = str(path)
    text = read_text(path, name)
    data, lines = _parse_yaml(text, name)
    reader = _Reader(name, lines)
    if not isinstance(data, dict):
        if isinstance(data, list) and data and isinstance(data[0], dict) and "request" in data[0]:
            message = (
                "a pre-1.0 vcrpy cassette (a bare list); re-record it or run vcrpy's migration"
            )
        else:
            message = f"not a cassette: expected a mapping at the top, found {_kind(data)}"
        raise InputError([Problem(name, lines.get(()), "", message)])
    is_vcrpy = "interactions" in data
    is_schemathesis = "http_interactions" in data
    if is_vcrpy and is_schemathesis:
        message = "has both 'interactions' (vcrpy) and 'http_interactions' (schemathesis)"
        raise InputError([Problem(name, lines.get(()), "", message)])
    if is_vcrpy:
        interactions = _read_vcrpy(data, reader)
    elif is_schemathesis:
        interactions = _read_schemathesis(data, reader)
    else:
        keys = ", ".join(sorted(map(str, data))) or "none"
        message = (
            "unknown cassette format: expected vcrpy ('version: 1' and 'interactions') or "
            f"schemathesis ('http_interactions'); top-level keys: {keys}"
        )
        raise InputError([Problem(name, lines.get(()), "", message)])
    if reader.problems:
        raise InputError(reader.problems)
    return interactions


def cassette_files(paths_or_dir: Path | str | Iterable[Path | str]) -> list[Path]:
    """The cassette files named: files as given, directories expanded (sorted, recursively)."""
    items = [paths_or_dir] if isinstance(paths_or_dir, Path | str) else list(paths_or_dir)
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.suffix.lower() in CASSETTE_SUFFIXES and p.is_file()
                )
            )
        else:
            files.append(path)
    return files


def load_cassettes(paths_or_dir: Path | str | Iterable[Path | str]) -> list[Interaction]:
    """Load every interaction of the named cassettes (vcrpy or schemathesis), in file order.

    Directories are searched for ``*.yaml``, ``*.yml`` and ``*.json``. schemathesis interactions
    with ``response: null`` (the request failed) are skipped: there is no response to replay.
    Problems in all files are collected and raised together as ``InputError``.
    """
    problems: list[Problem] = []
    interactions: list[Interaction] = []
    files = cassette_files(paths_or_dir)
    if not files:
        named = (
            str(paths_or_dir)
            if isinstance(paths_or_dir, Path | str)
            else ", ".join(map(str, paths_or_dir))
        )
        raise InputError([Problem(named, None, "", "no cassette files found")])
    for path in files:
        try:
            interactions.extend(_load_one(path))
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return interactions


# -- replay ------------------------------------------------------------------------------------


def _query_values(query: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        values.setdefault(key, []).append(value)
    return values


def _query_matches(recorded: dict[str, list[str]], live: dict[str, list[str]]) -> bool:
    """Same names, same number of values each; recorded non-wildcard values all present live."""
    if recorded.keys() != live.keys():
        return False
    for key, values in recorded.items():
        offered = live[key]
        if len(values) != len(offered):
            return False
        needed = Counter(v for v in values if v not in WILDCARDS)
        if needed - Counter(offered):
            return False
    return True


def _json_matches(recorded: Any, live: Any) -> bool:
    """Structural equality where a recorded ``"[REDACTED]"`` string matches any value."""
    if isinstance(recorded, str) and recorded in WILDCARDS:
        return True
    if isinstance(recorded, dict):
        return (
            isinstance(live, dict)
            and recorded.keys() == live.keys()
            and all(_json_matches(recorded[k], live[k]) for k in recorded)
        )
    if isinstance(recorded, list):
        return (
            isinstance(live, list)
            and len(recorded) == len(live)
            and all(_json_matches(r, v) for r, v in zip(recorded, live, strict=True))
        )
    if isinstance(recorded, bool) or isinstance(live, bool):
        return recorded is live
    return bool(recorded == live)


@dataclass(frozen=True)
class _Entry:
    interaction: Interaction
    query: dict[str, list[str]]


class CassetteReplayer:
    """Answers requests from recorded interactions; thread-safe.

    Matching uses the method, the path (percent-decoded), the query (order-insensitive) and, for
    POST/PUT/PATCH, the body: parsed JSON when both sides are JSON (key order is irrelevant), the
    raw bytes otherwise. A recorded ``[REDACTED]`` (or schemathesis' ``[Filtered]``) value matches
    anything, so redacted cassettes still replay. When several recorded interactions match, the
    n-th identical live request gets the n-th of them, and the last one after that: a recorded
    ``503, 503, 200`` sequence replays as such.

    ``on_miss`` is stored for the engine: ``match`` only ever returns ``None`` on a miss.
    """

    def __init__(self, interactions: Iterable[Interaction], on_miss: OnMiss = "fail") -> None:
        if on_miss not in get_args(OnMiss):
            choices = ", ".join(get_args(OnMiss))
            raise ValueError(f"on_miss must be one of {choices}, not {on_miss!r}")
        self.on_miss: OnMiss = on_miss
        self.interactions: tuple[Interaction, ...] = tuple(interactions)
        self._routes: dict[tuple[str, str], list[_Entry]] = {}
        for interaction in self.interactions:
            key = (interaction.method.upper(), unquote(interaction.path))
            entry = _Entry(interaction, _query_values(interaction.query))
            self._routes.setdefault(key, []).append(entry)
        self._lock = threading.Lock()
        self._served: dict[tuple[Any, ...], int] = {}
        self._used: set[int] = set()

    def match(
        self, method: str, path: str, query: str = "", body: bytes = b""
    ) -> Interaction | None:
        """The interaction to replay for this request, or ``None`` (a miss).

        ``query`` is the raw query string (no ``?``); ``body`` is only compared for
        POST/PUT/PATCH.
        """
        verb = method.upper()
        route = (verb, unquote(path))
        entries = self._routes.get(route)
        if not entries:
            return None
        live_query = _query_values(query)
        candidates = [e.interaction for e in entries if _query_matches(e.query, live_query)]
        body_key: Any = None
        if verb in BODY_METHODS and candidates:
            live_json = _parse_json(body)
            if live_json is not None:
                body_key = json.dumps(live_json, sort_keys=True)
                candidates = [
                    i
                    for i in candidates
                    if (i.request_json is not None and _json_matches(i.request_json, live_json))
                    or (i.request_json is None and i.request_body == body)
                ]
            else:
                body_key = body
                candidates = [i for i in candidates if i.request_body == body]
        if not candidates:
            return None
        key = (route, tuple(sorted((k, tuple(v)) for k, v in live_query.items())), body_key)
        with self._lock:
            served = self._served.get(key, 0)
            self._served[key] = served + 1
            chosen = candidates[min(served, len(candidates) - 1)]
            self._used.add(id(chosen))
        return chosen

    def unused(self) -> list[Interaction]:
        """Recorded interactions never replayed so far (what the integration did not ask for)."""
        with self._lock:
            return [i for i in self.interactions if id(i) not in self._used]

    def reset(self) -> None:
        """Start every recorded sequence from its beginning again."""
        with self._lock:
            self._served.clear()
            self._used.clear()
