"""Scrub credentials from everything the harness writes: traffic logs, cassettes, reports.

The traffic log is the evidence every verdict is computed from, and it is also an artifact people
attach to tickets and commit next to cassettes. So redaction happens once, at the point where a
record enters the log, and is deliberately two-pronged:

* **by value**: every known secret (the spec's resolved ``${VAR}`` credentials, plus tokens the
  simulator issues at run time) is replaced wherever it appears, in its raw, URL-encoded,
  JSON-escaped and base64 forms (the base64 form catches ``Authorization: Basic`` blobs that
  carry ``user:secret``, at any alignment);
* **by name**: values of sensitive headers, query parameters and JSON / form body keys are
  replaced even when the value is not a known secret (a token the provider minted that we never
  saw in the spec).

Secrets shorter than :data:`MIN_SECRET_LENGTH` (4) characters are ignored: replacing every ``"ab"``
or ``"1"`` in a log would destroy it, and a credential that short protects nothing anyway.

A :class:`Redactor` is immutable, so it can be shared between server threads without a lock;
:meth:`Redactor.with_secrets` returns a new one with more secrets (the traffic log swaps its
reference atomically when the simulator issues a token).

This module sits at the bottom of the layer stack: it imports nothing from the harness.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

REDACTED = "[REDACTED]"
"""What every scrubbed value becomes. Cassette matching treats it as a wildcard."""

MIN_SECRET_LENGTH = 4
"""Secrets shorter than this are ignored (see the module docstring)."""

DEFAULT_SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
    }
)
DEFAULT_HEADER_MARKERS: tuple[str, ...] = ("token", "secret", "key", "auth")
# Header names the markers would catch but that carry no credential and are evidence the harness
# judges on: the idempotency key proves a retried POST is the same operation; WWW-Authenticate
# says why a 401 happened (``error="invalid_token"``). Known secret *values* are still scrubbed.
DEFAULT_HEADER_EXEMPT: frozenset[str] = frozenset(
    {"idempotency-key", "x-idempotency-key", "www-authenticate", "proxy-authenticate"}
)

DEFAULT_SENSITIVE_PARAMS: frozenset[str] = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "api_key",
        "apikey",
        "api-key",
        "key",
        "token",
        "auth",
        "client_secret",
        "password",
        "passwd",
        "secret",
        "signature",
        "sig",
        "client_assertion",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
    }
)
DEFAULT_SENSITIVE_KEYS: frozenset[str] = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "password",
        "passwd",
        "api_key",
        "apikey",
        "token",
        "secret",
        "private_key",
        "client_assertion",
        "authorization",
    }
)
# Substrings that make a query parameter or body key sensitive. Plain "token" and "key" are not
# markers there (only exact names): ``next_page_token``, ``token_type`` and ``idempotency_key``
# are evidence (pagination, auth flow, retries), not credentials.
DEFAULT_FIELD_MARKERS: tuple[str, ...] = (
    "secret",
    "password",
    "passwd",
    "access_token",
    "refresh_token",
    "id_token",
    "auth_token",
    "session_token",
    "api_key",
    "apikey",
    "api-key",
    "private_key",
    "credential",
)

_KEY_CACHE_SIZE = 4096
_CONTAINERS = (dict, list)
_AUTH_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)\s+\S")
_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=")
# A "key": "string value" pair in JSON text, for bodies that do not parse (truncated, malformed).
_JSON_PAIR = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:\s*)("(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*)')


def _base64_cores(secret: bytes) -> set[str]:
    """The base64 characters that encode ``secret`` at each of the three byte alignments.

    Whatever precedes the secret in the encoded blob (``user:`` in Basic auth) shifts it by 0, 1
    or 2 bytes modulo 3; for each shift, the characters whose 6 bits come only from the secret are
    the same whatever the neighbours are. Finding one of those cores inside a base64 run means the
    run encodes the secret.
    """
    cores: set[str] = set()
    n = len(secret)
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret).decode("ascii")
        start = (8 * shift + 5) // 6
        end = (8 * (shift + n)) // 6
        core = encoded[start:end]
        if len(core) >= MIN_SECRET_LENGTH:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))
    return cores


def secret_forms(secret: str) -> frozenset[str]:
    """Every form in which ``secret`` can show up in text: raw, URL-encoded, JSON-escaped and
    the base64 cores (see :func:`_base64_cores`). What the redactor scrubs, for scanners that
    must *find* leaks instead (the report's secrets scan). Empty for too-short secrets."""
    if len(secret) < MIN_SECRET_LENGTH:
        return frozenset()
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }
    return frozenset(forms | _base64_cores(secret.encode("utf-8")))


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


