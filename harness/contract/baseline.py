"""Known, accepted findings (each with a reason, an owner and an expiry date).

A team that meets a contract finding it cannot fix today (the provider's bug, a fix scheduled
for next sprint) accepts it in a baseline file instead of switching the check off: the finding
stays visible in every report, marked accepted, but no longer fails the stage - until the
acceptance expires, when it fails again with a finding saying so. New findings always fail.

The file is YAML (``--baseline FILE``), validated by ``harness/schemas/contract-baseline.schema.json``;
every problem is reported at once, located to its line::

    version: 1
    accepted:
      - id: contract/mapping/destination_schema/upsertItem   # a check id; * is a wildcard
        json_path: $.weight_grams                            # optional narrowing
        reason: the provider rounds weights; fix agreed for v1.5
        owner: dana@example.com
        expires: 2027-01-31                                  # last day it holds

An entry matches a finding when every key it gives matches: ``id`` (the check's id, ``*``
wildcards), ``check`` (the finding's check name), ``code``, ``operation``, ``json_path``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from fnmatch import fnmatchcase
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from harness.problems import InputError, Problem
from harness.results.model import Acceptance, CheckResult, Finding
from harness.schema_errors import located_problems
from harness.yamlsource import load_file

EXPIRED = "HC801"


@dataclass(frozen=True)
class BaselineEntry:
    """One accepted finding (or family of findings), as the file states it."""

    reason: str
    owner: str
    expires: date
    id: str | None = None
    check: str | None = None
    code: str | None = None
    operation: str | None = None
    json_path: str | None = None
    line: int | None = None
    """Where the entry starts in the baseline file (for messages)."""

    def matches(self, result: CheckResult, finding: Finding) -> bool:
        """Whether every key this entry gives matches the finding of ``result``."""
        return (
            (self.id is None or fnmatchcase(result.id, self.id))
            and (self.check is None or self.check == finding.check)
            and (self.code is None or self.code == finding.code)
            and (self.operation is None or self.operation == finding.operation)
            and (self.json_path is None or self.json_path == finding.json_path)
        )

    def expired(self, today: date) -> bool:
        return today > self.expires

    @property
    def acceptance(self) -> Acceptance:
        return Acceptance(reason=self.reason, owner=self.owner, expires=self.expires.isoformat())

    def describe(self) -> str:
        keys = [
            f"{name}={value}"
            for name, value in (
                ("id", self.id),
                ("check", self.check),
                ("code", self.code),
                ("operation", self.operation),
                ("json_path", self.json_path),
            )
            if value is not None
        ]
        return ", ".join(keys)


@dataclass(frozen=True)
class Baseline:
    """Accepted findings, loaded from a YAML file."""

    path: str
    entries: tuple[BaselineEntry, ...] = ()


@cache
def baseline_schema() -> dict[str, Any]:
    """The JSON Schema of a baseline file, as shipped in the package."""
    text = resources.files("harness").joinpath("schemas/contract-baseline.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def load_baseline(path: Path) -> Baseline:
    """Read and validate a baseline file (InputError on bad input, every problem at its line)."""
    loaded = load_file(path, str(path))
    data, source = loaded.data, loaded.source
    if not isinstance(data, dict):
        got = "an empty file" if data is None else "a list" if isinstance(data, list) else "text"
        raise InputError(
            [Problem(source.file, 1, "", f"expected a mapping with 'accepted', got {got}")]
        )
    problems = located_problems(Draft202012Validator(baseline_schema()).iter_errors(data), source)
    if problems:
        raise InputError(problems)
    entries: list[BaselineEntry] = []
    for index, raw in enumerate(data.get("accepted") or []):
        try:
            expires = date.fromisoformat(raw["expires"])
        except ValueError:
            problems.append(source.problem(["accepted", index, "expires"], "not a calendar date"))
            continue
        entries.append(
            BaselineEntry(
                reason=raw["reason"],
                owner=raw["owner"],
                expires=expires,
                id=raw.get("id"),
                check=raw.get("check"),
                code=raw.get("code"),
                operation=raw.get("operation"),
                json_path=raw.get("json_path"),
                line=source.line_of(["accepted", index]),
            )
        )
    if problems:
        raise InputError(problems)
    return Baseline(path=str(path), entries=tuple(entries))


def apply_baseline(
    checks: Sequence[CheckResult], baseline: Baseline, today: date
) -> tuple[CheckResult, ...]:
    """Mark accepted findings; checks failing only on accepted findings pass; expired ones fail.

    A finding matched only by expired entries stays unaccepted, and its check gets one more
    finding (``baseline_expired``, HC801) per expired entry naming owner, reason and date, so
    the report says why a known finding fails again. Checks that did not fail (passed, error,
    skipped) keep their status; their findings are still marked.
    """
    out: list[CheckResult] = []
    for result in checks:
        if not result.findings or not baseline.entries:
            out.append(result)
            continue
        findings: list[Finding] = []
        expired: dict[BaselineEntry, Finding] = {}
        for finding in result.findings:
            if finding.accepted is not None:
                findings.append(finding)
                continue
            matching = [e for e in baseline.entries if e.matches(result, finding)]
            live = [e for e in matching if not e.expired(today)]
            if live:
                findings.append(replace(finding, accepted=live[0].acceptance))
                continue
            findings.append(finding)
            for entry in matching:
                expired.setdefault(entry, finding)
        for entry, finding in expired.items():
            findings.append(_expired_finding(baseline, entry, finding))
        out.append(_rejudged(result, tuple(findings)))
    return tuple(out)


def unmatched_entries(
    checks: Sequence[CheckResult], baseline: Baseline
) -> tuple[BaselineEntry, ...]:
    """Entries that accept nothing in these results: stale, worth deleting from the file."""
    return tuple(
        entry
        for entry in baseline.entries
        if not any(entry.matches(c, f) for c in checks for f in c.findings)
    )


def _expired_finding(baseline: Baseline, entry: BaselineEntry, finding: Finding) -> Finding:
    where = f"{baseline.path}:{entry.line}" if entry.line is not None else baseline.path
    return Finding(
        check="baseline_expired",
        message=(
            f"the acceptance of this finding expired on {entry.expires.isoformat()} "
            f"(owner: {entry.owner}; reason: {entry.reason}; {where}): {finding.message}"
        ),
        code=EXPIRED,
        operation=finding.operation,
        json_path=finding.json_path,
        details={"baseline": where, "expired": entry.expires.isoformat(), "owner": entry.owner},
    )


def _rejudged(result: CheckResult, findings: tuple[Finding, ...]) -> CheckResult:
    open_findings = [f for f in findings if f.accepted is None]
    accepted = len(findings) - len(open_findings)
    if result.status != "failed":
        return replace(result, findings=findings)
    if open_findings:
        summary = result.summary
        if open_findings[0] is not result.findings[0] or accepted:
            count = len(open_findings)
            summary = (
                f"{count} open finding{'s' if count != 1 else ''}"
                + (f" ({accepted} accepted)" if accepted else "")
                + f": {open_findings[0].message}"
            )
        return replace(result, findings=findings, summary=summary)
    return replace(
        result,
        findings=findings,
        status="passed",
        summary=f"passed with {accepted} accepted finding{'s' if accepted != 1 else ''} "
        f"(baseline): {result.summary}",
    )
