"""The fault plan: which requests the provider engine misbehaves on, and how.

A plan is a list of rules; each rule *matches* requests (operation, method, path glob, side),
counts them, and *when* its condition holds for a count (nth, every, after, probability, time
window, always) its single *action* decides the request - first rule wins. Counting is per rule
over every request its ``match`` selects, whether or not an earlier rule won that request, so
``nth: [3]`` means "the third matching request" however the rules above it fired.

Plans come from YAML/JSON files or from the admin API, are validated by the JSON Schema in
``harness/schemas/fault-plan.schema.json`` and report every problem as a located ``Problem``.
The model is frozen; the only mutable part is ``FaultState`` (counters, seeded random streams,
start time), decided on the engine's event loop thread without locks or blocking.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import math
import random
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

from jsonschema import Draft202012Validator

from harness.problems import InputError, PathPart, Problem
from harness.provider.messages import Headers, Respond
from harness.schema_errors import describe, located_problems
from harness.yamlsource import SourceMap, load_file, parse_text

Side = Literal["provider", "destination"]
MatchSide = Literal["provider", "destination", "any"]
SchemaViolationKind = Literal["missing_required", "wrong_type", "enum_outside"]

# ---- the model ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaultMatch:
    """Which requests a rule counts. Unset parts match everything.

    ``path`` is an fnmatch-style glob on the request path without the query (``*`` also crosses
    ``/``, so ``/pets*`` matches ``/pets/1``); methods are upper case.
    """

    operations: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    path: str | None = None
    side: MatchSide = "any"
    _path_match: Callable[[str], object] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.path is not None:
            pattern = re.compile(fnmatch.translate(self.path))
            object.__setattr__(self, "_path_match", pattern.match)

    def matches(self, side: Side, operation_id: str | None, method: str, path: str) -> bool:
        """Whether a request is one this rule counts (``method`` already upper case)."""
        if self.side != "any" and self.side != side:
            return False
        if self.operations is not None and operation_id not in self.operations:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        return self._path_match is None or self._path_match(path) is not None


@dataclass(frozen=True, slots=True)
class WhenNth:
    """Fire on exactly these matching requests (1-based counts)."""

    kind: ClassVar[str] = "nth"
    counts: frozenset[int]


@dataclass(frozen=True, slots=True)
class WhenEvery:
    """Fire on every ``n``-th matching request (n, 2n, 3n...)."""

    kind: ClassVar[str] = "every"
    n: int


@dataclass(frozen=True, slots=True)
class WhenAfter:
    """Fire on every matching request after the first ``n``."""

    kind: ClassVar[str] = "after"
    n: int


@dataclass(frozen=True, slots=True)
class WhenProbability:
    """Fire with this probability, drawn from a per-rule ``random.Random`` so runs reproduce."""

    kind: ClassVar[str] = "probability"
    probability: float
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class WhenWindow:
    """Fire while ``start <= seconds since the plan started < end`` (``end`` None: for ever)."""

    kind: ClassVar[str] = "window"
    start: float = 0.0
    end: float | None = None


@dataclass(frozen=True, slots=True)
class WhenAlways:
    """Fire on every matching request."""

    kind: ClassVar[str] = "always"


FaultWhen = WhenNth | WhenEvery | WhenAfter | WhenProbability | WhenWindow | WhenAlways


@dataclass(frozen=True, slots=True)
class StatusFault:
    """Answer with this status instead of the real response (429, 500, 503, 401...)."""

    kind: ClassVar[str] = "status"
    status: int
    headers: Headers = ()
    body: bytes = b""

    def respond(self) -> Respond:
        return Respond(self.status, self.headers, self.body)


@dataclass(frozen=True, slots=True)
class LatencyFault:
    """Add ``seconds`` before an otherwise normal response."""

    kind: ClassVar[str] = "latency"
    seconds: float


@dataclass(frozen=True, slots=True)
class HangFault:
    """Never answer."""

    kind: ClassVar[str] = "hang"


@dataclass(frozen=True, slots=True)
class ResetFault:
    """Reset the connection (TCP RST) before any byte."""

    kind: ClassVar[str] = "reset"


@dataclass(frozen=True, slots=True)
class CloseAfterHeadersFault:
    """Send the normal status line and headers, then close."""

    kind: ClassVar[str] = "close_after_headers"


@dataclass(frozen=True, slots=True)
class TruncateFault:
    """Send only ``at`` bytes of the normal body (``None``: half of it), keep Content-Length."""

    kind: ClassVar[str] = "truncate"
    at: int | None = None


@dataclass(frozen=True, slots=True)
class MalformedJsonFault:
    """Send a body that is not valid JSON where JSON is promised."""

    kind: ClassVar[str] = "malformed_json"


@dataclass(frozen=True, slots=True)
class SchemaViolationFault:
    """Send valid JSON that breaks the response schema in the chosen way (the engine builds it)."""

    kind: ClassVar[str] = "schema_violation"
    violation: SchemaViolationKind


@dataclass(frozen=True, slots=True)
class TokenExpiryFault:
    """Expire every access token, then answer normally: the client's next call gets 401."""

    kind: ClassVar[str] = "token_expiry"


