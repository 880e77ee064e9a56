"""readiness.html: one self-contained page a release manager reads, laid out like the template.

Self-contained means it opens from a mail attachment or a CI artifact with no network: CSS and
JavaScript are inline, the charting library (plotly.js, from the ``plotly`` package) is embedded
once, and a Content-Security-Policy of ``default-src 'none'`` makes any request the page might
still try fail loudly instead of leaking. The page is rendered from results.json data only
(Jinja2, autoescaped), plus the monitoring figures folded from the run's traffic logs while
streaming them (:mod:`harness.report.traffic_stats`), so ``harness report DIR`` renders the
same page later from the same folder.

:func:`write_outputs` writes the three outputs of a run (results.json, readiness.html,
junit.xml) and is what ``harness run`` calls last.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from harness.report.junit import criterion_status, write_junit
from harness.report.traffic_stats import TrafficSummary, summarize_traffic, traffic_logs
from harness.results.gate import check_topics
from harness.results.model import ChecklistItem, CheckResult, RunResult, Series, StageResult
from harness.results.serialize import write_json

MAX_CHART_POINTS = 2000
"""Longer series are thinned (evenly) for the charts; results.json keeps every point."""
MAX_FINDINGS_SHOWN = 20
"""Per check; the rest are in results.json and junit.xml."""

VERDICT_LABELS = {"ready": "READY", "not_ready": "NOT READY", "error": "ERROR"}
MANUAL_SECTIONS = (
    "Dependencies",
    "Documentation Requirements",
    "Stakeholder Approval",
    "Rollback Plan",
)


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    figure: Mapping[str, Any]


@cache
def _plotly_js() -> str:
    """plotly.js, minified, as shipped in the ``plotly`` package (read once per process)."""
    from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

    source: str = get_plotlyjs()
    # A literal "</script" would end the inline <script> element early.
    return source.replace("</script", "<\\/script")


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["seconds"] = _format_seconds
    env.filters["number"] = _format_number
    env.filters["criterion_status"] = criterion_status
    env.filters["attribute_view"] = attribute_view
    return env


def _format_seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def _format_number(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


# -- charts ---------------------------------------------------------------------------------


def _thin(points: Sequence[tuple[float, float]]) -> Sequence[tuple[float, float]]:
    if len(points) <= MAX_CHART_POINTS:
        return points
    step = len(points) / MAX_CHART_POINTS
    return [points[int(i * step)] for i in range(MAX_CHART_POINTS)]


def series_kind(series: Series) -> str:
    """Which chart a series belongs on (see docs/report.md, "Performance charts")."""
    name = series.name.lower()
    if any(word in name for word in ("distribution", "histogram", "hist")):
        return "distribution"
    if any(word in name for word in ("error", "fail")):
        return "errors"
    if re.search(r"(^|[^a-z])p\d{2}", name) or "percentile" in name or "median" in name:
        return "percentiles"
    if any(word in name for word in ("rps", "throughput", "requests", "rate")):
        return "throughput"
    return "other"


_KIND_TITLES = {
    "distribution": "Latency distribution",
    "percentiles": "Response-time percentiles over time",
    "throughput": "Throughput over time",
    "errors": "Errors over time",
    "other": "",
}
_KIND_ORDER = ("distribution", "percentiles", "throughput", "errors", "other")


def _layout(title: str, x_title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 15}},
        "height": 330,
        "margin": {"l": 60, "r": 20, "t": 48, "b": 48},
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": -0.25},
        **extra,
    }


def series_charts(series: Sequence[Series], prefix: str) -> list[Chart]:
    """Plotly figures for a stage's series, one chart per (kind, unit)."""
    groups: dict[tuple[str, str, str], list[Series]] = {}
    for item in series:
        if not item.points:
            continue
        kind = series_kind(item)
        key = (kind, item.x_unit, item.y_unit if kind != "other" else item.name)
        groups.setdefault(key, []).append(item)
    charts: list[Chart] = []
    for (kind, x_unit, _y_key), members in sorted(
        groups.items(), key=lambda kv: (_KIND_ORDER.index(kv[0][0]), kv[0][1], kv[0][2])
    ):
        y_unit = members[0].y_unit
        traces = []
        for member in members:
            points = _thin(member.points)
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            if kind == "distribution":
                traces.append({"type": "bar", "name": member.name, "x": xs, "y": ys})
            else:
                traces.append(
                    {"type": "scatter", "mode": "lines", "name": member.name, "x": xs, "y": ys}
                )
        title = _KIND_TITLES[kind] or members[0].name
        if kind != "other" and y_unit:
            title = f"{title} ({y_unit})"
        charts.append(
            Chart(
                f"{prefix}-{len(charts)}",
                title,
                {"data": traces, "layout": _layout(title, x_unit, y_unit)},
            )
        )
    return charts


