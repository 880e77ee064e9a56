"""Live safety and auth: under the provider's rate limit, no unsafe methods, tokens refreshed
when they expire mid-run, and an early, clear stop when every request is refused."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.contract.options import ContractOptions
from harness.contract.runner import run_contract
from harness.project import load_project
from harness.provider.api import simulate
from harness.spec.model import RateLimits
from tests.conftest import EXAMPLE_SPEC
from tests.contract.broken_server import broken_server
from tests.contract.helpers import BROKEN_SPEC, RATE_LIMITED_SPEC, by_id, quiet, requests_log

CLIENT_ID, CLIENT_SECRET = "rl-client-id-0001", "rl-client-secret-0001-xyz"


@pytest.fixture()
def rl_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The spec's ${VAR}s: the simulator accepts them, the live run sends them."""
    monkeypatch.setenv("CONTRACT_RL_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("CONTRACT_RL_CLIENT_SECRET", CLIENT_SECRET)


def test_live_run_stays_under_the_rate_limit(rl_credentials: None, tmp_path: Path) -> None:
    """The simulator enforces 600/min with a burst of 2 (a 429 for any excess); the run gets no
    429 and its measured rate stays under 600/min. Unthrottled, the engine sends ~100/s."""
    project = load_project(RATE_LIMITED_SPEC)
    limits = project.spec.spec.rate_limits
    assert isinstance(limits, RateLimits) and limits.requests_per_minute == 600
    with simulate(project, seed=1) as provider:
        result = run_contract(
            project,
            ContractOptions(
                target="live",
                base_url=provider.url + "/v1",
                operations=("getPet", "createPet"),
                static_checks=False,
            ),
            tmp_path,
            quiet,
        )
        records = provider.records()
    assert result.status == "passed", [c.summary for c in result.checks if c.status == "failed"]
    assert [r for r in records if r.status == 429] == []
    limited = sorted(r.started_monotonic for r in records if r.rate_limit is not None)
    assert len(limited) >= 15  # enough requests for the rate to mean something
    rate_per_minute = (len(limited) - 1) / (limited[-1] - limited[0]) * 60
    assert rate_per_minute <= 600
    everything = sorted(r.started_monotonic for r in records)
    assert (len(everything) - 1) / (everything[-1] - everything[0]) * 60 <= 600 * 1.2
    assert result.metrics["rate_limit_interval_seconds"] >= 0.1


def test_live_run_sends_no_unsafe_method(rl_credentials: None, tmp_path: Path) -> None:
    project = load_project(RATE_LIMITED_SPEC)
    with simulate(project, seed=1) as provider:
        result = run_contract(
            project,
            ContractOptions(
                target="live",
                base_url=provider.url + "/v1",
                operations=("createPet",),
                static_checks=False,
                max_examples=2,
            ),
            tmp_path,
            quiet,
        )
        records = provider.records()
    checks = by_id(result)
    skipped = checks["contract/createPet/not_a_server_error"]
    assert skipped.status == "skipped" and "allow_unsafe_methods is false" in skipped.summary
    unsafe = [
        (r.method, r.path) for r in records if r.method not in ("GET", "HEAD", "OPTIONS", "TRACE")
    ]
    # the token request is the auth flow, not a test case; nothing else unsafe went out
    assert {path for _, path in unsafe} <= {"/v1/oauth/token"}
    assert result.status == "error"  # nothing could be tested: exit 2, not a pass


@pytest.fixture()
def expiring() -> Iterator[tuple[list[str], threading.Event]]:
    """Expire every token of the simulator four times a second while the run goes on."""
    urls: list[str] = []
    stop = threading.Event()

    def expire() -> None:
        while not stop.wait(0.25):
            if urls:
                with contextlib.suppress(httpx.HTTPError):
                    httpx.post(urls[0] + "/__harness/auth", params={"do": "expire"}, timeout=2)

    thread = threading.Thread(target=expire, daemon=True)
    thread.start()
    yield urls, stop
    stop.set()
    thread.join(timeout=5)


def test_tokens_expiring_every_second_do_not_fail_the_run(
    expiring: tuple[list[str], threading.Event], tmp_path: Path
) -> None:
    urls, _ = expiring

    def progress(line: str) -> None:
        found = re.search(r"simulated provider at (http://127\.0\.0\.1:\d+)", line)
        if found:
            urls.append(found.group(1))

    result = run_contract(
        load_project(EXAMPLE_SPEC),
        ContractOptions(max_examples=10, token_ttl_seconds=1, static_checks=False),
        tmp_path,
        progress,
    )
    failed = [(c.id, c.summary) for c in result.checks if c.status in ("failed", "error")]
    assert result.status == "passed", failed
    assert result.metrics["duration_seconds"] >= 1.0  # longer than a token lives
    assert result.metrics["tokens_fetched"] >= 3
    refused = [r for r in requests_log(tmp_path) if r["authenticated"] and r["status"] == 401]
    assert refused  # tokens did expire under the run, and it recovered
    assert by_id(result)["contract/listPets/auth_accepted"].status == "passed"


def test_every_request_refused_stops_early_and_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BROKEN_API_KEY", "not-the-key-at-all")
    with broken_server("the-right-key-0000") as url:
        result = run_contract(
            load_project(BROKEN_SPEC),
            ContractOptions(target="live", base_url=url, static_checks=False),
            tmp_path,
            quiet,
        )
    assert result.status == "failed" and result.exit_code == 1
    assert "stopped early: 10 consecutive 401 answers" in result.summary
    refused = [c for c in result.checks if c.status == "failed"]
    assert refused and all(c.name == "auth_accepted" for c in refused)
    assert "every one of" in refused[0].findings[0].message
    assert refused[0].findings[0].code == "HC301"
    assert len(requests_log(tmp_path)) < 40  # stopped, not a full run of 401s


def test_refused_token_request_stops_before_testing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = load_project(RATE_LIMITED_SPEC)
    monkeypatch.setenv("CONTRACT_RL_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("CONTRACT_RL_CLIENT_SECRET", CLIENT_SECRET)
    with simulate(project, seed=1) as provider:
        monkeypatch.setenv("CONTRACT_RL_CLIENT_SECRET", "a-wrong-secret-123")
        result = run_contract(
            project,
            ContractOptions(target="live", base_url=provider.url + "/v1", static_checks=False),
            tmp_path,
            quiet,
        )
        records = provider.records()
    assert result.status == "failed"
    check = by_id(result)["contract/createToken/auth_accepted"]
    assert check.status == "failed"
    assert "token request answered 401 invalid_client" in check.summary
    assert "a-wrong-secret-123" not in repr(result)
    assert {r.path for r in records} == {"/v1/oauth/token"}  # nothing else was sent