@dataclass(frozen=True, slots=True)
class SlowBodyFault:
    """Send the normal body ``chunk_size`` bytes at a time, ``chunk_delay`` seconds apart."""

    kind: ClassVar[str] = "slow_body"
    chunk_delay: float
    chunk_size: int = 16


FaultAction = (
    StatusFault
    | LatencyFault
    | HangFault
    | ResetFault
    | CloseAfterHeadersFault
    | TruncateFault
    | MalformedJsonFault
    | SchemaViolationFault
    | TokenExpiryFault
    | SlowBodyFault
)


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One rule: requests it counts, when it fires, what it does, and at most how often."""

    name: str
    match: FaultMatch
    when: FaultWhen
    action: FaultAction
    times: int | None = None


@dataclass(frozen=True)
class FaultPlan:
    """An ordered list of rules. ``source`` (when loaded from a file or the admin API) locates
    later problems, such as operation ids the provider document does not have."""

    rules: tuple[FaultRule, ...] = ()
    seed: int = 0
    source: SourceMap | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RuleCount:
    """How often one rule matched and fired since the plan started (for reports)."""

    name: str
    matched: int
    fired: int


# ---- deciding -----------------------------------------------------------------------------


class FaultState:
    """A plan in motion: counters, random streams and start time. Reset between scenarios.

    ``seed`` overrides the plan's. A probability rule without its own seed draws from
    ``random.Random("<seed>:<rule index>")`` - string seeds hash the same in every process -
    once per matching request, so the same traffic gives the same faults for the same seed.
    """

    def __init__(
        self,
        plan: FaultPlan,
        *,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
        now: float | None = None,
    ) -> None:
        self.plan = plan
        self.seed = plan.seed if seed is None else seed
        self._rules = plan.rules
        self._clock = clock
        self._has_window = any(isinstance(rule.when, WhenWindow) for rule in plan.rules)
        self.reset(now)

    def reset(self, now: float | None = None) -> None:
        """Start over: counters to zero, random streams re-seeded, time zero is now."""
        self.started = self._clock() if now is None else now
        self._matched = [0] * len(self._rules)
        self._fired = [0] * len(self._rules)
        self._rngs: list[random.Random | None] = []
        for index, rule in enumerate(self._rules):
            when = rule.when
            if isinstance(when, WhenProbability):
                seed = when.seed if when.seed is not None else f"{self.seed}:{index}"
                self._rngs.append(random.Random(seed))
            else:
                self._rngs.append(None)

    def decide(
        self,
        side: Side,
        operation_id: str | None,
        method: str,
        path: str,
        now: float | None = None,
    ) -> FaultRule | None:
        """The rule that decides this request, or ``None`` for normal behaviour.

        Every matching rule counts the request (and draws its random number) even after an
        earlier rule has won, so each rule's counts depend only on the traffic it matches.
        """
        rules = self._rules
        if not rules:
            return None
        method = method.upper()
        elapsed = 0.0
        if self._has_window:
            elapsed = (self._clock() if now is None else now) - self.started
        winner: FaultRule | None = None
        matched = self._matched
        for index, rule in enumerate(rules):
            if not rule.match.matches(side, operation_id, method, path):
                continue
            count = matched[index] + 1
            matched[index] = count
            when = rule.when
            if isinstance(when, WhenProbability):
                rng = self._rngs[index]
                assert rng is not None
                fires = rng.random() < when.probability
            elif winner is not None:
                continue
            elif isinstance(when, WhenNth):
                fires = count in when.counts
            elif isinstance(when, WhenEvery):
                fires = count % when.n == 0
            elif isinstance(when, WhenAfter):
                fires = count > when.n
            elif isinstance(when, WhenWindow):
                fires = elapsed >= when.start and (when.end is None or elapsed < when.end)
            else:
                fires = True
            if fires and winner is None and (rule.times is None or self._fired[index] < rule.times):
                self._fired[index] += 1
                winner = rule
        return winner

    def counts(self) -> tuple[RuleCount, ...]:
        """Matched and fired counts per rule, in plan order."""
        return tuple(
            RuleCount(rule.name, self._matched[i], self._fired[i])
            for i, rule in enumerate(self._rules)
        )


# ---- loading ------------------------------------------------------------------------------


@cache
def fault_plan_schema() -> dict[str, Any]:
    """The JSON Schema of a fault plan, as shipped in the package."""
    text = resources.files("harness").joinpath("schemas/fault-plan.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(fault_plan_schema())


def load_fault_plan(path: Path | str, display: str | None = None) -> FaultPlan:
    """Load and validate a plan file (YAML or JSON). Raises ``InputError`` listing every problem."""
    document = load_file(Path(path), display)
    return parse_fault_plan(document.data, document.source)


def parse_fault_plan_text(text: str, name: str = "<fault plan>") -> FaultPlan:
    """A plan sent as text (the admin API): parsed, validated, located problems named ``name``."""
    document = parse_text(text, name)
    return parse_fault_plan(document.data, document.source)


def parse_fault_plan(data: Any, source: SourceMap | None = None) -> FaultPlan:
    """Validate already-parsed plan data and build the model; ``InputError`` on any problem."""
    source = source if source is not None else SourceMap("<fault plan>", {(): 1})
    if not isinstance(data, dict):
        got = "an empty document" if data is None else describe(data)
        raise InputError([source.problem([], f"expected a mapping with a 'rules' list, got {got}")])
    problems = schema_problems(data, source)
    if problems:
        raise InputError(problems)
    problems = _consistency_problems(data, source)
    if problems:
        raise InputError(problems)
    rules = tuple(_rule(index, raw) for index, raw in enumerate(data["rules"]))
    return FaultPlan(rules, int(data.get("seed", 0)), source)


def unknown_operation_problems(
    plan: FaultPlan,
    known_operation_ids: Collection[str],
    source: SourceMap | None = None,
    *,
    side: MatchSide | None = None,
) -> list[Problem]:
    """A problem for every operation id a rule names that the OpenAPI document does not have.

    A typo there would silently never match, and a fault scenario would pass without its fault.
    ``source`` defaults to where the plan was loaded from. With two documents, check each side
    against its own ids (``side="provider"``, ``side="destination"``) and ``side="any"`` rules
    against both sets together; ``side=None`` checks every rule.
    """
    source = source or plan.source or SourceMap("<fault plan>")
    known = sorted(known_operation_ids)
    problems: list[Problem] = []
    for index, rule in enumerate(plan.rules):
        if side is not None and rule.match.side != side:
            continue
        operations = rule.match.operations or ()
        base: list[str | int] = ["rules", index, "match", "operation"]
        listed = (*base, 0) in source.lines or len(operations) > 1
        for position, operation in enumerate(operations):
            if operation in known_operation_ids:
                continue
            hint = difflib.get_close_matches(operation, known, n=1, cutoff=0.6)
            message = f"unknown operation '{operation}'"
            message += f" (did you mean '{hint[0]}'?)" if hint else ""
            problems.append(source.problem([*base, position] if listed else base, message))
    return problems


def _strings(value: str | list[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


def _int_or_none(value: Any) -> int | None:
    """JSON Schema's "integer" also admits 2.0; the model holds real ints."""
    return None if value is None else int(value)


