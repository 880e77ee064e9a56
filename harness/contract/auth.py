"""Credentials for the contract run, from the spec, as a schemathesis auth provider.

The spec says how the provider authenticates (``authentication``) and where the secrets are
(``${VAR}`` references). This module turns that into one schemathesis auth provider registered
on the run's schema (never globally): OAuth2 client credentials fetch a token from the spec's
token operation (or ``token_url``), cache it for the ``expires_in`` the provider announced, and
fetch a fresh one when it runs out or when a request comes back 401 (schemathesis' reactive
re-authentication replays the request once); API keys, HTTP Basic and static bearer tokens are
set as they are. Operations the document secures with nothing are sent without credentials.

Every secret that passes through here - the spec's credentials and every token fetched - is
reported to ``on_secret`` so the run's redactor scrubs it from whatever the stage writes.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import requests

from harness.openapi.document import OpenAPIDocument
from harness.problems import InputError
from harness.project import Project
from harness.spec.model import Authentication
from harness.spec.secrets import env_name

if TYPE_CHECKING:
    from schemathesis import AuthContext, Case, HookContext
    from schemathesis.auths import CachingAuthProvider
    from schemathesis.schemas import BaseSchema

EXPIRY_MARGIN = 0.8
"""Refresh a token once this share of its announced lifetime has passed."""
DEFAULT_TOKEN_LIFETIME_SECONDS = 300

SENDS_CREDENTIALS = ("oauth2_client_credentials", "api_key", "basic", "bearer")


@dataclass(frozen=True)
class AuthPlan:
    """How this run authenticates: the kind, the credential values by spec field, where the
    token comes from, and the operations sent without credentials (labels, ``POST /oauth/token``)."""

    kind: str
    credentials: Mapping[str, str]
    token_url: str | None = None
    scopes: tuple[str, ...] = ()
    key_in: str | None = None
    key_name: str | None = None
    unsecured: frozenset[str] = frozenset()
    client_auth_in_body: bool = True
    token_operation: str | None = None

    @property
    def sends_credentials(self) -> bool:
        return self.kind in SENDS_CREDENTIALS


class TokenRefused(Exception):
    """The token endpoint did not issue a token (status and its error, never the credentials)."""

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Token:
    value: str
    lifetime_seconds: float
    fetched_at: float = 0.0
    """``time.monotonic()`` when it arrived."""

    def remaining(self, now: float) -> float:
        return self.lifetime_seconds - (now - self.fetched_at)


def live_credentials(
    project: Project,
    environ: Mapping[str, str] | None = None,
    *,
    why: str = "a live run needs the real credential",
) -> dict[str, str]:
    """Credential values for a live run, by spec field; every one must be set (``InputError``)."""
    env = os.environ if environ is None else environ
    auth = project.spec.spec.authentication
    if auth is None:
        return {}
    values: dict[str, str] = {}
    problems = []
    for name, reference in auth.credential_refs().items():
        var = env_name(reference)
        value = env.get(var) if var else None
        if not value:
            problems.append(
                project.spec.source.problem(
                    ["authentication", name],
                    f"{var or reference} is not set: {why}",
                )
            )
            continue
        values[name] = value
    if problems:
        raise InputError(problems)
    return values


def plan_auth(project: Project, base_url: str, credentials: Mapping[str, str]) -> AuthPlan:
    """The run's auth plan from the spec and the provider document."""
    auth = project.spec.spec.authentication
    document = project.provider
    unsecured = frozenset(
        f"{op.method.upper()} {op.path}"
        for op in document.operations.values()
        if not _secured(document, op.definition)
    )
    if auth is None or auth.kind not in SENDS_CREDENTIALS:
        return AuthPlan(kind=auth.kind if auth else "none", credentials={}, unsecured=unsecured)
    token_url = None
    in_body = True
    if auth.kind == "oauth2_client_credentials":
        token_url, in_body = _token_endpoint(document, auth, base_url)
    key_in: str | None = auth.key_in
    key_name: str | None = auth.key_name
    if auth.kind == "api_key" and (key_in is None or key_name is None):
        key_in, key_name = _api_key_scheme(document, key_in, key_name)
    return AuthPlan(
        kind=auth.kind,
        credentials=dict(credentials),
        token_url=token_url,
        scopes=tuple(auth.scopes or ()),
        key_in=key_in,
        key_name=key_name,
        unsecured=unsecured,
        client_auth_in_body=in_body,
        token_operation=auth.token_operation,
    )


