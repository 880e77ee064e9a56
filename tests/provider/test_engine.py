"""The engine over real HTTP: every fault kind seen by real clients, auth, rate limits, state,
the admin API and the traffic log."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import jsonschema
import pytest
import requests

from harness.openapi.jsonschema import SchemaConverter
from harness.project import Project, load_project
from harness.provider.api import RunningProvider, simulate
from harness.provider.faults import parse_fault_plan

from ..conftest import EXAMPLE_SPEC

PROJECT = load_project(EXAMPLE_SPEC)


def _plan(*rules: dict[str, Any]) -> Any:
    return parse_fault_plan({"rules": list(rules)})


@contextmanager
def provider(
    *rules: dict[str, Any], project: Project = PROJECT, **options: Any
) -> Iterator[RunningProvider]:
    with simulate(project, faults=_plan(*rules) if rules else None, **options) as running:
        yield running


def token(running: RunningProvider, client: httpx.Client | None = None) -> str:
    creds = running.credentials.by_field
    poster = client or httpx
    reply = poster.post(
        running.url + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
        },
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


def bearer(running: RunningProvider) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(running)}"}


def pet_page_schema() -> dict[str, Any]:
    doc = PROJECT.provider
    return SchemaConverter(doc).convert(
        doc.response_body_schema(doc.operations["listPets"]), "response"
    )  # type: ignore[arg-type]


def test_conforming_list_with_pagination_and_rate_limit_headers() -> None:
    with provider(records=7) as running:
        page = httpx.get(
            running.url + "/pets", params={"page": 2, "per_page": 3}, headers=bearer(running)
        )
        assert page.status_code == 200
        body = page.json()
        jsonschema.validate(body, pet_page_schema())
        assert [p["id"] for p in body["items"]] == [4, 5, 6]
        assert body["total"] == 7 and body["next_page"] == 3
        last = httpx.get(
            running.url + "/v1/pets", params={"page": 3, "per_page": 3}, headers=bearer(running)
        ).json()
        assert [p["id"] for p in last["items"]] == [7] and last["next_page"] is None
        assert page.headers["ratelimit-limit"] == "20"


def test_reset_is_a_real_rst_even_on_an_open_keep_alive_connection() -> None:
    with provider(
        {"match": {"operation": "listPets"}, "when": {"nth": [2]}, "action": {"reset": True}}
    ) as running:
        headers = bearer(running)
        host, port = running.url.removeprefix("http://").split(":")
        sock = socket.create_connection((host, int(port)))
        request = f"GET /pets HTTP/1.1\r\nHost: x\r\nAuthorization: {headers['Authorization']}\r\n\r\n".encode()
        sock.sendall(request)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        sock.sendall(request)
        with pytest.raises(ConnectionResetError):
            for _ in range(50):
                if not sock.recv(65536):
                    break
            else:
                pytest.fail("no reset")
            raise AssertionError("connection closed without RST")
        sock.close()


def test_hang_makes_the_client_time_out() -> None:
    with (
        provider({"match": {"operation": "listPets"}, "action": {"hang": True}}) as running,
        pytest.raises(httpx.ReadTimeout),
    ):
        httpx.get(running.url + "/pets", headers=bearer(running), timeout=0.4)


@pytest.mark.parametrize(
    ("status", "retry_after"), [(429, "2"), (503, "1"), (500, None), (502, None), (504, None)]
)
def test_status_faults(status: int, retry_after: str | None) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    with provider(
        {
            "match": {"operation": "listPets"},
            "when": {"nth": [1]},
            "action": {"status": status, "headers": headers},
        }
    ) as running:
        auth = bearer(running)
        first = requests.get(running.url + "/pets", headers=auth, timeout=5)
        assert first.status_code == status
        assert first.headers.get("Retry-After") == retry_after
        assert requests.get(running.url + "/pets", headers=auth, timeout=5).status_code == 200


def test_latency_and_slow_body_are_lower_bounded() -> None:
    with provider(
        {"match": {"operation": "getPet"}, "action": {"latency": 0.3}},
        {
            "match": {"operation": "listPets"},
            "action": {"slow_body": {"chunk_delay": 0.05, "chunk_size": 64}},
        },
    ) as running:
        auth = bearer(running)
        start = time.monotonic()
        assert httpx.get(running.url + "/pets/1", headers=auth).status_code == 200
        assert time.monotonic() - start >= 0.29
        start = time.monotonic()
        slow = httpx.get(running.url + "/pets", headers=auth)
        chunks = -(-len(slow.content) // 64)
        assert slow.status_code == 200 and slow.json()["items"]
        assert time.monotonic() - start >= 0.05 * (chunks - 1) * 0.9


def test_malformed_json_fails_to_decode() -> None:
    with provider(
        {"match": {"operation": "listPets"}, "action": {"malformed_json": True}}
    ) as running:
        reply = httpx.get(running.url + "/pets", headers=bearer(running))
        assert reply.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(reply.content)


@pytest.mark.parametrize("violation", ["missing_required", "wrong_type", "enum_outside"])
def test_schema_violation_fails_validation(violation: str) -> None:
    with provider(
        {"match": {"operation": "listPets"}, "action": {"schema_violation": violation}}, records=2
    ) as running:
        body = httpx.get(running.url + "/pets", headers=bearer(running)).json()
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(body, pet_page_schema())


@pytest.mark.parametrize("action", [{"truncate": True}, {"close_after_headers": True}])
def test_truncated_and_headless_bodies_are_incomplete(action: dict[str, Any]) -> None:
    with provider({"match": {"operation": "listPets"}, "action": action}) as running:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            httpx.get(running.url + "/pets", headers=bearer(running))
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(running.url + "/pets", headers=bearer(running), timeout=5).content  # noqa: B018


def test_token_expiry_then_reauthentication() -> None:
    with provider(
        {"match": {"operation": "listPets"}, "when": {"nth": [2]}, "action": {"token_expiry": True}}
    ) as running:
        auth = bearer(running)
        assert httpx.get(running.url + "/pets", headers=auth).status_code == 200
        expired = httpx.get(running.url + "/pets", headers=auth)
        assert expired.status_code == 401
        assert 'error="invalid_token"' in expired.headers["www-authenticate"]
        assert httpx.get(running.url + "/pets", headers=bearer(running)).status_code == 200


def test_wrong_credentials_and_missing_token_get_401() -> None:
    with provider() as running:
        wrong = httpx.post(
            running.url + "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
        )
        assert wrong.status_code == 401
        missing = httpx.get(running.url + "/pets")
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith(
            "Bearer"
        )


def test_rate_limit_429_with_real_retry_after_and_early_retry_evidence() -> None:
    from dataclasses import replace

    from harness.spec.model import RateLimits

    spec = replace(PROJECT.spec.spec, rate_limits=RateLimits(requests_per_minute=60, burst=2))
    project = replace(PROJECT, spec=replace(PROJECT.spec, spec=spec))
    with provider(project=project) as running:
        auth = bearer(running)
        statuses = [httpx.get(running.url + "/pets", headers=auth).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        limited = httpx.get(running.url + "/pets", headers=auth)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        time.sleep(0.2)
        records = running.records()
        assert [r.status for r in records if r.operation_id == "listPets"] == [200, 200, 429, 429]
        assert records[-1].early_retry is True
        assert records[-1].rate_limit is not None and records[-1].rate_limit["remaining"] == 0


def test_stateful_create_get_and_concurrent_ids() -> None:
    with provider(records=2) as running:
        auth = bearer(running)
        created = httpx.post(
            running.url + "/pets", json={"name": "Rex", "status": "pending"}, headers=auth
        )
        assert created.status_code == 201
        pet = created.json()
        assert pet["name"] == "Rex" and pet["id"] == 3
        assert httpx.get(f"{running.url}/pets/{pet['id']}", headers=auth).json() == pet
        assert httpx.get(running.url + "/pets/999", headers=auth).status_code == 404
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            replies = list(
                pool.map(
                    lambda i: httpx.post(
                        running.url + "/pets",
                        json={"name": f"p{i}", "status": "sold"},
                        headers=auth,
                    ),
                    range(16),
                )
            )
        ids = [r.json()["id"] for r in replies]
        assert len(set(ids)) == 16
        listing = httpx.get(running.url + "/pets", params={"per_page": 100}, headers=auth).json()
        assert listing["total"] == 2 + 1 + 16


def test_destination_is_a_recording_sink() -> None:
    with simulate(PROJECT, side="destination", records=0) as running:
        item = {"external_id": "7", "name": "Rex", "state": "in_stock"}
        assert httpx.put(running.url + "/items/7", json=item).status_code == 201
        assert httpx.put(running.url + "/items/7", json={**item, "name": "Max"}).status_code == 200
        assert httpx.get(running.url + "/items").json() == [{**item, "name": "Max"}]
        invalid = httpx.put(running.url + "/items/8", json={"external_id": "8"})
        assert invalid.status_code == 422
        assert invalid.headers["content-type"] == "application/problem+json"
        assert {e["in"] for e in invalid.json()["errors"]} == {"body"}


def test_request_validation_names_each_violation() -> None:
    with provider() as running:
        bad = httpx.get(
            running.url + "/pets", params={"page": 0, "per_page": "lots"}, headers=bearer(running)
        )
        assert bad.status_code == 400
        names = sorted(e["name"] for e in bad.json()["errors"])
        assert names == ["page", "per_page"]
        wrong_type = httpx.post(
            running.url + "/pets",
            content=b"name=x",
            headers={**bearer(running), "content-type": "text/plain"},
        )
        # 415 is not documented for createPet: the documented 400 carries the violation instead.
        assert wrong_type.status_code == 400
        assert wrong_type.json()["errors"][0]["name"] == "content-type"


def test_admin_api_replaces_faults_and_serves_traffic() -> None:
    with provider() as running:
        auth = bearer(running)
        assert httpx.get(running.url + "/pets", headers=auth).status_code == 200
        plan = {
            "rules": [
                {"name": "down", "match": {"operation": "listPets"}, "action": {"status": 503}}
            ]
        }
        assert httpx.put(running.url + "/__harness/faults", json=plan).status_code == 200
        assert httpx.get(running.url + "/pets", headers=auth).status_code == 503
        bad = httpx.put(
            running.url + "/__harness/faults", json={"rules": [{"action": {"teapot": True}}]}
        )
        assert bad.status_code == 400
        assert httpx.delete(running.url + "/__harness/faults").status_code == 204
        assert httpx.get(running.url + "/pets", headers=auth).status_code == 200
        doc = httpx.get(running.url + "/__harness/openapi.json").json()
        assert doc["info"]["title"] == "Petstore Provider API"
        time.sleep(0.1)
        traffic = httpx.get(running.url + "/__harness/traffic").json()
        assert [r["status"] for r in traffic["records"] if r["operation_id"] == "listPets"] == [
            200,
            503,
            200,
        ]
        assert [r["fault"] for r in traffic["records"] if r["operation_id"] == "listPets"] == [
            None,
            "down",
            None,
        ]


def test_varied_data_is_reproducible_for_a_seed() -> None:
    """--varied answers stateless operations with seeded values: same seed, same body."""
    from harness.provider.api import simulate as start

    bodies = []
    for seed in (1, 1, 2):
        with start(PROJECT, side="destination", stateful=False, varied=True, seed=seed) as running:
            bodies.append(httpx.get(running.url + "/items/7").json())
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]
    destination = PROJECT.destination
    assert destination is not None
    body_schema = destination.response_body_schema(destination.operations["getItem"])
    assert body_schema is not None
    schema = SchemaConverter(destination).convert(body_schema, "response")
    for body in bodies:
        jsonschema.validate(body, schema)


def test_engine_made_errors_take_the_documented_shape() -> None:
    """401s from auth emulation and 429s from the rate limit are documented as problem+json
    with title and status: the engine's own errors must conform like everything else."""
    from dataclasses import replace

    from harness.spec.model import RateLimits

    doc = PROJECT.provider
    problem = SchemaConverter(doc).convert(
        doc.deref({"$ref": "#/components/schemas/Problem"}), "response"
    )
    spec = replace(PROJECT.spec.spec, rate_limits=RateLimits(requests_per_minute=60, burst=1))
    project = replace(PROJECT, spec=replace(PROJECT.spec, spec=spec))
    with provider(project=project) as running:
        unauthorized = httpx.get(running.url + "/pets", headers={"Authorization": "Bearer nope"})
        assert unauthorized.status_code == 401
        assert unauthorized.headers["content-type"] == "application/problem+json"
        assert 'error="invalid_token"' in unauthorized.headers["www-authenticate"]
        jsonschema.validate(unauthorized.json(), problem)
        auth = bearer(running)
        statuses = [httpx.get(running.url + "/pets", headers=auth) for _ in range(2)]
        limited = statuses[-1]
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) >= 1
        jsonschema.validate(limited.json(), problem)


