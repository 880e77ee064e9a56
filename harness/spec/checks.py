"""Checks within one spec that a JSON Schema cannot express: orderings and consistency.

These need no OpenAPI document; the checks that compare the spec with its provider's document
live in :mod:`harness.openapi.references`, one layer up.
"""

from __future__ import annotations

from itertools import pairwise
from urllib.parse import urlsplit

from harness.problems import Problem
from harness.spec.model import IntegrationSpec
from harness.spec.secrets import env_name, looks_like_credential_name
from harness.yamlsource import SourceMap


def consistency_problems(spec: IntegrationSpec, source: SourceMap) -> list[Problem]:
    """Contradictions between sections of a schema-valid spec."""
    problems: list[Problem] = []
    add = problems.append

    perf = spec.performance
    rt = perf.response_time if perf else None
    if rt is not None:
        declared = [
            (n, v)
            for n, v in (("p50_ms", rt.p50_ms), ("p95_ms", rt.p95_ms), ("p99_ms", rt.p99_ms))
            if v
        ]
        for (low_name, low), (high_name, high) in pairwise(declared):
            if low > high:
                add(
                    source.problem(
                        ["performance", "response_time", high_name],
                        f"{high_name} ({high:g} ms) is below {low_name} ({low:g} ms); percentiles must not decrease",
                    )
                )

    criteria = spec.launch.success_criteria if spec.launch else None
    if criteria is not None and criteria.max_response_time_seconds is not None and rt is not None:
        ceiling_ms = criteria.max_response_time_seconds * 1000
        for name in ("p50_ms", "p95_ms", "p99_ms"):
            value = getattr(rt, name)
            if value is not None and value > ceiling_ms:
                add(
                    source.problem(
                        ["performance", "response_time", name],
                        f"{name} ({value:g} ms) exceeds launch.success_criteria.max_response_time_seconds "
                        f"({criteria.max_response_time_seconds:g} s): both cannot hold",
                    )
                )

    limits = spec.rate_limits
    if limits is not None and perf is not None and perf.throughput is not None:
        needed, allowed = perf.throughput.per_second, limits.per_second
        if needed > allowed * 1.000001:
            add(
                source.problem(
                    ["performance", "throughput"],
                    f"declared throughput ({needed * 60:g}/min) is above the provider's rate limit "
                    f"({allowed * 60:g}/min): the integration could not reach it without 429s",
                )
            )
    handling = spec.error_handling
    if handling is not None and handling.rate_limit is not None and limits is not None:
        client_rate = handling.rate_limit.client_requests_per_second
        if client_rate is not None and client_rate > limits.per_second * 1.000001:
            add(
                source.problem(
                    ["error_handling", "rate_limit", "client_requests_per_second"],
                    f"client-side rate ({client_rate:g}/s) is above the provider's limit "
                    f"({limits.per_second:g}/s)",
                )
            )
    if handling is not None and (cf := handling.connection_failures) is not None:
        if (
            cf.initial_delay_ms is not None
            and cf.max_delay_ms is not None
            and cf.max_delay_ms < cf.initial_delay_ms
        ):
            add(
                source.problem(
                    ["error_handling", "connection_failures", "max_delay_ms"],
                    f"max_delay_ms ({cf.max_delay_ms:g}) is below initial_delay_ms ({cf.initial_delay_ms:g})",
                )
            )
        if cf.backoff != "none" and cf.max_retries > 0 and cf.initial_delay_ms is None:
            add(
                source.problem(
                    ["error_handling", "connection_failures"],
                    f"backoff '{cf.backoff}' needs initial_delay_ms so the harness can judge the waits",
                )
            )

    live = spec.provider.live
    if live is not None:
        host = urlsplit(live.base_url).hostname or ""
        if host not in live.allowed_hosts:
            add(
                source.problem(
                    ["provider", "live", "base_url"],
                    f"host '{host}' is not in provider.live.allowed_hosts",
                )
            )

    if spec.data_mapping is not None:
        seen: dict[str, int] = {}
        for index, row in enumerate(spec.data_mapping.fields):
            if row.destination in seen:
                add(
                    source.problem(
                        ["data_mapping", "fields", index, "destination"],
                        f"destination field '{row.destination}' is already mapped by fields[{seen[row.destination]}]",
                    )
                )
            seen.setdefault(row.destination, index)

    iut = spec.integration_under_test
    if iut is not None:
        for key, value in (iut.env or {}).items():
            if looks_like_credential_name(key) and env_name(value) is None:
                add(
                    source.problem(
                        ["integration_under_test", "env", key],
                        "looks like a credential: give it as an environment reference such as "
                        "${" + key + "} (value not shown)",
                    )
                )
        names = iut.env_names
        chosen = [names.provider_url, names.destination_url, names.output_dir]
        if len(set(chosen)) != len(chosen):
            add(
                source.problem(
                    ["integration_under_test", "env_names"], "the variable names must differ"
                )
            )

    return problems
