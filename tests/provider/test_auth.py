"""Auth emulation: OAuth2 client credentials end to end, and the static schemes, by the clock."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, urlencode

import pytest

from harness.provider.auth import FORGET_AFTER_SECONDS, AuthEmulator, AuthResult, client_identity
from harness.provider.messages import Request, Respond
from harness.spec.model import Authentication

CLIENT_ID = "cid-petstore-1"
CLIENT_SECRET = "sec/ret+value=&x"  # characters that need form-encoding in Basic auth
API_KEY = "key-9f8e7d"
USERNAME = "svc-user"
PASSWORD = "pa:ss-w0rd"
STATIC_TOKEN = "static-bearer-abc"
SECRETS = (CLIENT_SECRET, API_KEY, PASSWORD, STATIC_TOKEN)

OAUTH = Authentication(
    kind="oauth2_client_credentials",
    token_url="https://auth.example.test/oauth/token",
    client_id="${CID}",
    client_secret="${SECRET}",
    token_ttl_seconds=60,
)
OAUTH_CREDS = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def request(
    method: str = "GET",
    path: str = "/pets",
    query: str = "",
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> Request:
    return Request(method, path, query, headers, body, "10.0.0.7", 1, 0.0, 0.0)


def basic(user: str, password: str) -> tuple[str, str]:
    return ("authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


def bearer(token: str) -> tuple[str, str]:
    return ("authorization", f"Bearer {token}")


def token_request(
    params: dict[str, str], *extra: tuple[str, str], content_type: str | None = None
) -> Request:
    ctype = content_type or "application/x-www-form-urlencoded"
    return request(
        "POST",
        "/oauth/token",
        headers=(("content-type", ctype), *extra),
        body=urlencode(params).encode(),
    )


def client_body(**more: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        **more,
    }


def body_of(response: Respond | AuthResult) -> dict[str, object]:
    data: dict[str, object] = json.loads(response.body)
    return data


def header(response: Respond | AuthResult, name: str) -> str | None:
    return dict(response.headers).get(name)


def oauth(clock: Clock, **options: object) -> AuthEmulator:
    return AuthEmulator(OAUTH, OAUTH_CREDS, clock=clock, **options)  # type: ignore[arg-type]


def issue(emulator: AuthEmulator) -> dict[str, object]:
    response = emulator.handle_token_request(token_request(client_body()))
    assert response.status == 200, response.body
    return body_of(response)


# ---- token endpoint ---------------------------------------------------------------------------


def test_token_issued_with_credentials_in_the_body() -> None:
    emulator = oauth(Clock())
    response = emulator.handle_token_request(token_request(client_body()))
    assert response.status == 200
    assert header(response, "cache-control") == "no-store"
    body = body_of(response)
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 60
    token = str(body["access_token"])
    assert len(token) >= 40
    result = emulator.authenticate(request(headers=(bearer(token),)))
    assert (
        result.ok
        and result.identity == client_identity(CLIENT_ID)
        and CLIENT_ID not in result.identity
        and result.token_label == "token#1"
    )
    assert emulator.tokens_issued == 1
    assert emulator.tokens_issued_by_grant["client_credentials"] == 1


@pytest.mark.parametrize("encode", [False, True], ids=["raw", "form-encoded"])
def test_token_issued_with_http_basic_client_auth(encode: bool) -> None:
    emulator = oauth(Clock())
    user, password = (
        (quote(CLIENT_ID, safe=""), quote(CLIENT_SECRET, safe=""))
        if encode
        else (CLIENT_ID, CLIENT_SECRET)
    )
    response = emulator.handle_token_request(
        token_request({"grant_type": "client_credentials"}, basic(user, password))
    )
    assert response.status == 200, response.body
    assert emulator.tokens_issued == 1


def test_tokens_are_distinct_and_numbered() -> None:
    emulator = oauth(Clock())
    first, second = issue(emulator), issue(emulator)
    assert first["access_token"] != second["access_token"]
    label = emulator.authenticate(
        request(headers=(bearer(str(second["access_token"])),))
    ).token_label
    assert label == "token#2"


@pytest.mark.parametrize(
    "params",
    [
        {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "wrong"},
        {
            "grant_type": "client_credentials",
            "client_id": "someone-else",
            "client_secret": CLIENT_SECRET,
        },
        {"grant_type": "client_credentials"},
    ],
    ids=["wrong-secret", "wrong-id", "no-client-auth"],
)
def test_wrong_client_credentials_are_invalid_client(params: dict[str, str]) -> None:
    emulator = oauth(Clock())
    response = emulator.handle_token_request(token_request(params))
    assert response.status == 401
    assert body_of(response)["error"] == "invalid_client"
    assert header(response, "www-authenticate") == 'Basic realm="token"'
    assert emulator.tokens_issued == 0 and emulator.token_requests_rejected == 1


def test_wrong_basic_secret_is_invalid_client() -> None:
    emulator = oauth(Clock())
    response = emulator.handle_token_request(
        token_request({"grant_type": "client_credentials"}, basic(CLIENT_ID, "nope"))
    )
    assert response.status == 401 and body_of(response)["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (client_body(grant_type="password"), "unsupported_grant_type"),
        (client_body(grant_type="refresh_token", refresh_token="x"), "unsupported_grant_type"),
        ({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, "invalid_request"),
        (client_body(scope="admin"), "invalid_scope"),
    ],
    ids=["password-grant", "refresh-disabled", "no-grant", "unknown-scope"],
)
def test_bad_grants_are_400(params: dict[str, str], error: str) -> None:
    auth = Authentication(**{**OAUTH.__dict__, "scopes": ("pets:read",)})
    emulator = AuthEmulator(auth, OAUTH_CREDS)
    response = emulator.handle_token_request(token_request(params))
    assert response.status == 400
    assert body_of(response)["error"] == error


def test_token_requests_must_be_form_encoded_posts() -> None:
    emulator = oauth(Clock())
    as_json = request(
        "POST",
        "/oauth/token",
        headers=(("content-type", "application/json"),),
        body=json.dumps(client_body()).encode(),
    )
    assert emulator.handle_token_request(as_json).status == 400
    assert emulator.handle_token_request(request("GET", "/oauth/token")).status == 405
    twice = token_request(client_body())
    twice = Request(**{**twice.__dict__, "body": twice.body + b"&grant_type=client_credentials"})
    response = emulator.handle_token_request(twice)
    assert response.status == 400 and "grant_type" in body_of(response)["error_description"]  # type: ignore[operator]


def test_two_client_auth_methods_at_once_are_refused() -> None:
    emulator = oauth(Clock())
    response = emulator.handle_token_request(
        token_request(client_body(), basic(CLIENT_ID, CLIENT_SECRET))
    )
    assert response.status == 400 and body_of(response)["error"] == "invalid_request"


def test_is_token_request_by_path_or_operation() -> None:
    emulator = oauth(Clock())
    assert emulator.token_path == "/oauth/token"
    assert emulator.is_token_request("/oauth/token")
    assert not emulator.is_token_request("/pets")
    by_operation = AuthEmulator(
        Authentication(**{**OAUTH.__dict__, "token_url": None, "token_operation": "getToken"}),
        OAUTH_CREDS,
    )
    assert by_operation.is_token_request("/anything", "getToken")
    assert not by_operation.is_token_request("/oauth/token", "listPets")


# ---- bearer tokens ------------------------------------------------------------------------------


def test_token_expires_by_the_clock() -> None:
    clock = Clock()
    emulator = oauth(clock)
    token = str(issue(emulator)["access_token"])
    clock.t += 59.9
    assert emulator.authenticate(request(headers=(bearer(token),))).ok
    clock.t += 0.1
    expired = emulator.authenticate(request(headers=(bearer(token),)))
    assert (expired.ok, expired.status) == (False, 401)
    assert (
        header(expired, "www-authenticate")
        == 'Bearer error="invalid_token", error_description="The access token expired"'
    )
    assert body_of(expired)["error"] == "invalid_token"
    assert expired.identity == "ip:10.0.0.7"


def test_ttl_override_and_now_argument() -> None:
    emulator = AuthEmulator(OAUTH, OAUTH_CREDS, token_ttl_seconds=5)
    response = emulator.handle_token_request(token_request(client_body()), now=0.0)
    body = body_of(response)
    assert body["expires_in"] == 5
    token = str(body["access_token"])
    assert emulator.authenticate(request(headers=(bearer(token),)), now=4.9).ok
    assert not emulator.authenticate(request(headers=(bearer(token),)), now=5.0).ok


def test_missing_and_unknown_tokens() -> None:
    emulator = oauth(Clock())
    missing = emulator.authenticate(request())
    assert (missing.status, header(missing, "www-authenticate")) == (401, "Bearer")
    basic_instead = emulator.authenticate(request(headers=(basic("a", "b"),)))
    assert header(basic_instead, "www-authenticate") == "Bearer"
    unknown = emulator.authenticate(request(headers=(bearer("made-up"),)))
    assert header(unknown, "www-authenticate") == 'Bearer error="invalid_token"'
    assert unknown.respond().status == 401


def test_refresh_grant() -> None:
    clock = Clock()
    emulator = oauth(clock, refresh_tokens=True)
    first = issue(emulator)
    refresh = str(first["refresh_token"])
    clock.t += 61
    response = emulator.handle_token_request(
        token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh},
            basic(CLIENT_ID, CLIENT_SECRET),
        )
    )
    assert response.status == 200, response.body
    renewed = body_of(response)
    assert renewed["refresh_token"] != refresh
    assert emulator.authenticate(request(headers=(bearer(str(renewed["access_token"])),))).ok
    assert emulator.tokens_issued_by_grant == {"client_credentials": 1, "refresh_token": 1}
    assert emulator.tokens_issued == 2
    # Rotation: the refresh token used is spent.
    again = emulator.handle_token_request(
        token_request(client_body(grant_type="refresh_token", refresh_token=refresh))
    )
    assert again.status == 400 and body_of(again)["error"] == "invalid_grant"


def test_expire_all_tokens_then_refresh_still_works() -> None:
    clock = Clock()
    emulator = oauth(clock, refresh_tokens=True)
    first = issue(emulator)
    emulator.expire_all_tokens()
    result = emulator.authenticate(request(headers=(bearer(str(first["access_token"])),)))
    assert "expired" in (header(result, "www-authenticate") or "")
    response = emulator.handle_token_request(
        token_request(
            client_body(grant_type="refresh_token", refresh_token=str(first["refresh_token"]))
        )
    )
    assert response.status == 200


def test_revoke_and_restore() -> None:
    emulator = oauth(Clock(), refresh_tokens=True)
    live = issue(emulator)
    emulator.revoke_credentials()
    assert emulator.credentials_revoked
    refused = emulator.handle_token_request(token_request(client_body()))
    assert refused.status == 401 and body_of(refused)["error"] == "invalid_client"
    old = emulator.authenticate(request(headers=(bearer(str(live["access_token"])),)))
    assert header(old, "www-authenticate") == 'Bearer error="invalid_token"'
    assert old.reason == "revoked access token"
    emulator.restore()
    fresh = issue(emulator)
    assert emulator.authenticate(request(headers=(bearer(str(fresh["access_token"])),))).ok
    assert not emulator.authenticate(request(headers=(bearer(str(live["access_token"])),))).ok


def test_revoke_keeping_tokens() -> None:
    emulator = oauth(Clock())
    live = issue(emulator)
    emulator.revoke_credentials(tokens=False)
    assert emulator.handle_token_request(token_request(client_body())).status == 401
    assert emulator.authenticate(request(headers=(bearer(str(live["access_token"])),))).ok


def test_issued_tokens_for_the_redactor() -> None:
    seen: list[str] = []
    emulator = AuthEmulator(
        OAUTH, OAUTH_CREDS, refresh_tokens=True, on_token_issued=seen.append, clock=Clock()
    )
    body = issue(emulator)
    assert emulator.issued_tokens() == {body["access_token"], body["refresh_token"]}
    assert seen == [body["access_token"], body["refresh_token"]]


def test_long_expired_tokens_are_forgotten() -> None:
    clock = Clock()
    emulator = oauth(clock)
    old = str(issue(emulator)["access_token"])
    clock.t += 60 + FORGET_AFTER_SECONDS + 1
    new = str(issue(emulator)["access_token"])
    assert emulator.issued_tokens() == {new}
    result = emulator.authenticate(request(headers=(bearer(old),)))
    assert header(result, "www-authenticate") == 'Bearer error="invalid_token"'


# ---- static schemes ---------------------------------------------------------------------------


@pytest.mark.parametrize("key_in", ["header", "query"])
def test_api_key(key_in: str) -> None:
    auth = Authentication(kind="api_key", api_key="${K}", key_in=key_in, key_name="X-Api-Key")  # type: ignore[arg-type]
    emulator = AuthEmulator(auth, {"api_key": API_KEY})

    def with_key(value: str) -> Request:
        if key_in == "header":
            return request(headers=(("x-api-key", value),))
        return request(query=urlencode({"limit": "5", "X-Api-Key": value}))

    ok = emulator.authenticate(with_key(API_KEY))
    assert ok.ok and ok.identity == "api_key"
    wrong = emulator.authenticate(with_key("nope"))
    assert wrong.status == 401 and wrong.reason == "wrong API key"
    assert (header(wrong, "www-authenticate") or "").startswith("ApiKey ")
    missing = emulator.authenticate(request())
    assert missing.status == 401 and missing.reason == "no API key"
    emulator.revoke_credentials()
    assert emulator.authenticate(with_key(API_KEY)).reason == "credentials revoked"
    emulator.restore()
    assert emulator.authenticate(with_key(API_KEY)).ok


def test_basic() -> None:
    emulator = AuthEmulator(
        Authentication(kind="basic", username="${U}", password="${P}"),
        {"username": USERNAME, "password": PASSWORD},
    )
    assert emulator.authenticate(request(headers=(basic(USERNAME, PASSWORD),))).ok
    wrong = emulator.authenticate(request(headers=(basic(USERNAME, "nope"),)))
    assert wrong.status == 401
    assert header(wrong, "www-authenticate") == 'Basic realm="api", charset="UTF-8"'
    garbage = emulator.authenticate(request(headers=(("authorization", "Basic !!!not-base64"),)))
    assert garbage.status == 401 and garbage.reason == "no basic credentials"


def test_static_bearer() -> None:
    emulator = AuthEmulator(Authentication(kind="bearer", token="${T}"), {"token": STATIC_TOKEN})
    assert emulator.authenticate(request(headers=(bearer(STATIC_TOKEN),))).ok
    wrong = emulator.authenticate(request(headers=(bearer("other"),)))
    assert header(wrong, "www-authenticate") == 'Bearer error="invalid_token"'
    assert header(emulator.authenticate(request()), "www-authenticate") == "Bearer"
    # No token endpoint for a static bearer token.
    assert not emulator.is_token_request("/oauth/token")
    assert emulator.handle_token_request(token_request(client_body())).status == 404


@pytest.mark.parametrize("kind", ["none", "custom"])
def test_none_lets_everyone_in(kind: str) -> None:
    emulator = AuthEmulator(Authentication(kind=kind, description="x"), {})  # type: ignore[arg-type]
    result = emulator.authenticate(request())
    assert result.ok and result.identity == "ip:10.0.0.7"


def test_missing_credential_values_are_named_not_shown() -> None:
    with pytest.raises(ValueError, match="client_secret") as info:
        AuthEmulator(OAUTH, {"client_id": CLIENT_ID})
    assert CLIENT_ID not in str(info.value)


def test_identities_never_contain_secrets() -> None:
    clock = Clock()
    oauth_emulator = oauth(clock, refresh_tokens=True)
    body = issue(oauth_emulator)
    tokens = (str(body["access_token"]), str(body["refresh_token"]))
    cases: list[tuple[AuthEmulator, Request]] = [
        (oauth_emulator, request(headers=(bearer(tokens[0]),))),
        (oauth_emulator, request(headers=(bearer(tokens[1]),))),
        (
            AuthEmulator(Authentication(kind="bearer", token="${T}"), {"token": STATIC_TOKEN}),
            request(headers=(bearer(STATIC_TOKEN),)),
        ),
        (
            AuthEmulator(
                Authentication(kind="api_key", api_key="${K}", key_in="header", key_name="k"),
                {"api_key": API_KEY},
            ),
            request(headers=(("k", API_KEY),)),
        ),
        (
            AuthEmulator(
                Authentication(kind="basic", username="${U}", password="${P}"),
                {"username": USERNAME, "password": PASSWORD},
            ),
            request(headers=(basic(USERNAME, PASSWORD),)),
        ),
    ]
    results = [emulator.authenticate(req) for emulator, req in cases]
    assert [r.ok for r in results] == [True, False, True, True, True]
    for result in results:
        for secret in (*SECRETS, *tokens):
            assert secret not in result.identity
            assert secret not in (result.token_label or "")
            assert secret not in result.reason
            assert secret.encode() not in result.body