def test_every_credential_of_the_spec_is_redacted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Not only the auth credentials: a ${VAR} credential the integration gets (env) too."""
    from dataclasses import replace

    canary = "canary-webhook-token-93be1c"
    monkeypatch.setenv("PETSTORE_WEBHOOK_TOKEN", canary)
    iut = PROJECT.spec.spec.integration_under_test
    assert iut is not None
    env = {**(iut.env or {}), "PETSTORE_WEBHOOK_TOKEN": "${PETSTORE_WEBHOOK_TOKEN}"}
    spec = replace(PROJECT.spec.spec, integration_under_test=replace(iut, env=env))
    project = replace(PROJECT, spec=replace(PROJECT.spec, spec=spec))
    traffic = tmp_path / "traffic.jsonl"
    with simulate(project, traffic_path=traffic) as running:
        auth = bearer(running)
        httpx.post(running.url + "/pets", json={"name": canary, "status": "sold"}, headers=auth)
        httpx.get(running.url + "/pets", params={"note": canary}, headers=auth)
    text = traffic.read_text()
    assert canary not in text
    assert text.count("[REDACTED]") >= 2


def test_cached_reads_follow_every_write() -> None:
    """GET answers are kept until the next write: each write must show in the next read."""
    with provider(records=2) as running:
        auth = bearer(running)

        def names() -> list[str]:
            page = httpx.get(running.url + "/pets", params={"per_page": 50}, headers=auth)
            return [pet["name"] for pet in page.json()["items"]]

        before = names()
        assert names() == before  # answered from the cache
        created = httpx.post(
            running.url + "/pets", json={"name": "Cached", "status": "pending"}, headers=auth
        ).json()
        assert names() == [*before, "Cached"]
        item = f"{running.url}/pets/{created['id'] + 1}"
        assert httpx.get(item, headers=auth).status_code == 404  # not created yet: cached 404
        httpx.post(running.url + "/pets", json={"name": "Next", "status": "sold"}, headers=auth)
        assert httpx.get(item, headers=auth).json()["name"] == "Next"
        assert names() == [*before, "Cached", "Next"]
        other = {"Authorization": f"Bearer {token(running)}"}  # same client identity: same data
        assert (
            httpx.get(running.url + "/pets", params={"per_page": 50}, headers=other).json()["items"]
            == httpx.get(running.url + "/pets", params={"per_page": 50}, headers=auth).json()[
                "items"
            ]
        )
