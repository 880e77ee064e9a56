"""Record live provider interactions as vcrpy cassettes, with every secret filtered out.

``harness record SPEC`` calls the provider's safe operations once each (GET by default; others
only when named with ``--operations`` *and* the spec sets ``provider.live.allow_unsafe_methods``)
on a host of ``provider.live.allowed_hosts``, authenticating as the spec says (fetching an OAuth2
token first), and writes one vcrpy ``version: 1`` cassette per operation: what ``harness contract
--target cassettes`` and the drift check read back, and what pytest-recording replays.

Cassettes end up in git, so filtering is belt and braces:

* vcrpy's own filters on the request: ``filter_headers`` (Authorization, cookies, the API key
  header), ``filter_query_parameters`` (the API key parameter) and
  ``filter_post_data_parameters`` (client id and secret, passwords, refresh tokens), all replaced
  by ``[REDACTED]`` (which the provider engine's replay treats as a wildcard);
* ``before_record_request`` and ``before_record_response`` with the harness' redactor: every
  secret value of the spec and the token fetched at run time, wherever they appear (echoed in a
  body, inside a URL, base64 in a header), sensitive headers such as ``Set-Cookie``, and token
  fields (``access_token``, ``refresh_token``) of the token endpoint's response body - vcrpy's
  ``filter_*`` options never touch responses;
* a final canary: each cassette is written to a temporary folder and scanned for every secret
  value before it replaces the old one; a cassette that still holds one is an error, not a file.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import httpx

from harness.contract.auth import live_credentials
from harness.openapi.generate import GenerationError
from harness.openapi.operations import CompiledOperation, compile_document
from harness.problems import InputError, Problem
from harness.project import Project
from harness.redact import DEFAULT_SENSITIVE_HEADERS, REDACTED, Redactor

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_TIMEOUT_SECONDS = 10.0
_FILTERED_FORM_FIELDS = ("client_id", "client_secret", "password", "refresh_token", "assertion")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RecordOptions:
    """What to record: ``base_url`` overrides ``provider.live.base_url``; ``operations`` empty
    means every safe (GET) operation of the provider document."""

    out_dir: Path
    base_url: str | None = None
    operations: tuple[str, ...] = ()
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class RecordedCassette:
    operation: str
    path: Path
    statuses: tuple[int, ...]


@dataclass(frozen=True)
class RecordResult:
    base_url: str
    cassettes: tuple[RecordedCassette, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    """(operation, why) for operations not recorded (a parameter that cannot be generated)."""


@dataclass
class _Secrets:
    """The redactor, grown by the token fetched at run time (hooks read it on every call)."""

    redactor: Redactor
    values: set[str] = field(default_factory=set)

    def add(self, value: str) -> None:
        self.values.add(value)
        self.redactor = self.redactor.with_secrets([value])


def record(
    project: Project,
    options: RecordOptions,
    progress: Progress | None = None,
    environ: Mapping[str, str] | None = None,
) -> RecordResult:
    """Record the selected operations into ``options.out_dir``; InputError on bad input."""
    say = progress or (lambda _line: None)
    env = os.environ if environ is None else environ
    base_url = _base_url(project, options.base_url)
    credentials = live_credentials(
        project, env, why="recording needs the real credential (its value is never written)"
    )
    selected, skipped = _select(project, options.operations)
    secrets = _Secrets(Redactor.of(credentials.values()), set(credentials.values()))
    vcr = _vcr(project, secrets)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".recording-", dir=options.out_dir))
    recorded: list[RecordedCassette] = []
    try:
        try:
            with httpx.Client(timeout=options.timeout_seconds, follow_redirects=False) as client:
                pacing = _Pacing(project)
                auth = _Auth(project, credentials, base_url)
                if auth.needs_token:
                    path = staging / f"{_file_name(auth.token_label)}.yaml"
                    with vcr.use_cassette(str(path)):
                        pacing.wait()
                        token = auth.fetch_token(client)
                    secrets.add(token)
                    recorded.append(RecordedCassette(auth.token_label, path, auth.token_statuses))
                    say(f"token: {auth.token_label} answered {auth.token_statuses[-1]}")
                for op in selected:
                    path = staging / f"{_file_name(op.operation_id)}.yaml"
                    request = _request(op, base_url, auth)
                    with vcr.use_cassette(str(path)):
                        pacing.wait()
                        response = _send(client, request, base_url)
                    status = response.status_code
                    recorded.append(RecordedCassette(op.operation_id, path, (status,)))
                    say(f"{op.operation_id}: {op.method} {op.path} answered {status}")
        except KeyboardInterrupt:
            # Interrupted work keeps what it finished: every completed cassette, checked.
            kept = _publish(recorded, secrets, options.out_dir)
            say(f"interrupted: kept {len(kept)} finished cassette(s) in {options.out_dir}")
            raise
        return RecordResult(
            base_url, tuple(_publish(recorded, secrets, options.out_dir)), tuple(skipped)
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(
    recorded: list[RecordedCassette], secrets: _Secrets, out_dir: Path
) -> list[RecordedCassette]:
    """Check every finished cassette for leaks, then move each over the previous recording."""
    _canary([c.path for c in recorded], secrets)
    final: list[RecordedCassette] = []
    for cassette in recorded:
        target = out_dir / cassette.path.name
        os.replace(cassette.path, target)
        final.append(RecordedCassette(cassette.operation, target, cassette.statuses))
    return final


# -- input ---------------------------------------------------------------------------------------


def _base_url(project: Project, override: str | None) -> str:
    """The live URL to record from: it must be on ``provider.live.allowed_hosts`` (no exception
    for loopback here: recording is the one command whose whole job is to talk to a live host)."""
    spec = project.spec
    live = spec.spec.provider.live
    url = override or (live.base_url if live is not None else None)
    if url is None:
        raise InputError(
            [spec.source.problem(["provider"], "no live provider: set provider.live.base_url")]
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError([Problem("--base-url", None, "", f"not an http(s) URL: {url!r}")])
    allowed = {h.lower() for h in (live.allowed_hosts if live is not None else ())}
    if parts.hostname.lower() not in allowed:
        listed = ", ".join(sorted(allowed)) or "none"
        where = ["provider", "live", "allowed_hosts"] if live is not None else ["provider"]
        raise InputError(
            [
                spec.source.problem(
                    where, f"host '{parts.hostname}' is not allowed (allowed_hosts: {listed})"
                )
            ]
        )
    return url.rstrip("/")


def _select(
    project: Project, names: tuple[str, ...]
) -> tuple[list[CompiledOperation], list[tuple[str, str]]]:
    compiled = compile_document(project.provider)
    by_id = {op.operation_id: op for op in compiled}
    spec = project.spec.spec
    auth = spec.authentication
    token_op = auth.token_operation if auth is not None else None
    live = spec.provider.live
    unsafe_allowed = live is not None and live.allow_unsafe_methods
    problems: list[Problem] = []
    wanted: list[CompiledOperation] = []
    for name in names:
        op = by_id.get(name)
        if op is None:
            known = ", ".join(sorted(by_id)) or "none"
            problems.append(
                Problem("--operations", None, "", f"unknown operation '{name}' (known: {known})")
            )
        elif op.method not in SAFE_METHODS and not unsafe_allowed:
            problems.append(
                Problem(
                    "--operations",
                    None,
                    "",
                    f"'{name}' is {op.method}, an unsafe method: the spec does not allow them "
                    "(provider.live.allow_unsafe_methods)",
                )
            )
        else:
            wanted.append(op)
    if problems:
        raise InputError(problems)
    if not names:
        wanted = [
            op
            for op in sorted(compiled, key=lambda o: (o.path, o.method))
            if op.method == "GET" and op.operation_id != token_op
        ]
    selected: list[CompiledOperation] = []
    skipped: list[tuple[str, str]] = []
    for op in wanted:
        reason = _not_callable(op)
        if reason is None:
            selected.append(op)
        else:
            skipped.append((op.operation_id, reason))
    if not selected and not skipped:
        raise InputError(
            [Problem(project.provider.display, None, "", "no safe (GET) operation to record")]
        )
    return selected, skipped


def _not_callable(op: CompiledOperation) -> str | None:
    for param in op.parameters:
        if param.required and param.location in ("path", "query", "header"):
            if param.schema is None:
                return f"required {param.location} parameter '{param.name}' has no schema"
            try:
                param.schema.generator.static()
            except GenerationError as exc:
                return f"no value for required {param.location} parameter '{param.name}': {exc}"
    return None


# -- auth ----------------------------------------------------------------------------------------


class _Auth:
    """The spec's authentication, applied to each recorded request."""

    def __init__(self, project: Project, credentials: Mapping[str, str], base_url: str) -> None:
        self.spec = project.spec.spec.authentication
        self.project = project
        self.credentials = credentials
        self.base_url = base_url
        self.token: str | None = None
        self.token_statuses: tuple[int, ...] = ()

    @property
    def needs_token(self) -> bool:
        return self.spec is not None and self.spec.kind == "oauth2_client_credentials"

    @property
    def token_label(self) -> str:
        assert self.spec is not None
        return self.spec.token_operation or "token"

    def token_url(self) -> str:
        assert self.spec is not None
        if self.spec.token_operation:
            op = self.project.provider.operations.get(self.spec.token_operation)
            assert op is not None  # the project's references are checked when it loads
            return self.base_url + op.path
        assert self.spec.token_url is not None
        return urljoin(self.base_url + "/", self.spec.token_url)

    def fetch_token(self, client: httpx.Client) -> str:
        assert self.spec is not None
        form = {
            "grant_type": "client_credentials",
            "client_id": self.credentials.get("client_id", ""),
            "client_secret": self.credentials.get("client_secret", ""),
        }
        if self.spec.scopes:
            form["scope"] = " ".join(self.spec.scopes)
        url = self.token_url()
        response = _send(client, {"method": "POST", "url": url, "data": form}, self.base_url)
        self.token_statuses = (response.status_code,)
        token = None
        if response.is_success:
            try:
                body = response.json()
            except ValueError:
                body = None
            token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise InputError(
                [
                    self.project.spec.source.problem(
                        ["authentication"],
                        f"the token request to {_without_query(url)} answered "
                        f"{response.status_code} without an access_token: check the credentials",
                    )
                ]
            )
        self.token = token
        return token

    def apply(self, headers: dict[str, str], query: dict[str, str]) -> httpx.BasicAuth | None:
        auth = self.spec
        if auth is None:
            return None
        if auth.kind == "oauth2_client_credentials" and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        elif auth.kind == "bearer" and "token" in self.credentials:
            headers["Authorization"] = f"Bearer {self.credentials['token']}"
        elif auth.kind == "api_key" and auth.key_name and "api_key" in self.credentials:
            if auth.key_in == "query":
                query[auth.key_name] = self.credentials["api_key"]
            else:
                headers[auth.key_name] = self.credentials["api_key"]
        elif auth.kind == "basic":
            return httpx.BasicAuth(
                self.credentials.get("username", ""), self.credentials.get("password", "")
            )
        return None


