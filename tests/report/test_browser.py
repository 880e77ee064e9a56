"""readiness.html in a real headless Chromium: no console errors, no network, charts drawn.

Debian's ``chromium`` package (installed by .ci/run), driven by Playwright for Python through
``executable_path`` (no ``playwright install``: no browser download). Skipped with a reason
only on a machine without /usr/bin/chromium that is not CI; in CI a missing browser fails.
Screenshots are kept in ``test-artifacts/report/`` (gitignored) and in pytest's tmp dir.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.report.html import write_outputs

from ..conftest import REPO
from .conftest import all_stages, make_run
from .synthetic import contract_stage

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "report"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser test (.ci/run installs chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install '.[test]')")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield instance
        finally:
            instance.close()


def _open(browser: Any, page_path: Path, shot: Path) -> dict[str, Any]:
    """Open the page offline, record every request and console message, take a screenshot."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    page = context.new_page()
    requests: list[str] = []
    problems: list[str] = []
    url = page_path.resolve().as_uri()

    def route(route: Any) -> None:
        requests.append(route.request.url)
        if route.request.url == url:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", route)
    page.on("request", lambda request: requests.append(request.url))
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)  # let plotly's deferred layout run
    charts = page.evaluate(
        """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
            id: el.id,
            traces: (el.data || []).length,
            points: (el.data || []).reduce((n, t) => n + ((t.x || []).length), 0),
            drawn: el.querySelectorAll('.main-svg .trace, .main-svg .bars .point').length,
        }))"""
    )
    info = {
        "requests": sorted(set(requests)),
        "url": url,
        "problems": problems,
        "charts": charts,
        "charts_attr": page.get_attribute("body", "data-charts"),
        "verdict": page.inner_text("#verdict-label"),
        "banner": page.get_attribute("#verdict", "data-verdict"),
        "reasons": page.locator("#reasons li").all_inner_texts()
        if page.locator("#reasons").count()
        else [],
        "stages": {
            stage: page.get_attribute(f"#stage-{stage}", "data-status")
            for stage in ("validate", "contract", "scenarios", "load")
        },
        "not_run_notes": page.locator(".notrun").count(),
    }
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / shot.name)
    context.close()
    return info


def test_full_run_renders_offline_with_charts(browser: Any, project: Any, run_dir: Any) -> None:
    out = run_dir(records=3000)
    run = make_run(project, all_stages(failing=True), out)
    write_outputs(run, out)
    info = _open(browser, out / "readiness.html", out.parent / "readiness-not-ready.png")

    assert info["problems"] == []
    assert info["requests"] == [info["url"]]  # the document itself, nothing else
    assert info["verdict"] == "NOT READY" and info["banner"] == "not_ready"
    assert info["reasons"][:2] == list(run.reasons[:2])
    charts = {c["id"]: c for c in info["charts"]}
    # performance: distribution, percentiles, throughput, error rate (from the load series);
    # monitoring: latency, volume, error types (from the traffic logs)
    assert {"perf-0", "perf-1", "perf-2", "perf-3"} <= set(charts)
    assert {"monitoring-latency", "monitoring-volume", "monitoring-errors"} <= set(charts)
    assert info["charts_attr"] == str(len(charts))
    for chart in charts.values():
        assert chart["traces"] >= 1 and chart["points"] > 0 and chart["drawn"] >= 1, chart
    assert charts["perf-1"]["traces"] == 2  # p50 and p95 on one chart
    assert (out.parent / "readiness-not-ready.png").stat().st_size > 10_000


def test_stages_not_run_render_as_not_run(browser: Any, project: Any, tmp_path: Path) -> None:
    run = make_run(project, [contract_stage()], tmp_path)
    write_outputs(run, tmp_path)
    info = _open(browser, tmp_path / "readiness.html", tmp_path / "readiness-ready.png")
    assert info["problems"] == []
    assert info["requests"] == [info["url"]]
    assert info["verdict"] == "READY" and info["banner"] == "ready"
    assert info["stages"] == {
        "validate": "passed",
        "contract": "passed",
        "scenarios": "not_run",
        "load": "not_run",
    }
    assert info["not_run_notes"] == 2  # error handling and performance say "not run"
    assert info["charts"] == []  # no series, no traffic: no chart, and no plotly.js either
