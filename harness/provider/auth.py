"""Emulate the provider's authentication, as the spec's ``Authentication`` section declares it.

The simulator must authenticate like the real provider so an integration's auth handling is
tested for real: tokens that expire by the clock, refresh grants, revoked credentials, the exact
401 challenges (RFC 6749 for the token endpoint, RFC 6750 for bearer tokens, RFC 7617 for basic).
Fault plans and the admin API drive the bad days through ``expire_all_tokens``,
``revoke_credentials`` and ``restore``.

Credential *values* come from the harness (the spec only holds ``${VAR}`` references). They never
leave this module except as the tokens the emulator itself issues, which ``issued_tokens`` and
``on_token_issued`` hand to the redactor; identities for rate limiting and the traffic log are
labels such as ``client:3f2a9c1e`` (a fingerprint of the client id, which specs treat as a
credential and the redactor scrubs) or ``token#3``, never a secret.

Pure logic on the engine's event loop thread: no locks, no I/O, clock injectable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal
from urllib.parse import parse_qs, unquote_plus, urlsplit

from harness.provider.messages import Headers, Request, Respond
from harness.redact import SIMULATED_TOKEN_PREFIX
from harness.spec.model import Authentication

DEFAULT_TOKEN_TTL_SECONDS = 3600.0
# Expired and revoked tokens are remembered this long after expiry, so a client still sending
# one gets "expired"/"invalid" (and the redactor still knows it), then forgotten to bound memory.
FORGET_AFTER_SECONDS = 600.0

GrantType = Literal["client_credentials", "refresh_token"]

_JSON_HEADERS: Headers = (("content-type", "application/json"),)
_TOKEN_HEADERS: Headers = (
    ("content-type", "application/json"),
    ("cache-control", "no-store"),
    ("pragma", "no-cache"),
)
_REQUIRED: dict[str, tuple[str, ...]] = {
    "oauth2_client_credentials": ("client_id", "client_secret"),
    "api_key": ("api_key",),
    "basic": ("username", "password"),
    "bearer": ("token",),
}


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Whether a request may proceed, who sent it, and the response to send if it may not.

    ``identity`` is stable per client and never a secret (rate limiting and the traffic log key on
    it); ``token_label`` names the access token used (``token#3``) for limits counted per token.
    On failure ``status``/``headers``/``body`` are the 401 to send and ``reason`` says why in words.
    """

    ok: bool
    identity: str
    status: int | None = None
    headers: Headers = ()
    body: bytes = b""
    reason: str = ""
    token_label: str | None = None

    def respond(self) -> Respond:
        """The failure as an engine action (only meaningful when ``ok`` is false)."""
        return Respond(self.status or 401, self.headers, self.body)


_OK_BEARER = AuthResult(True, "bearer", token_label="bearer")
_OK_API_KEY = AuthResult(True, "api_key")
_OK_BASIC = AuthResult(True, "basic")


class _Token:
    """One issued token; mutable only through the emulator's control methods."""

    __slots__ = ("client_id", "expires_at", "number", "ok", "revoked")

    def __init__(self, number: int, client_id: str, expires_at: float) -> None:
        self.number = number
        self.client_id = client_id
        self.expires_at = expires_at
        self.revoked = False
        # Built once: authenticating a request then allocates nothing on success.
        self.ok = AuthResult(True, client_identity(client_id), token_label=f"token#{number}")


def client_identity(client_id: str) -> str:
    """A stable label for a client that does not reveal its id (ids are redacted like secrets)."""
    return "client:" + hashlib.sha256(client_id.encode()).hexdigest()[:8]


