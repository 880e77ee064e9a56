"""The redactor: known secrets go in every form they travel in, sensitive names go whatever they hold."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from harness.redact import MIN_SECRET_LENGTH, REDACTED, Redactor

SECRET = "sk_live_4f9a2c1e8b7d"
ODD = "p@ss/w0rd+&=x y"  # every character URL encoding touches


@pytest.fixture()
def red() -> Redactor:
    return Redactor.of([SECRET, ODD])


def test_no_secrets_is_a_no_op_returning_the_same_object() -> None:
    red = Redactor()
    text = "nothing to see " * 100
    assert red.text(text) is text
    body = '{"items": [1, 2, 3]}'
    assert red.body(body, "application/json") is body


def test_short_secrets_are_ignored_because_they_would_destroy_logs() -> None:
    red = Redactor.of(["abc", "", "x" * MIN_SECRET_LENGTH])
    assert red.secrets == frozenset({"xxxx"})
    assert red.text("abc abc xxxx") == f"abc abc {REDACTED}"


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        ODD,
        quote(ODD, safe=""),
        quote(ODD),
        quote_plus(ODD),
        json.dumps(ODD)[1:-1],
    ],
    ids=["raw", "raw-odd", "url-encoded", "url-encoded-path", "url-encoded-plus", "json-escaped"],
)
def test_text_replaces_raw_and_encoded_forms(red: Redactor, form: str) -> None:
    assert red.text(f"before {form} after") == f"before {REDACTED} after"


@pytest.mark.parametrize("prefix", ["", "u", "us", "user:", "alice:", "x" * 7 + ":"])
@pytest.mark.parametrize("alphabet", ["standard", "urlsafe"])
def test_text_replaces_base64_at_every_alignment(red: Redactor, prefix: str, alphabet: str) -> None:
    raw = f"{prefix}{SECRET}".encode()
    blob = (base64.b64encode if alphabet == "standard" else base64.urlsafe_b64encode)(raw).decode()
    out = red.text(f"Basic {blob}, next")
    assert out == f"Basic {REDACTED}, next", out


def test_longest_secret_wins_when_one_contains_another() -> None:
    red = Redactor.of(["abcd1234", "abcd1234efgh"])
    assert red.text("[abcd1234efgh] [abcd1234]") == f"[{REDACTED}] [{REDACTED}]"


def test_with_secrets_returns_a_new_redactor(red: Redactor) -> None:
    issued = "issued-token-0001"
    more = red.with_secrets([issued, "ab"])
    assert more is not red
    assert issued not in red.secrets
    assert more.text(issued) == REDACTED
    assert red.text(issued) == issued
    assert more.with_secrets([issued]) is more


def test_headers_by_name_and_by_value(red: Redactor) -> None:
    pairs = [
        ("Authorization", "Bearer opaque-token-not-known"),
        ("authorization", "opaque"),
        ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
        ("Cookie", "session=abc; theme=dark"),
        ("Set-Cookie", "session=abc; Path=/"),
        ("X-API-Key", "k-123"),
        ("X-Custom-Token", "t"),
        ("X-Client-Secret", "s"),
        ("Idempotency-Key", "order-42"),
        ("WWW-Authenticate", 'Bearer error="invalid_token"'),
        ("X-Trace", f"trace {SECRET}"),
        ("Content-Type", "application/json"),
    ]
    assert red.headers(pairs) == (
        ("Authorization", f"Bearer {REDACTED}"),
        ("authorization", REDACTED),
        ("Proxy-Authorization", f"Basic {REDACTED}"),
        ("Cookie", REDACTED),
        ("Set-Cookie", REDACTED),
        ("X-API-Key", REDACTED),
        ("X-Custom-Token", REDACTED),
        ("X-Client-Secret", REDACTED),
        ("Idempotency-Key", "order-42"),
        ("WWW-Authenticate", 'Bearer error="invalid_token"'),
        ("X-Trace", f"trace {REDACTED}"),
        ("Content-Type", "application/json"),
    )


def test_query_keeps_order_and_encoding_of_what_it_leaves(red: Redactor) -> None:
    qs = (
        f"b=2&api_key=zzz&a=%2Fx&access_token=t&next_page_token=p2&q={quote_plus(ODD)}"
        "&flag&empty=&APIKEY=up"
    )
    assert red.query(qs) == (
        f"b=2&api_key={REDACTED}&a=%2Fx&access_token={REDACTED}&next_page_token=p2"
        f"&q={REDACTED}&flag&empty=&APIKEY={REDACTED}"
    )
    assert red.query("") == ""


def test_json_body_by_key_at_any_depth(red: Redactor) -> None:
    body = {
        "access_token": "minted-by-provider",
        "token_type": "Bearer",
        "expires_in": 3600,
        "user": {"name": "bob", "password": "hunter22", "api_key": None},
        "items": [{"client_secret": {"nested": True}}, {"note": f"see {SECRET}"}],
    }
    out = json.loads(red.body(json.dumps(body).encode(), "application/json; charset=utf-8"))
    assert out == {
        "access_token": REDACTED,
        "token_type": "Bearer",
        "expires_in": 3600,
        "user": {"name": "bob", "password": REDACTED, "api_key": None},
        "items": [{"client_secret": REDACTED}, {"note": f"see {REDACTED}"}],
    }


def test_json_body_without_sensitive_keys_keeps_its_bytes(red: Redactor) -> None:
    body = '{\n  "b": 1,\n  "a": [1, 2]\n}'
    assert red.body(body, "application/vnd.api+json") == body


def test_unparseable_json_is_still_redacted_by_key(red: Redactor) -> None:
    torn = '{"id": 1, "refresh_token": "rt-unknown-value", "password": 12345, "name": "x'
    assert red.body(torn, "application/json") == (
        f'{{"id": 1, "refresh_token": "{REDACTED}", "password": "{REDACTED}", "name": "x'
    )


def test_json_without_content_type_is_recognized(red: Redactor) -> None:
    assert json.loads(red.body(b'{"token": "abc"}', None)) == {"token": REDACTED}


def test_form_body_by_key(red: Redactor) -> None:
    body = "grant_type=password&username=bob&password=hunter22&client_secret=cs&scope=read"
    assert red.body(body, "application/x-www-form-urlencoded") == (
        f"grant_type=password&username=bob&password={REDACTED}&client_secret={REDACTED}&scope=read"
    )


def test_other_bodies_by_value_and_bytes_are_decoded(red: Redactor) -> None:
    assert red.body(f"hello {SECRET}".encode(), "text/plain") == f"hello {REDACTED}"
    assert red.body(b"\xff\xfe ok", "application/octet-stream") == "\ufffd\ufffd ok"
    assert red.body(None, "text/plain") == ""
