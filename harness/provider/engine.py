"""The provider engine: decides, for each request, what a provider described by an OpenAPI
document (and an integration spec) would answer - and how it should misbehave.

The decision is synchronous and cheap on the common path (a route lookup, an auth check, a token
bucket, jsonschema_rs validation, a cached or stateful body), because in a load run the engine is
the target. The HTTP server (``server.py``) carries the decision out on the wire; every exchange
ends in one traffic record, the evidence the later stages judge on.

Per request, in order: admin API (``/__harness/``), route, fault plan, token endpoint, auth,
rate limit, request validation, cassette replay, stateful store, generated response, then the
response-shaping faults (latency, slow or truncated body, malformed JSON, schema violations).
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard
from urllib.parse import parse_qs

from harness.openapi.document import OpenAPIDocument
from harness.openapi.generate import GenerationError
from harness.openapi.operations import (
    CompiledOperation,
    ResponseSpec,
    Violation,
    compile_document,
    path_params,
)
from harness.provider.auth import AuthEmulator
from harness.provider.cassettes import CassetteReplayer, Interaction
from harness.provider.faults import (
    CloseAfterHeadersFault,
    FaultPlan,
    FaultRule,
    FaultState,
    HangFault,
    LatencyFault,
    MalformedJsonFault,
    ResetFault,
    SchemaViolationFault,
    SlowBodyFault,
    StatusFault,
    TokenExpiryFault,
    TruncateFault,
    parse_fault_plan,
)
from harness.provider.messages import Action, Hang, Headers, Outcome, Request, Reset, Respond
from harness.provider.ratelimit import RateDecision, RateLimiter
from harness.provider.response_check import ResponseChecker
from harness.provider.state import ResourceStore, dumps
from harness.provider.traffic import TrafficLog
from harness.provider.upstream import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_TIMEOUT_SECONDS,
    UpstreamError,
    UpstreamPool,
    UpstreamResponse,
    UpstreamTimeout,
)
from harness.spec.model import Authentication, RateLimits

Side = Literal["provider", "destination"]
OnMiss = Literal["fail", "generate", "passthrough"]
ADMIN_PREFIX = "/__harness/"
_JSON = (("content-type", "application/json"),)
_PROBLEM = (("content-type", "application/problem+json"),)
_LOG_BODY_LIMIT = 4096
_READ_CACHE_LIMIT = 4096
DEFAULT_LOG_BODY_LIMIT = _LOG_BODY_LIMIT
"""Bytes of each request and response body the traffic log keeps, unless told otherwise."""


@dataclass(frozen=True)
class EngineOptions:
    """How one engine behaves. Defaults: stateful, validating, deterministic, seed 0."""

    side: Side = "provider"
    seed: int = 0
    stateful: bool = True
    records: int = 3
    validate_requests: bool = True
    varied: bool = False
    authentication: Authentication | None = None
    credentials: Mapping[str, str] = field(default_factory=dict)
    token_ttl_seconds: float | None = None
    rate_limits: RateLimits | None = None
    fault_plan: FaultPlan | None = None
    cassettes: tuple[Interaction, ...] = ()
    on_miss: OnMiss = "generate"
    log_bodies: bool = True
    # Bytes of each body kept in the traffic log (the scenario stage needs whole pages).
    log_body_limit: int = _LOG_BODY_LIMIT
    # The fault proxy: forward what the engine does not answer itself to this base URL (with
    # cassettes: only misses, and only with on_miss="passthrough"). No auth emulation then.
    upstream: str | None = None
    upstream_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    upstream_max_connections: int = DEFAULT_MAX_CONNECTIONS


@dataclass(slots=True)
class _Meta:
    """What the engine learnt about one request; becomes part of its traffic record."""

    operation_id: str | None = None
    fault: str | None = None
    identity: str | None = None
    rate: RateDecision | None = None
    violations: tuple[str, ...] = ()
    note: str = ""
    rule: FaultRule | None = None


def _problem(status: int, title: str, detail: str = "", **extra: Any) -> Respond:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return Respond(status, _PROBLEM, dumps(body))


def _documented(
    spec: ResponseSpec | None, status: int, problem: dict[str, Any], headers: Headers, message: str
) -> Respond:
    """``problem`` as the documented response ``spec`` describes it: kept when it conforms,
    else a generated conforming body with ``message`` in its first free-text field. Without a
    documented response, problem+json with the engine's own status."""
    if spec is None:
        return Respond(status, _PROBLEM + headers, dumps(problem))
    code = spec.status if spec.status else status
    if spec.body is None:
        return Respond(code, headers, b"")
    if "status" in problem:
        problem = {**problem, "status": code}
    body: Any = problem
    if not spec.body.is_valid(problem):
        body = spec.body.generator.static()
        if isinstance(body, dict):
            for key in ("message", "detail", "error_description", "description", "title", "error"):
                if isinstance(body.get(key), str):
                    trial = {**body, key: message}
                    if spec.body.is_valid(trial):
                        body = trial
                        break
            if isinstance(body.get("status"), int):
                trial = {**body, "status": code}
                if spec.body.is_valid(trial):
                    body = trial
    return Respond(code, _content_type(spec, problem=True) + headers, dumps(body))


