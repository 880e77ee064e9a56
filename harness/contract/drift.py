"""Recorded responses (cassettes) validated against the current document: drift.

A cassette is what the provider really answered, some time ago. Checking every recorded response
against *today's* provider document answers "would the provider's recorded behaviour still pass
our contract?" without sending a request: a response that no longer validates is drift, and the
finding names the cassette file and the interaction's index in it.

vcrpy cassettes (``version: 1``, what ``harness record`` and the provider engine's export
write) and schemathesis' VCR reports are read by :mod:`harness.provider.cassettes`, told apart
by their keys. Each interaction is routed to its operation by method and path (the document's
server path prefix, e.g. ``/v1``, and the live base URL's path are accepted) and judged by the
same checks schemathesis runs on live responses, with schemathesis' codes:

* ``status_code_conformance`` (ST103): the status is documented for the operation;
* ``content_type_conformance`` (ST104 missing, ST105 undocumented);
* ``response_headers_conformance`` (ST107): required response headers are present;
* ``response_schema_conformance`` (ST108 body, ST109 not JSON);
* ``operation_exists`` (HC701): the recorded method and path still name an operation.

Cassettes are redacted on the way in (``[REDACTED]``, schemathesis' ``[Filtered]``): a schema
error about such a placeholder (a token shorter than ``minLength``) is not drift and is skipped.
Every finding is redacted again with the spec's secrets before it leaves this module.
"""

from __future__ import annotations

import json
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import jsonschema

from harness.openapi.document import OpenAPIDocument
from harness.openapi.operations import CompiledOperation, ResponseSpec, compile_document
from harness.project import Project
from harness.provider.cassettes import WILDCARDS, Interaction, load_cassettes
from harness.redact import Redactor
from harness.results.model import CheckResult, Finding
from harness.spec.secrets import resolve_secrets

STATUS = "status_code_conformance"
CONTENT_TYPE = "content_type_conformance"
HEADERS = "response_headers_conformance"
SCHEMA = "response_schema_conformance"
OPERATION = "operation_exists"
CHECKS = (STATUS, CONTENT_TYPE, HEADERS, SCHEMA)

_EXCERPT = 300
_MAX_ERRORS = 5


@dataclass(frozen=True)
class _Problem:
    check: str
    code: str
    message: str
    json_path: str | None = None


def check_cassettes(project: Project, cassettes: Path) -> tuple[CheckResult, ...]:
    """One CheckResult per operation x check over every recorded interaction.

    Bad cassette files are bad input (``InputError``, every problem located to the line).
    """
    interactions = load_cassettes(cassettes)
    return check_interactions(project, interactions)


def check_interactions(
    project: Project, interactions: Iterable[Interaction]
) -> tuple[CheckResult, ...]:
    """Drift checks over interactions already loaded (same results as :func:`check_cassettes`)."""
    router = _Router(project)
    redactor = Redactor.of(resolve_secrets(project.spec.spec).values())
    examined: dict[tuple[str, str], int] = defaultdict(int)
    findings: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    order: list[tuple[str, str]] = []

    def note(key: tuple[str, str]) -> None:
        if key not in examined:
            order.append(key)
        examined[key] += 1

    for interaction in interactions:
        compiled = router.route(interaction.method, interaction.path)
        if compiled is None:
            subject = f"{interaction.method} {unquote(interaction.path)}"
            key = (OPERATION, subject)
            note(key)
            findings[key].append(
                _finding(
                    interaction,
                    _Problem(
                        OPERATION,
                        "HC701",
                        f"{subject} is not an operation of {project.provider.display} any more",
                    ),
                    None,
                    redactor,
                )
            )
            continue
        op_id = compiled.operation_id
        problems = _judge(router.document, compiled, interaction)
        for check in _applicable(compiled, interaction):
            note((check, op_id))
        for problem in problems:
            findings[(problem.check, op_id)].append(_finding(interaction, problem, op_id, redactor))
    results: list[CheckResult] = []
    for check, subject in order:
        found = findings.get((check, subject), [])
        count = examined[(check, subject)]
        files = sorted({str(f.details.get("cassette")) for f in found})
        drifted = len({(f.details.get("cassette"), f.details.get("interaction")) for f in found})
        plural = "s" if count != 1 else ""
        if check == OPERATION:
            summary = f"{count} recorded request{plural} to an operation the document lost: " + (
                found[0].message if found else ""
            )
        elif found:
            summary = (
                f"{drifted} of {count} recorded response{plural} no longer validate"
                f"{'s' if drifted == 1 else ''}: {found[0].message}"
            )
        else:
            summary = f"{count} recorded response{plural} still validate{'' if plural else 's'}"
        results.append(
            CheckResult(
                id=f"contract/drift/{check}/{subject}",
                name=f"recorded {subject}: {check}",
                status="failed" if found else "passed",
                summary=summary,
                findings=tuple(found),
                attributes={
                    "check": check,
                    "operation": subject,
                    "interactions": count,
                    **({"cassettes": files} if files else {}),
                },
            )
        )
    return tuple(results)


