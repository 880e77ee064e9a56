"""Fault plans: loading with located problems, and deciding requests exactly as the plan says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.problems import InputError
from harness.provider.faults import (
    CloseAfterHeadersFault,
    FaultMatch,
    FaultPlan,
    FaultRule,
    FaultState,
    HangFault,
    LatencyFault,
    MalformedJsonFault,
    ResetFault,
    SchemaViolationFault,
    SlowBodyFault,
    StatusFault,
    TokenExpiryFault,
    TruncateFault,
    WhenAfter,
    WhenAlways,
    WhenEvery,
    WhenNth,
    WhenProbability,
    WhenWindow,
    load_fault_plan,
    parse_fault_plan,
    parse_fault_plan_text,
    unknown_operation_problems,
)

from ..conftest import REPO

DATA = REPO / "tests" / "data" / "faults"
GOOD = sorted((DATA / "good").iterdir())
BROKEN = sorted((DATA / "broken").iterdir())
# JSON has no comments: expectations for JSON samples live here.
JSON_EXPECT = {
    "unknown-top-level-key.json": {"line": "2", "path": "rulez", "message": "unknown key 'rulez'"}
}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def rule(
    when: object, action: object = None, name: str = "r", times: int | None = None, **match: object
) -> FaultRule:
    return FaultRule(name, FaultMatch(**match), when, action or ResetFault(), times)  # type: ignore[arg-type]


def fired(
    state: FaultState, n: int, operation: str = "listPets", side: str = "provider"
) -> list[str | None]:
    out = []
    for _ in range(n):
        decided = state.decide(side, operation, "GET", "/pets")  # type: ignore[arg-type]
        out.append(None if decided is None else decided.name)
    return out


# ---- loading ------------------------------------------------------------------------------


def test_sample_plan_from_the_docs() -> None:
    plan = load_fault_plan(DATA / "good" / "petstore-pagination.yaml")
    first, second = plan.rules
    assert first.name == "first-two-pages-reset" and second.name == "rules[1]"
    assert first.match == FaultMatch(("listPets",), ("GET",), "/pets*", "provider")
    assert first.when == WhenNth(frozenset({1, 2})) and first.action == ResetFault()
    assert second.action == StatusFault(429, (("Retry-After", "2"),))
    state = FaultState(plan)
    assert [
        r and r.name
        for r in (state.decide("provider", "listPets", "GET", "/pets") for _ in range(4))
    ] == [
        "first-two-pages-reset",
        "first-two-pages-reset",
        "rules[1]",
        None,
    ]


def test_every_kind_loads_into_the_model() -> None:
    plan = load_fault_plan(DATA / "good" / "every-kind.yaml")
    assert plan.seed == 42
    by_name = {r.name: r for r in plan.rules}
    status = by_name["status-json-body"]
    assert status.match.operations == ("listPets", "getPet") and status.match.methods == (
        "GET",
        "HEAD",
    )
    assert status.when == WhenEvery(3)
    assert status.action == StatusFault(
        503,
        (("Retry-After", "1"), ("Content-Type", "application/json")),
        b'{"error": "unavailable"}',
    )
    assert status.action.respond().status == 503
    text = by_name["status-text-body"]
    assert text.when == WhenAfter(5) and text.times == 2 and text.match.side == "destination"
    assert text.action == StatusFault(
        500, (("Content-Type", "text/plain; charset=utf-8"),), b"boom"
    )
    assert by_name["latency"].when == WhenProbability(0.2) and by_name[
        "latency"
    ].action == LatencyFault(0.5)
    assert by_name["hang"].when == WhenProbability(0.1, 7) and by_name["hang"].action == HangFault()
    assert by_name["window-close"].when == WhenWindow(0.5, 2.0)
    assert by_name["window-close"].action == CloseAfterHeadersFault()
    assert by_name["truncate-half"].when == WhenAlways() and by_name[
        "truncate-half"
    ].action == TruncateFault(None)
    assert by_name["truncate-at"].when == WhenAlways() and by_name[
        "truncate-at"
    ].action == TruncateFault(10)
    assert by_name["malformed"].action == MalformedJsonFault()
    assert by_name["violation"].action == SchemaViolationFault("enum_outside")
    assert by_name["expiry"].action == TokenExpiryFault()
    assert by_name["slow"].action == SlowBodyFault(0.2, 16)
    assert by_name["slow-sized"].action == SlowBodyFault(0.2, 4)
    assert by_name["open-window"].when == WhenWindow(3.0, None)


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_plans_load(path: Path) -> None:
    plan = load_fault_plan(path)
    assert isinstance(plan, FaultPlan)
    assert plan.source is not None and plan.source.file == str(path)


def _expectations(path: Path) -> dict[str, str]:
    if path.name in JSON_EXPECT:
        return JSON_EXPECT[path.name]
    return dict(re.findall(r"^# expect-([a-z]+): (.*)$", path.read_text(), flags=re.MULTILINE))


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.name)
def test_broken_plans_give_located_problems(path: Path) -> None:
    expect = _expectations(path)
    assert expect, f"{path.name} says nothing about what it expects"
    display = str(path.relative_to(REPO))
    with pytest.raises(InputError) as info:
        load_fault_plan(path, display)
    hits = [
        p
        for p in info.value.problems
        if p.file == display
        and p.line == int(expect["line"])
        and p.path == expect.get("path", "")
        and expect["message"] in p.message
    ]
    assert hits, f"expected {expect} in:\n{info.value}"
    assert str(hits[0]).startswith(f"{display}:{expect['line']}: ")


def test_every_problem_is_reported_at_once() -> None:
    text = """\