# -- requests ------------------------------------------------------------------------------------


def _request(op: CompiledOperation, base_url: str, auth: _Auth) -> dict[str, Any]:
    """One conforming request: required parameters only, with the document's simplest values."""
    path = op.path
    query: dict[str, str] = {}
    headers: dict[str, str] = {"Accept": "application/json"}
    for param in op.parameters:
        if not param.required or param.schema is None:
            continue
        value = _text(param.schema.generator.static())
        if param.location == "path":
            path = path.replace("{" + param.name + "}", value)
        elif param.location == "query":
            query[param.name] = value
        elif param.location == "header":
            headers[param.name] = value
    basic = auth.apply(headers, query)
    request: dict[str, Any] = {
        "method": op.method,
        "url": base_url + path + (f"?{urlencode(query)}" if query else ""),
        "headers": headers,
    }
    if basic is not None:
        request["auth"] = basic
    if op.method not in SAFE_METHODS and op.bodies:
        media, schema = next(iter(op.bodies.items()))
        if schema is not None and "json" in media:
            request["json"] = schema.generator.static()
    return request


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def _send(client: httpx.Client, request: dict[str, Any], base_url: str) -> httpx.Response:
    try:
        return client.request(**request)
    except httpx.HTTPError as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        host = urlsplit(base_url).netloc
        raise InputError(
            [Problem(base_url, None, "", f"cannot reach {host}: {reason or type(exc).__name__}")]
        ) from None


