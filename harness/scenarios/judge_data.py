"""Data: invalid records kept out and logged as declared; the destination equals the source.

Both read the source ledger (what the provider delivered, intact or broken) and the
destination's contents, so "nothing lost" means nothing the integration could have had.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from harness.scenarios.judgement import (
    Judgement,
    failed,
    passed,
    skipped,
)
from harness.scenarios.mapping import Expected, differences, key_row
from harness.scenarios.observe import (
    Observation,
)


def judge_invalid_data(observation: Observation, params: Mapping[str, Any]) -> Judgement:
    """Invalid records never reach the destination and are logged where the policy says."""
    handling = observation.spec.error_handling
    policy = handling.invalid_data if handling else None
    if policy is None:
        return skipped("invalid_data", "no error_handling.invalid_data declared")
    log = f" and logged to {policy.log}" if policy.log else ""
    verb = {"reject": "rejected", "quarantine": "quarantined", "skip": "skipped"}[policy.action]
    declared = f"invalid records {verb}{log}, never written to the destination"
    invalid = observation.ledger.must_not_write
    if not invalid:
        return Judgement(
            "invalid_data", "error", declared, "no invalid record was delivered: nothing to judge"
        )
    written = _destination_keys(observation)
    problems = [
        f"invalid record {_key_name(observation)} {key} written to the destination"
        for key in sorted(invalid)
        if key in written
    ]
    if policy.log:
        text, where = _log_text(observation, policy.log)
        if text is None:
            problems.append(f"{where} was not written")
        else:
            missing = [
                key for key, record in sorted(invalid.items()) if not _mentions(text, key, record)
            ]
            if missing:
                problems.append(
                    f"{where} does not mention invalid record{'s' if len(missing) != 1 else ''} {', '.join(missing[:5])}"
                )
    observed = f"{len(invalid)} invalid record{'s' if len(invalid) != 1 else ''} ({', '.join(sorted(invalid)[:5])}) delivered"
    if problems:
        return failed("invalid_data", declared, f"{observed}; " + "; ".join(problems[:3]))
    return passed(
        "invalid_data",
        declared,
        f"{observed}; none written, all logged" if policy.log else f"{observed}; none written",
    )


def _log_text(observation: Observation, log: str) -> tuple[str | None, str]:
    if log in ("stderr", "stdout"):
        return (observation.process.stderr if log == "stderr" else observation.process.stdout), log
    path = observation.output_dir / log
    if not path.is_file():
        return None, f"{log} (in the output folder)"
    return path.read_text(encoding="utf-8", errors="replace"), log


def _mentions(text: str, key: str, record: Mapping[str, Any]) -> bool:
    """Whether a log names a record: by a distinctive string of it, or its key as a token."""
    for value in record.values():
        if isinstance(value, str) and len(value) >= 4 and value in text:
            return True
    return re.search(rf"(?<![\w.-]){re.escape(key)}(?![\w.-])", text) is not None


def _key_name(observation: Observation) -> str:
    mapping = observation.spec.data_mapping
    return key_row(mapping).destination if mapping is not None else "key"


def _destination_keys(observation: Observation) -> Counter[str]:
    contents = observation.destination
    if contents is None or observation.spec.data_mapping is None:
        return Counter()
    key = _key_name(observation)
    return Counter(
        _text(record.get(key)) for record in contents.records if record.get(key) is not None
    )


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def judge_sync_accuracy(observation: Observation, params: Mapping[str, Any]) -> Judgement:
    """The destination holds the mapped source: right values, no duplicates, nothing lost."""
    mapping = observation.spec.data_mapping
    contents = observation.destination
    if mapping is None:
        return skipped("sync_accuracy", "no data_mapping declared")
    if contents is None:
        return skipped("sync_accuracy", "no destination the harness can read")
    ledger = observation.ledger
    if ledger.problem is not None:
        return Judgement(
            "sync_accuracy", "error", "destination equals the mapped source", ledger.problem
        )
    key = key_row(mapping).destination
    declared = f"the destination ({contents.where}) equals the mapped source: values per data_mapping, no duplicates, nothing lost"
    problems: list[str] = []
    details: dict[str, Any] = {}
    found: dict[str, list[Mapping[str, Any]]] = {}
    garbage: list[str] = list(contents.unreadable)
    for record in contents.records:
        value = record.get(key)
        if value is None:
            garbage.append(f"a record without {key}: {_short(record)}")
            continue
        found.setdefault(_text(value), []).append(record)
    duplicates = {k: len(v) for k, v in found.items() if len(v) > 1}
    if duplicates:
        shown = ", ".join(f"{k} ({n}x)" for k, n in sorted(duplicates.items())[:5])
        problems.append(f"{len(duplicates)} duplicated ({key} {shown})")
        details["duplicates"] = duplicates
    wrong: list[str] = []
    for value, records in sorted(found.items()):
        expected: Expected | None = ledger.expected.get(value)
        if expected is None:
            if value in ledger.must_not_write or value in ledger.undeliverable:
                continue  # judged by invalid_data, or the destination's own business
            garbage.append(f"{key} {value} is not a source record: {_short(records[0])}")
            continue
        diffs = differences(expected, records[0])
        variant = ledger.may_write.get(value)
        if diffs and variant is not None and not differences(variant, records[0]):
            continue
        if diffs:
            wrong.append(f"{key} {value}: {'; '.join(diffs[:3])}")
    if garbage:
        problems.append(
            f"{len(garbage)} unexpected record{'s' if len(garbage) != 1 else ''} ({garbage[0]})"
        )
        details["unexpected"] = garbage[:20]
    if wrong:
        problems.append(
            f"{len(wrong)} record{'s' if len(wrong) != 1 else ''} with wrong values ({wrong[0]})"
        )
        details["wrong_values"] = wrong[:20]
    process = observation.process
    succeeded = process.ended_on_its_own and process.exit_code == 0
    expected_keys = set(ledger.expected) - set(ledger.delivered_bad)
    present = set(found)
    written = len(present & set(ledger.expected))
    excused = len(set(ledger.expected) & set(ledger.delivered_bad))
    observed = f"{written} of {len(ledger.expected)} records at the destination"
    if excused:
        observed += f" ({excused} only ever delivered broken, excused)"
    if contents.missing:
        observed = f"{contents.where} not written"
    lost_total = 0
    if succeeded:
        lost = sorted(expected_keys - present, key=_natural)
        lost_total = len(lost)
        if lost:
            problems.append(
                f"lost {len(lost)} of {len(expected_keys)} records ({key} {', '.join(lost[:8])}{', ...' if len(lost) > 8 else ''})"
            )
            details["lost"] = lost[:50]
    if ledger.undeliverable:
        details["undeliverable"] = dict(list(ledger.undeliverable.items())[:20])
    details["written"] = written
    details["expected"] = len(ledger.expected)
    details["lost_count"] = lost_total
    details["duplicate_count"] = len(duplicates)
    details["succeeded"] = succeeded
    unjudged = "" if succeeded else "; the run failed, so loss is not judged"
    if problems:
        return failed(
            "sync_accuracy",
            declared,
            f"{observed}; " + "; ".join(problems) + unjudged,
            details=details,
        )
    return passed(
        "sync_accuracy",
        declared,
        f"{observed}, every field as mapped, no duplicates{unjudged}",
        details=details,
    )


def _short(record: Mapping[str, Any]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in list(record.items())[:4])
    return "{" + (text if len(text) <= 100 else text[:97] + "...") + "}"


def _natural(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 62, value)
