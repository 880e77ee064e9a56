"""What the integration relies on: static checks between the spec and its documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.contract.relies import check_relies_on
from harness.openapi.document import load_document
from harness.project import Project, load_project
from harness.results.model import CheckResult
from harness.spec.loader import load_spec, load_spec_text

from ..conftest import EXAMPLE_SPEC

DATA = Path(__file__).parent / "data"


def _by_id(results: tuple[CheckResult, ...]) -> dict[str, CheckResult]:
    ids = [r.id for r in results]
    assert len(ids) == len(set(ids)), "check ids must be unique"
    return {r.id: r for r in results}


def _codes(result: CheckResult) -> list[str]:
    return sorted(str(f.code) for f in result.findings)


def test_the_example_relies_only_on_what_its_documents_promise() -> None:
    results = _by_id(check_relies_on(load_project(EXAMPLE_SPEC)))
    assert all(r.status == "passed" for r in results.values()), [
        (r.id, r.summary) for r in results.values() if r.status != "passed"
    ]
    assert {
        "contract/relies/auth/oauth2_client_credentials",
        "contract/relies/operation/createToken",
        "contract/relies/operation/listPets",
        "contract/relies/operation/upsertItem",
        "contract/relies/field/tags[].name",
        "contract/relies/enum/status",
    } <= set(results)


def test_every_known_gap_in_the_shop_spec_is_found_and_located() -> None:
    results = _by_id(check_relies_on(load_project(DATA / "shop-spec.yaml")))
    failed = {rid: _codes(r) for rid, r in results.items() if r.status == "failed"}
    assert failed == {
        # orders:write is not a scope of the client-credentials flow
        "contract/relies/auth/oauth2_client_credentials": ["HC511"],
        # audience required but not sent; extra form fields forbidden; no refresh_token grant
        "contract/relies/operation/getToken": ["HC502"] * 5 + ["HC503"],
        # the destination requires currency, which no row writes
        "contract/relies/operation/upsertOrder": ["HC503"],
        # 'cancelled' has no translation; 'shipped' translates to a value the destination lacks
        "contract/relies/enum/state": ["HC507", "HC509"],
        # required by the mapping, optional (and nullable) in the document
        "contract/relies/field/placed_at": ["HC506"],
        "contract/relies/field/note": ["HC506", "HC506"],
        # integer copied into a boolean field
        "contract/relies/field/priority": ["HC505"],
    }
    unmapped = results["contract/relies/enum/state"].findings[0]
    assert unmapped.json_path == "$.data[*].state"
    assert unmapped.operation == "listOrders"
    assert '"cancelled"' in unmapped.message
    # The spec line of the row and the document line of the field.
    assert str(unmapped.details["spec"]).endswith("shop-spec.yaml:29")
    assert str(unmapped.details["document"]).endswith("shop-provider.yaml:69")
    placed = results["contract/relies/field/placed_at"].findings[0]
    assert placed.details["spec_path"] == "data_mapping.fields[2].required"
    assert str(placed.details["document"]).endswith("shop-provider.yaml:70")
    # The source operation's required query parameter is evidence, not a verdict.
    listing = results["contract/relies/operation/listOrders"]
    assert listing.status == "passed"
    assert listing.attributes["required_parameters"] == ["query since"]


def test_a_newer_document_that_lost_what_the_spec_names() -> None:
    """The spec loads against v1; the project carries v2 (the question "do we still fit?")."""
    project = Project(
        load_spec(DATA / "shop-spec.yaml"),
        load_document(str(DATA / "shop-provider-v2.yaml")),
        load_document(str(DATA / "shop-destination.yaml")),
    )
    results = _by_id(check_relies_on(project))
    assert _codes(results["contract/relies/operation/getToken"]) == ["HC501"]
    assert _codes(results["contract/relies/field/customer.email"]) == ["HC504"]
    assert "HC508" in _codes(results["contract/relies/enum/state"])
    unknown = next(f for f in results["contract/relies/enum/state"].findings if f.code == "HC508")
    assert "'paid'" in unknown.message
    assert unknown.details["spec_path"] == "data_mapping.fields[1].transformation.values.paid"


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ("{kind: api_key, api_key: '${SHOP_KEY}', key_in: header, key_name: X-Key}", ["HC510"]),
        ("{kind: basic, username: '${U}', password: '${P}'}", ["HC510"]),
        ("{kind: bearer, token: '${T}'}", []),  # an OAuth2 scheme takes bearer tokens
    ],
    ids=["api-key", "basic", "bearer"],
)
def test_auth_kind_needs_a_matching_security_scheme(auth: str, expected: list[str]) -> None:
    text = (
        "spec_version: 1\nname: x\nintegration_type: rest\n"
        "provider: {name: Shop, openapi: shop-provider.yaml}\n"
        f"authentication: {auth}\n"
    )
    loaded = load_spec_text(text, DATA / "inline.yaml")
    project = Project(loaded, load_document(str(DATA / "shop-provider.yaml")), None)
    (result,) = [r for r in check_relies_on(project) if r.id.startswith("contract/relies/auth/")]
    assert _codes(result) == expected
