"""Scenario files: the built-ins load, bad files are reported to the line, users extend them.

No integration runs here: loading and selecting are pure, so these tests are fast and exact.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.problems import InputError
from harness.project import load_project
from harness.scenarios.loader import builtin_scenarios, load_scenarios, select
from harness.scenarios.model import CATEGORY_ORDER, CHECK_NAMES
from harness.scenarios.stage import ScenariosOptions, list_scenarios, prepare

from ..conftest import EXAMPLE_SPEC, run_cli
from .conftest import spec_variant

ISSUE_CATEGORIES = {
    "connection_failures",
    "rate_limit",
    "invalid_data",
    "authentication",
    "service_unavailable",
    "timeouts",
    "data_sync",
}


def test_builtins_cover_every_error_handling_item() -> None:
    scenarios = builtin_scenarios()
    names = [s.name for s in scenarios]
    assert len(names) == len(set(names)) >= 14
    assert {s.category for s in scenarios} >= ISSUE_CATEGORIES
    for scenario in scenarios:
        assert scenario.builtin and scenario.title and scenario.description
        assert {e.check for e in scenario.expect} <= set(CHECK_NAMES)
    alerting = {s.name for s in scenarios if s.expectation("alert") is not None}
    assert {
        "connection-down",
        "service-unavailable-down",
        "auth-revoked",
        "sync-accuracy",
    } <= alerting


def test_every_builtin_applies_to_the_example_and_resolves_its_placeholders() -> None:
    project = load_project(EXAMPLE_SPEC)
    for scenario in builtin_scenarios():
        prepared = prepare(project, scenario)
        assert prepared.skip is None, (scenario.name, prepared.skip)
        assert prepared.plan is not None
        for rule in prepared.plan.rules:
            assert rule.match.operations is None or all(
                op in project.provider.operations for op in rule.match.operations
            )


def test_a_spec_without_the_policy_skips_with_the_reason(tmp_path: Path) -> None:
    def no_auth_policy(data: dict) -> None:  # type: ignore[type-arg]
        del data["error_handling"]["authentication_failures"]
        del data["error_handling"]["request_timeout"]

    project = load_project(spec_variant(tmp_path, no_auth_policy))
    skipped = {s.name: reason for s, reason in list_scenarios(project, ScenariosOptions())}
    assert skipped["token-expiry"] == (
        "the spec does not declare error_handling.authentication_failures"
    )
    assert skipped["timeout-hang"] == "the spec does not declare error_handling.request_timeout"
    assert skipped["sync-accuracy"] is None


BAD_FILES = {
    "typo.yaml": (
        "name: typo\ntitle: T\ncategory: custom\nexpect:\n  - outcome: success\nsetup:\n  recrods: 5\n",
        ["typo.yaml:7: setup.recrods: unknown key 'recrods' (did you mean 'records'?)"],
    ),
    "placeholder.yaml": (
        "name: placeholder\ntitle: T\ncategory: custom\nfaults:\n  rules:\n"
        "    - match: {operation: $sorce}\n      action: {reset: true}\nexpect:\n  - outcome: success\n",
        [
            "placeholder.yaml:6: faults.rules[0].match.operation: unknown placeholder '$sorce'"
            " (did you mean '$source'?)"
        ],
    ),
    "action.yaml": (
        "name: action\ntitle: T\ncategory: custom\nfaults:\n  rules:\n"
        "    - action: {reset: true, hang: true}\nexpect:\n  - outcome: success\n",
        ["action.yaml:6: faults.rules[0].action: give exactly one action, not 2: hang, reset"],
    ),
    "twice.yaml": (
        "name: twice\ntitle: T\ncategory: custom\nexpect:\n  - outcome: success\n"
        "  - outcome: failure\n",
        ["twice.yaml:6: expect[1].outcome: 'outcome' is already expected (expect[0])"],
    ),
    "requires.yaml": (
        "name: requires\ntitle: T\ncategory: custom\nrequires: [error_handling.retries]\n"
        "expect:\n  - outcome: success\n",
        ["requires.yaml:4: requires[0]: 'error_handling.retries' is not a spec path"],
    ),
    "check.yaml": (
        "name: check\ntitle: T\ncategory: custom\nexpect:\n  - retries: {policy: connections}\n",
        [
            "check.yaml:5: expect[0].retries.policy: must be one of: connection_failures,"
            ' service_unavailable, rate_limit, timeouts (got "connections")'
        ],
    ),
    "window.yaml": (
        "name: window\ntitle: T\ncategory: custom\nfaults:\n  rules:\n"
        "    - when: {window: {start: 2, end: 1}}\n      action: {hang: true}\n"
        "expect:\n  - outcome: success\n",
        ["window.yaml:6: faults.rules[0].when.window.end: must be after start"],
    ),
    "empty.yaml": ("", ["empty.yaml:1: expected a scenario mapping, got an empty document"]),
    "syntax.yaml": ("name: [unclosed\n", ["syntax.yaml:2: invalid YAML"]),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_scenario_files_are_reported_to_the_line(tmp_path: Path, name: str) -> None:
    text, expected = BAD_FILES[name]
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_scenarios([tmp_path])
    messages = [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems]
    for want in expected:
        assert any(m.startswith(want) for m in messages), messages


def test_every_bad_file_is_reported_at_once(tmp_path: Path) -> None:
    for name, (text, _) in BAD_FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_scenarios([tmp_path])
    files = {p.file.rsplit("/", 1)[-1] for p in caught.value.problems}
    assert files == set(BAD_FILES)


def test_user_scenarios_next_to_the_spec_extend_and_replace_builtins(tmp_path: Path) -> None:
    spec = spec_variant(tmp_path / "contract")
    folder = tmp_path / "contract" / "scenarios"
    folder.mkdir()
    (folder / "mine.yaml").write_text(
        "name: slow-destination\ntitle: Slow writes\ncategory: custom\nfaults:\n  rules:\n"
        "    - match: {operation: $destination, side: destination}\n"
        "      when: {every: 10}\n      action: {latency: 0.05}\nexpect:\n  - outcome: success\n",
        encoding="utf-8",
    )
    (folder / "override.yaml").write_text(
        "name: sync-accuracy\ntitle: Our clean run\ncategory: data_sync\nsetup: {records: 10}\n"
        "expect:\n  - outcome: success\n",
        encoding="utf-8",
    )
    project = load_project(spec)
    scenarios = {s.name: s for s, _ in list_scenarios(project, ScenariosOptions())}
    assert scenarios["slow-destination"].path == folder / "mine.yaml"
    assert scenarios["sync-accuracy"].title == "Our clean run"
    assert not scenarios["sync-accuracy"].builtin
    assert [s.category for s in scenarios.values()] == sorted(
        (s.category for s in scenarios.values()), key=CATEGORY_ORDER.index
    )


def test_the_same_name_in_two_user_files_is_an_error(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(
            "name: mine\ntitle: T\ncategory: custom\nexpect:\n  - outcome: success\n",
            encoding="utf-8",
        )
    with pytest.raises(InputError) as caught:
        load_scenarios([tmp_path], include_builtin=False)
    assert "scenario 'mine' is also defined in" in str(caught.value)


def test_only_names_unknown_scenarios_with_a_hint() -> None:
    with pytest.raises(InputError) as caught:
        select(builtin_scenarios(), ["rate-limit-492"])
    assert str(caught.value.problems[0]) == (
        "--only: no scenario named 'rate-limit-492' (did you mean 'rate-limit-429'?)"
    )


def test_cli_list_and_bad_input_exit_2(tmp_path: Path) -> None:
    listed = run_cli("scenarios", str(EXAMPLE_SPEC), "--list")
    assert listed.code == 0, listed.stderr
    assert "timeout-hang" in listed.stdout and "runs" in listed.stdout

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yaml").write_text("name: X!\ntitle: T\ncategory: custom\nexpect: []\n")
    result = run_cli("scenarios", str(EXAMPLE_SPEC), "--scenarios", str(bad), "--list")
    assert result.code == 2
    assert "x.yaml:1: name: lower-case letters, digits and dashes" in result.stderr
    assert "x.yaml:4: expect: needs at least 1 item" in result.stderr
    assert "Traceback" not in result.stderr

    missing = run_cli(
        "scenarios",
        str(EXAMPLE_SPEC),
        "--integration",
        "no-such-program --sync",
        "--only",
        "sync-accuracy",
    )
    assert missing.code == 2
    assert "--integration: command not found: 'no-such-program'" in missing.stderr
    assert "Traceback" not in missing.stderr