class _Router:
    """Method + path -> the document's operation, as the provider engine routes requests."""

    def __init__(self, project: Project) -> None:
        self.document: OpenAPIDocument = project.provider
        self.operations = compile_document(self.document)
        prefixes = {_base_path(self.document)}
        live = project.spec.spec.provider.live
        if live is not None:
            prefixes.add(urlsplit(live.base_url).path.rstrip("/"))
        self.prefixes = sorted((p for p in prefixes if p), key=len, reverse=True)

    def route(self, method: str, raw_path: str) -> CompiledOperation | None:
        path = unquote(raw_path)
        candidates = [path] + [
            path[len(prefix) :] or "/"
            for prefix in self.prefixes
            if path == prefix or path.startswith(prefix + "/")
        ]
        for candidate in candidates:
            for op in self.operations:
                if op.method != method.upper():
                    continue
                if op.pattern is None:
                    if op.path == candidate:
                        return op
                elif op.pattern.match(candidate):
                    return op
        return None


def _base_path(document: OpenAPIDocument) -> str:
    if document.version == "2.0":
        return str(document.data.get("basePath") or "").rstrip("/")
    servers = document.data.get("servers") or []
    url = str(servers[0].get("url", "")) if servers and isinstance(servers[0], dict) else ""
    return urlsplit(url).path.rstrip("/") if "{" not in url else ""


def _applicable(op: CompiledOperation, interaction: Interaction) -> tuple[str, ...]:
    """The checks that judged this interaction (all of them once the status is documented)."""
    if _documented(op, interaction.status) is None:
        return (STATUS,)
    return CHECKS