_MEMO_LIMIT = 4096

# Every token the simulator issues starts with this prefix, so one constant pattern scrubs
# them all: adding each new token to the secret set would recompile the secret pattern on
# every token request (quadratic over a run).
SIMULATED_TOKEN_PREFIX = "hsim_"
_SIMULATED_TOKEN = re.compile(re.escape(SIMULATED_TOKEN_PREFIX) + r"[A-Za-z0-9_-]{8,}")


@dataclass(frozen=True)
class Redactor:
    """Replaces credentials by :data:`REDACTED`; immutable and therefore thread-safe.

    Build it with :meth:`of` from secret values (``Redactor.of(resolve_secrets(spec).values())``);
    add secrets issued later with :meth:`with_secrets`, which returns a new instance.
    """

    secrets: frozenset[str] = frozenset()
    sensitive_headers: frozenset[str] = DEFAULT_SENSITIVE_HEADERS
    header_markers: tuple[str, ...] = DEFAULT_HEADER_MARKERS
    header_exempt: frozenset[str] = DEFAULT_HEADER_EXEMPT
    sensitive_params: frozenset[str] = DEFAULT_SENSITIVE_PARAMS
    sensitive_keys: frozenset[str] = DEFAULT_SENSITIVE_KEYS
    field_markers: tuple[str, ...] = DEFAULT_FIELD_MARKERS
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    _kinds: dict[str, bool] = field(init=False, repr=False, compare=False, default_factory=dict)
    _key_probe: tuple[str, ...] = field(init=False, repr=False, compare=False, default=())
    # Written from several threads without a lock: a lost write only costs a recomputation.
    _key_cache: dict[str, bool] = field(init=False, repr=False, compare=False, default_factory=dict)
    # Memos for values that repeat across a run (paths, header sets, static bodies): same
    # thread-safety argument; bounded by clearing when full.
    _text_memo: dict[str, str] = field(init=False, repr=False, compare=False, default_factory=dict)
    _credential_memo: dict[str, str] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    # Content type -> body -> redacted body (string keys: nothing for the collector to track).
    _body_memo: dict[str | None, dict[str, str]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    # Header name -> sensitive: a response whose rate-limit values change every time misses
    # the header-set memo, but its names are always the same few.
    _header_kinds: dict[str, bool] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        kept = frozenset(s for s in self.secrets if len(s) >= MIN_SECRET_LENGTH)
        object.__setattr__(self, "secrets", kept)
        # form -> True when it is a base64 core (the whole surrounding base64 run is redacted).
        kinds: dict[str, bool] = {}
        for secret in kept:
            for core in _base64_cores(secret.encode("utf-8")):
                kinds.setdefault(core, True)
        for secret in kept:
            for form in (
                secret,
                quote(secret, safe=""),
                quote(secret),
                quote_plus(secret),
                json.dumps(secret)[1:-1],
                json.dumps(secret, ensure_ascii=False)[1:-1],
            ):
                kinds[form] = False
        if kinds:
            ordered = sorted(kinds, key=len, reverse=True)
            pattern = re.compile("|".join(re.escape(form) for form in ordered))
            object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "_kinds", kinds)
        # Substrings (of the lower-cased text) without which no JSON key can be sensitive: lets
        # body() skip parsing most bodies. Plain ``in`` scans beat a regex alternation tenfold.
        terms = {f'"{key.lower()}"' for key in self.sensitive_keys} | {
            marker.lower() for marker in self.field_markers
        }
        probe = tuple(t for t in terms if not any(o != t and o in t for o in terms))
        object.__setattr__(self, "_key_probe", probe)

    @classmethod
    def of(cls, secrets: Iterable[str] = ()) -> Redactor:
        """A redactor with the default name rules and these secret values."""
        return cls(secrets=frozenset(secrets))

    def with_secrets(self, secrets: Iterable[str]) -> Redactor:
        """A new redactor that also scrubs ``secrets`` (e.g. a token the simulator just issued)."""
        extra = frozenset(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)
        if extra <= self.secrets:
            return self
        return Redactor(
            secrets=self.secrets | extra,
            sensitive_headers=self.sensitive_headers,
            header_markers=self.header_markers,
            header_exempt=self.header_exempt,
            sensitive_params=self.sensitive_params,
            sensitive_keys=self.sensitive_keys,
            field_markers=self.field_markers,
        )

    # -- names -------------------------------------------------------------------------------

    def is_sensitive_header(self, name: str) -> bool:
        """Whether a header's value is replaced whatever it is."""
        lower = name.lower()
        if lower in self.sensitive_headers:
            return True
        if lower in self.header_exempt:
            return False
        return any(marker in lower for marker in self.header_markers)

    def is_sensitive_param(self, name: str) -> bool:
        """Whether a query parameter's value is replaced whatever it is."""
        lower = name.lower()
        return lower in self.sensitive_params or any(m in lower for m in self.field_markers)

    def is_sensitive_key(self, name: str) -> bool:
        """Whether a JSON or form body key's value is replaced whatever it is."""
        lower = name.lower()
        return lower in self.sensitive_keys or any(m in lower for m in self.field_markers)

    # -- values ------------------------------------------------------------------------------

    def text(self, s: str) -> str:
        """Replace every known secret in ``s`` (raw, URL-encoded, JSON-escaped, base64 forms).

        Longest forms are tried first so a secret that contains another is replaced whole. A
        base64 match replaces the whole surrounding base64 run (``dXNlcjpzM2NyZXQ=``), so no
        partial encoding of the secret is left behind. With no secrets this returns ``s`` as is.
        """
        pattern = self._pattern
        if not s or (pattern is None and SIMULATED_TOKEN_PREFIX not in s):
            return s
        memo = self._text_memo
        known = memo.get(s)
        if known is not None:
            return known
        result = self._scrub(s, pattern)
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[s] = result
        return result

    def _scrub(self, s: str, pattern: re.Pattern[str] | None) -> str:
        if SIMULATED_TOKEN_PREFIX in s:
            s = _SIMULATED_TOKEN.sub(REDACTED, s)
        if pattern is None:
            return s
        # Substring scans are far cheaper than the alternation regex; most text holds no secret.
        if not any(form in s for form in self._kinds):
            return s
        match = pattern.search(s)
        if match is None:  # pragma: no cover - a form was found just above
            return s
        out: list[str] = []
        cursor = 0
        while match is not None:
            start, end = match.span()
            if self._kinds[match.group()]:
                while start > cursor and s[start - 1] in _B64_ALPHABET:
                    start -= 1
                while end < len(s) and s[end] in _B64_ALPHABET:
                    end += 1
            out.append(s[cursor:start])
            out.append(REDACTED)
            cursor = end
            match = pattern.search(s, cursor)
        out.append(s[cursor:])
        return "".join(out)

    def headers(self, pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """Redact header values: sensitive names wholly, the rest by secret value.

        ``Authorization: Bearer abc`` keeps its scheme (``Bearer [REDACTED]``): which scheme the
        client used is evidence; the credential is not.

        Memoised per name and per value, not per header set: a response's set is new every
        time (its rate-limit values change), and keeping each set as a memo key would leave
        the garbage collector a few more live tuples to walk per request.
        """
        out: list[tuple[str, str]] = []
        kinds = self._header_kinds
        text = self.text
        for name, value in pairs:
            sensitive = kinds.get(name)
            if sensitive is None:
                if len(kinds) >= _MEMO_LIMIT:
                    kinds.clear()
                sensitive = kinds[name] = self.is_sensitive_header(name)
            out.append((name, self._credential(name, value) if sensitive else text(value)))
        return tuple(out)

    def _credential(self, name: str, value: str) -> str:
        if name.lower() not in ("authorization", "proxy-authorization"):
            return REDACTED
        memo = self._credential_memo
        known = memo.get(value)
        if known is None:
            scheme = _AUTH_SCHEME.match(value)
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            known = memo[value] = f"{scheme.group(1)} {REDACTED}" if scheme else REDACTED
        return known

    def _pairs(self, encoded: str, sensitive: frozenset[str] | None) -> str:
        """Redact an ``a=1&b=2`` string, keeping the encoding of everything left alone."""
        parts = encoded.split("&")
        for index, part in enumerate(parts):
            name, sep, value = part.partition("=")
            if not sep or not value:
                continue
            plain = unquote_plus(name)
            hit = (
                self.is_sensitive_param(plain)
                if sensitive is None
                else (self.is_sensitive_key(plain) or self.is_sensitive_param(plain))
            )
            if hit:
                parts[index] = f"{name}={REDACTED}"
        return self.text("&".join(parts))

    def query(self, qs: str) -> str:
        """Redact a raw query string (no leading ``?``); parameter order and encoding are kept."""
        if not qs:
            return qs
        return self._pairs(qs, None)

    def body(self, data: bytes | str | None, content_type: str | None) -> str:
        """Redact a body for the log: JSON by key, form-urlencoded by key, anything else by value.

        Bytes are decoded as UTF-8 (undecodable bytes become U+FFFD: the log is text). A JSON body
        is re-serialized only when a key was redacted, so untouched bodies keep their bytes.
        JSON that does not parse (truncated, malformed) is redacted by a ``"key": value`` scan.
        """
        if data is None:
            return ""
        s = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        if not s:
            return s
        memo = self._body_memo.get(content_type)
        if memo is None:
            if len(self._body_memo) >= _MEMO_LIMIT:
                self._body_memo.clear()
            memo = self._body_memo[content_type] = {}
        known = memo.get(s)
        if known is not None:
            return known
        result = self._body(s, content_type)
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[s] = result
        return result

    def _body(self, s: str, content_type: str | None) -> str:
        media = _media_type(content_type)
        looks_json = media == "application/json" or media.endswith("+json")
        if not media and s.lstrip()[:1] in ("{", "["):
            looks_json = True
        if looks_json:
            lower = s.lower()
            if any(term in lower for term in self._key_probe):
                s = self._json(s)
        elif media == "application/x-www-form-urlencoded":
            return self._pairs(s, self.sensitive_keys)
        return self.text(s)

    def _json(self, s: str) -> str:
        try:
            document = json.loads(s)
        except ValueError:
            return _JSON_PAIR.sub(self._json_pair, s)
        redacted = self._walk(document)
        return s if redacted is document else json.dumps(redacted, ensure_ascii=False)

    def _json_pair(self, match: re.Match[str]) -> str:
        if self.is_sensitive_key(match.group(1)):
            return f'"{match.group(1)}"{match.group(2)}"{REDACTED}"'
        return match.group(0)

    def _walk(self, node: Any) -> Any:
        """``node`` with sensitive keys redacted; the very same object when nothing changed.

        Copy-on-write keeps large untouched documents cheap; key verdicts are cached because
        JSON arrays repeat the same few keys thousands of times.
        """
        if isinstance(node, dict):
            copy: dict[str, Any] | None = None
            cache = self._key_cache
            for key, value in node.items():
                sensitive = cache.get(key)
                if sensitive is None:
                    sensitive = self.is_sensitive_key(key)
                    if len(cache) < _KEY_CACHE_SIZE:
                        cache[key] = sensitive
                if sensitive and value is not None and value != "":
                    new: Any = REDACTED
                elif isinstance(value, _CONTAINERS):
                    new = self._walk(value)
                else:  # scalars: skip the call, the common case by far
                    continue
                if new is not value:
                    if copy is None:
                        copy = dict(node)
                    copy[key] = new
            return node if copy is None else copy
        if isinstance(node, list):
            items: list[Any] | None = None
            for index, value in enumerate(node):
                if not isinstance(value, _CONTAINERS):
                    continue
                new = self._walk(value)
                if new is not value:
                    if items is None:
                        items = list(node)
                    items[index] = new
            return node if items is None else items
        return node