def traffic_charts(summary: TrafficSummary) -> list[Chart]:
    """Monitoring charts from the traffic summary: distribution, per-second volume, error types."""
    charts: list[Chart] = []
    if summary.latency_histogram:
        charts.append(
            Chart(
                "monitoring-latency",
                "Response times (all logged exchanges)",
                {
                    "data": [
                        {
                            "type": "bar",
                            "name": "responses",
                            "x": [b[0] for b in summary.latency_histogram],
                            "y": [b[1] for b in summary.latency_histogram],
                        }
                    ],
                    "layout": _layout(
                        "Response times (all logged exchanges)",
                        "latency (ms, log scale)",
                        "responses",
                        xaxis={"type": "log", "title": {"text": "latency (ms, log scale)"}},
                    ),
                },
            )
        )
    if summary.per_second:
        seconds = _thin([(s[0], s[1]) for s in summary.per_second])
        failures = _thin([(s[0], s[2]) for s in summary.per_second])
        charts.append(
            Chart(
                "monitoring-volume",
                "Requests and failures per second",
                {
                    "data": [
                        {
                            "type": "scatter",
                            "mode": "lines",
                            "name": "requests/s",
                            "x": [p[0] for p in seconds],
                            "y": [p[1] for p in seconds],
                        },
                        {
                            "type": "scatter",
                            "mode": "lines",
                            "name": "failures/s",
                            "x": [p[0] for p in failures],
                            "y": [p[1] for p in failures],
                        },
                    ],
                    "layout": _layout(
                        "Requests and failures per second", "seconds since start", "per second"
                    ),
                },
            )
        )
    if summary.error_types:
        names = list(summary.error_types)[:15]
        charts.append(
            Chart(
                "monitoring-errors",
                "Error frequencies by type",
                {
                    "data": [
                        {
                            "type": "bar",
                            "orientation": "h",
                            "name": "count",
                            "y": names,
                            "x": [summary.error_types[n] for n in names],
                        }
                    ],
                    "layout": _layout(
                        "Error frequencies by type",
                        "count",
                        "",
                        yaxis={"automargin": True, "autorange": "reversed"},
                    ),
                },
            )
        )
    return charts


# -- the view -------------------------------------------------------------------------------


NOT_OPERATIONS = frozenset(
    {"relies", "drift", "diff", "mapping", "data_mapping", "cassettes", "baseline", "auth", "stage"}
)
"""Second parts of ``contract/<x>/<y>`` ids that name a kind of check, not an operation."""


@dataclass(frozen=True)
class ContractMatrix:
    operations: tuple[str, ...]
    checks: tuple[str, ...]
    cells: Mapping[tuple[str, str], CheckResult]
    others: tuple[CheckResult, ...]
    """Checks that are not one operation x one check: drift, diff, what-we-rely-on, mapping."""


def contract_matrix(stage: StageResult | None) -> ContractMatrix:
    """Operations x checks from ``contract/<operation>/<check>`` (or the attributes)."""
    cells: dict[tuple[str, str], CheckResult] = {}
    operations: list[str] = []
    checks: list[str] = []
    others: list[CheckResult] = []
    for check in stage.checks if stage else ():
        parts = check.id.split("/")
        kind_of_check = len(parts) > 1 and parts[1] in NOT_OPERATIONS
        from_id = len(parts) == 3 and parts[0] == "contract" and not kind_of_check
        operation = (
            None
            if kind_of_check
            else check.attributes.get("operation", parts[1] if from_id else None)
        )
        name = check.attributes.get("check")
        if not isinstance(name, str) and from_id:
            name = parts[2]
        if not isinstance(operation, str) or not isinstance(name, str):
            others.append(check)
            continue
        if (operation, name) in cells:
            others.append(check)
            continue
        cells[(operation, name)] = check
        if operation not in operations:
            operations.append(operation)
        if name not in checks:
            checks.append(name)
    return ContractMatrix(tuple(operations), tuple(checks), cells, tuple(others))


