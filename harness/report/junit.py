"""JUnit XML for any CI system: one ``<testsuite>`` per stage, one ``<testcase>`` per check.

Built from the results model only (summaries, findings, criteria), never from raw traffic, so
it is redacted by construction: whatever a stage put into a :class:`Finding` was already
scrubbed. Written with :mod:`xml.etree` (no extra dependency); counts per suite are computed
from the same statuses results.json carries, so CI totals and the report always agree.
"""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from harness.results.model import ChecklistItem, CheckResult, Criterion, Finding, StageResult

# XML 1.0 forbids most C0 control characters; a response excerpt can carry them.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def format_finding(finding: Finding) -> str:
    """A finding as plain text, verdict first, boilerplate last (JUnit bodies, text output)."""
    lines = [f"[{finding.code}] {finding.message}" if finding.code else finding.message]
    if finding.operation:
        lines.append(f"  operation: {finding.operation}")
    if finding.request:
        lines.append(f"  request: {finding.request}")
    if finding.response_excerpt:
        lines.append(f"  response: {finding.response_excerpt}")
    if finding.json_path:
        lines.append(f"  at: {finding.json_path}")
    if finding.accepted is not None:
        accepted = finding.accepted
        lines.append(f"  accepted until {accepted.expires} by {accepted.owner}: {accepted.reason}")
    if finding.reproduce:
        lines.append(f"  reproduce: {finding.reproduce}")
    elif finding.seed is not None:
        lines.append(f"  seed: {finding.seed}")
    return "\n".join(lines)


def _check_body(check: CheckResult) -> str:
    parts = [check.summary]
    parts.extend(format_finding(f) for f in check.findings)
    if check.timeline:
        parts.append("timeline:")
        for entry in check.timeline:
            status = "no response" if entry.status is None else str(entry.status)
            extra = f" fault={entry.fault}" if entry.fault else ""
            note = f"  # {entry.note}" if entry.note else ""
            parts.append(
                f"  +{entry.at_seconds:.3f}s {entry.side} {entry.method} {entry.path}"
                f" -> {status}{extra}{note}"
            )
    return "\n".join(parts)


def _testcase(parent: ET.Element, classname: str, name: str, seconds: float) -> ET.Element:
    return ET.SubElement(
        parent,
        "testcase",
        {"classname": _clean(classname), "name": _clean(name), "time": f"{max(seconds, 0):.3f}"},
    )


def _add_check(suite: ET.Element, stage: str, check: CheckResult) -> str:
    case = _testcase(suite, f"{stage}", check.id, check.duration_seconds)
    body = _clean(_check_body(check))
    message = _clean(check.summary)
    if check.status == "failed":
        ET.SubElement(case, "failure", {"message": message, "type": "failed"}).text = body
    elif check.status == "error":
        ET.SubElement(case, "error", {"message": message, "type": "error"}).text = body
    elif check.status in ("skipped", "not_run"):
        ET.SubElement(case, "skipped", {"message": _clean(f"{check.status}: {check.summary}")})
    elif check.findings:
        # Passed with accepted findings: keep them visible in the CI log.
        ET.SubElement(case, "system-out").text = body
    return check.status


def criterion_status(criterion: Criterion) -> str:
    """``passed`` / ``failed`` / ``not_run`` (unmeasured) for one criterion."""
    if criterion.passed is None:
        return "not_run"
    return "passed" if criterion.passed else "failed"


def _add_criterion(suite: ET.Element, criterion: Criterion) -> str:
    case = _testcase(suite, "criteria", criterion.id, 0.0)
    status = criterion_status(criterion)
    measured = criterion.measured if criterion.measured is not None else "not measured"
    text = f"{criterion.name}: target {criterion.target}, measured {measured}"
    if criterion.evidence:
        text += f"\n{criterion.evidence}"
    if status == "failed":
        ET.SubElement(case, "failure", {"message": _clean(text.splitlines()[0])}).text = _clean(
            text
        )
    elif status == "not_run":
        ET.SubElement(case, "skipped", {"message": _clean(text.splitlines()[0])})
    return status


