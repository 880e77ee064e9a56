"""From what schemathesis recorded to findings a person can believe and reproduce.

The engine records every case it sent, shrink attempts included, with the checks each one
passed or failed. Here the occurrences of one problem (same operation, check and failure
identity) are reduced to the smallest request that shows it, that request is sent again and
the check run again on the fresh answer (a failure that does not come back is not reported as
one: no false positives from a flaky moment), and the survivor becomes a ``Finding``: the
request, a redacted response excerpt, the JSON path of the violation, a curl command, the seed
and the stable failure code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from harness.contract.checks import HarnessFailure, bare_media_type, header, json_path
from harness.redact import Redactor
from harness.results.model import Finding

if TYPE_CHECKING:
    from schemathesis import Case, Response
    from schemathesis.core.failures import Failure
    from schemathesis.engine.recorder import ScenarioRecorder

EXCERPT_CHARS = 600
BODY_CHARS = 300


@dataclass
class Occurrence:
    """One recorded failure of one check on one case."""

    operation: str
    check: str
    failure: Failure
    case: Case[Any]
    response: Response | None
    code_sample: str
    recorder: ScenarioRecorder
    phase: str

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """What makes two occurrences "the same problem": operation, check, failure kind and
        schemathesis' coarse key of it (e.g. the missing header's name)."""
        return (self.operation, self.check, type(self.failure).__name__, self.failure._unique_key)

    @property
    def size(self) -> int:
        """How big the request is, to pick the smallest (shrunk) case of a problem."""
        request = self.response.request if self.response is not None else None
        url = str(request.url) if request is not None and request.url else ""
        body = request.body if request is not None else None
        return len(url) + (len(body) if isinstance(body, bytes | str) else 0)


def smallest(occurrences: list[Occurrence]) -> Occurrence:
    """The occurrence with the smallest request; the latest among equals (hypothesis replays
    the shrunk example last)."""
    best = occurrences[0]
    for occurrence in occurrences[1:]:
        if occurrence.size <= best.size:
            best = occurrence
    return best


@dataclass(frozen=True)
class Revalidation:
    """What sending the case again showed: ``reproduced`` ``None`` when it could not be sent."""

    reproduced: bool | None
    note: str


def revalidate(
    occurrence: Occurrence,
    check: Callable[..., Any],
    transport_kwargs: Mapping[str, Any],
    refresh_auth: Callable[[Case[Any]], None] | None = None,
) -> Revalidation:
    """Send the case again and run the one check on the new answer."""
    from schemathesis.core.failures import Failure, FailureGroup

    case = occurrence.case
    try:
        response = case.call(**transport_kwargs)
        original = occurrence.response.status_code if occurrence.response is not None else None
        if response.status_code == 401 and original != 401 and refresh_auth is not None:
            refresh_auth(case)  # the token expired since the case was first sent
            response = case.call(**transport_kwargs)
    except Exception as error:
        return Revalidation(None, f"not re-sent: {type(error).__name__}")
    try:
        case.validate_response(
            response,
            checks=[check],
            transport_kwargs=dict(transport_kwargs),
            recorder=occurrence.recorder,
        )
    except (Failure, FailureGroup) as raised:
        failures = list(raised.exceptions) if isinstance(raised, FailureGroup) else [raised]
        same = any(
            type(f) is type(occurrence.failure) and f._unique_key == occurrence.failure._unique_key
            for f in failures
        )
        if same:
            return Revalidation(True, f"reproduced on re-send ({response.status_code})")
        return Revalidation(
            False, f"re-sent: a different failure this time ({response.status_code})"
        )
    except AssertionError:
        return Revalidation(True, f"reproduced on re-send ({response.status_code})")
    return Revalidation(False, f"re-sent: passed this time ({response.status_code})")


def violation_path(failure: Failure) -> str | None:
    """The JSON path of the violation, in the document's terms where schemathesis knows it."""
    if isinstance(failure, HarnessFailure):
        return failure.json_path
    kind = type(failure).__name__
    instance_path = getattr(failure, "instance_path", None)
    if kind == "JsonSchemaError" and isinstance(instance_path, list | tuple):
        return json_path(list(instance_path))
    if kind == "MissingHeaders":
        missing = getattr(failure, "missing_headers", None) or []
        return ", ".join(f"headers.{name}" for name in missing) or "headers"
    if kind == "UndefinedStatusCode":
        return "status"
    if kind in ("MissingContentType", "UndefinedContentType", "MalformedMediaType"):
        return "headers.Content-Type"
    if kind in ("MalformedJson", "ContentDeserializationError"):
        return "$"
    return None


def one_line(failure: Failure) -> str:
    """Title and the first informative line of the message, in one line."""
    lines = [line.strip() for line in str(failure.message or "").splitlines() if line.strip()]
    detail = lines[0] if lines else ""
    text = f"{failure.title}: {detail}" if detail and detail != failure.title else failure.title
    return text if len(text) <= 300 else text[:297] + "..."


def request_line(occurrence: Occurrence, redactor: Redactor) -> str:
    """``METHOD URL`` (path and query redacted) plus a redacted body excerpt."""
    request = occurrence.response.request if occurrence.response is not None else None
    if request is None:
        return f"{occurrence.case.method.upper()} {occurrence.case.formatted_path}"
    parts = urlsplit(str(request.url))
    query = f"?{redactor.query(parts.query)}" if parts.query else ""
    line = f"{request.method} {parts.scheme}://{parts.netloc}{redactor.text(parts.path)}{query}"
    body = request.body
    if body:
        content_type = request.headers.get("Content-Type")
        text = redactor.body(body if isinstance(body, bytes | str) else str(body), content_type)
        line += f"\n{_clip(text, BODY_CHARS)}"
    return line


def response_excerpt(response: Response | None, redactor: Redactor) -> str | None:
    """Status line, content type and the start of the body, redacted."""
    if response is None:
        return None
    raw_type = header(response, "content-type")
    media = bare_media_type(raw_type) if raw_type else "no content type"
    body = redactor.body(response.content, raw_type) if response.content else ""
    head = f"HTTP {response.status_code} ({media})"
    return f"{head}\n{_clip(body, EXCERPT_CHARS)}" if body else head


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more chars)"


def build_finding(
    occurrence: Occurrence,
    *,
    count: int,
    seed: int,
    redactor: Redactor,
    revalidation: Revalidation | None,
    reproduce_hint: str,
) -> Finding:
    failure = occurrence.failure
    details: dict[str, Any] = {
        "phase": occurrence.phase,
        "occurrences": count,
        "case_id": occurrence.case.id,
    }
    meta = occurrence.case.meta
    if meta is not None:
        details["generation_mode"] = str(meta.generation.mode.value)
    if revalidation is not None:
        details["revalidation"] = revalidation.note
    return Finding(
        check=occurrence.check,
        message=redactor.text(one_line(failure)),
        code=failure.code,
        operation=occurrence.operation,
        request=request_line(occurrence, redactor),
        response_excerpt=response_excerpt(occurrence.response, redactor),
        json_path=violation_path(failure),
        reproduce=f"{redactor.text(occurrence.code_sample)}\n# or: {reproduce_hint}",
        seed=seed,
        details=details,
    )