def _checks_by_id(run: RunResult) -> dict[str, CheckResult]:
    return {check.id: check for stage in run.stages for check in stage.checks}


def _section_items(run: RunResult, section: str) -> list[ChecklistItem]:
    return [item for item in run.checklist if item.section == section]


def stage_traffic_paths(stage: StageResult) -> dict[str, str]:
    """A stage's artifacts plus the per-check traffic logs it names in check attributes
    (the scenarios stage keeps one provider/destination log per scenario)."""
    paths = dict(stage.artifacts)
    for check in stage.checks:
        for key, value in check.attributes.items():
            if isinstance(value, str) and "traffic" in key.lower():
                paths.setdefault(f"{check.id}:{key}", value)
    return paths


def summarize_run_traffic(run: RunResult, out_dir: Path | None) -> dict[str, TrafficSummary]:
    """One monitoring summary per stage that left traffic logs in ``out_dir``, in stage order.

    Kept apart because they answer different questions: the load stage's traffic is the
    expected volume, the scenarios' is fault-injected on purpose (its error rate is by design).
    """
    if out_dir is None:
        return {}
    root = out_dir.resolve()
    summaries: dict[str, TrafficSummary] = {}
    for stage in run.stages:
        logs = traffic_logs([stage_traffic_paths(stage)], out_dir)
        if logs:
            summaries[stage.stage] = summarize_traffic(logs, root=root)
    return summaries


def primary_traffic(summaries: Mapping[str, TrafficSummary]) -> tuple[str, TrafficSummary] | None:
    """The summary the monitoring section charts: the load stage's, else the largest."""
    if not summaries:
        return None
    if "load" in summaries and summaries["load"].records:
        return "load", summaries["load"]
    stage = max(summaries, key=lambda name: summaries[name].records)
    return stage, summaries[stage]


def _merged_metrics(run: RunResult) -> list[tuple[str, str, float]]:
    return [
        (stage.stage, name, value)
        for stage in run.stages
        for name, value in sorted(stage.metrics.items())
    ]


def render_html(run: RunResult, out_dir: Path | None = None) -> str:
    """The page for ``run``; ``out_dir`` is where its artifacts (traffic logs) live."""
    stages = {stage.stage: stage for stage in run.stages}
    checks = _checks_by_id(run)
    traffic_by_stage = summarize_run_traffic(run, out_dir)
    primary = primary_traffic(traffic_by_stage)
    traffic = primary[1] if primary else None
    charts: list[Chart] = []
    load = stages.get("load")
    performance_charts = series_charts(load.series, "perf") if load else []
    for stage in run.stages:
        if stage.stage != "load" and stage.series:
            performance_charts += series_charts(stage.series, f"{stage.stage}-series")
    monitoring_charts = traffic_charts(traffic) if traffic else []
    charts = performance_charts + monitoring_charts
    failing = [
        c
        for stage in run.stages
        for c in stage.checks
        if c.status in ("failed", "error") and stage.stage == "validate"
    ]
    data_sync = [
        c
        for c in run.criteria
        if c.id.endswith(("records_synced", "data_loss_incidents")) or "sync" in c.id
    ]
    context = {
        "run": run,
        "verdict_label": VERDICT_LABELS.get(run.verdict, run.verdict.upper()),
        "stages": stages,
        "not_run": [s.stage for s in run.stages if s.status == "not_run"],
        "checks": checks,
        "error_handling": _section_items(run, "Error Handling"),
        "testing": _section_items(run, "Testing Strategy"),
        "security": _section_items(run, "Security & Compliance"),
        "monitoring_metrics": [
            i for i in _section_items(run, "Monitoring & Alerting") if ".metrics." in i.id
        ],
        "monitoring_alerts": [
            i for i in _section_items(run, "Monitoring & Alerting") if ".metrics." not in i.id
        ],
        "other_scenarios": _other_scenarios(run, stages.get("scenarios")),
        "manual_sections": [
            (section, _section_items(run, section))
            for section in MANUAL_SECTIONS
            if _section_items(run, section)
        ],
        "matrix": contract_matrix(stages.get("contract")),
        "performance_charts": performance_charts,
        "monitoring_charts": monitoring_charts,
        "figures": [
            {"id": c.id, "data": c.figure["data"], "layout": c.figure["layout"]} for c in charts
        ],
        "traffic": traffic,
        "traffic_stage": primary[0] if primary else "",
        "traffic_by_stage": traffic_by_stage,
        "metrics": _merged_metrics(run),
        "data_sync": data_sync,
        "data_sync_checks": [
            c
            for c in (stages["scenarios"].checks if "scenarios" in stages else ())
            if "data_sync" in check_topics(c)
        ],
        "failing_other": failing,
        "max_findings": MAX_FINDINGS_SHOWN,
        "plotly_js": _plotly_js() if charts else "",
        "checklist_counts": _checklist_counts(run.checklist),
    }
    return _environment().get_template("readiness.html").render(context)


