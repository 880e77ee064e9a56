"""results.json: its shipped JSON Schema matches the model, and what we write validates."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest

from harness.problems import InputError
from harness.report.html import write_outputs
from harness.results.model import (
    Acceptance,
    ChecklistItem,
    CheckResult,
    Criterion,
    Finding,
    RunResult,
    Series,
    StageResult,
    TimelineEntry,
)
from harness.results.schema import read_results, results_problems, results_schema
from harness.results.serialize import to_data

from .conftest import all_stages, make_run


def as_json(value: Any) -> Any:
    """The data exactly as results.json holds it (tuples inside tuples become arrays)."""
    return json.loads(json.dumps(to_data(value)))


def full_run() -> RunResult:
    """A RunResult with every field of every dataclass set (no defaults left)."""
    finding = Finding(
        check="response_schema",
        message="'id' is a required property",
        code="ST201",
        operation="getPet",
        request="GET http://127.0.0.1:1/pets/1",
        response_excerpt='200 OK\n{"name": "x"}',
        json_path="$.id",
        reproduce="curl -X GET http://127.0.0.1:1/pets/1",
        seed=3,
        accepted=Acceptance(reason="known", owner="dana", expires="2027-01-01"),
        details={"nested": {"a": [1, 2]}},
    )
    check = CheckResult(
        id="contract/getPet/response_schema",
        name="getPet response_schema",
        status="failed",
        summary="1 failed",
        findings=(finding,),
        timeline=(
            TimelineEntry(0.1, "provider", "GET", "/pets/1", 200, "getPet", "delay", 12.5, "n"),
        ),
        duration_seconds=1.5,
        attributes={"operation": "getPet", "check": "response_schema"},
    )
    criterion = Criterion(
        id="performance.response_time.p95_ms",
        name="p95",
        target="<= 800 ms",
        measured="120 ms",
        passed=True,
        target_value=800.0,
        measured_value=120.0,
        comparison="<=",
        unit="ms",
        source="load",
        evidence="locust stats",
    )
    stage = StageResult(
        stage="load",
        status="failed",
        summary="s",
        started_at="2026-11-20T10:00:00Z",
        duration_seconds=3.0,
        checks=(check,),
        criteria=(criterion,),
        series=(Series("p95", "s", "ms", ((0.0, 1.0), (1.0, 2.5))),),
        metrics={"p95_ms": 120.0},
        artifacts={"traffic": "load/traffic.jsonl"},
        seed=9,
        incomplete=True,
        error="boom",
    )
    return RunResult(
        integration="x",
        verdict="not_ready",
        reasons=("r",),
        started_at="2026-11-20T10:00:00Z",
        duration_seconds=4.0,
        spec_path="contracts/petstore/integration.yaml",
        spec_sha256="0" * 64,
        seed=1,
        stages=(stage,),
        criteria=(criterion,),
        checklist=(ChecklistItem("a.b", "S", "L", "automated-fail", "e", ("c",)),),
        versions={"python": "3.11"},
        incomplete=True,
        format_version=1,
    )


def _every_field_set(value: Any, where: str = "run") -> None:
    """Guard for full_run(): no field left at a default None/empty value."""
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            inner = getattr(value, f.name)
            assert inner is not None and inner != () and inner != {}, f"{where}.{f.name} unset"
            _every_field_set(inner, f"{where}.{f.name}")
    elif isinstance(value, tuple):
        for item in value:
            _every_field_set(item, where)


def test_a_run_with_every_field_validates() -> None:
    run = full_run()
    _every_field_set(run)
    assert results_problems(as_json(run)) == []


def test_schema_and_model_agree() -> None:
    """Every schema property has a model field and vice versa; required = fields without defaults."""
    schema = results_schema()
    defs = schema["$defs"]

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        if "oneOf" in node:  # nullable object
            node = next(resolve(n) for n in node["oneOf"] if n.get("type") != "null")
        return node

    seen: set[type] = set()

    def check(node: dict[str, Any], cls: type, where: str) -> None:
        seen.add(cls)
        node = resolve(node)
        props = node["properties"]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert set(props) == set(fields), (
            f"{where}: schema {sorted(props)} vs model {sorted(fields)}"
        )
        required = {
            name
            for name, f in fields.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        assert set(node["required"]) == required, where
        assert node["additionalProperties"] is False, where
        hints = typing.get_type_hints(cls)
        for name, prop in props.items():
            for arg in [hints[name], *typing.get_args(hints[name])]:
                for candidate in [arg, *typing.get_args(arg)]:
                    if dataclasses.is_dataclass(candidate) and isinstance(candidate, type):
                        sub = resolve(prop)
                        if sub.get("type") == "array":
                            sub = resolve(sub["items"])
                        check(sub, candidate, f"{where}.{name}")

    check(schema, RunResult, "run")
    assert seen == {
        RunResult,
        StageResult,
        CheckResult,
        Finding,
        Acceptance,
        TimelineEntry,
        Criterion,
        Series,
        ChecklistItem,
    }


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("verdict",), "maybe"),
        (("stages", 0, "status"), "green"),
        (("stages", 0, "series", 0, "points", 0), [1.0]),
        (("checklist", 0, "status"), "done"),
        (("stages", 0, "checks", 0, "surprise"), 1),
        (("criteria", 0, "passed"), "yes"),
    ],
)
def test_schema_rejects_what_the_model_cannot_hold(path: tuple[Any, ...], value: Any) -> None:
    data = as_json(full_run())
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    assert results_problems(data)


def test_written_results_validate_and_read_back(project: Any, tmp_path: Path) -> None:
    run = make_run(project, all_stages(failing=True), tmp_path)
    write_outputs(run, tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    assert results_problems(data) == []
    assert read_results(tmp_path) == run
    assert data["verdict"] == "not_ready"
    assert {s["stage"] for s in data["stages"]} == {"validate", "contract", "scenarios", "load"}


def test_read_results_bad_input_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(InputError) as caught:
        read_results(tmp_path)
    assert len(caught.value.problems) == 1 and "not JSON" in str(caught.value.problems[0])
    (tmp_path / "results.json").write_text('{"verdict": "ready"}')
    with pytest.raises(InputError) as caught:
        read_results(tmp_path / "results.json")
    assert len(caught.value.problems) == 1 and "not a results.json" in str(caught.value.problems[0])
    with pytest.raises(InputError, match="file not found"):
        read_results(tmp_path / "nowhere")
