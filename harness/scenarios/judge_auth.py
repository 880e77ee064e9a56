"""Authentication: re-authentication after expiry, bounded attempts, token reuse.

The traffic log never holds a token (it is redacted), so "the same dead token" is proven by
order: an API call after a 401 with no token request in between cannot carry a new token.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from harness.provider.traffic import TrafficRecord
from harness.scenarios.judgement import (
    DEFAULT_AUTH_ATTEMPTS,
    Judgement,
    at,
    failed,
    passed,
    skipped,
    target_operation,
)
from harness.scenarios.observe import (
    Observation,
    describe_request,
)
from harness.scenarios.policy import (
    ms,
)


def _grant(record: TrafficRecord) -> str:
    body = record.request_body or ""
    match = re.search(r"grant_type=([A-Za-z_]+)", body) or re.search(
        r'"grant_type"\s*:\s*"([A-Za-z_]+)"', body
    )
    return match.group(1) if match else "unknown grant"


def judge_reauth(observation: Observation, params: Mapping[str, Any]) -> Judgement:
    """Token expiry: one refresh, then the failed request again with the new token."""
    handling = observation.spec.error_handling
    policy = handling.authentication_failures if handling else None
    if policy is None:
        return skipped("reauth", "no error_handling.authentication_failures declared")
    how = {
        "new_token": "a new token",
        "refresh_token": "a refresh-token grant",
        "none": "no re-authentication",
    }[policy.reauth]
    if policy.reauth == "none":
        declared = "no re-authentication: a 401 ends the run as a clear failure, never retried with the same token"
    else:
        declared = f"after a 401 for an expired token: exactly one token refresh ({how}), then the failed request again, succeeding"
    ordered = sorted(observation.provider, key=lambda r: r.started_monotonic)
    operation = target_operation(observation, params)
    problems: list[str] = []
    seen: list[str] = []
    marks: dict[int, str] = {}
    rejected = [
        (i, r)
        for i, r in enumerate(ordered)
        if r.status == 401
        and not observation.operations.is_token(r)
        and (operation is None or r.operation_id == operation)
    ]
    if not rejected:
        return Judgement(
            "reauth",
            "error",
            declared,
            "no request was answered 401: the token expiry was never met",
        )
    for index, record in rejected:
        after = ordered[index + 1 :]
        next_api = next((r for r in after if not observation.operations.is_token(r)), None)
        between = [
            r
            for r in after
            if observation.operations.is_token(r)
            and (next_api is None or r.started_monotonic < next_api.started_monotonic)
        ]
        grants = [r for r in between if r.status == 200]
        what = describe_request(record)
        marks[record.seq] = "401: token rejected"
        if policy.reauth == "none":
            if next_api is not None and not grants:
                problems.append(
                    f"{what}: retried with the same rejected token at {at(observation, next_api.started_monotonic)}"
                )
            continue
        if next_api is None:
            problems.append(
                f"{what} got 401 at {at(observation, record.started_monotonic)} and was never retried ({len(grants)} token request{'s' if len(grants) != 1 else ''} after it)"
            )
            continue
        if not between:
            problems.append(
                f"{what}: retried with the same expired token (no token request between the 401 at"
                f" {at(observation, record.started_monotonic)} and the retry at {at(observation, next_api.started_monotonic)})"
            )
            marks[next_api.seq] = "retried with the same expired token"
            continue
        if len(grants) != 1:
            problems.append(
                f"{what}: {len(grants)} tokens issued for one expiry (expected exactly one)"
            )
        for grant in grants:
            marks[grant.seq] = f"token refresh ({_grant(grant)})"
            if policy.reauth == "refresh_token" and _grant(grant) != "refresh_token":
                problems.append(f"token renewed with {_grant(grant)}, declared: refresh_token")
        if (next_api.method, next_api.path, next_api.query) != (
            record.method,
            record.path,
            record.query,
        ):
            problems.append(
                f"{what} was not retried: the next call was {describe_request(next_api)}"
            )
        elif next_api.status is None or not 200 <= next_api.status < 300:
            problems.append(f"the retry of {what} got {next_api.status}")
        else:
            marks[next_api.seq] = "retried with the new token"
            seen.append(f"{what}: 401, {len(grants)} token refresh, retry {next_api.status}")
    if problems:
        return failed("reauth", declared, "; ".join(problems[:3]), marks=marks)
    return passed("reauth", declared, "; ".join(seen[:3]) or "no retry after the 401", marks=marks)


def judge_auth_bounded(observation: Observation, params: Mapping[str, Any]) -> Judgement:
    """Rejected credentials: the token endpoint is asked a bounded number of times."""
    handling = observation.spec.error_handling
    policy = handling.authentication_failures if handling else None
    limit = policy.max_attempts if policy is not None and policy.max_attempts is not None else None
    declared_limit = limit if limit is not None else DEFAULT_AUTH_ATTEMPTS
    declared = (
        f"at most {declared_limit} authentication attempt{'s' if declared_limit != 1 else ''}"
        + ("" if limit is not None else " (no max_attempts declared; the harness allows 3)")
        + ", no token-endpoint hammering"
    )
    tokens = observation.token_calls()
    rejected_api = [r for r in observation.api_calls() if r.status == 401]
    marks = {r.seq: "credentials rejected" for r in tokens if r.status in (400, 401)}
    observed = f"{len(tokens)} token request{'s' if len(tokens) != 1 else ''}"
    if rejected_api:
        observed += (
            f", {len(rejected_api)} API call{'s' if len(rejected_api) != 1 else ''} answered 401"
        )
    if len(tokens) > declared_limit or len(rejected_api) > declared_limit:
        return failed("auth_bounded", declared, observed + " (hammering)", marks=marks)
    if not tokens and not rejected_api:
        return Judgement("auth_bounded", "error", declared, "no authentication attempt was made")
    return passed("auth_bounded", declared, observed, marks=marks)


def judge_token_reuse(observation: Observation, params: Mapping[str, Any]) -> Judgement:
    """Short-lived tokens are reused while valid, not fetched anew for every request."""
    ttl = observation.token_ttl_seconds
    auth = observation.spec.authentication
    if auth is None or auth.kind != "oauth2_client_credentials":
        return skipped("token_reuse", "the provider issues no tokens")
    if ttl is None:
        ttl = auth.token_ttl_seconds or 3600.0
    grants = [r for r in observation.token_calls() if r.status == 200]
    api = observation.api_calls()
    declared = (
        f"tokens (lifetime {ms(ttl)}) reused until they expire, not fetched for every request"
    )
    if not api:
        return Judgement("token_reuse", "error", declared, "no API request was made")
    first = min(r.started_monotonic for r in [*grants, *api])
    last = max(r.started_monotonic for r in api)
    span = last - first
    rejected = sum(1 for r in api if r.status == 401)
    allowed = math.ceil(span / (ttl / 2)) + 1 + rejected
    observed = f"{len(grants)} token{'s' if len(grants) != 1 else ''} for {len(api)} API requests over {span:.1f} s"
    if len(api) >= 3 and len(grants) >= len(api):
        return failed("token_reuse", declared, observed + ": a new token for every request")
    if len(grants) > allowed:
        return failed(
            "token_reuse",
            declared,
            f"{observed}; at most {allowed} are needed (renewing at half-life)",
        )
    return passed("token_reuse", declared, observed)
