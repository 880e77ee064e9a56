"""`harness contract diff`: before/after document pairs with the expected changes asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.contract.diff import diff_documents
from harness.openapi.document import load_document
from harness.spec.loader import load_spec

from ..conftest import EXAMPLE_SPEC, REPO, run_cli

DIFF = REPO / "tests" / "data" / "contract" / "diff"
DATA = Path(__file__).parent / "data"


def _doc(name: str):  # type: ignore[no-untyped-def]
    return load_document(str(DIFF / name))


def _summary(report) -> set[tuple[str, str, str, str | None, bool | None]]:  # type: ignore[no-untyped-def]
    return {(c.severity, c.kind, c.operation, c.json_path, c.used) for c in report.changes}


# (severity, kind, operation, json_path, used by the petstore spec)
PETSTORE_V2 = {
    ("breaking", "security-scheme-changed", "*", None, True),  # scope pets:read gone
    ("breaking", "auth-changed", "listPets", None, True),  # now needs pets:list
    ("breaking", "field-added-required", "createToken", "$.audience", True),
    ("breaking", "parameter-added-required", "listPets", None, True),  # store_id
    ("breaking", "constraint-tightened", "listPets", None, True),  # per_page max 100 -> 50
    ("breaking", "field-now-optional", "listPets", "$.items[*].name", True),
    ("breaking", "enum-widened", "listPets", "$.items[*].status", True),  # translated
    ("breaking", "type-changed", "listPets", "$.items[*].weight_kg", True),
    ("breaking", "field-removed", "listPets", "$.items[*].nickname", False),  # not mapped
    ("breaking", "operation-removed", "getPet", None, False),  # not called
    ("breaking", "response-removed", "createPet", None, False),
    ("breaking", "type-changed", "createPet", "$.weight_kg", False),
    ("breaking", "field-removed", "createPet", "$.nickname", False),
    ("breaking", "field-now-optional", "createPet", "$.name", False),
    ("breaking", "enum-widened", "createPet", "$.status", False),
    ("non-breaking", "operation-added", "adoptPet", None, False),
    ("non-breaking", "field-added", "listPets", "$.cursor", False),
    ("non-breaking", "field-now-optional", "createPet", "$.name", False),  # in the request
    ("non-breaking", "enum-widened", "createPet", "$.status", False),  # in the request
    ("non-breaking", "enum-widened", "listPets", None, True),  # the status query parameter
    ("non-breaking", "security-scheme-extended", "*", None, True),
    ("non-breaking", "constraint-loosened", "listPets", "$.items[*].weight_kg", True),
    ("non-breaking", "constraint-loosened", "createPet", "$.weight_kg", False),
}


def test_petstore_v2_with_the_spec() -> None:
    spec = load_spec(EXAMPLE_SPEC).spec
    report = diff_documents(_doc("petstore-v1.yaml"), _doc("petstore-v2-breaking.yaml"), spec)
    assert _summary(report) == PETSTORE_V2
    assert report.exit_code == 1
    assert len(report.used_breaking) == 8
    widened = next(c for c in report.changes if c.kind == "enum-widened" and c.used and c.breaking)
    assert "'adopted'" in widened.message
    assert (widened.old_line, widened.new_line) == (235, 229)  # PetStatus in both files


def test_petstore_v2_without_a_spec_every_breaking_change_counts() -> None:
    report = diff_documents(_doc("petstore-v1.yaml"), _doc("petstore-v2-breaking.yaml"))
    assert {(s, k, o, p) for s, k, o, p, _u in _summary(report)} == {
        (s, k, o, p) for s, k, o, p, _u in PETSTORE_V2
    }
    assert all(c.used is None for c in report.changes)
    assert report.exit_code == 1


def test_compatible_version_exits_0_with_and_without_spec() -> None:
    old, new = _doc("petstore-v1.yaml"), _doc("petstore-v1.5-compatible.yaml")
    plain = diff_documents(old, new)
    assert {(c.kind, c.operation) for c in plain.changes} == {
        ("constraint-loosened", "listPets"),
        ("parameter-added", "listPets"),
        ("response-added", "createPet"),
        ("field-added", "listPets"),
    }
    assert not plain.breaking and plain.exit_code == 0
    assert diff_documents(old, new, load_spec(EXAMPLE_SPEC).spec).exit_code == 0


def test_enum_and_type_rules_depend_on_direction() -> None:
    report = diff_documents(_doc("enums-v1.yaml"), _doc("enums-v2.yaml"))
    got = {(c.operation, c.kind, c.json_path): c.breaking for c in report.changes}
    assert got == {
        # response: a client may meet a value or type it does not know
        ("listThings", "enum-narrowed", "$[*].kind"): False,
        ("listThings", "enum-widened", "$[*].color"): True,
        ("listThings", "type-changed", "$[*].size"): False,  # number -> integer
        ("listThings", "type-changed", "$[*].weight"): True,  # integer -> number
        # request: the provider may reject what the client sends
        ("createThing", "enum-narrowed", "$.kind"): True,
        ("createThing", "enum-widened", "$.color"): False,
        ("createThing", "type-changed", "$.size"): False,  # integer -> number
        ("createThing", "type-changed", "$.weight"): True,  # number -> integer
    }


def test_widened_enum_breaks_only_a_translated_field() -> None:
    """A spec that copies `color` as it is and translates `kind`."""
    spec = load_spec(DATA / "things-spec.yaml").spec
    report = diff_documents(_doc("enums-v1.yaml"), _doc("enums-v2.yaml"), spec)
    color = next(
        c for c in report.changes if c.json_path == "$[*].color" and c.operation == "listThings"
    )
    assert color.used is True and color.breaking is False
    assert "copies this field" in color.note
    # kind lost a value in the response: fine for the client, even though it translates it.
    kind = next(
        c for c in report.changes if c.json_path == "$[*].kind" and c.operation == "listThings"
    )
    assert kind.used is True and kind.breaking is False
    assert report.exit_code == 0  # createThing breaks, but the integration never calls it


def test_swagger2_pair() -> None:
    report = diff_documents(_doc("swagger2-v1.yaml"), _doc("swagger2-v2.yaml"))
    assert {(c.kind, c.breaking) for c in report.changes} == {
        ("security-scheme-changed", True),  # the API key header was renamed
        ("server-path-changed", True),  # /v1 -> /v2
        ("type-changed", True),  # Ticket.id integer -> string
        ("response-removed", True),  # 429
    }


def test_same_document_no_changes() -> None:
    report = diff_documents(_doc("petstore-v1.yaml"), _doc("petstore-v1.yaml"))
    assert report.changes == () and report.exit_code == 0


def test_cli_text_json_and_exit_codes() -> None:
    old, new = str(DIFF / "petstore-v1.yaml"), str(DIFF / "petstore-v2-breaking.yaml")
    text = run_cli("contract", "diff", old, new, "--spec", str(EXAMPLE_SPEC))
    assert text.code == 1, text.stderr
    assert "BREAKING" in text.stdout and "[used]" in text.stdout and "[unused]" in text.stdout
    assert "8 breaking change(s) in what" in text.stdout
    as_json = run_cli("contract", "diff", old, new, "--format", "json")
    assert as_json.code == 1
    data = json.loads(as_json.stdout)
    assert data["breaking"] == 16 and data["used_breaking"] is None
    compatible = run_cli("contract", "diff", old, str(DIFF / "petstore-v1.5-compatible.yaml"))
    assert compatible.code == 0, compatible.stdout + compatible.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["missing.yaml", "petstore-v1.yaml"], "missing.yaml: file not found"),
        (
            ["petstore-v1.yaml", str(REPO / "tests/data/broken/invalid-provider.openapi.yaml")],
            "invalid-provider.openapi.yaml:",
        ),
        (["petstore-v1.yaml"], "Missing argument"),
        (["petstore-v1.yaml", "enums-v1.yaml", "--format", "xml"], "'xml' is not one of"),
    ],
    ids=["missing", "invalid-document", "one-document", "bad-format"],
)
def test_cli_bad_input_exit_2(args: list[str], expected: str) -> None:
    result = run_cli("contract", "diff", *args, cwd=DIFF)
    assert result.code == 2, result.stdout
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