rules:
  - match: {operation: listPets, sidee: provider}
    when: {nth: [0]}
    action: {reset: true, hang: true}
  - times: 0
    action: {status: 99}
"""
    with pytest.raises(InputError) as info:
        parse_fault_plan_text(text, "plan.yaml")
    assert [str(p) for p in info.value.problems] == [
        "plan.yaml:2: rules[0].match.sidee: unknown key 'sidee' (did you mean 'side'?)",
        "plan.yaml:3: rules[0].when.nth[0]: must be >= 1 (got 0)",
        "plan.yaml:4: rules[0].action: give exactly one action, not 2: hang, reset",
        "plan.yaml:5: rules[1].times: must be >= 1 (got 0)",
        "plan.yaml:6: rules[1].action.status: must be >= 100 (got 99)",
    ]


def test_not_a_mapping_is_one_problem_and_whole_floats_are_ints() -> None:
    with pytest.raises(InputError) as info:
        parse_fault_plan_text("rules:\n  - when: 3\n    action: {reset: true}\n", "p.yaml")
    assert [str(p) for p in info.value.problems] == [
        "p.yaml:2: rules[0].when: expected a mapping, got an integer"
    ]
    plan = parse_fault_plan_text(
        "rules:\n  - when: {every: 2.0}\n    action: {slow_body: {chunk_delay: 1, chunk_size: 4.0}}\n"
    )
    when, action = plan.rules[0].when, plan.rules[0].action
    assert isinstance(when, WhenEvery) and type(when.n) is int
    assert isinstance(action, SlowBodyFault) and type(action.chunk_size) is int


def test_json_plan_from_the_admin_api_is_located() -> None:
    text = '{"rules": [\n  {"action": {"status": 503}},\n  {"action": {"hang": true}, "when": {"every": 0}}\n]}'
    with pytest.raises(InputError) as info:
        parse_fault_plan_text(text, "<admin>")
    assert [str(p) for p in info.value.problems] == [
        "<admin>:3: rules[1].when.every: must be >= 1 (got 0)"
    ]
    plan = parse_fault_plan({"rules": [{"action": {"status": 503}}]})
    assert plan.rules[0].action == StatusFault(503)


def test_missing_plan_file_and_non_mapping_data() -> None:
    with pytest.raises(InputError, match="file not found"):
        load_fault_plan(DATA / "nope.yaml")
    with pytest.raises(InputError, match="got an empty document"):
        parse_fault_plan_text("", "empty.yaml")


def test_unknown_operations_are_located() -> None:
    plan = parse_fault_plan_text(
        "rules:\n"
        "  - match: {operation: listPet}\n"
        "    action: {reset: true}\n"
        "  - match:\n"
        "      operation: [getPet, deletePets]\n"
        "    action: {hang: true}\n"
        "  - action: {hang: true}\n",
        "plan.yaml",
    )
    problems = unknown_operation_problems(plan, {"listPets", "getPet", "deletePet"})
    assert [str(p) for p in problems] == [
        "plan.yaml:2: rules[0].match.operation: unknown operation 'listPet' (did you mean 'listPets'?)",
        "plan.yaml:5: rules[1].match.operation[1]: unknown operation 'deletePets' (did you mean 'deletePet'?)",
    ]
    assert unknown_operation_problems(plan, {"listPet", "getPet", "deletePets"}) == []
    assert unknown_operation_problems(plan, set(), side="destination") == []
    assert len(unknown_operation_problems(plan, set(), side="any")) == 3


# ---- deciding -----------------------------------------------------------------------------


def test_empty_plan_decides_nothing() -> None:
    state = FaultState(FaultPlan())
    assert state.decide("provider", "listPets", "GET", "/pets") is None
    assert state.counts() == ()


def test_nth_every_after_always() -> None:
    for when, expected in [
        (WhenNth(frozenset({2, 4})), [None, "r", None, "r", None]),
        (WhenEvery(2), [None, "r", None, "r", None]),
        (WhenAfter(3), [None, None, None, "r", "r"]),
        (WhenAlways(), ["r"] * 5),
    ]:
        assert fired(FaultState(FaultPlan((rule(when),))), 5) == expected, when


def test_first_match_wins_but_every_matching_rule_counts() -> None:
    plan = FaultPlan(
        (
            rule(WhenNth(frozenset({1, 2})), name="first", operations=("listPets",)),
            rule(WhenNth(frozenset({2, 3})), name="second"),
        )
    )
    state = FaultState(plan)
    assert fired(state, 4) == ["first", "first", "second", None]
    assert [(c.name, c.matched, c.fired) for c in state.counts()] == [
        ("first", 4, 2),
        ("second", 4, 1),
    ]


def test_times_caps_a_rule_and_lets_the_next_one_decide() -> None:
    plan = FaultPlan(
        (rule(WhenAlways(), name="capped", times=2), rule(WhenAlways(), name="fallback"))
    )
    assert fired(FaultState(plan), 4) == ["capped", "capped", "fallback", "fallback"]


def test_match_by_method_path_side_and_operation() -> None:
    plan = FaultPlan((rule(WhenAlways(), methods=("POST",), path="/pets/*", side="destination"),))
    state = FaultState(plan)
    assert state.decide("destination", None, "post", "/pets/12/photos") is not None
    assert state.decide("destination", None, "POST", "/pets") is None
    assert state.decide("destination", None, "GET", "/pets/12") is None
    assert state.decide("provider", None, "POST", "/pets/12") is None
    only_op = FaultState(FaultPlan((rule(WhenAlways(), operations=("getPet",)),)))
    assert only_op.decide("provider", "listPets", "GET", "/pets") is None
    assert only_op.decide("provider", None, "GET", "/pets") is None
    assert only_op.decide("destination", "getPet", "GET", "/pets/1") is not None


def test_counting_is_per_match_not_per_request() -> None:
    plan = FaultPlan((rule(WhenNth(frozenset({2})), operations=("getPet",)),))
    state = FaultState(plan)
    assert fired(state, 3, operation="listPets") == [None] * 3
    assert fired(state, 2, operation="getPet") == [None, "r"]


def test_window_by_injected_clock() -> None:
    clock = Clock()
    state = FaultState(FaultPlan((rule(WhenWindow(0.5, 2.0)),)), clock=clock)
    decisions = []
    for elapsed in (0.0, 0.49, 0.5, 1.99, 2.0, 5.0):
        clock.t = 1000.0 + elapsed
        decisions.append(state.decide("provider", "x", "GET", "/") is not None)
    assert decisions == [False, False, True, True, False, False]
    assert state.decide("provider", "x", "GET", "/", now=1001.0) is not None
    state.reset(now=1001.0)  # time zero moves
    assert state.decide("provider", "x", "GET", "/", now=1001.0) is None


def test_reset_restarts_counts() -> None:
    state = FaultState(FaultPlan((rule(WhenNth(frozenset({1}))),)))
    assert fired(state, 2) == ["r", None]
    state.reset()
    assert fired(state, 2) == ["r", None]


def test_seeded_probability_is_reproducible() -> None:
    plan = FaultPlan((rule(WhenProbability(0.2)),), seed=5)
    one, two = FaultState(plan), FaultState(plan)
    first = fired(one, 500)
    assert first == fired(two, 500)
    assert 60 <= first.count("r") <= 140
    assert first != fired(FaultState(plan, seed=6), 500)
    one.reset()
    assert fired(one, 500) == first
    # A rule with its own seed ignores the plan's.
    own = FaultPlan((rule(WhenProbability(0.5, seed=1)),), seed=5)
    assert fired(FaultState(own), 50) == fired(FaultState(own, seed=99), 50)


def test_probability_draws_do_not_depend_on_earlier_winners() -> None:
    # Seeds follow the rule's index, so the probability rule sits at index 1 in both plans.
    prob = rule(WhenProbability(0.5), name="p")
    never_first = fired(
        FaultState(FaultPlan((rule(WhenNth(frozenset()), name="e"), prob), seed=3)), 99
    )
    every_third_first = fired(
        FaultState(FaultPlan((rule(WhenEvery(3), name="e"), prob), seed=3)), 99
    )
    assert "p" in never_first
    for count, (alone, behind) in enumerate(
        zip(never_first, every_third_first, strict=True), start=1
    ):
        assert behind == ("e" if count % 3 == 0 else alone)


@settings(max_examples=50, deadline=None)
@given(st.sets(st.integers(min_value=1, max_value=60), min_size=1, max_size=15))
def test_nth_fires_exactly_on_its_counts(counts: set[int]) -> None:
    state = FaultState(FaultPlan((rule(WhenNth(frozenset(counts))),)))
    hits = {i for i, name in enumerate(fired(state, 70), start=1) if name is not None}
    assert hits == counts


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=10, unique=True))
def test_nth_from_yaml_fires_exactly_on_its_counts(counts: list[int]) -> None:
    plan = parse_fault_plan_text(
        f"rules:\n  - when: {{nth: {counts}}}\n    action: {{reset: true}}\n"
    )
    hits = {i for i, name in enumerate(fired(FaultState(plan), 45), start=1) if name is not None}
    assert hits == set(counts)