def _documented(op: CompiledOperation, status: int) -> ResponseSpec | None:
    """The documented response covering ``status``: exact code, then ``2XX``, then default."""
    exact = op.responses.get(status)
    if exact is not None and exact.status == status:
        return exact
    ranged = op.responses.get(status // 100 * 100)
    if ranged is not None and ranged.status == 0:
        return ranged
    return op.default_response


def _media_types(document: OpenAPIDocument, op: CompiledOperation, status: int) -> list[str]:
    """The media types documented for the response that covers ``status``, as written."""
    responses = document.deref(op.operation.definition.get("responses") or {}).node
    keys = {str(k): k for k in responses}
    for key in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default"):
        if key in keys:
            node = document.deref(responses[keys[key]]).node
            if not isinstance(node, dict):
                return []
            if document.version == "2.0":
                if "schema" not in node:
                    return []
                produces = op.operation.definition.get("produces") or document.data.get("produces")
                return [str(t) for t in (produces or ["application/json"])]
            return [str(t) for t in (node.get("content") or {})]
    return []


def _bare(media: str) -> str:
    return media.partition(";")[0].strip().lower()


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _judge(
    document: OpenAPIDocument, op: CompiledOperation, interaction: Interaction
) -> list[_Problem]:
    status = interaction.status
    spec = _documented(op, status)
    if spec is None:
        documented = ", ".join(
            [str(s) if r.status else f"{str(s)[0]}XX" for s, r in sorted(op.responses.items())]
        )
        return [
            _Problem(
                STATUS,
                "ST103",
                f"status {status} is not documented for {op.operation_id} "
                f"(documented: {documented or 'none'}"
                f"{', default' if op.default_response else ''})",
            )
        ]
    problems: list[_Problem] = []
    names = {name for name, _ in interaction.headers}
    for header in spec.required_headers:
        if header.lower() not in names:
            problems.append(
                _Problem(HEADERS, "ST107", f"required response header {header} is missing")
            )
    if interaction.method.upper() == "HEAD" or status in (204, 304):
        return problems
    types = _media_types(document, op, status)
    content_type = next((v for k, v in interaction.headers if k == "content-type"), None)
    media = _bare(content_type) if content_type else ""
    body = interaction.body
    if not types:
        return problems
    if not body:
        return problems  # a recorded empty body (HEAD-like, redacted): nothing to judge
    if not media:
        problems.append(
            _Problem(
                CONTENT_TYPE,
                "ST104",
                f"response has no Content-Type; {op.operation_id} {status} documents "
                f"{', '.join(types)}",
            )
        )
        return problems
    bare = [_bare(t) for t in types]
    if not any(
        media == t or t == "*/*" or (t.endswith("/*") and media.startswith(t[:-1])) for t in bare
    ):
        problems.append(
            _Problem(
                CONTENT_TYPE,
                "ST105",
                f"response content type {media} is not documented for {op.operation_id} "
                f"{status} (documented: {', '.join(types)})",
            )
        )
        return problems
    if spec.body is None or not _is_json(media):
        return problems
    encoding = next((v for k, v in interaction.headers if k == "content-encoding"), None)
    try:
        value = json.loads(_decoded(body, encoding))
    except ValueError as error:
        problems.append(_Problem(SCHEMA, "ST109", f"response body is not valid JSON: {error}"))
        return problems
    validator = jsonschema.Draft202012Validator(
        spec.body.schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = [
        e
        for e in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
        if not (isinstance(e.instance, str) and e.instance in WILDCARDS)
    ]
    for issue in errors[:_MAX_ERRORS]:
        problems.append(
            _Problem(
                SCHEMA,
                "ST108",
                f"response body {issue.json_path}: {issue.message}",
                issue.json_path,
            )
        )
    if len(errors) > _MAX_ERRORS:
        problems.append(
            _Problem(
                SCHEMA, "ST108", f"response body: {len(errors) - _MAX_ERRORS} more schema errors"
            )
        )
    return problems


def _decoded(body: bytes, encoding: str | None) -> bytes:
    encoding = (encoding or "").strip().lower()
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            return zlib.decompress(body)
    except zlib.error:
        return body  # recorded already decoded (vcrpy's decode_compressed_response)
    return body


def _finding(
    interaction: Interaction, problem: _Problem, operation: str | None, redactor: Redactor
) -> Finding:
    source = interaction.source
    where = f"{source.file}, interaction {source.index}"
    query = redactor.query(interaction.query)
    request = f"{interaction.method} {redactor.text(interaction.path)}" + (
        f"?{query}" if query else ""
    )
    content_type = next((v for k, v in interaction.headers if k == "content-type"), None)
    body = redactor.body(interaction.body, content_type)
    excerpt = body if len(body) <= _EXCERPT else body[:_EXCERPT] + "..."
    return Finding(
        check=problem.check,
        message=redactor.text(f"{problem.message} ({where})"),
        code=problem.code,
        operation=operation,
        request=request,
        response_excerpt=f"{interaction.status} {excerpt}".rstrip(),
        json_path=redactor.text(problem.json_path) if problem.json_path else None,
        details={"cassette": source.file, "interaction": source.index},
    )


__all__ = ["CHECKS", "check_cassettes", "check_interactions"]
