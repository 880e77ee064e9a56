"""`harness init` scaffolds a repository whose starter spec validates as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import EXAMPLE_SPEC, REPO, run_cli

SWAGGER_2 = {
    "swagger": "2.0",
    "info": {"title": "Acme Orders", "version": "1"},
    "securityDefinitions": {"key": {"type": "apiKey", "in": "header", "name": "X-Acme-Key"}},
    "security": [{"key": []}],
    "paths": {
        "/orders": {
            "get": {
                "operationId": "listOrders",
                "responses": {
                    "200": {
                        "description": "orders",
                        "schema": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["id"],
                                "properties": {
                                    "id": {"type": "integer"},
                                    "total": {"type": "number"},
                                },
                            },
                        },
                    }
                },
            }
        }
    },
}


def test_init_from_the_example_document_validates(tmp_path: Path) -> None:
    provider = EXAMPLE_SPEC.parent / "provider.openapi.yaml"
    result = run_cli("init", str(tmp_path / "repo"), "--openapi", str(provider))
    assert result.code == 0, result.stderr
    spec = tmp_path / "repo" / "contracts" / "petstore-provider-api" / "integration.yaml"
    for folder in ("contracts", "scenarios", "loadtests", "cassettes", "reports"):
        assert (tmp_path / "repo" / folder / "README.md").is_file()
    text = spec.read_text()
    assert "kind: oauth2_client_credentials" in text
    assert 'token_operation: "createToken"' in text
    assert 'source_operation: "listPets"' in text
    assert "listPets: GET /pets" in text
    check = run_cli("validate", str(spec))
    assert check.code == 0, check.stderr


def test_init_from_swagger_2_with_api_key(tmp_path: Path) -> None:
    doc = tmp_path / "acme.json"
    doc.write_text(json.dumps(SWAGGER_2))
    result = run_cli("init", str(tmp_path / "repo"), "--openapi", str(doc))
    assert result.code == 0, result.stderr
    spec = tmp_path / "repo" / "contracts" / "acme-orders" / "integration.yaml"
    text = spec.read_text()
    assert 'key_name: "X-Acme-Key"' in text
    assert '"${ACME_ORDERS_API_KEY}"' in text
    assert run_cli("validate", str(spec)).code == 0


def test_init_without_document_validates_and_refuses_to_overwrite(tmp_path: Path) -> None:
    first = run_cli("init", str(tmp_path), "--name", "Billing sync")
    assert first.code == 0, first.stderr
    spec = tmp_path / "contracts" / "billing-sync" / "integration.yaml"
    assert run_cli("validate", str(spec)).code == 0
    again = run_cli("init", str(tmp_path), "--name", "Billing sync")
    assert again.code == 2
    assert "already exists" in again.stderr
    assert run_cli("init", str(tmp_path), "--name", "Billing sync", "--force").code == 0


@pytest.mark.parametrize("bad", ["missing.yaml", "tests/data/broken/invalid-provider.openapi.yaml"])
def test_init_with_a_bad_document_exits_2(tmp_path: Path, bad: str) -> None:
    result = run_cli("init", str(tmp_path / "repo"), "--openapi", bad, cwd=REPO)
    assert result.code == 2
    assert bad in result.stderr
    assert "Traceback" not in result.stderr