class _Pacing:
    """Never faster than the spec's rate limit (a recording is a handful of requests anyway)."""

    def __init__(self, project: Project) -> None:
        limits = project.spec.spec.rate_limits
        self.interval = 1.0 / limits.per_second if limits is not None else 0.0
        self.last: float | None = None

    def wait(self) -> None:
        now = time.monotonic()
        if self.last is not None and self.interval:
            delay = self.last + self.interval - now
            if delay > 0:
                time.sleep(delay)
        self.last = time.monotonic()


# -- vcrpy ---------------------------------------------------------------------------------------


def _vcr(project: Project, secrets: _Secrets) -> Any:
    # vcrpy ships no type information, and costs ~0.35 s to import: only recordings pay for it.
    vcr: Any = importlib.import_module("vcr")

    auth = project.spec.spec.authentication
    headers = sorted(DEFAULT_SENSITIVE_HEADERS)  # the redactor's own list, as vcrpy filters
    params: list[str] = []
    if auth is not None and auth.kind == "api_key" and auth.key_name:
        (params if auth.key_in == "query" else headers).append(auth.key_name)

    def before_request(request: Any) -> Any:
        redactor = secrets.redactor
        parts = urlsplit(request.uri)
        request.uri = urlunsplit(
            (
                parts.scheme,
                parts.netloc,
                redactor.text(parts.path),
                redactor.query(parts.query),
                "",
            )
        )
        pairs = redactor.headers([(str(k), str(v)) for k, v in request.headers.items()])
        request.headers = dict(pairs)
        if request.body:
            raw = request.body if isinstance(request.body, bytes) else str(request.body).encode()
            content_type = next((v for k, v in pairs if k.lower() == "content-type"), None)
            request.body = redactor.body(raw, content_type).encode("utf-8")
        return request

    def before_response(response: dict[str, Any]) -> dict[str, Any]:
        redactor = secrets.redactor
        raw_headers: dict[str, Any] = response.get("headers") or {}
        flat = [
            (str(name), str(value))
            for name, values in raw_headers.items()
            for value in (values if isinstance(values, list) else [values])
        ]
        content_type = next((v for k, v in flat if k.lower() == "content-type"), None)
        body = response.get("body") or {}
        data = body.get("string")
        text = redactor.body(data if isinstance(data, bytes | str) else b"", content_type)
        encoded = text.encode("utf-8")
        headers: dict[str, list[str]] = {}
        for name, value in redactor.headers(flat):
            if name.lower() == "content-length":
                value = str(len(encoded))
            headers.setdefault(name, []).append(value)
        response["headers"] = headers
        response["body"] = {**body, "string": encoded}
        return response

    return vcr.VCR(
        record_mode="all",
        serializer="yaml",
        decode_compressed_response=True,
        filter_headers=[(h, REDACTED) for h in headers],
        filter_query_parameters=[(p, REDACTED) for p in params],
        filter_post_data_parameters=[(p, REDACTED) for p in _FILTERED_FORM_FIELDS],
        before_record_request=before_request,
        before_record_response=before_response,
    )


def _canary(paths: list[Path], secrets: _Secrets) -> None:
    """No cassette may hold a secret value, in any encoding the redactor knows."""
    leaks = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if secrets.redactor.text(text) != text:
            leaks.append(path.name)
    if leaks:
        raise InputError(
            [
                Problem(
                    name,
                    None,
                    "",
                    "a secret value survived filtering: cassette not written "
                    "(report this as a harness bug)",
                )
                for name in leaks
            ]
        )


def _file_name(operation: str) -> str:
    return _UNSAFE_NAME.sub("_", operation).strip("_") or "operation"


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