def _secured(document: OpenAPIDocument, definition: Mapping[str, Any]) -> bool:
    security = definition.get("security", document.data.get("security"))
    return bool(security) and not any(requirement == {} for requirement in security)


def _token_endpoint(
    document: OpenAPIDocument, auth: Authentication, base_url: str
) -> tuple[str, bool]:
    """The token URL, and whether the client authenticates in the form body (the document's
    token request lists ``client_id``) rather than with HTTP Basic."""
    root = base_url.rstrip("/") + "/"
    if auth.token_operation is not None:
        op = document.operations[auth.token_operation]
        url = urljoin(root, op.path.lstrip("/"))
        body = document.request_body_schema(op)
        in_body = True
        if body is not None:
            node = document.deref(body.node, body.uri).node
            props = node.get("properties") if isinstance(node, dict) else None
            in_body = not isinstance(props, dict) or "client_id" in props
        return url, in_body
    assert auth.token_url is not None  # the schema requires one of the two
    return urljoin(
        root, auth.token_url.lstrip("/") if "://" not in auth.token_url else auth.token_url
    ), True


def _api_key_scheme(
    document: OpenAPIDocument, key_in: str | None, key_name: str | None
) -> tuple[str | None, str | None]:
    schemes = (document.data.get("components") or {}).get("securitySchemes") or document.data.get(
        "securityDefinitions"
    )
    for scheme in (schemes or {}).values():
        node = document.deref(scheme).node
        if isinstance(node, dict) and node.get("type") == "apiKey":
            return key_in or node.get("in"), key_name or node.get("name")
    return key_in or "header", key_name or "X-API-Key"


