"""Four clients built on well-known libraries, judged against the example spec's policy.

The expected verdicts come from each library's documented behaviour, not from running them:

* requests + urllib3 ``Retry``: retries resets, read errors, timeouts and 429/5xx (honouring
  ``Retry-After``), first retry immediate - but not a body that breaks off after the headers,
  which requests reads outside urllib3's retry loop (psf/requests#4568, #5948).
* tenacity: retries what the predicate names with the waits it is given; it knows nothing of
  ``Retry-After`` and calls the function again with the same arguments (the same dead token).
* httpx ``HTTPTransport(retries=N)``: retries establishing a connection only (httpcore retries
  ``ConnectError``/``ConnectTimeout``), so resets, 429 and 503 are never retried.
* plain requests: no retries (``max_retries=0``) and no default timeout.

Each client runs only the scenarios that show what it handles and what it does not, with a
small N; the four run at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from harness.results.model import StageResult

from ..conftest import EXAMPLE_SPEC
from .conftest import client, example, expectation, explain, run, spec_variant, verdicts

EXPECTED: dict[str, dict[str, str]] = {
    "requests_retry": {
        "connection-down": "passed",  # 4 read retries, then an alert and exit 1
        "connection-reset": "failed",  # the close after headers is not retried
        "rate-limit-429": "passed",  # Retry-After honoured by urllib3
        "malformed-json": "failed",  # a broken body is not a retryable error for urllib3
        "token-expiry": "passed",  # the hand-written 401 handling
        "auth-revoked": "passed",  # POST is not retried: one token request
    },
    "tenacity_retry": {
        "connection-reset": "passed",  # transport errors retried with full jitter
        "rate-limit-429": "failed",  # Retry-After ignored
        "malformed-json": "passed",  # ValueError is in the retry predicate
        "token-expiry": "failed",  # the 401 retried with the same token
        "auth-revoked": "failed",  # the token endpoint asked 5 times
        "service-unavailable-down": "passed",  # 5 attempts, then an alert
    },
    "httpx_transport": {
        "connection-reset": "failed",  # a reset after connecting is not a connect error
        "service-unavailable-window": "failed",  # statuses are never retried
        "token-expiry": "passed",
        "invalid-records": "passed",
        "rate-limit-sustained": "passed",  # its own 130 ms spacing
    },
    "plain_requests": {
        "sync-accuracy": "passed",
        "timeout-hang": "failed",  # no default timeout: stopped by the harness
        "connection-reset": "failed",
        "invalid-records": "failed",  # skipped with a warning, not quarantined
        "auth-revoked": "failed",  # a clean exit 1, but no alert
    },
}


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[StageResult]]]:
    out = tmp_path_factory.mktemp("clients")
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield {
            name: pool.submit(
                run,
                EXAMPLE_SPEC,
                out / name,
                only=tuple(expected),
                integration=client(name),
                records=40,
            )
            for name, expected in EXPECTED.items()
        }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_library_clients_are_judged_as_documented(
    judged: dict[str, Future[StageResult]], name: str
) -> None:
    result = judged[name].result()
    assert verdicts(result) == EXPECTED[name], explain(result)


def test_the_evidence_names_what_each_library_missed(
    judged: dict[str, Future[StageResult]],
) -> None:
    urllib3 = judged["requests_retry"].result()
    assert expectation(urllib3, "connection-reset", "retries")["observed"] == (
        "GET /pets?page=1&per_page=50: 2 attempts (1 retry), then gave up"
    )
    assert "retried after 2" in expectation(urllib3, "rate-limit-429", "retry_after")["observed"]

    tenacity = judged["tenacity_retry"].result()
    assert (
        "Retry-After said 2 s" in expectation(tenacity, "rate-limit-429", "retry_after")["observed"]
    )
    assert (
        "retried with the same expired token"
        in expectation(tenacity, "token-expiry", "reauth")["observed"]
    )
    assert expectation(tenacity, "auth-revoked", "auth_bounded")["observed"] == (
        "5 token requests (hammering)"
    )

    httpx = judged["httpx_transport"].result()
    assert expectation(httpx, "connection-reset", "retries")["observed"].endswith(
        "1 attempt, no retry, then gave up"
    )
    assert expectation(httpx, "rate-limit-sustained", "rate_compliance")["status"] == "passed"

    plain = judged["plain_requests"].result()
    timeout = expectation(plain, "timeout-hang", "timeout")
    assert (
        "held open for" in timeout["observed"]
        and "the harness stopped the integration" in timeout["observed"]
    )
    assert expectation(plain, "auth-revoked", "alert")["observed"] == "no alert"


def test_one_scenario_judges_two_policies_differently(tmp_path: Path) -> None:
    """connection-reset under "4 retries, exponential" and under "fail fast" (max_retries 0):
    the retrying careful example passes the first and fails the second; the httpx client,
    which never retries a reset, the other way round."""

    def fail_fast(data: dict[str, Any]) -> None:
        data["error_handling"]["connection_failures"] = {"max_retries": 0, "backoff": "none"}

    spec = spec_variant(tmp_path / "spec", fail_fast)
    careful = run(
        spec,
        tmp_path / "careful",
        only=("connection-reset",),
        integration=example("careful"),
        records=20,
    )
    httpx = run(
        spec,
        tmp_path / "httpx",
        only=("connection-reset",),
        integration=client("httpx_transport"),
        records=20,
    )
    assert verdicts(careful) == {"connection-reset": "failed"}, explain(careful)
    retries = expectation(careful, "connection-reset", "retries")
    assert retries["declared"] == "no retries"
    assert (
        retries["observed"] == "GET /pets?page=1&per_page=50: 2 retries, more than the declared 0"
    )
    outcome = expectation(careful, "connection-reset", "outcome")
    assert outcome["declared"] == (
        "no retries: 2 injected failures exceed the budget, then fail fast (exit non-zero, no crash)"
    )
    assert verdicts(httpx) == {"connection-reset": "passed"}, explain(httpx)
