"""Markdown import/export of the integration spec template.

The promise under test: a filled-in template and ``integration.yaml`` describe the same model,
export then import is the identity, and whatever is wrong in a Markdown spec is reported all at
once, each problem on the Markdown line where it sits.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.problems import InputError, Problem
from harness.spec import load_spec, load_spec_text, spec_from_data
from harness.spec.markdown import (
    export_markdown,
    import_markdown,
    load_markdown_spec,
    markdown_to_yaml,
)
from harness.spec.model import (
    AlertsChecklist,
    Approval,
    ConnectionFailures,
    Dependencies,
    Documentation,
    IntegrationSpec,
    IntegrationTests,
    MappingRow,
    MetricsChecklist,
    PerformanceTests,
    RateLimits,
    ResponseTime,
    Security,
    SuccessCriteria,
    Transformation,
    UnitTests,
)

ROOT = Path(__file__).parents[1]
EXAMPLE_YAML = ROOT / "contracts/petstore/integration.yaml"
EXAMPLE_MD = ROOT / "contracts/petstore/integration.md"
DATA = Path(__file__).parent / "data/markdown"
SEED_TEMPLATE = ROOT.parent / "shared/seed/api-integration-spec-template.md"
EXAMPLE = load_spec(EXAMPLE_YAML).spec


def roundtrip(spec: IntegrationSpec) -> IntegrationSpec:
    return spec_from_data(import_markdown(export_markdown(spec), "export.md"))


def problems_of(text: str, file: str = "spec.md") -> tuple[Problem, ...]:
    with pytest.raises(InputError) as caught:
        import_markdown(text, file)
    return caught.value.problems


# --- the example -----------------------------------------------------------------------------


def test_example_markdown_is_the_example_yaml() -> None:
    data = import_markdown(EXAMPLE_MD.read_text(encoding="utf-8"), str(EXAMPLE_MD))
    assert spec_from_data(data) == EXAMPLE
    assert load_markdown_spec(EXAMPLE_MD).spec == EXAMPLE


def test_export_then_import_is_the_identity_on_the_example() -> None:
    assert roundtrip(EXAMPLE) == EXAMPLE


def test_export_keeps_the_template_shape() -> None:
    text = export_markdown(EXAMPLE)
    for line in (
        "# API Integration Spec: Petstore inventory sync",
        "**Integration Type:** REST API  ",
        "**Effort:** Medium",
        "- **Rate Limits:** 600 requests per minute",
        "| Source Field | Destination Field | Transformation | Required |",
        "| birth_date | born_on | Format date: %Y-%m-%d -> %d.%m.%Y | No |",
        "| weight_kg | weight_grams | Convert to integer (x1000) | No |",
        "- [x] Connection failures (retry logic)",
        "  - **Max retries:** 4",
        "- [ ] Rate limit threshold alert",
        "- [x] Product: Priya Shah - 2026-11-18",
        "## Harness Settings",
    ):
        assert line in text.splitlines()


def test_markdown_to_yaml_loads_as_the_same_spec(tmp_path: Path) -> None:
    text = markdown_to_yaml(EXAMPLE_MD)
    assert load_spec_text(text, tmp_path / "integration.yaml").spec == EXAMPLE
    keys = [line.split(":")[0] for line in text.splitlines() if line[:1].isalpha()]
    assert keys[:7] == [
        "spec_version",
        "name",
        "date",
        "author",
        "integration_type",
        "effort",
        "provider",
    ]
    assert "token_ttl_seconds: 300\n" in text  # an integer as written stays an integer


def test_free_text_is_tolerated() -> None:
    text = EXAMPLE_MD.read_text(encoding="utf-8")
    text = text.replace(
        "### Error Handling\n",
        "### Error Handling\nWe follow the platform's retry guide.\n\n- A plain note\n\n",
    )
    text = text.replace(
        "## Dependencies\n", "## Notes\n- [x] anything goes here\n\n## Dependencies\n"
    )
    text = text.replace("- [x] Response times\n", "- [x] Response times (p95 per operation)\n")
    assert spec_from_data(import_markdown(text, "notes.md")) == EXAMPLE


def test_choices_and_links_read_by_either_name() -> None:
    text = EXAMPLE_MD.read_text(encoding="utf-8")
    text = text.replace("**Integration Type:** REST API", "**Integration Type:** rest")
    text = text.replace(
        "**Documentation:** https://petstore.example/docs/api",
        "**Documentation:** [Petstore API docs](https://petstore.example/docs/api)",
    )
    assert spec_from_data(import_markdown(text, "x.md")) == EXAMPLE


# --- problems --------------------------------------------------------------------------------


def template_placeholder_lines(path: Path) -> dict[int, Problem]:
    found = problems_of(path.read_text(encoding="utf-8"), path.name)
    assert all(p.file == path.name and p.line is not None for p in found)
    return {p.line: p for p in found if p.line is not None}


def check_template_problems(path: Path) -> None:
    by_line = template_placeholder_lines(path)
    assert by_line[1].path == "Title"
    assert "[Integration Name]" in by_line[1].message
    assert "[YYYY-MM-DD]" in by_line[2].message
    assert "still lists the choices" in by_line[4].message
    assert by_line[4].path.endswith("Integration Type")
    assert by_line[14].path == "Integration Overview > Rate Limits"
    assert "[Requests per minute/hour]" in by_line[14].message
    assert "[Source System]" in by_line[34].message
    assert "[Step to disable integration]" in by_line[102].message
    assert "[X]" in by_line[113].message
    assert "[Name], [Date]" in by_line[133].message
    assert 136 in by_line


def test_unmodified_template_reports_its_placeholders() -> None:
    check_template_problems(DATA / "template.md")


@pytest.mark.skipif(not SEED_TEMPLATE.exists(), reason="shared seed template not present")
def test_seed_template_reports_its_placeholders() -> None:
    check_template_problems(SEED_TEMPLATE)


@pytest.mark.parametrize(
    ("name", "line", "path", "words"),
    [
        ("bad_table_row.md", 10, "Technical Requirements > Data Mapping > row 2", "5 cells"),
        (
            "bad_transformation.md",
            10,
            "Technical Requirements > Data Mapping > row 2 > Transformation",
            "unrecognised transformation 'Uppercase the first letter'",
        ),
        ("unknown_checklist_item.md", 7, "Security & Compliance", "'Penetration test passed'"),
    ],
)
def test_broken_inputs_give_one_line_problems(name: str, line: int, path: str, words: str) -> None:
    file = DATA / name
    (problem,) = problems_of(file.read_text(encoding="utf-8"), str(file))
    assert (problem.file, problem.line, problem.path) == (str(file), line, path)
    assert words in problem.message
    assert "\n" not in str(problem) and str(problem).startswith(f"{file}:{line}: ")


def test_every_problem_is_reported_at_once() -> None:
    text = EXAMPLE_MD.read_text(encoding="utf-8")
    text = text.replace("**Burst:** 20", "**Burst:** twenty")
    text = text.replace("- [x] Response times\n", "- [x] Respnse times\n")
    text = text.replace(
        "| id | external_id | Convert to string | Yes |", "| id | external_id | None | Maybe |"
    )
    found = problems_of(text)
    assert [p.path for p in found] == [
        "Integration Overview > Rate Limits > Burst",
        "Technical Requirements > Data Mapping > row 1 > Required",
        "Monitoring & Alerting > Metrics to Track",
    ]
    assert "did you mean 'Response times'" in found[2].message


def test_schema_problems_point_at_markdown_lines(tmp_path: Path) -> None:
    text = EXAMPLE_MD.read_text(encoding="utf-8")
    lines = text.splitlines()
    client_line = next(i for i, s in enumerate(lines, 1) if s.startswith("  - **Client ID:**"))
    text = text.replace("**Client ID:** `${PETSTORE_CLIENT_ID}`", "**Client ID:** abc123")
    text = text.replace("**Client ID:** ${PETSTORE_CLIENT_ID}", "**Client ID:** abc123")
    spec = tmp_path / "integration.md"
    spec.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_markdown_spec(spec)
    (problem,) = caught.value.problems
    assert problem.line == client_line
    assert problem.path.startswith("Integration Overview > Authentication > Client ID")
    assert "abc123" not in problem.message


def test_a_key_given_twice_is_a_problem() -> None:
    text = EXAMPLE_MD.read_text(encoding="utf-8")
    text = text.replace("```yaml\n", "```yaml\nauthor: Someone Else\n")
    (problem,) = problems_of(text)
    assert problem.path == "Harness Settings > author"
    assert "given twice" in problem.message


# --- round trip, as a property ---------------------------------------------------------------

texts = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc", "Co", "Cn"))
    | st.sampled_from(list("*_`[]<>&|#\\-!:=,\"' \n→")),
    max_size=12,
)
tristate = st.none() | st.booleans()
counts = st.integers(min_value=0, max_value=10**6)
amounts = st.integers(min_value=1, max_value=10**6) | st.floats(
    min_value=1e-6, max_value=1e12, allow_nan=False, allow_infinity=False
)


def checklist(cls: type[Any]) -> st.SearchStrategy[Any]:
    return st.builds(cls, **{f.name: tristate for f in dataclasses.fields(cls)})


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


OPTIONAL = [
    f.name
    for f in dataclasses.fields(IntegrationSpec)
    if f.name not in ("spec_version", "name", "integration_type", "provider")
]


@st.composite
def variants(draw: st.DrawFn) -> IntegrationSpec:
    """The example with checklists toggled, numbers and some text changed, sections dropped."""
    spec = EXAMPLE
    assert spec.security and spec.monitoring and spec.testing_strategy and spec.launch
    assert spec.rate_limits and spec.error_handling and spec.performance and spec.data_mapping
    assert spec.sla and spec.error_handling.connection_failures and spec.approvals
    fields = list(spec.data_mapping.fields)
    fields[2] = dataclasses.replace(
        fields[2],
        transformation=Transformation(
            kind="enum",
            values=draw(
                st.dictionaries(
                    texts, texts | st.integers() | st.booleans(), min_size=1, max_size=3
                )
            ),
        ),
    )
    fields[4] = dataclasses.replace(
        fields[4],
        required=draw(st.booleans()),
        transformation=draw(
            maybe(
                st.builds(
                    Transformation,
                    kind=st.just("convert"),
                    to_type=st.just("integer"),
                    factor=maybe(amounts),
                )
            )
        ),
    )
    spec = dataclasses.replace(
        spec,
        name=draw(st.just(spec.name) | texts),
        author=draw(maybe(texts)),
        business_justification=draw(maybe(texts)),
        rate_limits=RateLimits(
            requests_per_minute=draw(maybe(amounts)),
            requests_per_hour=draw(maybe(amounts)),
            burst=draw(maybe(counts)),
            headers=draw(maybe(st.just(("ietf",)))),
        ),
        sla=dataclasses.replace(
            spec.sla, uptime_percent=draw(maybe(amounts)), description=draw(maybe(texts))
        ),
        data_mapping=dataclasses.replace(spec.data_mapping, fields=tuple(fields)),
        error_handling=dataclasses.replace(
            spec.error_handling,
            connection_failures=draw(
                maybe(
                    st.builds(
                        ConnectionFailures,
                        max_retries=counts,
                        backoff=st.just("exponential"),
                        initial_delay_ms=maybe(amounts),
                    )
                )
            ),
            rate_limit=draw(st.none() | st.just(spec.error_handling.rate_limit)),
        ),
        performance=dataclasses.replace(
            spec.performance,
            response_time=draw(
                maybe(st.builds(ResponseTime, p50_ms=amounts, p99_ms=maybe(amounts)))
            ),
            batch_size=draw(maybe(counts)),
        ),
        security=draw(
            st.builds(
                Security,
                **{
                    f.name: tristate for f in dataclasses.fields(Security) if f.name != "pii_fields"
                },
                pii_fields=maybe(st.lists(texts, max_size=2).map(tuple)),
            )
        ),
        monitoring=dataclasses.replace(
            spec.monitoring,
            metrics=draw(maybe(checklist(MetricsChecklist))),
            alerts=draw(maybe(checklist(AlertsChecklist))),
        ),
        testing_strategy=dataclasses.replace(
            spec.testing_strategy,
            unit=draw(maybe(checklist(UnitTests))),
            integration=draw(maybe(checklist(IntegrationTests))),
            performance=draw(maybe(checklist(PerformanceTests))),
        ),
        launch=dataclasses.replace(
            spec.launch,
            success_criteria=draw(
                maybe(
                    st.builds(
                        SuccessCriteria,
                        records_synced=maybe(counts),
                        max_error_rate_percent=maybe(amounts),
                        max_data_loss_incidents=maybe(counts),
                    )
                )
            ),
        ),
        dependencies=draw(maybe(checklist(Dependencies))),
        documentation=draw(maybe(checklist(Documentation))),
        approvals=draw(
            maybe(
                st.lists(
                    st.builds(
                        Approval,
                        role=st.sampled_from(["Product", "Security"]) | texts,
                        name=maybe(texts),
                        approved=st.booleans(),
                    ),
                    max_size=3,
                ).map(tuple)
            )
        ),
    )
    dropped = draw(st.sets(st.sampled_from(OPTIONAL), max_size=6))
    overrides: dict[str, Any] = dict.fromkeys(dropped)
    return dataclasses.replace(spec, **overrides)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variants())
def test_export_then_import_is_the_identity(spec: IntegrationSpec) -> None:
    assert roundtrip(spec) == spec


def test_rows_without_transformation_and_odd_cells_round_trip() -> None:
    assert EXAMPLE.data_mapping is not None
    rows = (
        MappingRow("a", "b", True),
        MappingRow("c", "d|e", False, Transformation(kind="function", function="pkg.mod:fn")),
        MappingRow(
            "f", "g", True, Transformation(kind="datetime", from_format="%s", to_format="%Y %H:%M")
        ),
    )
    spec = dataclasses.replace(
        EXAMPLE, data_mapping=dataclasses.replace(EXAMPLE.data_mapping, fields=rows)
    )
    text = export_markdown(spec)
    assert "| a | b |  | Yes |" in text
    assert "| f | g | Format datetime: %s -> %Y %H:%M | Yes |" in text
    assert roundtrip(spec) == spec