class TokenClient:
    """Fetches OAuth2 client-credentials tokens; thread-safe, counts what it did."""

    def __init__(
        self,
        plan: AuthPlan,
        *,
        timeout: float,
        before_request: Callable[[], None] = lambda: None,
        on_secret: Callable[[str], None] = lambda _: None,
    ) -> None:
        assert plan.token_url is not None
        self.plan = plan
        self.timeout = timeout
        self.before_request = before_request
        self.on_secret = on_secret
        self.fetched = 0
        self.issued: set[str] = set()
        self.newest: Token | None = None
        self.refused: set[str] = set()
        self._fetch_lock = threading.RLock()
        self._lock = threading.Lock()

    def fetch(self) -> Token:
        plan = self.plan
        form = {"grant_type": "client_credentials"}
        if plan.scopes:
            form["scope"] = " ".join(plan.scopes)
        headers = {"Accept": "application/json"}
        client_id = plan.credentials.get("client_id", "")
        client_secret = plan.credentials.get("client_secret", "")
        if plan.client_auth_in_body:
            form.update(client_id=client_id, client_secret=client_secret)
        else:
            pair = f"{client_id}:{client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        self.before_request()
        assert plan.token_url is not None
        try:
            response = requests.post(
                plan.token_url, data=form, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as error:
            raise TokenRefused(None, f"token request failed: {type(error).__name__}") from None
        if response.status_code != 200:
            raise TokenRefused(response.status_code, _token_error(response))
        try:
            data = response.json()
            value = str(data["access_token"])
        except (ValueError, KeyError, TypeError):
            raise TokenRefused(200, "token response has no access_token") from None
        self.on_secret(value)
        refresh = data.get("refresh_token") if isinstance(data, dict) else None
        if isinstance(refresh, str):
            self.on_secret(refresh)
        lifetime = data.get("expires_in") if isinstance(data, dict) else None
        seconds = (
            float(lifetime)
            if isinstance(lifetime, int | float) and lifetime > 0
            else DEFAULT_TOKEN_LIFETIME_SECONDS
        )
        token = Token(value, seconds, time.monotonic())
        with self._lock:
            self.fetched += 1
            self.issued.add(value)
            self.newest = token
        return token

    def observe(self, request: requests.PreparedRequest, status: int) -> None:
        """Remember a token of ours the provider refused (401): it is not sent again.

        This is what refreshes tokens where schemathesis does not re-authenticate by itself
        (stateful sequences): the next request leaves with a new token.
        """
        if status != 401:
            return
        value = str(request.headers.get("Authorization") or "")
        if value.startswith("Bearer ") and value[7:] in self.issued:
            with self._lock:
                self.refused.add(value[7:])

    def current(self, refused: str | None = None) -> Token:
        """The token to send now: the newest while it is fresh (more than a fifth of its
        lifetime left) and is not the one the provider just refused; else a new one."""
        with self._fetch_lock:
            newest = self.newest
            if newest is not None and refused != newest.value and newest.value not in self.refused:
                fresh_for = max(0.5, newest.lifetime_seconds * (1 - EXPIRY_MARGIN))
                if newest.remaining(time.monotonic()) > fresh_for:
                    return newest
            return self.fetch()


def _token_error(response: requests.Response) -> str:
    """``401 invalid_client: ...`` from an RFC 6749 error body, or just the status."""
    try:
        data = response.json()
    except ValueError:
        return f"token request answered {response.status_code}"
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        description = data.get("error_description")
        extra = f" ({description})" if isinstance(description, str) else ""
        return f"token request answered {response.status_code} {data['error']}{extra}"
    return f"token request answered {response.status_code}"


def install_auth(
    schema: BaseSchema, plan: AuthPlan, token_client: TokenClient | None
) -> Callable[[], int]:
    """Register the plan's auth provider on ``schema`` (never globally).

    Returns a function giving the number of tokens fetched so far (0 without OAuth2).
    """
    if not plan.sends_credentials:
        return lambda: 0
    caching: list[CachingAuthProvider[Any]] = []
    lock = threading.Lock()

    class SpecAuth:
        """The spec's credentials, applied to every case of a secured operation."""

        def get(self, case: Case[Any], context: AuthContext) -> str | None:
            if token_client is None:
                return ""  # static credentials: not None, so schemathesis calls set()
            # Called to build a case, or after a 401 (schemathesis' re-authentication): then the
            # case still carries the refused token, and a new one is needed.
            token = token_client.current(carried_token(case, token_client))
            # schemathesis caches the value for its wrapper's refresh_interval: make that what
            # is left of the provider's announced lifetime (less a margin), whatever the spec says.
            left = token.remaining(time.monotonic())
            with lock:
                for wrapper in caching:
                    wrapper.refresh_interval = max(1, int(left * EXPIRY_MARGIN))
            return token.value

        def set(self, case: Case[Any], data: str | None, context: AuthContext) -> None:
            apply_credentials(case, plan, data)

    refresh = DEFAULT_TOKEN_LIFETIME_SECONDS if token_client is not None else None
    retry_on = [401] if token_client is not None else []
    register = schema.auth.auth(refresh_interval=refresh, retry_on=retry_on)
    if plan.unsecured:
        register.skip_for(name=sorted(plan.unsecured))
    register(SpecAuth)
    from schemathesis.auths import CachingAuthProvider, SelectiveAuthProvider

    provider = schema.auth.providers[-1]
    if isinstance(provider, SelectiveAuthProvider):
        provider = provider.provider
    if isinstance(provider, CachingAuthProvider):
        caching.append(provider)
    return (lambda: token_client.fetched) if token_client is not None else (lambda: 0)


def apply_credentials(case: Case[Any], plan: AuthPlan, token: str | None) -> None:
    """Put the plan's credentials (or ``token``) on ``case``."""
    from requests.structures import CaseInsensitiveDict

    headers: CaseInsensitiveDict[Any] = (
        case.headers if case.headers is not None else CaseInsensitiveDict()
    )
    creds = plan.credentials
    if plan.kind == "oauth2_client_credentials":
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
    elif plan.kind == "bearer":
        headers["Authorization"] = f"Bearer {creds.get('token', '')}"
    elif plan.kind == "basic":
        pair = f"{creds.get('username', '')}:{creds.get('password', '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    elif plan.kind == "api_key" and plan.key_name:
        if plan.key_in == "query":
            query = dict(case.query or {})
            query[plan.key_name] = creds.get("api_key", "")
            case.query = query
        else:
            headers[plan.key_name] = creds.get("api_key", "")
    case.headers = headers


def preflight(token_client: TokenClient) -> Token:
    """One token before the run: bad credentials stop the run here, with the endpoint's reason."""
    return token_client.fetch()


def credential_matcher(
    plan: AuthPlan, token_client: TokenClient | None
) -> Callable[[requests.PreparedRequest], bool]:
    """Whether a sent request carried the plan's credentials (a token we fetched, the key...).

    Judged on the request as sent, not on how the case was built: schemathesis' own auth checks
    send copies of a case without credentials or with wrong ones, and a 401 to those is right.
    """
    creds = plan.credentials

    def header(request: requests.PreparedRequest, name: str) -> str:
        return str(request.headers.get(name) or "")

    if plan.kind == "oauth2_client_credentials":

        def oauth(request: requests.PreparedRequest) -> bool:
            value = header(request, "Authorization")
            issued = token_client.issued if token_client is not None else set()
            return value.startswith("Bearer ") and value[7:] in issued

        return oauth
    if plan.kind == "bearer":
        expected = f"Bearer {creds.get('token', '')}"
        return lambda request: header(request, "Authorization") == expected
    if plan.kind == "basic":
        pair = f"{creds.get('username', '')}:{creds.get('password', '')}".encode()
        basic = "Basic " + base64.b64encode(pair).decode()
        return lambda request: header(request, "Authorization") == basic
    if plan.kind == "api_key" and plan.key_name:
        key, name = creds.get("api_key", ""), plan.key_name
        if plan.key_in == "query":
            from urllib.parse import parse_qs, urlsplit

            def in_query(request: requests.PreparedRequest) -> bool:
                query = parse_qs(urlsplit(str(request.url)).query)
                return key in query.get(name, [])

            return in_query
        return lambda request: header(request, name) == key
    return lambda request: False


def carried_token(case: Case[Any], client: TokenClient) -> str | None:
    """The token of ours a case carries (``None``: none, or one we never issued)."""
    headers = case.headers
    value = str(headers.get("Authorization") or "") if headers is not None else ""
    token = value[7:] if value.startswith("Bearer ") else None
    return token if token is not None and token in client.issued else None


_SEND_TIME: dict[int, tuple[object, TokenClient]] = {}
_SEND_TIME_LOCK = threading.Lock()
_SEND_HOOK_INSTALLED = False


def _fresh_token_at_send(context: HookContext, case: Case[Any], kwargs: dict[str, Any]) -> None:
    """Swap an old token of ours for the current one just before a request leaves.

    schemathesis applies auth when it builds a case, and some phases build a whole batch
    before sending any: a token that expires meanwhile would make every later case of the
    batch fail and refresh on its own. Cases without our token (schemathesis' own auth probes
    send none, or a wrong one on purpose) are left as they are.
    """
    config = case.operation.schema.config
    entry = _SEND_TIME.get(id(config))
    if entry is None or entry[0] is not config:
        return
    client = entry[1]
    carried = carried_token(case, client)
    if carried is None:
        return
    token = client.current()
    if token.value != carried and case.headers is not None:
        case.headers["Authorization"] = f"Bearer {token.value}"


@contextmanager
def fresh_tokens_at_send(config: object, client: TokenClient) -> Iterator[None]:
    """While the block runs, requests of this configuration leave with the current token."""
    global _SEND_HOOK_INSTALLED
    with _SEND_TIME_LOCK:
        if not _SEND_HOOK_INSTALLED:
            import schemathesis

            schemathesis.hook("before_call")(_fresh_token_at_send)
            _SEND_HOOK_INSTALLED = True
        _SEND_TIME[id(config)] = (config, client)
    try:
        yield
    finally:
        with _SEND_TIME_LOCK:
            _SEND_TIME.pop(id(config), None)