def _add_item(suite: ET.Element, item: ChecklistItem) -> str:
    case = _testcase(suite, "checklist", item.id, 0.0)
    text = _clean(f"{item.label}: {item.evidence}")
    if item.status == "automated-fail":
        ET.SubElement(case, "failure", {"message": text, "type": "failed"}).text = text
        return "failed"
    return "passed"


def _finish_suite(suite: ET.Element, statuses: list[str], seconds: float) -> tuple[int, ...]:
    counts = (
        len(statuses),
        statuses.count("failed"),
        statuses.count("error"),
        statuses.count("skipped") + statuses.count("not_run"),
    )
    for key, value in zip(("tests", "failures", "errors", "skipped"), counts, strict=True):
        suite.set(key, str(value))
    suite.set("time", f"{max(seconds, 0):.3f}")
    return counts


def build_junit(
    stages: Sequence[StageResult],
    *,
    suite_name: str,
    criteria: Sequence[Criterion] = (),
    checklist: Sequence[ChecklistItem] = (),
) -> ET.Element:
    """The ``<testsuites>`` element (see :func:`write_junit`)."""
    root = ET.Element("testsuites", {"name": _clean(suite_name)})
    totals = [0, 0, 0, 0]
    total_time = 0.0
    for stage in stages:
        suite = ET.SubElement(root, "testsuite", {"name": _clean(f"{suite_name}.{stage.stage}")})
        if stage.started_at:
            suite.set("timestamp", stage.started_at)
        statuses = [_add_check(suite, stage.stage, check) for check in stage.checks]
        if not stage.checks and stage.status in ("error", "not_run", "skipped"):
            # A stage that judged nothing still shows up in CI, as what it was.
            case = _testcase(suite, stage.stage, f"{stage.stage}/stage", stage.duration_seconds)
            reason = _clean(stage.error or stage.summary or stage.status)
            if stage.status == "error":
                ET.SubElement(case, "error", {"message": reason, "type": "error"}).text = reason
            else:
                ET.SubElement(case, "skipped", {"message": f"{stage.status}: {reason}"})
            statuses.append(stage.status)
        if stage.incomplete:
            ET.SubElement(suite, "system-err").text = "incomplete: this stage was cut short"
        counts = _finish_suite(suite, statuses, stage.duration_seconds)
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        total_time += stage.duration_seconds
    if criteria:
        suite = ET.SubElement(root, "testsuite", {"name": _clean(f"{suite_name}.criteria")})
        statuses = [_add_criterion(suite, criterion) for criterion in criteria]
        counts = _finish_suite(suite, statuses, 0.0)
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    # Automated checklist items no check stands behind (the security scan, TLS, credentials).
    own = [i for i in checklist if not i.check_ids and i.status.startswith("automated-")]
    if own:
        suite = ET.SubElement(root, "testsuite", {"name": _clean(f"{suite_name}.checklist")})
        statuses = [_add_item(suite, item) for item in own]
        counts = _finish_suite(suite, statuses, 0.0)
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    for key, value in zip(("tests", "failures", "errors", "skipped"), totals, strict=True):
        root.set(key, str(value))
    root.set("time", f"{total_time:.3f}")
    return root


def write_junit(
    path: Path,
    stages: Sequence[StageResult],
    *,
    suite_name: str,
    criteria: Sequence[Criterion] = (),
    checklist: Sequence[ChecklistItem] = (),
) -> None:
    """Write JUnit XML for ``stages`` (and ``criteria`` as one more suite), atomically.

    Status mapping: ``failed`` -> ``<failure>`` (summary + every finding), ``error`` ->
    ``<error>``, ``skipped`` / ``not_run`` -> ``<skipped>``; a criterion that was not measured
    is skipped. A stage with no checks that errored or did not run gets one test case for
    itself, so "nothing was tested" is never a silent green suite. ``checklist``: automated
    items that no check stands behind (the security scan...) become one more suite.
    """
    root = build_junit(stages, suite_name=suite_name, criteria=criteria, checklist=checklist)
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data + b"\n")
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a report is for sharing
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