def _error_body(error: str, description: str | None = None) -> bytes:
    data = {"error": error}
    if description:
        data["error_description"] = description
    return json.dumps(data).encode()


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison, so the emulator models a provider that does not leak timing."""
    return hmac.compare_digest(given.encode(), expected.encode())


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic`` header, or ``None`` if not one."""
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _bearer_token(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    token = value.strip()
    return token if scheme.lower() == "bearer" and token else None


class AuthEmulator:
    """The provider's authentication, one instance per simulated provider.

    ``credentials`` maps credential field names of the spec (``client_id``, ``client_secret``,
    ``api_key``, ``username``, ``password``, ``token``) to the values the integration was given.
    ``token_ttl_seconds`` and ``refresh_tokens`` override the spec (scenarios shorten the TTL).
    ``on_token_issued`` is called with every token string issued, so a redactor can learn new
    secrets the moment they exist instead of polling ``issued_tokens``.
    """

    def __init__(
        self,
        auth: Authentication,
        credentials: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.monotonic,
        token_ttl_seconds: float | None = None,
        refresh_tokens: bool | None = None,
        on_token_issued: Callable[[str], None] | None = None,
    ) -> None:
        missing = [name for name in _REQUIRED.get(auth.kind, ()) if not credentials.get(name)]
        if missing:
            raise ValueError(
                f"{auth.kind} authentication needs credential values for: {', '.join(missing)}"
            )
        if auth.kind == "api_key" and (auth.key_in is None or auth.key_name is None):
            raise ValueError("api_key authentication needs key_in and key_name")
        self.auth = auth
        self.kind = auth.kind
        self._credentials = dict(credentials)
        self._clock = clock
        ttl = token_ttl_seconds if token_ttl_seconds is not None else auth.token_ttl_seconds
        self.token_ttl_seconds: float = ttl if ttl is not None else DEFAULT_TOKEN_TTL_SECONDS
        self.refresh_tokens: bool = (
            refresh_tokens if refresh_tokens is not None else bool(auth.refresh_tokens)
        )
        self._on_token_issued = on_token_issued
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self._numbers = 0
        self._revoked = False
        self._issued: dict[str, int] = {"client_credentials": 0, "refresh_token": 0}
        self.token_requests_rejected = 0
        self.token_operation: str | None = auth.token_operation
        self.token_path: str | None = None
        if auth.token_url is not None:
            self.token_path = urlsplit(auth.token_url).path or "/"
        self._api_key_header = (auth.key_name or "").lower()

    # ---- control (fault plans, admin API) -------------------------------------------------

    def expire_all_tokens(self, now: float | None = None) -> None:
        """Make every access token expire now; refresh tokens stay valid (the client can refresh)."""
        t = self._clock() if now is None else now
        for token in self._access.values():
            token.expires_at = min(token.expires_at, t)

    def revoke_credentials(self, *, tokens: bool = True) -> None:
        """The client's credentials stop working: token requests and api-key/basic/bearer
        requests fail 401 until ``restore``. With ``tokens`` (the default) every token issued so
        far is revoked too, as a provider does when a client is disabled."""
        self._revoked = True
        if tokens:
            for token in self._access.values():
                token.revoked = True
            self._refresh.clear()

    def restore(self) -> None:
        """Credentials work again. Tokens revoked meanwhile stay revoked; new ones can be issued."""
        self._revoked = False

    @property
    def credentials_revoked(self) -> bool:
        return self._revoked

    def issued_tokens(self) -> frozenset[str]:
        """Every token string the emulator still remembers - live, expired or revoked access tokens
        (for ``FORGET_AFTER_SECONDS`` after expiry) and live refresh tokens - for the redactor."""
        return frozenset(self._access) | frozenset(self._refresh)

    @property
    def tokens_issued(self) -> int:
        """Access tokens issued since start, all grant types."""
        return sum(self._issued.values())

    @property
    def tokens_issued_by_grant(self) -> Mapping[str, int]:
        return MappingProxyType(dict(self._issued))

    # ---- the token endpoint ---------------------------------------------------------------

    def is_token_request(self, path: str, operation_id: str | None = None) -> bool:
        """Whether a request is for the token endpoint (by operation id or by the token URL's path)."""
        if self.kind != "oauth2_client_credentials":
            return False
        if operation_id is not None and operation_id == self.token_operation:
            return True
        return self.token_path is not None and path == self.token_path

    def handle_token_request(self, request: Request, now: float | None = None) -> Respond:
        """Answer an OAuth2 token request (RFC 6749 sections 4.4 and 6)."""
        if self.kind != "oauth2_client_credentials":
            return self._token_error(404, "invalid_request", "this provider has no token endpoint")
        if request.method.upper() != "POST":
            self.token_requests_rejected += 1
            return Respond(
                405,
                (*_JSON_HEADERS, ("allow", "POST")),
                _error_body("invalid_request", "token requests must use POST"),
            )
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return self._token_error(
                400, "invalid_request", "token requests must be application/x-www-form-urlencoded"
            )
        try:
            form = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return self._token_error(400, "invalid_request", "the body is not UTF-8")
        repeated = sorted(name for name, values in form.items() if len(values) > 1)
        if repeated:
            return self._token_error(
                400, "invalid_request", f"parameters given more than once: {', '.join(repeated)}"
            )
        params = {name: values[0] for name, values in form.items()}
        grant = params.get("grant_type")
        if not grant:
            return self._token_error(400, "invalid_request", "grant_type is required")

        client_id = self._authenticate_client(request, params)
        if isinstance(client_id, Respond):
            return client_id

        t = self._clock() if now is None else now
        if grant == "client_credentials":
            scope_error = self._check_scope(params.get("scope"))
            if scope_error is not None:
                return scope_error
            return self._issue(client_id, "client_credentials", t)
        if grant == "refresh_token" and self.refresh_tokens:
            presented = params.get("refresh_token", "")
            record = self._refresh.get(presented)
            if record is None or record.client_id != client_id:
                return self._token_error(400, "invalid_grant", "unknown or revoked refresh token")
            # Rotation (OAuth 2.1 style): the refresh token used is spent.
            del self._refresh[presented]
            return self._issue(client_id, "refresh_token", t)
        return self._token_error(
            400, "unsupported_grant_type", f"grant_type {grant!r} is not supported"
        )

    def _token_error(self, status: int, error: str, description: str) -> Respond:
        self.token_requests_rejected += 1
        headers = _TOKEN_HEADERS
        if status == 401:
            headers = (*headers, ("www-authenticate", 'Basic realm="token"'))
        return Respond(status, headers, _error_body(error, description))

    def _authenticate_client(self, request: Request, params: Mapping[str, str]) -> str | Respond:
        """The authenticated client id, from HTTP Basic or the form body, or the 401/400 to send."""
        basic = _basic_credentials(request.header("authorization"))
        if basic is not None and "client_secret" in params:
            return self._token_error(
                400, "invalid_request", "use one client authentication method, not two"
            )
        if basic is not None:
            # RFC 6749 2.3.1 form-encodes both parts before Basic; many clients do not. Accept both.
            given_id, given_secret = basic
            candidates = [
                (given_id, given_secret),
                (unquote_plus(given_id), unquote_plus(given_secret)),
            ]
            if "client_id" in params and params["client_id"] not in (given_id, candidates[1][0]):
                return self._token_error(
                    400, "invalid_request", "client_id in the body differs from Basic auth"
                )
        elif "client_id" in params or "client_secret" in params:
            candidates = [(params.get("client_id", ""), params.get("client_secret", ""))]
        else:
            return self._token_error(401, "invalid_client", "client authentication is required")
        expected_id = self._credentials["client_id"]
        expected_secret = self._credentials["client_secret"]
        for client_id, secret in candidates:
            if _same(client_id, expected_id) and _same(secret, expected_secret):
                if self._revoked:
                    return self._token_error(
                        401, "invalid_client", "the client credentials were revoked"
                    )
                return client_id
        return self._token_error(401, "invalid_client", "client authentication failed")

    def _check_scope(self, requested: str | None) -> Respond | None:
        if requested is None or self.auth.scopes is None:
            return None
        unknown = sorted(set(requested.split()) - set(self.auth.scopes))
        if unknown:
            return self._token_error(400, "invalid_scope", f"unknown scopes: {', '.join(unknown)}")
        return None

    def _issue(self, client_id: str, grant: GrantType, now: float) -> Respond:
        self._forget_old(now)
        self._numbers += 1
        ttl = self.token_ttl_seconds
        access = SIMULATED_TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._access[access] = _Token(self._numbers, client_id, now + ttl)
        self._issued[grant] += 1
        # expires_in is whole seconds per RFC 6749; round down so clients renew early, not late.
        body: dict[str, object] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": math.floor(ttl) if ttl >= 1 else ttl,
        }
        issued = [access]
        if self.refresh_tokens:
            refresh = SIMULATED_TOKEN_PREFIX + secrets.token_urlsafe(32)
            self._refresh[refresh] = _Token(self._numbers, client_id, math.inf)
            body["refresh_token"] = refresh
            issued.append(refresh)
        if self.auth.scopes:
            body["scope"] = " ".join(self.auth.scopes)
        if self._on_token_issued is not None:
            for token in issued:
                self._on_token_issued(token)
        return Respond(200, _TOKEN_HEADERS, json.dumps(body).encode())

    def _forget_old(self, now: float) -> None:
        """Drop access tokens long expired; issue order is expiry order, so stop at the first keeper."""
        access = self._access
        while access:
            token, record = next(iter(access.items()))
            if record.expires_at + FORGET_AFTER_SECONDS > now:
                break
            del access[token]

    # ---- every other request --------------------------------------------------------------

    def authenticate(self, request: Request, now: float | None = None) -> AuthResult:
        """Check one API request's credentials as the provider would."""
        kind = self.kind
        if kind == "oauth2_client_credentials":
            return self._check_access_token(request, now)
        if kind == "bearer":
            return self._check_static_bearer(request)
        if kind == "api_key":
            return self._check_api_key(request)
        if kind == "basic":
            return self._check_basic(request)
        # "none", and "custom" (described in words only, so not emulated): everyone gets in.
        return AuthResult(True, f"ip:{request.client}")

    def _check_access_token(self, request: Request, now: float | None) -> AuthResult:
        token = _bearer_token(request.header("authorization"))
        if token is None:
            return _failure(request, "Bearer", "unauthorized", "no bearer token")
        record = self._access.get(token)
        if record is None or record.revoked:
            reason = "revoked access token" if record is not None else "unknown access token"
            return _failure(request, 'Bearer error="invalid_token"', "invalid_token", reason)
        t = self._clock() if now is None else now
        if t >= record.expires_at:
            return _failure(
                request,
                'Bearer error="invalid_token", error_description="The access token expired"',
                "invalid_token",
                "expired access token",
                "The access token expired",
            )
        return record.ok

    def _check_static_bearer(self, request: Request) -> AuthResult:
        token = _bearer_token(request.header("authorization"))
        if token is None:
            return _failure(request, "Bearer", "unauthorized", "no bearer token")
        if self._revoked or not _same(token, self._credentials["token"]):
            reason = "credentials revoked" if self._revoked else "wrong bearer token"
            return _failure(request, 'Bearer error="invalid_token"', "invalid_token", reason)
        return _OK_BEARER

    def _check_api_key(self, request: Request) -> AuthResult:
        if self.auth.key_in == "query":
            values = parse_qs(request.query, keep_blank_values=True).get(self.auth.key_name or "")
            given = values[0] if values else None
        else:
            given = request.header(self._api_key_header)
        challenge = f'ApiKey realm="api", in="{self.auth.key_in}", name="{self.auth.key_name}"'
        if not given:
            return _failure(request, challenge, "missing_api_key", "no API key")
        if self._revoked or not _same(given, self._credentials["api_key"]):
            reason = "credentials revoked" if self._revoked else "wrong API key"
            return _failure(request, challenge, "invalid_api_key", reason)
        return _OK_API_KEY

    def _check_basic(self, request: Request) -> AuthResult:
        challenge = 'Basic realm="api", charset="UTF-8"'
        given = _basic_credentials(request.header("authorization"))
        if given is None:
            return _failure(request, challenge, "unauthorized", "no basic credentials")
        user_ok = _same(given[0], self._credentials["username"])
        password_ok = _same(given[1], self._credentials["password"])
        if self._revoked or not (user_ok and password_ok):
            reason = "credentials revoked" if self._revoked else "wrong username or password"
            return _failure(request, challenge, "unauthorized", reason)
        return _OK_BASIC


def _failure(
    request: Request, challenge: str, error: str, reason: str, description: str | None = None
) -> AuthResult:
    return AuthResult(
        ok=False,
        identity=f"ip:{request.client}",
        status=401,
        headers=(*_JSON_HEADERS, ("www-authenticate", challenge)),
        body=_error_body(error, description or reason),
        reason=reason,
    )
