"""Profiles, plans and refusals: everything decided before a Locust process starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.load.data import generate_requests
from harness.load.plan import PlanOptions, build_plan
from harness.load.profiles import BUILTIN_NAMES, resolve_profile
from harness.openapi.operations import compile_document
from harness.problems import InputError
from harness.project import Project, load_project
from harness.spec import load_spec, spec_from_data
from harness.spec.markdown import export_markdown, import_markdown

from ..conftest import EXAMPLE_SPEC, REPO, run_cli
from .conftest import replace_once, spec_variant

CREDS = {"PETSTORE_CLIENT_ID": "id", "PETSTORE_CLIENT_SECRET": "secret"}
LIVE_LOOPBACK = (
    ("base_url: https://sandbox.petstore.example/v1", "base_url: http://127.0.0.1:9/v1"),
    ("allowed_hosts: [sandbox.petstore.example]", "allowed_hosts: [127.0.0.1]"),
)


@pytest.fixture(scope="module")
def example() -> Project:
    return load_project(EXAMPLE_SPEC)


def test_built_in_profiles_derive_their_rates_from_the_spec(example: Project) -> None:
    rates = {}
    for name in BUILTIN_NAMES:
        profile = resolve_profile(example, name, REPO)
        plan = build_plan(
            example,
            PlanOptions(profile=profile, simulated_credentials=CREDS, allow_over_limit=True),
        )
        rates[name] = (plan.rate_rps, plan.duration, len(plan.stages))
    # 300/min declared throughput, 600/min rate limit; smoke is capped at 2 req/s.
    assert rates["smoke"] == (2, 5, 1)
    assert rates["expected"] == (5, 60, 1)
    assert rates["peak"] == (10, 60, 1)
    assert rates["soak"] == (5, 1800, 1)
    assert rates["rate-limit"] == (20, 20, 2)
    assert rates["timeouts"][0] == 5


def test_the_rate_limit_profile_limits_its_first_stage_at_the_client_rate(
    example: Project,
) -> None:
    plan = build_plan(
        example,
        PlanOptions(
            profile=resolve_profile(example, "rate-limit", REPO), simulated_credentials=CREDS
        ),
    )
    limited, over = plan.stages
    assert limited.limiter_rps == 8  # error_handling.rate_limit.client_requests_per_second
    assert over.limiter_rps is None and over.expect_429
    assert plan.simulator_limits == example.spec.spec.rate_limits  # the declared limit
    smoke = build_plan(
        example,
        PlanOptions(profile=resolve_profile(example, "smoke", REPO), simulated_credentials=CREDS),
    )
    assert smoke.simulator_limits is not None
    assert smoke.simulator_limits.per_second > 1e6  # not what the smoke profile is about


def test_users_are_enough_to_hold_the_rate_at_the_latency_budget(example: Project) -> None:
    plan = build_plan(
        example,
        PlanOptions(
            profile=resolve_profile(example, "expected", REPO), simulated_credentials=CREDS
        ),
    )
    # 5 req/s, max_response_time_seconds 2 -> each of 10 users sends one request per 2 s.
    assert plan.users == 10
    assert plan.stages[0].spawn_rate == 10


def test_spec_overrides_and_peak_factor(tmp_path: Path) -> None:
    spec = spec_variant(
        tmp_path,
        lambda t: (
            t
            + "\nload:\n  peak_factor: 1.5\n  profiles:\n"
            + "    - {name: smoke, duration_seconds: 9}\n"
            + "    - {name: nightly, extends: peak, users: 3}\n"
        ),
    )
    project = load_project(spec)
    smoke = resolve_profile(project, "smoke", tmp_path)
    assert (smoke.duration_seconds, smoke.max_rps, smoke.chain) == (9, 2, ("smoke", "smoke"))
    peak = resolve_profile(project, "peak", tmp_path)
    assert peak.factor == 1.5
    nightly = resolve_profile(project, "nightly", tmp_path)
    assert (nightly.factor, nightly.users, nightly.duration_seconds) == (1.5, 3, 60)


def test_profile_files_from_the_profiles_folder_and_by_path(tmp_path: Path) -> None:
    folder = tmp_path / "loadtests" / "profiles"
    folder.mkdir(parents=True)
    (folder / "quick.yaml").write_text("name: quick\nextends: smoke\nduration_seconds: 1\n")
    (tmp_path / "cycle.yaml").write_text("name: cycle\nextends: cycle-b\n")
    (folder / "cycle-b.yaml").write_text("name: cycle-b\nextends: cycle\n")
    (folder / "bad.yaml").write_text("name: bad\nduraton_seconds: 1\n")
    example = load_project(EXAMPLE_SPEC)
    assert resolve_profile(example, "quick", tmp_path).duration_seconds == 1
    by_path = resolve_profile(example, str(folder / "quick.yaml"), tmp_path)
    assert by_path.chain == ("quick", "smoke")
    with pytest.raises(InputError) as unknown:
        resolve_profile(example, "nope", tmp_path)
    assert "unknown profile 'nope'" in str(unknown.value.problems[0])
    assert "quick" in str(unknown.value.problems[0])
    with pytest.raises(InputError) as bad:
        resolve_profile(example, "bad", tmp_path)
    assert "duraton_seconds" in str(bad.value.problems[0])
    assert "did you mean 'duration_seconds'" in str(bad.value.problems[0])


def test_generated_requests_conform_to_the_operation(example: Project) -> None:
    operations = {c.operation_id: c for c in compile_document(example.provider)}
    for name in ("listPets", "getPet", "createPet"):
        compiled = operations[name]
        requests = generate_requests(compiled, None, seed=3)
        assert requests
        for request in requests:
            path, _, query = request.url.partition("?")
            match = compiled.pattern.match(path) if compiled.pattern else None
            params = {
                k.removeprefix("p_"): v for k, v in (match.groupdict() if match else {}).items()
            }
            violations, _ = compiled.validate(
                params, query, {}, (request.body or "").encode(), request.content_type
            )
            assert not violations, (name, request, violations)
    fixed = generate_requests(operations["getPet"], {"petId": 7}, seed=0)
    assert [r.url for r in fixed] == ["/pets/7"]
    with pytest.raises(Exception, match="petid: not a parameter"):
        generate_requests(operations["getPet"], {"petid": 7}, seed=0)


def _problems(project: Project, **options: object) -> str:
    profile = resolve_profile(project, str(options.pop("profile", "smoke")), REPO)
    with pytest.raises(InputError) as caught:
        build_plan(project, PlanOptions(profile=profile, **options))  # type: ignore[arg-type]
    return "\n".join(str(p) for p in caught.value.problems)


def test_live_refusals(tmp_path: Path) -> None:
    def live(text: str) -> str:
        for old, new in LIVE_LOOPBACK:
            text = replace_once(text, old, new)
        return text

    project = load_project(spec_variant(tmp_path, live))
    assert "allowed_hosts" in _problems(
        project, target="live", environ=CREDS, base_url="https://prod.petstore.example/v1"
    )
    refused = _problems(project, target="live", environ=CREDS, allow_over_limit=True)
    assert "--allow-over-limit: refused for live targets" in refused
    assert "over the provider's rate limit on purpose" in _problems(
        project, target="live", environ=CREDS, profile="rate-limit"
    )
    missing = _problems(project, target="live", environ={})
    assert "missing credentials: PETSTORE_CLIENT_ID" in missing
    assert "PETSTORE_CLIENT_SECRET" in missing
    assert "secret" not in missing.replace("PETSTORE_CLIENT_SECRET", "").replace(
        "client_secret", ""
    )
    # The same plan goes through with the credentials and an allowed host.
    plan = build_plan(
        project,
        PlanOptions(
            profile=resolve_profile(project, "expected", REPO), target="live", environ=CREDS
        ),
    )
    assert plan.base_url == "http://127.0.0.1:9/v1"
    assert plan.fault_plan is None and plan.simulator_limits is not None


def test_a_profile_above_the_declared_limit_is_refused_live_and_needs_a_flag_simulated(
    tmp_path: Path,
) -> None:
    def live(text: str) -> str:
        for old, new in LIVE_LOOPBACK:
            text = replace_once(text, old, new)
        return (
            text
            + "\nload:\n  profiles:\n    - {name: hammer, extends: smoke, basis: fixed, rps: 50, max_rps: 50}\n"
        )

    project = load_project(spec_variant(tmp_path, live))
    message = _problems(project, target="live", environ=CREDS, profile="hammer")
    assert "sends 50 req/s, above the provider's declared rate limit (10 req/s)" in message
    assert "refused for a live target" in message
    simulated = _problems(project, simulated_credentials=CREDS, profile="hammer")
    assert "--allow-over-limit" in simulated
    allowed = build_plan(
        project,
        PlanOptions(
            profile=resolve_profile(project, "hammer", REPO),
            simulated_credentials=CREDS,
            allow_over_limit=True,
        ),
    )
    assert allowed.rate_rps == 50


def test_unknown_operations_and_unsafe_live_methods_are_located(tmp_path: Path) -> None:
    def edit(text: str) -> str:
        for old, new in LIVE_LOOPBACK:
            text = replace_once(text, old, new)
        return (
            text
            + "\nload:\n  operations:\n    - {operation: listPet}\n    - {operation: createPet}\n"
        )

    spec = spec_variant(tmp_path, edit)
    # An operation the provider lacks is a spec problem: loading (harness validate) reports it.
    with pytest.raises(InputError) as caught:
        load_project(spec)
    (unknown,) = caught.value.problems
    assert f"{spec}:" in str(unknown) and "load.operations[0].operation" in str(unknown)
    assert "'listPet' is not in" in str(unknown)
    spec = spec_variant(tmp_path, lambda text: edit(text).replace("listPet}", "listPets}"))
    message = _problems(load_project(spec), target="live", environ=CREDS)
    assert f"{spec}:" in message and "load.operations[0]" not in message
    assert "load.operations[1].operation" in message and "allow_unsafe_methods" in message


def test_the_command_refuses_bad_input_in_one_line_each(tmp_path: Path) -> None:
    bad_duration = run_cli("load", str(EXAMPLE_SPEC), "--duration", "soon", "--out", str(tmp_path))
    assert bad_duration.code == 2 and "--duration: not a duration: 'soon'" in bad_duration.stderr
    unknown = run_cli("load", str(EXAMPLE_SPEC), "--profile", "nope", "--out", str(tmp_path))
    assert unknown.code == 2 and "unknown profile 'nope'" in unknown.stderr
    live = run_cli(
        "load", str(EXAMPLE_SPEC), "--target", "live", "--allow-over-limit", "--out", str(tmp_path)
    )
    assert live.code == 2
    assert "--allow-over-limit: refused for live targets" in live.stderr
    assert "Traceback" not in unknown.stderr + live.stderr + bad_duration.stderr
    assert not (tmp_path / "load.json").exists()  # nothing started


def test_help_is_complete() -> None:
    result = run_cli("load", "--help")
    assert result.code == 0
    for option in (
        "--profile",
        "--users",
        "--duration",
        "--workers",
        "--target",
        "--base-url",
        "--allow-over-limit",
        "--locustfile",
        "--out",
        "--seed",
        "--junit",
    ):
        assert option in result.stdout


def test_the_harness_never_imports_locust() -> None:
    code = (
        "import sys, harness.cli, harness.load, harness.load.stage, harness.commands.load;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert json.loads(out.stdout.replace("'", '"')) == []


def test_the_load_section_round_trips_through_markdown(tmp_path: Path) -> None:
    spec = spec_variant(
        tmp_path,
        lambda t: (
            t
            + "\nload:\n  operations:\n    - {operation: listPets, weight: 3, parameters: {per_page: 50}}\n"
            + "  profiles:\n    - name: nightly\n      extends: expected\n"
            + "      slow_responses: {share: 0.1}\n      judge: [latency, errors]\n"
            + "  thresholds:\n    - {metric: p95_ms, operation: listPets, max: 300}\n"
        ),
    )
    loaded = load_spec(spec).spec
    assert loaded.load is not None and loaded.load.operations is not None
    assert spec_from_data(import_markdown(export_markdown(loaded), "x.md")) == loaded