def _content_type(spec: ResponseSpec | None, *, problem: bool = False) -> Headers:
    if spec is not None and spec.media_type:
        return (("content-type", spec.media_type),)
    return _PROBLEM if problem else _JSON


def _client_host(client: str) -> str:
    host, _, port = client.rpartition(":")
    return host if host and port.isdigit() else client


class ProviderEngine:
    """Serves one document. Single-threaded: call ``handle`` and ``complete`` from the server loop."""

    def __init__(
        self, document: OpenAPIDocument, options: EngineOptions, traffic: TrafficLog
    ) -> None:
        self.document = document
        self.options = options
        self.traffic = traffic
        self.operations = compile_document(document)
        self._static_routes: dict[tuple[str, str], CompiledOperation] = {}
        self._templated: list[CompiledOperation] = []
        for op in self.operations:
            if op.pattern is None:
                self._static_routes.setdefault((op.method, op.path), op)
            else:
                self._templated.append(op)
        self._base_path = _base_path(document)
        self.store = ResourceStore(self.operations, seed=options.seed, records=options.records)
        self._static_bodies: dict[str, tuple[int, bytes, Headers] | GenerationError] = {}
        self.upstream: UpstreamPool | None = None
        if options.upstream is not None and (
            not options.cassettes or options.on_miss == "passthrough"
        ):
            self.upstream = UpstreamPool(
                options.upstream,
                timeout=options.upstream_timeout_seconds,
                max_connections=options.upstream_max_connections,
            )
        elif options.cassettes and options.on_miss == "passthrough":
            raise ValueError("on_miss='passthrough' needs an upstream to forward misses to")
        self._checker = ResponseChecker(document)
        auth = options.authentication
        self.auth: AuthEmulator | None = None
        if (
            auth is not None
            and auth.kind not in ("none", "custom")
            and options.side == "provider"
            and self.upstream is None  # forwarded requests meet the real provider's auth
        ):
            self.auth = AuthEmulator(
                auth,
                dict(options.credentials),
                token_ttl_seconds=options.token_ttl_seconds,
            )
        limits = options.rate_limits if options.side == "provider" else None
        self.limiter = RateLimiter(limits) if limits is not None else None
        self.faults = FaultState(options.fault_plan or FaultPlan())
        self.replayer = (
            CassetteReplayer(list(options.cassettes), on_miss=options.on_miss)
            if options.cassettes
            else None
        )
        self._meta: dict[int, _Meta] = {}
        # Keyed by the body alone (bytes: nothing for the collector to track); ``limit`` is the
        # engine's own, the same for every call.
        self._texts: dict[bytes, str] = {}
        self._validations: dict[tuple[Any, ...], list[Violation]] = {}
        self._routes: dict[tuple[str, str], tuple[CompiledOperation, dict[str, str]] | None] = {}
        self._defer_traffic = False
        self._flush_scheduled = False
        self._header_cache: dict[int, Headers] = {}
        # GET answers by (operation, client, path, query), valid while the store's version holds.
        self._reads: dict[
            tuple[int, str, str, str], tuple[int, tuple[int, Headers, bytes] | None]
        ] = {}
        self._started = time.monotonic()

    def defer_traffic_writes(self) -> None:
        """Write traffic records once per turn of the event loop instead of once each.

        For an engine behind an :class:`~harness.provider.server.HttpServer` started with
        ``before_send=engine.flush_traffic``: the server calls it before it sends the responses
        of a turn, so records still reach the operating system before their answers do. From
        then on the engine records only on its event loop's thread.
        """
        self._defer_traffic = True

    def flush_traffic(self) -> None:
        """Write the traffic records not written yet (see :meth:`defer_traffic_writes`)."""
        self._flush_scheduled = False
        self.traffic.flush()

    # --- routing -------------------------------------------------------------------------

    def route(self, method: str, path: str) -> tuple[CompiledOperation, dict[str, str]] | None:
        """The operation serving ``method path`` and its path parameters (treat as read-only:
        routes are cached, as a load run asks for the same few paths over and over)."""
        key = (method, path)
        try:
            return self._routes[key]
        except KeyError:
            if len(self._routes) >= _READ_CACHE_LIMIT:
                self._routes.clear()
            routed = self._routes[key] = self._route(method, path)
            return routed

    def _route(self, method: str, path: str) -> tuple[CompiledOperation, dict[str, str]] | None:
        if self._base_path and path.startswith(self._base_path):
            path = path[len(self._base_path) :] or "/"
        op = self._static_routes.get((method, path))
        if op is not None:
            return op, {}
        for candidate in self._templated:
            if candidate.method == method and candidate.pattern is not None:
                match = candidate.pattern.match(path)
                if match:
                    return candidate, path_params(candidate, match)
        return None

    def allowed_methods(self, path: str) -> tuple[str, ...]:
        """The methods the document declares for ``path`` (for a 405's ``Allow`` header)."""
        if self._base_path and path.startswith(self._base_path):
            path = path[len(self._base_path) :] or "/"
        found = {op.method for op in self.operations if op.pattern is None and op.path == path}
        found.update(
            op.method for op in self._templated if op.pattern is not None and op.pattern.match(path)
        )
        return tuple(sorted(found))

    # --- the decision ----------------------------------------------------------------------

    def handle(self, request: Request) -> Action | Awaitable[Action]:
        """Decide the action for ``request``; the server carries it out.

        A plain response is logged *before* it is sent: once a client has its answer, the record
        of it is already with the operating system, so killing the process loses nothing.
        Responses that take time (delays, slow or cut bodies) and resets or hangs are logged on
        completion, when what really reached the client is known.
        """
        meta = _Meta()
        if request.path.startswith(ADMIN_PREFIX):
            return self._admin(request)
        action = self._decide(request, meta)
        if (
            isinstance(action, Respond)
            and not action.delay_seconds
            and not action.chunk_delay_seconds
            and action.truncate_at is None
            and not action.close_after_headers
        ):
            self._record(
                request,
                action,
                meta,
                action.status,
                len(action.body),
                time.monotonic(),
                time.time(),
                "",
            )
        else:
            self._meta[id(request)] = meta
        return action

    def _decide(self, request: Request, meta: _Meta) -> Action | Awaitable[Action]:
        routed = self.route(request.method, request.path)
        meta.operation_id = routed[0].operation_id if routed else None
        rule = self.faults.decide(
            self.options.side, meta.operation_id, request.method, request.path
        )
        if rule is not None:
            meta.fault = rule.name
            meta.rule = rule
            early = self._early_fault(rule)
            if early is not None:
                return early
        if self.replayer is not None:
            # Recorded answers are the provider's own: they stand in for auth and generation.
            hit = self.replayer.match(request.method, request.path, request.query, request.body)
            if hit is not None:
                meta.note = "replayed"
                headers = tuple(
                    (k.lower(), v)
                    for k, v in hit.headers
                    if k.lower() not in ("content-length", "transfer-encoding", "connection")
                )
                return Respond(hit.status, headers, hit.body)
            if self.options.on_miss == "fail":
                meta.note = "cassette miss"
                return _problem(
                    501,
                    "Not Recorded",
                    f"no recorded interaction for {request.method} {request.path}",
                )
        if routed is None and self.upstream is not None:
            return self._forward(request, None, meta)
        if routed is None:
            allowed = self.allowed_methods(request.path)
            if allowed:  # the path exists, the method does not: RFC 9110 405 with Allow
                problem = _problem(
                    405,
                    "Method Not Allowed",
                    f"{request.method} is not an operation of {request.path}",
                )
                return Respond(405, (*problem.headers, ("allow", ", ".join(allowed))), problem.body)
            return _problem(
                404,
                "Not Found",
                f"no operation for {request.method} {request.path} in {self.document.title}",
            )
        op, params = routed
        action = self._answer(request, op, params, meta)
        if rule is not None and isinstance(action, Respond):
            action = self._shape(rule, op, action)
        return action

    def _early_fault(self, rule: FaultRule) -> Action | None:
        """Faults that replace the answer entirely; ``None`` for those that shape it later."""
        fault = rule.action
        if isinstance(fault, ResetFault):
            return Reset()
        if isinstance(fault, HangFault):
            return Hang()
        if isinstance(fault, StatusFault):
            return fault.respond()
        if isinstance(fault, TokenExpiryFault) and self.auth is not None:
            self.auth.expire_all_tokens()
        return None

    def _answer(
        self, request: Request, op: CompiledOperation, params: dict[str, str], meta: _Meta
    ) -> Action | Awaitable[Action]:
        if self.auth is not None and self.auth.is_token_request(request.path, op.operation_id):
            return self.auth.handle_token_request(request)
        identity = _client_host(request.client)
        if self.auth is not None and op.secured:
            result = self.auth.authenticate(request)
            if not result.ok:
                meta.identity = result.identity
                return self._error(op, result.respond())
            identity = result.identity
            if (
                self.options.rate_limits is not None
                and self.options.rate_limits.per == "token"
                and result.token_label
            ):
                identity = result.token_label
        if self.options.rate_limits is not None and self.options.rate_limits.per == "ip":
            identity = _client_host(request.client)
        meta.identity = identity
        rate_headers: Headers = ()
        if self.limiter is not None:
            decision = self.limiter.check(identity, op.operation_id)
            meta.rate = decision
            rate_headers = self.limiter.headers(decision)
            if not decision.allowed:
                action = _problem(429, "Too Many Requests", "rate limit exceeded")
                return self._error(op, Respond(429, rate_headers, action.body))
        if self.upstream is not None:
            return self._forward(request, op, meta)
        body: Any = None
        if self.options.validate_requests:
            if request.body:
                headers = dict(request.headers)
                violations, body = op.validate(
                    params, request.query, headers, request.body, headers.get("content-type")
                )
            else:
                violations = self._validate_bodiless(request, op, params)
            if violations:
                meta.violations = tuple(str(v) for v in violations)
                if any(v.location == "header" and v.name == "content-type" for v in violations):
                    status = 415
                elif all(v.location == "body" for v in violations) and body is not None:
                    status = 422
                else:
                    status = 400
                return self._reject(op, status, violations)
        elif request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                body = None
        if self.options.stateful:
            answer = self._stateful(request, op, params, body, meta.identity or "anonymous")
            if answer is not None:
                status, headers_out, encoded = answer
                return Respond(status, headers_out + rate_headers, encoded)
        return self._generated(op, rate_headers)

    def _stateful(
        self,
        request: Request,
        op: CompiledOperation,
        params: dict[str, str],
        body: Any,
        client: str,
    ) -> tuple[int, Headers, bytes] | None:
        """The store's answer, encoded; ``None`` when the store does not handle ``op``.

        A GET is a pure function of the operation, the client, the URL and the store's state,
        so its encoded answer is kept until the next write: under a load of reads, the page
        is built, checked against the document and encoded once, not once per request.
        """
        store = self.store
        key: tuple[int, str, str, str] | None = None
        if op.method == "GET" and not request.body:
            key = (id(op), client, request.path, request.query)
            hit = self._reads.get(key)
            if hit is not None and hit[0] == store.version:
                return hit[1]
        query = parse_qs(request.query, keep_blank_values=True) if request.query else {}
        stored = store.answer(op, params, query, body, client)
        answer: tuple[int, Headers, bytes] | None = None
        if stored is not None:
            answer = (
                stored.status,
                (_content_type(stored.spec) if stored.body is not None else ())
                + self._doc_headers(stored.spec),
                b"" if stored.body is None else dumps(stored.body),
            )
        if key is not None:
            if len(self._reads) >= _READ_CACHE_LIMIT:
                self._reads.clear()
            self._reads[key] = (store.version, answer)
        return answer

    def _validate_bodiless(
        self, request: Request, op: CompiledOperation, params: dict[str, str]
    ) -> list[Violation]:
        """Violations of a request without a body: a pure function of the operation, the URL
        and the header parameters' values, so worked out once per distinct request."""
        names = op.header_names
        headers = dict(request.headers) if names else {}
        key = (id(op), request.path, request.query, *(headers.get(n) for n in names))
        violations = self._validations.get(key)
        if violations is None:
            violations, _ = op.validate(params, request.query, headers, b"", None)
            if len(self._validations) >= _READ_CACHE_LIMIT:
                self._validations.clear()
            self._validations[key] = violations
        return violations

    def _reject(self, op: CompiledOperation, status: int, violations: list[Violation]) -> Respond:
        """A 4xx for an invalid request, as the operation documents its errors."""
        detail = "; ".join(str(v) for v in violations[:5])
        problem: dict[str, Any] = {
            "type": "about:blank",
            "title": "Request validation failed",
            "status": status,
            "detail": detail,
            "errors": [v.as_dict() for v in violations],
        }
        spec = op.rejection(status, path_only=all(v.location == "path" for v in violations))
        return _documented(spec, status, problem, (), f"Request validation failed: {detail}")

    def _error(self, op: CompiledOperation, action: Respond) -> Respond:
        """An error the engine makes itself (401 from auth, 429 from the rate limit), with its
        headers kept and its body in the shape the operation documents for that status."""
        try:
            problem = json.loads(action.body) if action.body else {}
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        message = str(
            problem.get("error_description") or problem.get("detail") or problem.get("title") or ""
        )
        kept = tuple((k, v) for k, v in action.headers if k != "content-type")
        spec = op.responses.get(action.status) or op.default_response
        return _documented(spec, action.status, problem, kept, message)

    def _generated(self, op: CompiledOperation, rate_headers: Headers) -> Respond:
        cached = self._static_bodies.get(op.operation_id)
        if cached is None:
            cached = self._static_bodies[op.operation_id] = self._render(op)
        if isinstance(cached, GenerationError):
            return _problem(501, "Not Implemented", f"cannot answer {op.operation_id}: {cached}")
        status, body, headers = cached
        return Respond(status, headers + rate_headers, body)

    def _render(self, op: CompiledOperation) -> tuple[int, bytes, Headers] | GenerationError:
        spec = op.success()
        if spec is None:
            return GenerationError("the operation documents no 2xx response")
        try:
            if spec.body is None:
                return spec.status, b"", self._doc_headers(spec)
            value = (
                spec.body.generator.varied(self.options.seed)
                if self.options.varied
                else spec.body.generator.static()
            )
        except GenerationError as error:
            return error
        media = spec.media_type or "application/json"
        if "json" not in media:
            if isinstance(value, str):
                return (
                    spec.status,
                    value.encode(),
                    (("content-type", media), *self._doc_headers(spec)),
                )
            return GenerationError(f"unsupported response media type {media}")
        return spec.status, dumps(value), (("content-type", media), *self._doc_headers(spec))

    def _doc_headers(self, spec: ResponseSpec | None) -> Headers:
        """Values for the headers a response documents: all of them for redirects, the required
        ones otherwise. Rate-limit headers are the limiter's to set. Computed once per response."""
        if spec is None or not spec.headers:
            return ()
        cached = self._header_cache.get(id(spec))
        if cached is not None:
            return cached
        wanted = (
            spec.headers
            if 300 <= spec.status < 400
            else {n.lower(): spec.headers.get(n.lower()) for n in spec.required_headers}
        )
        out: list[tuple[str, str]] = []
        for name, schema in wanted.items():
            if (
                name.startswith(("ratelimit", "x-ratelimit", "retry-after"))
                and self.limiter is not None
            ):
                continue
            value = schema.generator.static() if schema is not None else "value"
            if name == "location" and (
                schema is None or not isinstance(value, str) or not value.startswith(("/", "http"))
            ):
                value = "https://example.com/"
            out.append((name, str(value).lower() if isinstance(value, bool) else str(value)))
        headers = self._header_cache[id(spec)] = tuple(out)
        return headers

    def _shape(self, rule: FaultRule, op: CompiledOperation, action: Respond) -> Action:
        fault = rule.action
        if isinstance(fault, LatencyFault):
            return _replace(action, delay_seconds=fault.seconds)
        if isinstance(fault, SlowBodyFault):
            return _replace(
                action, chunk_delay_seconds=fault.chunk_delay, chunk_size=fault.chunk_size
            )
        if isinstance(fault, TruncateFault):
            return _replace(
                action, truncate_at=fault.at if fault.at is not None else len(action.body) // 2
            )
        if isinstance(fault, CloseAfterHeadersFault):
            return _replace(action, close_after_headers=True)
        if isinstance(fault, MalformedJsonFault):
            broken = action.body[: max(1, len(action.body) // 2)] if action.body else b"{"
            return _replace(action, body=broken + b'\x00{"truncated": ')
        if isinstance(fault, SchemaViolationFault):
            return _replace(
                action,
                body=dumps(_violate(json.loads(action.body or b"null"), fault.violation, op)),
            )
        return action

    # --- the fault proxy: forwarding to the real provider ----------------------------------

    def _forward(
        self, request: Request, op: CompiledOperation | None, meta: _Meta
    ) -> asyncio.Future[Action]:
        """Send the request upstream; the future gets the action: the upstream's answer.

        Called after faults, the rate limiter and cassettes had their say. No task and no
        coroutine: the pool writes the request before this returns and calls back from the
        upstream connection's ``data_received``, so a forward costs the server one turn of the
        event loop, not three (latency is the proxy's budget).
        """
        upstream = self.upstream
        assert upstream is not None
        answer: asyncio.Future[Action] = asyncio.get_running_loop().create_future()

        def answered(result: UpstreamResponse | UpstreamError) -> None:
            if answer.cancelled():  # the server stopped meanwhile: log what we know, once
                if self._meta.pop(id(request), None) is not None:
                    now = time.monotonic()
                    self._record(request, Hang(), meta, None, 0, now, time.time(), "server stopped")
                return
            try:
                answer.set_result(self._proxied(request, op, meta, result))
            except Exception as error:  # an engine bug: the server answers 500 and logs it
                answer.set_exception(error)

        upstream.forward(
            request.method, request.path, request.query, request.headers, request.body, answered
        )
        return answer

    def _proxied(
        self,
        request: Request,
        op: CompiledOperation | None,
        meta: _Meta,
        result: UpstreamResponse | UpstreamError,
    ) -> Action:
        """The upstream's answer as an action: checked against the document, shaped by faults.

        The client gets the response as the upstream sent it (hop-by-hop headers aside); how it
        breaks the document goes to the record's ``validation_errors`` only. Shaping faults
        apply after the check: the evidence is about the provider, not our fault. An upstream
        that cannot be reached is a 502, one too slow a 504.
        """
        action: Action
        if isinstance(result, UpstreamTimeout):
            meta.note = f"upstream timeout: {result}"
            action = _problem(504, "Gateway Timeout", str(result))
        elif isinstance(result, UpstreamError):
            meta.note = f"upstream unavailable: {result}"
            action = _problem(502, "Bad Gateway", str(result))
        else:
            head = request.method == "HEAD"
            if op is None:
                meta.violations = (
                    f"no operation for {request.method} {request.path} in {self.document.title}",
                )
            else:
                meta.violations = self._checker.check(
                    op, result.status, result.headers, result.body, head_only=head
                )
            # The server writes Content-Length for the body it sends (faults may change it);
            # a HEAD answer keeps the upstream's, as there is no body to count.
            headers = (
                result.headers
                if head
                else tuple(h for h in result.headers if h[0].lower() != "content-length")
            )
            action = Respond(result.status, headers, result.body)
            if meta.rule is not None and op is not None:
                try:
                    action = self._shape(meta.rule, op, action)
                except ValueError:  # a schema-violation fault on a body that is not JSON
                    meta.note = "fault not applied: the upstream body is not JSON"
        if _sent_at_once(action):  # logged before it is sent, as in handle()
            self._meta.pop(id(request), None)
            self._record(
                request,
                action,
                meta,
                action.status,
                len(action.body),
                time.monotonic(),
                time.time(),
                "",
            )
        return action

    # --- completion: one traffic record per exchange ---------------------------------------

    def complete(self, request: Request, action: Action, outcome: Outcome) -> None:
        """Log the exchanges :meth:`handle` could not log up front, with what really happened."""
        meta = self._meta.pop(id(request), None)
        if meta is None:
            return
        sent = 0
        if isinstance(action, Respond) and outcome.status is not None:
            sent = (
                len(action.body)
                if action.truncate_at is None
                else min(action.truncate_at, len(action.body))
            )
            if action.close_after_headers:
                sent = 0
        self._record(
            request,
            action,
            meta,
            outcome.status,
            sent,
            outcome.ended_monotonic,
            outcome.ended_wall,
            outcome.note,
        )

    def _record(
        self,
        request: Request,
        action: Action,
        meta: _Meta,
        status: int | None,
        body_sent: int,
        ended_monotonic: float,
        ended_wall: float,
        note: str,
    ) -> None:
        response_headers: Headers = action.headers if isinstance(action, Respond) else ()
        body_text: str | None = None
        limit = self.options.log_body_limit
        if self.options.log_bodies and isinstance(action, Respond) and action.body:
            body_text = self._body_text(action.body, limit)
        request_text = (
            request.body[:limit].decode("utf-8", "replace")
            if self.options.log_bodies and request.body
            else None
        )
        rate = meta.rate
        # Every field, in TrafficRecord's order (``seq`` first, set by the log): the line is
        # encoded straight from this dict, with no record object in between.
        self.traffic.append_values(
            {
                "seq": 0,
                "side": self.options.side,
                "operation_id": meta.operation_id,
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "status": status,
                "started_monotonic": request.started_monotonic,
                "ended_monotonic": ended_monotonic,
                "started_wall": request.started_wall,
                "ended_wall": ended_wall,
                "latency_ms": (ended_monotonic - request.started_monotonic) * 1000,
                "request_bytes": len(request.body),
                "response_bytes": body_sent,
                "fault": meta.fault,
                "client_id": request.client,
                "auth_identity": meta.identity,
                "rate_limit": None
                if rate is None
                else {
                    "limit": rate.limit,
                    "remaining": rate.remaining,
                    "reset": rate.reset_seconds,
                    "retry_after": rate.retry_after_seconds,
                },
                "early_retry": bool(rate and rate.early_retry),
                "validation_errors": meta.violations,
                "request_headers": request.headers,
                "response_headers": response_headers,
                "request_body": request_text,
                "response_body": body_text,
                "request_body_truncated": len(request.body) > limit,
                "response_body_truncated": isinstance(action, Respond) and len(action.body) > limit,
                "note": meta.note or note,
            },
            defer=self._defer_traffic,
        )
        if self._defer_traffic and not self._flush_scheduled:
            # Records of exchanges no response follows (resets, hangs, completions) must not
            # wait for the next response: flush at the end of this turn regardless.
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush_traffic)

    def _body_text(self, body: bytes, limit: int) -> str:
        """A response body as logged text. Cached answers send the same bytes object again and
        again (bytes keep their hash): decoding it once also lets the redactor's memo find the
        same string, instead of hashing a new copy of a whole page per request."""
        if len(body) > _LOG_BODY_LIMIT * 4:
            return body[:limit].decode("utf-8", "replace")
        text = self._texts.get(body)
        if text is None:
            if len(self._texts) >= _READ_CACHE_LIMIT:
                self._texts.clear()
            text = self._texts[body] = body[:limit].decode("utf-8", "replace")
        return text

    # --- admin API -------------------------------------------------------------------------

    def _admin(self, request: Request) -> Respond:
        what = request.path[len(ADMIN_PREFIX) :].strip("/")
        if what == "openapi.json" and request.method == "GET":
            return Respond(200, _JSON, dumps(self.document.data))
        if what == "traffic" and request.method == "GET":
            since = int(parse_qs(request.query).get("since", ["0"])[0] or 0)
            records = [r.to_dict() for r in self.traffic.records(since)]
            return Respond(200, _JSON, dumps({"count": self.traffic.count, "records": records}))
        if what == "faults":
            if request.method == "GET":
                return Respond(
                    200,
                    _JSON,
                    dumps(
                        {
                            "rules": [r.name for r in self.faults.plan.rules],
                            "counts": [c.__dict__ for c in self.faults.counts()],
                        }
                    ),
                )
            if request.method in ("PUT", "POST"):
                try:
                    plan = parse_fault_plan(json.loads(request.body or b"{}"))
                except ValueError as error:
                    return _problem(400, "Invalid fault plan", str(error))
                except Exception as error:
                    problems = getattr(error, "problems", ())
                    return _problem(
                        400, "Invalid fault plan", str(error), errors=[str(p) for p in problems]
                    )
                self.faults = FaultState(plan)
                return Respond(200, _JSON, dumps({"rules": [r.name for r in plan.rules]}))
            if request.method == "DELETE":
                self.faults = FaultState(FaultPlan())
                return Respond(204)
        if what == "reset" and request.method == "POST":
            self.store.reset()
            self.faults.reset()
            if self.limiter is not None:
                self.limiter.reset()
            if self.auth is not None:
                self.auth.restore()
            return Respond(204)
        if what == "state" and request.method == "GET":
            return Respond(200, _JSON, dumps(self.store.snapshot()))
        if what == "auth" and request.method == "POST" and self.auth is not None:
            command = parse_qs(request.query).get("do", [""])[0]
            if command == "expire":
                self.auth.expire_all_tokens()
            elif command == "revoke":
                self.auth.revoke_credentials()
            elif command == "restore":
                self.auth.restore()
            else:
                return _problem(400, "Unknown auth command", "use ?do=expire|revoke|restore")
            return Respond(204)
        return _problem(404, "Not Found", f"no admin endpoint {request.method} {request.path}")


def _sent_at_once(action: Action) -> TypeGuard[Respond]:
    """A response written whole and at once: the kind ``handle`` logs before sending."""
    return (
        isinstance(action, Respond)
        and not action.delay_seconds
        and not action.chunk_delay_seconds
        and action.truncate_at is None
        and not action.close_after_headers
    )


def _replace(action: Respond, **changes: Any) -> Respond:
    from dataclasses import replace

    return replace(action, **changes)


def _base_path(document: OpenAPIDocument) -> str:
    """The path prefix of the document's first server URL (``/v1`` in ``https://x/v1``): accepted, not required."""
    from urllib.parse import urlsplit

    if document.version == "2.0":
        base = str(document.data.get("basePath") or "")
    else:
        servers = document.data.get("servers") or []
        url = str(servers[0].get("url", "")) if servers and isinstance(servers[0], dict) else ""
        base = urlsplit(url).path if "{" not in url else ""
    return base.rstrip("/")


def _violate(value: Any, violation: str, op: CompiledOperation) -> Any:
    """Break a response body the way the fault plan asks, in the first record it can find."""
    value = copy.deepcopy(value)
    target = value
    if isinstance(target, dict):
        arrays = [
            v for v in target.values() if isinstance(v, list) and v and isinstance(v[0], dict)
        ]
        if arrays:
            target = arrays[0][0]
    elif isinstance(target, list) and target and isinstance(target[0], dict):
        target = target[0]
    if not isinstance(target, dict) or not target:
        return {"unexpected": True} if violation != "wrong_type" else "not-an-object"
    key = next(iter(target))
    if violation == "missing_required":
        for candidate in ("id", "name", key):
            if candidate in target:
                del target[candidate]
                break
    elif violation == "wrong_type":
        current = target[key]
        target[key] = (
            "not-a-number"
            if isinstance(current, int | float) and not isinstance(current, bool)
            else 12345
        )
    elif violation == "enum_outside":
        for name in ("status", "state", "type", "kind"):
            if name in target:
                target[name] = "__not_in_enum__"
                break
        else:
            target[key] = "__not_in_enum__"
    return value


__all__ = ["ADMIN_PREFIX", "EngineOptions", "ProviderEngine", "Violation"]