def _rule(index: int, raw: dict[str, Any]) -> FaultRule:
    match = raw.get("match", {})
    return FaultRule(
        name=raw.get("name", f"rules[{index}]"),
        match=FaultMatch(
            operations=_strings(match.get("operation")),
            methods=_strings(match.get("method")),
            path=match.get("path"),
            side=match.get("side", "any"),
        ),
        when=_when(raw.get("when", {"always": True})),
        action=_action(raw["action"]),
        times=_int_or_none(raw.get("times")),
    )


def _when(raw: dict[str, Any]) -> FaultWhen:
    if "nth" in raw:
        return WhenNth(frozenset(int(n) for n in raw["nth"]))
    if "every" in raw:
        return WhenEvery(int(raw["every"]))
    if "after" in raw:
        return WhenAfter(int(raw["after"]))
    if "probability" in raw:
        return WhenProbability(float(raw["probability"]), _int_or_none(raw.get("seed")))
    if "window" in raw:
        window = raw["window"]
        end = window.get("end")
        return WhenWindow(float(window.get("start", 0.0)), None if end is None else float(end))
    return WhenAlways()


def _action(raw: dict[str, Any]) -> FaultAction:
    if "status" in raw:
        headers = [(str(k), str(v)) for k, v in raw.get("headers", {}).items()]
        body = b""
        if "body" in raw:
            value = raw["body"]
            if isinstance(value, str):
                body, content_type = value.encode(), "text/plain; charset=utf-8"
            else:
                body, content_type = json.dumps(value).encode(), "application/json"
            if not any(name.lower() == "content-type" for name, _ in headers):
                headers.append(("Content-Type", content_type))
        return StatusFault(int(raw["status"]), tuple(headers), body)
    if "latency" in raw:
        return LatencyFault(float(raw["latency"]))
    if "hang" in raw:
        return HangFault()
    if "reset" in raw:
        return ResetFault()
    if "close_after_headers" in raw:
        return CloseAfterHeadersFault()
    if "truncate" in raw:
        truncate = raw["truncate"]
        return TruncateFault(int(truncate["at"]) if isinstance(truncate, dict) else None)
    if "malformed_json" in raw:
        return MalformedJsonFault()
    if "schema_violation" in raw:
        return SchemaViolationFault(raw["schema_violation"])
    if "token_expiry" in raw:
        return TokenExpiryFault()
    slow = raw["slow_body"]
    return SlowBodyFault(float(slow["chunk_delay"]), int(slow.get("chunk_size", 16)))


def _consistency_problems(data: dict[str, Any], source: SourceMap) -> list[Problem]:
    """What the schema cannot say: window order, and rule names that must tell rules apart."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, rule in enumerate(data["rules"]):
        window = rule.get("when", {}).get("window")
        if window is not None and window.get("end", math.inf) <= window.get("start", 0):
            path: list[str | int] = ["rules", index, "when", "window", "end"]
            problems.append(source.problem(path, "must be after start"))
        name = rule.get("name")
        if name is not None:
            if name in seen:
                where = f"rules[{seen[name]}]"
                problems.append(
                    source.problem(["rules", index, "name"], f"duplicate rule name (also {where})")
                )
            else:
                seen[name] = index
    return problems


# ---- schema errors, worded for humans -----------------------------------------------------


_SCHEMA_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
}


def schema_problems(data: Any, source: SourceMap) -> list[Problem]:
    """Every schema violation in ``data``, one located ``Problem`` each, in file order."""
    return located_problems(
        _validator().iter_errors(data), source, type_names=_SCHEMA_TYPES, choice_noun=_choice_noun
    )


def _choice_noun(path: list[PathPart]) -> str:
    """A rule chooses exactly one action and at most one condition."""
    return "action" if path and path[-1] == "action" else "condition"
