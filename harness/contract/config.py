"""The explicit schemathesis and hypothesis configuration of a contract run.

Two sources of silent variation are shut out here. schemathesis, left alone, reads a
``schemathesis.toml`` found by walking up from the working directory; hypothesis switches to
its ``ci`` profile when it sees CI variables, and keeps an example database on disk. A contract
run must mean the same on a laptop and in CI, in any directory: the configuration is built from
the spec and the options alone (``SchemathesisConfig.from_dict``, never ``discover``), the
example database is off, the seed is explicit, and while the engine runs a hypothesis profile of
our own is loaded, so neither the ``ci`` profile nor whatever a test suite loaded applies.

schemathesis' engine classes are internal API; the 4.32 minor is pinned in pyproject.toml.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import hypothesis
from schemathesis.config import SchemathesisConfig

from harness.contract.safety import SAFE_METHODS

PROFILE = "integration-harness-contract"


@dataclass(frozen=True)
class RunConfig:
    """Everything the schemathesis configuration is built from."""

    base_url: str
    seed: int
    max_examples: int
    modes: tuple[str, ...]
    stateful: bool
    request_timeout: float
    excluded: Mapping[str | None, frozenset[str]]
    """Check names switched off: ``None`` -> for every operation, else by operationId."""
    safe_methods_only: bool = False


def build_config(run: RunConfig) -> SchemathesisConfig:
    """The run's schemathesis configuration, from data only (no file is ever discovered)."""
    mode = "all" if set(run.modes) >= {"positive", "negative"} else run.modes[0]
    data: dict[str, Any] = {
        "seed": run.seed,
        "suppress-health-check": ["all"],
        "cache": {"enabled": False},
        "base-url": run.base_url,
        "workers": 1,
        "request-timeout": run.request_timeout,
        "generation": {
            "mode": mode,
            "max-examples": run.max_examples,
            "database": "none",
            "deterministic": False,
        },
        "phases": {"stateful": {"enabled": run.stateful}},
        "auth": {"auto-signup": False},
        "checks": {name: {"enabled": False} for name in sorted(run.excluded.get(None, ()))},
        "operations": [
            {
                "include-operation-id": operation,
                "checks": {name: {"enabled": False} for name in sorted(names)},
            }
            for operation, names in sorted(
                ((k, v) for k, v in run.excluded.items() if k is not None), key=lambda kv: kv[0]
            )
            if names
        ],
    }
    if run.safe_methods_only:
        # Undeclared-method probes (``unsupported_method``) may only use safe methods too.
        data["phases"]["coverage"] = {
            "unexpected-methods": sorted(m for m in SAFE_METHODS if m != "HEAD")
        }
    return SchemathesisConfig.from_dict(data)


def hypothesis_settings(max_examples: int) -> hypothesis.settings:
    """The hypothesis settings of every contract run, stated in full rather than inherited."""
    return hypothesis.settings(
        parent=hypothesis.settings.get_profile("default"),
        max_examples=max_examples,
        derandomize=False,
        database=None,
        deadline=None,
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=list(hypothesis.HealthCheck),
        verbosity=hypothesis.Verbosity.quiet,
    )


@contextmanager
def hypothesis_profile(max_examples: int) -> Iterator[None]:
    """Load the run's own hypothesis profile for the block, then restore the previous one.

    schemathesis lets a loaded profile override its configuration; with ours loaded, the ``ci``
    profile (auto-loaded when ``CI`` is set) and any profile a test suite loaded stay out.
    """
    previous = hypothesis.settings.get_current_profile_name()
    hypothesis.settings.register_profile(PROFILE, hypothesis_settings(max_examples))
    hypothesis.settings.load_profile(PROFILE)
    try:
        yield
    finally:
        hypothesis.settings.load_profile(previous)


def excluded_checks(
    rules: Sequence[tuple[tuple[str, ...] | None, tuple[str, ...]]],
) -> dict[str | None, frozenset[str]]:
    """``(operations or None, check names)`` rules -> names switched off per operation."""
    out: dict[str | None, set[str]] = {}
    for operations, names in rules:
        for operation in operations if operations is not None else (None,):
            out.setdefault(operation, set()).update(names)
    return {k: frozenset(v) for k, v in out.items()}
