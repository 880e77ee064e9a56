"""Data mapping checks: hypothesis records through the declared semantics or the named functions."""

from __future__ import annotations

import json
import shutil
import sys
from datetime import datetime
from pathlib import Path

import pytest

from harness.contract.mapping_check import MappingError, check_data_mapping, declared, strftime
from harness.project import load_project
from harness.results.model import CheckResult
from harness.spec.model import Transformation

from ..conftest import EXAMPLE_SPEC, REPO

DATA = Path(__file__).parent / "data"


def _by_id(results: tuple[CheckResult, ...]) -> dict[str, CheckResult]:
    return {r.id: r for r in results}


def test_declared_semantics() -> None:
    date = Transformation(kind="date", from_format="%Y-%m-%d", to_format="%d.%m.%Y")
    assert declared(date, "2021-04-03") == "03.04.2021"
    # %Y is four digits whatever the C library does (glibc writes year 481 as "481").
    assert declared(date, "0481-05-17") == "17.05.0481"
    with pytest.raises(MappingError, match="does not match from_format"):
        declared(date, "03/04/2021")
    enum = Transformation(kind="enum", values={"a": "x", "1": "one", "true": "yes"})
    assert (declared(enum, "a"), declared(enum, 1), declared(enum, True)) == ("x", "one", "yes")
    with pytest.raises(MappingError, match="no translation"):
        declared(enum, "b")
    grams = Transformation(kind="convert", to_type="integer", factor=1000)
    assert declared(grams, 1.005) == 1005  # rounds: 1.005 * 1000 is 1004.999...
    assert declared(Transformation(kind="convert", to_type="string"), 42) == "42"
    assert declared(Transformation(kind="convert", to_type="boolean"), "TRUE") is True
    with pytest.raises(MappingError):
        declared(Transformation(kind="convert", to_type="number"), "twelve")
    assert strftime(datetime(12, 1, 2), "%Y%%Y") == "0012%Y"


def _example_with_any_positive_weight(folder: Path) -> Path:
    """The example as it first was: the provider promised only ``weight_kg > 0``."""
    for name in ("integration.yaml", "provider.openapi.yaml", "destination.openapi.yaml"):
        shutil.copy(EXAMPLE_SPEC.parent / name, folder / name)
    provider = folder / "provider.openapi.yaml"
    text = provider.read_text(encoding="utf-8")
    assert "weight_kg: {type: number, minimum: 0.001," in text
    provider.write_text(
        text.replace(
            "weight_kg: {type: number, minimum: 0.001,",
            "weight_kg: {type: number, minimum: 0, exclusiveMinimum: true,",
        ),
        encoding="utf-8",
    )
    spec = folder / "integration.yaml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace(
            "working_dir: ../../examples", f"working_dir: {REPO / 'examples'}"
        ),
        encoding="utf-8",
    )
    return spec


def test_the_example_mapping_holds_for_every_generated_record() -> None:
    results = check_data_mapping(load_project(EXAMPLE_SPEC), seed=1, max_examples=40)
    assert results and all(r.status == "passed" for r in results), [
        (r.id, r.summary) for r in results if r.status != "passed"
    ]


def test_the_example_mapping_rows_hold_and_the_weight_rounding_gap_is_found(tmp_path: Path) -> None:
    spec = _example_with_any_positive_weight(tmp_path)
    results = _by_id(check_data_mapping(load_project(spec), seed=1, max_examples=40))
    rows = [r for r in results.values() if r.id.startswith("contract/mapping/row/")]
    assert [r.attributes["row"] for r in rows] == [
        "external_id",
        "name",
        "state",
        "born_on",
        "weight_grams",
        "labels",
    ]
    assert all(r.status == "passed" for r in rows), [(r.id, r.summary) for r in rows]
    # weight_kg > 0 is all the provider promises; below 0.0005 kg the declared conversion
    # gives 0 grams, which upsertItem (minimum 1) rejects. A real gap in the bundled spec.
    schema = results["contract/mapping/destination_schema/upsertItem"]
    assert schema.status == "failed"
    (finding,) = schema.findings
    assert finding.code == "HC604"
    assert finding.json_path == "$.weight_grams"
    record = finding.details["source_record"]
    assert 0 < record["weight_kg"] < 0.0005
    # Minimal: only what the record schema requires, plus the field that breaks.
    assert set(record) == {"id", "name", "status", "weight_kg"}
    assert finding.details["destination_record"]["weight_grams"] == 0
    assert finding.seed == 1


