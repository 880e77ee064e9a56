"""Baseline: accepted findings pass (visible), new and expired ones fail; bad files exit 2."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from harness.contract.baseline import apply_baseline, load_baseline, unmatched_entries
from harness.contract.relies import check_relies_on
from harness.problems import InputError
from harness.project import load_project
from harness.results.model import CheckResult, Finding

DATA = Path(__file__).parent / "data"
TODAY = date(2026, 12, 1)


def _check(check_id: str, *findings: Finding) -> CheckResult:
    return CheckResult(
        id=check_id,
        name=check_id,
        status="failed" if findings else "passed",
        summary=findings[0].message if findings else "ok",
        findings=findings,
    )


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "baseline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


SCHEMA = Finding(
    check="response_schema_conformance",
    message="status 'lost' not in enum",
    code="ST108",
    operation="listPets",
    json_path="$.items[0].status",
)
OTHER = Finding(
    check="response_schema_conformance",
    message="id is a string",
    code="ST108",
    operation="listPets",
    json_path="$.items[0].id",
)


def test_accepted_expired_and_new_findings(tmp_path: Path) -> None:
    baseline = load_baseline(
        _write(
            tmp_path,
            """\
version: 1
accepted:
  - check: response_schema_conformance     # by finding: check + operation + json_path
    operation: listPets
    json_path: $.items[0].status
    reason: provider ticket PET-12, fix in 1.5
    owner: dana@example.com
    expires: 2027-01-31
  - id: contract/relies/field/*             # by check id, with a wildcard
    reason: known optional fields
    owner: tom@example.com
    expires: "2026-11-30"
  - code: HC999
    reason: matches nothing
    owner: lee@example.com
    expires: 2030-01-01
""",
        )
    )
    assert [e.line for e in baseline.entries] == [3, 9, 13]
    checks = [
        _check("contract/listPets/response_schema_conformance", SCHEMA),
        _check("contract/listPets/response_schema_conformance_2", SCHEMA, OTHER),
        _check(
            "contract/relies/field/note", Finding(check="field", message="nullable", code="HC506")
        ),
        _check("contract/relies/field/id"),
    ]
    out = {c.id: c for c in apply_baseline(checks, baseline, TODAY)}

    only_accepted = out["contract/listPets/response_schema_conformance"]
    assert only_accepted.status == "passed"
    assert only_accepted.findings[0].accepted is not None
    assert only_accepted.findings[0].accepted.owner == "dana@example.com"
    assert only_accepted.findings[0].accepted.expires == "2027-01-31"
    assert "1 accepted finding" in only_accepted.summary

    mixed = out["contract/listPets/response_schema_conformance_2"]
    assert mixed.status == "failed"  # a new finding next to an accepted one still fails
    assert [f.accepted is not None for f in mixed.findings] == [True, False]
    assert mixed.summary.startswith("1 open finding (1 accepted): id is a string")

    expired = out["contract/relies/field/note"]
    assert expired.status == "failed"
    assert [f.check for f in expired.findings] == ["field", "baseline_expired"]
    note = expired.findings[1]
    assert note.code == "HC801"
    assert "expired on 2026-11-30" in note.message and "tom@example.com" in note.message
    assert str(note.details["baseline"]).endswith("baseline.yaml:9")

    assert out["contract/relies/field/id"].status == "passed"
    assert [e.code for e in unmatched_entries(checks, baseline)] == ["HC999"]
    # Today is the last day an acceptance holds.
    last_day = apply_baseline(checks[2:3], baseline, date(2026, 11, 30))
    assert last_day[0].status == "passed"


def test_baseline_over_real_findings() -> None:
    results = check_relies_on(load_project(DATA / "shop-spec.yaml"))
    path = DATA / "shop-baseline.yaml"
    applied = {c.id: c for c in apply_baseline(results, load_baseline(path), TODAY)}
    assert applied["contract/relies/field/note"].status == "passed"
    assert applied["contract/relies/field/placed_at"].status == "failed"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "accepted:\n  - {id: x, reason: r, owner: o}\n",
            "baseline.yaml:2: accepted[0].expires: required but missing",
        ),
        (
            "accepted:\n  - {reason: r, owner: o, expires: 2027-01-01}\n",
            "give at least one of: id, check, code",
        ),
        (
            "accepted:\n  - {id: x, reason: r, owner: o, expires: 2027-02-30}\n",
            "baseline.yaml:2: not a calendar date: 2027-02-30",
        ),
        (
            "accepted:\n  - {id: x, reason: r, owner: o, expires: '2027-02-30'}\n",
            "accepted[0].expires: not a calendar date",
        ),
        (
            "accepted:\n  - {id: x, reason: r, owner: o, expires: soon}\n",
            "must be a date YYYY-MM-DD",
        ),
        (
            "accepted:\n  - {id: x, reason: r, owner: o, expires: 2027-01-01, reasn: typo}\n",
            "unknown key 'reasn'",
        ),
        (
            "accepted:\n  - {code: X1, reason: r, owner: o, expires: 2027-01-01}\n",
            "must be a finding code",
        ),
        ("- just a list\n", "expected a mapping with 'accepted'"),
    ],
    ids=[
        "no-expiry",
        "no-matcher",
        "bad-date",
        "bad-quoted-date",
        "not-a-date",
        "unknown-key",
        "bad-code",
        "list",
    ],
)
def test_bad_baseline_files_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(InputError) as error:
        load_baseline(_write(tmp_path, text))
    shown = "\n".join(str(p) for p in error.value.problems)
    assert expected in shown
    assert all(p.line is not None for p in error.value.problems), shown


def test_missing_baseline_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_baseline(tmp_path / "nope.yaml")