def _other_scenarios(run: RunResult, stage: StageResult | None) -> list[CheckResult]:
    """Scenario checks no error-handling item claimed (data sync, alerts...)."""
    if stage is None:
        return []
    claimed = {cid for i in run.checklist if i.section == "Error Handling" for cid in i.check_ids}
    return [c for c in stage.checks if c.id not in claimed]


_LINK_SUFFIXES = (".txt", ".jsonl", ".json", ".html", ".log", ".csv", ".yaml")


def _is_path(key: str, value: str) -> bool:
    """An attribute that names a file or folder of the run (shown as a relative link)."""
    return ("/" in value and value.endswith(_LINK_SUFFIXES)) or key == "output_dir"


def attribute_view(check: CheckResult) -> dict[str, Any]:
    """A check's attributes arranged for reading: its description, the expectations judged
    (declared vs observed), links to its files, then the other values in one short line."""
    description = ""
    expectations: list[Mapping[str, Any]] = []
    links: list[tuple[str, str]] = []
    rest: list[tuple[str, str]] = []
    for key, value in sorted(check.attributes.items()):
        if key == "description" and isinstance(value, str):
            description = value
        elif key == "expectations" and isinstance(value, list | tuple):
            expectations = [v for v in value if isinstance(v, Mapping)]
        elif isinstance(value, str) and _is_path(key, value):
            links.append((key, value))
        elif isinstance(value, str | int | float | bool) or value is None:
            text = str(value)
            rest.append((key, text if len(text) <= 120 else text[:117] + "..."))
        elif isinstance(value, list | tuple) and all(
            isinstance(v, str | int | float) for v in value
        ):
            text = ", ".join(str(v) for v in value)
            rest.append((key, text if len(text) <= 120 else text[:117] + "..."))
    return {"description": description, "expectations": expectations, "links": links, "rest": rest}


def _checklist_counts(items: Sequence[ChecklistItem]) -> dict[str, int]:
    counts = {"automated-pass": 0, "automated-fail": 0, "manual": 0, "not-run": 0}
    for item in items:
        counts[item.status] = counts.get(item.status, 0) + 1
    return counts


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a report is for sharing
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_html(run: RunResult, out_dir: Path, name: str = "readiness.html") -> Path:
    """Render and write the page (atomically) into ``out_dir``."""
    path = out_dir / name
    _write_text(path, render_html(run, out_dir))
    return path


def write_outputs(run: RunResult, out_dir: Path) -> None:
    """Write results.json, readiness.html and junit.xml for ``run`` into ``out_dir``.

    results.json first: if rendering fails, the machine-readable result is already there.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "results.json", run)
    write_html(run, out_dir)
    write_junit(
        out_dir / "junit.xml",
        run.stages,
        suite_name=run.integration,
        criteria=run.criteria,
        checklist=run.checklist,
    )
