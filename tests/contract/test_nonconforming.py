"""Against a real server that breaks its document in six known ways (broken_server.py): every
breakage is found, attributed to the right operation and check, confirmed on re-send, and the
run is reproducible; the operation it honours has no finding; a check switched off in the spec
for one operation is skipped there, with its reason, and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from harness.contract.options import ContractOptions
from harness.contract.runner import run_contract
from harness.project import load_project
from harness.results.model import StageResult
from tests.contract.broken_server import broken_server
from tests.contract.helpers import BROKEN_SPEC, CANARY_KEY, by_id, failing, quiet

# (operation, check, stable code, JSON path of the violation or None)
EXPECTED = [
    ("getPet", "response_schema_conformance", "ST108", "$.id"),
    ("getPet", "response_body_schema", "HC101", "$.id"),
    ("getOwner", "response_schema_conformance", "ST108", "$"),
    ("getOwner", "response_body_schema", "HC101", "$"),
    ("listPets", "response_schema_conformance", "ST108", "$[0].status"),
    ("listPets", "response_body_schema", "HC101", "$[0].status"),
    ("getStats", "status_code_conformance", "ST103", "status"),
    ("getStats", "documented_status_code", "HC102", "status"),
    ("getHealth", "content_type_conformance", "ST105", "headers.Content-Type"),
    ("getHealth", "documented_content_type", "HC103", "headers.Content-Type"),
    ("createPet", "not_a_server_error", "ST101", None),
    # a 500 is also a status createPet does not document
    ("createPet", "status_code_conformance", "ST103", "status"),
    ("createPet", "documented_status_code", "HC102", "status"),
]


def _run(tmp: Path, spec: Path = BROKEN_SPEC) -> StageResult:
    with broken_server(CANARY_KEY) as url:
        return run_contract(
            load_project(spec),
            ContractOptions(
                target="live", base_url=url, max_examples=3, seed=3, static_checks=False
            ),
            tmp,
            quiet,
        )


@pytest.fixture(scope="module")
def api_key() -> Iterator[str]:
    """The spec's ${BROKEN_API_KEY}, as a live run needs it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BROKEN_API_KEY", CANARY_KEY)
        yield CANARY_KEY


@pytest.fixture(scope="module")
def first(api_key: str, tmp_path_factory: pytest.TempPathFactory) -> StageResult:
    return _run(tmp_path_factory.mktemp("first"))


def test_every_breakage_is_found_where_it_is(first: StageResult) -> None:
    assert first.status == "failed" and first.exit_code == 1
    failed = failing(first)
    expected_ids = {f"contract/{op}/{check}" for op, check, _, _ in EXPECTED}
    assert set(failed) == expected_ids, sorted(set(failed) ^ expected_ids)
    for op, check, code, path in EXPECTED:
        result = failed[f"contract/{op}/{check}"]
        assert result.attributes["operation"] == op
        assert len(result.findings) >= 1
        finding = result.findings[0]
        assert (finding.operation, finding.check, finding.code) == (op, check, code)
        assert finding.json_path == path
        assert finding.seed == 3
        assert finding.request and finding.response_excerpt and finding.reproduce
        assert finding.reproduce.startswith("curl ")
        # shrunk case sent again and checked again before it was reported
        assert str(finding.details["revalidation"]).startswith("reproduced on re-send")


def test_the_honoured_operation_has_no_finding(first: StageResult) -> None:
    checks = [c for c in first.checks if c.attributes.get("operation") == "getVersion"]
    assert checks and not [c for c in checks if c.status in ("failed", "error")]
    assert by_id(first)["contract/getVersion/response_schema_conformance"].status == "passed"
    assert by_id(first)["contract/getVersion/auth_accepted"].status == "passed"


def test_findings_say_what_is_wrong(first: StageResult) -> None:
    failed = failing(first)
    enum = failed["contract/listPets/response_body_schema"].findings[0]
    assert "'lost' is not one of ['available', 'sold']" in enum.message
    wrong_type = failed["contract/getPet/response_body_schema"].findings[0]
    assert "'seven' is not of type 'integer'" in wrong_type.message
    missing = failed["contract/getOwner/response_body_schema"].findings[0]
    assert "'name' is a required property" in missing.message
    status = failed["contract/getStats/documented_status_code"].findings[0]
    assert "202" in status.message and (status.response_excerpt or "").startswith("HTTP 202")
    content = failed["contract/getHealth/documented_content_type"].findings[0]
    assert "text/plain" in content.message
    server = failed["contract/createPet/not_a_server_error"].findings[0]
    assert (server.request or "").startswith("POST ") and "HTTP 500" in (
        server.response_excerpt or ""
    )
    # the key the server echoes in getOwner's body is scrubbed from the excerpt
    assert "[REDACTED]" in (missing.response_excerpt or "")
    assert CANARY_KEY not in repr(first)


def _signature(result: StageResult, skip: str = "") -> set[tuple[str, str | None, str | None, str]]:
    return {
        (c.id, f.code, f.json_path, (f.request or "").splitlines()[0].split("/api", 1)[1])
        for c in result.checks
        if c.status == "failed" and c.attributes.get("operation") != skip
        for f in c.findings
    }


def test_reproducible_and_checks_can_be_switched_off_per_operation(
    first: StageResult, api_key: str, tmp_path: Path
) -> None:
    yaml = YAML()
    data = yaml.load(BROKEN_SPEC.read_text(encoding="utf-8"))
    data["provider"]["openapi"] = str(BROKEN_SPEC.parent / "broken.openapi.yaml")
    data["contract"]["checks"] = [
        {
            "operations": ["getPet"],
            "exclude": ["response_schema_conformance", "response_body_schema"],
            "reason": "ids are strings until the v2 migration (TICKET-12)",
        }
    ]
    spec = tmp_path / "integration.yaml"
    with spec.open("w", encoding="utf-8") as stream:
        yaml.dump(data, stream)

    second = _run(tmp_path / "out", spec)

    checks = by_id(second)
    for name in ("response_schema_conformance", "response_body_schema"):
        skipped = checks[f"contract/getPet/{name}"]
        assert skipped.status == "skipped"
        assert "TICKET-12" in skipped.summary
    assert checks["contract/getPet/not_a_server_error"].status == "passed"
    # same seed, same findings everywhere else: same checks, codes, paths and requests
    assert _signature(second) == _signature(first, skip="getPet")
