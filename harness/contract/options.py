"""What one contract run is asked to do: the stage's options, as the face and the plugin pass them.

Defaults live here and only here, so ``harness contract``, ``harness run`` and the pytest plugin
agree on what "a contract run" means when nobody says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Target = Literal["simulated", "live", "cassettes"]
TARGETS: tuple[Target, ...] = ("simulated", "live", "cassettes")

DEFAULT_MAX_EXAMPLES = 25
"""Cases per operation and phase when neither the command line nor the spec says: enough to
shrink real findings, few enough that the bundled example runs in a few seconds."""

DEFAULT_SEED = 0
DEFAULT_MAX_AUTH_FAILURES = 10
"""Consecutive 401/403 answers to requests that carried credentials before a run stops early."""


@dataclass(frozen=True)
class ContractOptions:
    """Options of one contract run (``run_contract``).

    ``max_examples`` ``None`` means the spec's ``contract.max_examples``, else
    :data:`DEFAULT_MAX_EXAMPLES`. ``operations`` empty means every operation of the document.
    ``base_url`` overrides ``provider.live.base_url`` (live only; it must be allow-listed).
    ``token_ttl_seconds`` is passed to the simulator (simulated only): tests use it to make
    tokens expire mid-run. ``cassettes_dir`` is read with ``target="cassettes"`` (default
    ``cassettes/`` next to the spec).
    """

    target: Target | None = None
    """``None``: what the spec's ``provider.mode`` says (``simulated`` or ``live``)."""
    max_examples: int | None = None
    seed: int = DEFAULT_SEED
    operations: tuple[str, ...] = ()
    base_url: str | None = None
    baseline: Path | None = None
    cassettes_dir: Path | None = None
    token_ttl_seconds: float | None = None
    max_auth_failures: int = DEFAULT_MAX_AUTH_FAILURES
    request_timeout_seconds: float = 10.0
    revalidate: bool = True
    static_checks: bool = True
    """Run the checks of what the integration relies on and the data-mapping checks too."""