def test_named_functions_are_run_and_their_bugs_shown_as_minimal_records() -> None:
    before = list(sys.path)
    results = _by_id(
        check_data_mapping(load_project(DATA / "shop-spec.yaml"), seed=3, max_examples=60)
    )
    assert sys.path == before, "the working_dir must leave sys.path as it was"

    def only(check_id: str) -> tuple[str, dict[str, object]]:
        result = results[check_id]
        assert result.status == "failed", result.summary
        (finding,) = result.findings
        return str(finding.code), dict(finding.details["source_record"])

    # The function's table forgot "cancelled": it raises.
    code, record = only("contract/mapping/row/status")
    assert code == "HC605"
    assert record["state"] == "cancelled"
    # Truncation instead of rounding: the function disagrees with the declared conversion.
    code, record = only("contract/mapping/row/amount_cents")
    assert code == "HC603"
    total = float(record["total"])  # type: ignore[arg-type]
    assert int(total * 100) != round(total * 100)
    # Required by the mapping, optional in the document: a record without it.
    code, record = only("contract/mapping/row/placed")
    assert code == "HC602"
    assert "placed_at" not in record
    code, record = only("contract/mapping/row/note")
    assert code == "HC602"
    # Rows without a problem pass.
    for row in ("order_id", "email", "labels"):
        assert results[f"contract/mapping/row/{row}"].status == "passed"
    assert results["contract/mapping/row/amount_cents"].attributes["semantics"] == (
        "function shop_transforms:to_cents"
    )
    # All rows map, but the destination requires currency, which nothing writes.
    schema = results["contract/mapping/destination_schema/upsertOrder"]
    assert schema.status == "failed"
    assert schema.findings[0].code == "HC604"
    assert "currency" in schema.findings[0].message


def test_same_seed_same_verdict_and_records_even_under_the_ci_profile() -> None:
    """hypothesis loads its "ci" profile when it sees CI variables; the check must not care."""
    from hypothesis import settings

    project = load_project(DATA / "shop-spec.yaml")
    first = check_data_mapping(project, seed=11, max_examples=15)
    current = settings.get_current_profile_name()
    settings.load_profile("ci")
    try:
        second = check_data_mapping(project, seed=11, max_examples=15)
    finally:
        settings.load_profile(current)

    def shown(results: tuple[CheckResult, ...]) -> list[tuple[str, str, str]]:
        return [
            (r.id, r.status, json.dumps([dict(f.details) for f in r.findings], sort_keys=True))
            for r in results
        ]

    assert shown(first) == shown(second)


def test_a_function_that_cannot_be_imported_is_an_error_not_a_pass(tmp_path: Path) -> None:
    spec = (DATA / "shop-spec.yaml").read_text(encoding="utf-8")
    spec = spec.replace("shop_transforms:to_cents", "shop_transforms:no_such_function")
    for name in ("shop-provider.yaml", "shop-destination.yaml", "shop_transforms.py"):
        (tmp_path / name).write_text((DATA / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "spec.yaml").write_text(spec, encoding="utf-8")
    results = _by_id(
        check_data_mapping(load_project(tmp_path / "spec.yaml"), seed=0, max_examples=5)
    )
    broken = results["contract/mapping/row/amount_cents"]
    assert broken.status == "error"
    assert "no function 'no_such_function'" in broken.summary
    assert results["contract/mapping/destination_schema/upsertOrder"].status == "skipped"
