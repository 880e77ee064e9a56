"""The launch success criteria the scenario stage measures: records synced and data loss.

The clean ``sync-accuracy`` scenario measures how many records reached the destination intact;
every scenario that judged sync accuracy contributes to the data-loss count (a run that lost or
duplicated records is one incident). Measured here, where the evidence is, so the gate only
compares numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from harness.results.model import CheckResult, Criterion
from harness.spec.model import IntegrationSpec

CLEAN_SCENARIO = "sync-accuracy"


def _sync_details(check: CheckResult) -> Iterator[Mapping[str, Any]]:
    for expectation in check.attributes.get("expectations", ()):
        if expectation.get("check") == "sync_accuracy" and "details" in expectation:
            yield expectation["details"]


def scenario_criteria(
    spec: IntegrationSpec, checks: Sequence[CheckResult]
) -> tuple[Criterion, ...]:
    """``records_synced`` and ``max_data_loss_incidents``, when the spec declares them."""
    declared = spec.launch.success_criteria if spec.launch else None
    if declared is None:
        return ()
    out: list[Criterion] = []
    if declared.records_synced is not None:
        out.append(_records_synced(declared.records_synced, checks))
    if declared.max_data_loss_incidents is not None:
        out.append(_data_loss(declared.max_data_loss_incidents, checks))
    return tuple(out)


def _records_synced(target: int, checks: Sequence[CheckResult]) -> Criterion:
    base = Criterion(
        id="launch.success_criteria.records_synced",
        name="Successful data sync",
        target=f">= {target} records, all intact",
        measured=None,
        passed=None,
        target_value=float(target),
        comparison=">=",
        unit="records",
        source="scenarios",
    )
    clean = next((c for c in checks if c.attributes.get("scenario") == CLEAN_SCENARIO), None)
    details = next(_sync_details(clean), None) if clean is not None else None
    if clean is None or details is None or not details.get("succeeded"):
        why = "the sync-accuracy scenario did not run" if clean is None else clean.summary
        return replace(base, passed=None if clean is None else False, evidence=why)
    written, expected = int(details["written"]), int(details["expected"])
    scaled = (
        "" if expected >= target else f" (scaled-down run: {expected} of the {target} declared)"
    )
    intact = written == expected and not details.get("duplicate_count")
    return replace(
        base,
        measured=f"{written} of {expected} records{scaled}",
        measured_value=float(written),
        # A scaled-down run that kept every record proves the mechanism, not the volume.
        passed=False if not intact else (True if expected >= target else None),
        evidence=f"scenario {CLEAN_SCENARIO}: {clean.summary}",
    )


def _data_loss(target: int, checks: Sequence[CheckResult]) -> Criterion:
    incidents: list[str] = []
    judged = 0
    for check in checks:
        for details in _sync_details(check):
            if not details.get("succeeded"):
                continue
            judged += 1
            lost, duplicated = (
                int(details.get("lost_count", 0)),
                int(details.get("duplicate_count", 0)),
            )
            if lost or duplicated:
                incidents.append(
                    f"{check.attributes.get('scenario', check.id)}: {lost} lost, {duplicated} duplicated"
                )
    base = Criterion(
        id="launch.success_criteria.max_data_loss_incidents",
        name="Data loss incidents",
        target=f"<= {target} incidents",
        measured=None,
        passed=None,
        target_value=float(target),
        comparison="<=",
        unit="incidents",
        source="scenarios",
    )
    if not judged:
        return replace(base, evidence="no scenario ended in success")
    return replace(
        base,
        measured=f"{len(incidents)} incident{_s(len(incidents))} in {judged} successful scenario run{_s(judged)}",
        measured_value=float(len(incidents)),
        passed=len(incidents) <= target,
        evidence="; ".join(incidents) or f"nothing lost or duplicated in {judged} successful runs",
    )


def _s(count: int) -> str:
    return "" if count == 1 else "s"
