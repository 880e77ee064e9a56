"""Shared bits of the contract stage tests: spec paths, a quiet progress sink, result lookups."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from harness.results.model import CheckResult, StageResult

HERE = Path(__file__).parent
DATA = HERE / "data"
BROKEN_SPEC = DATA / "broken.integration.yaml"
RATE_LIMITED_SPEC = DATA / "ratelimited.integration.yaml"
CANARY_KEY = "canary-4c1e9b7d2f8a6e35-key"


def quiet(_line: str) -> None:
    """A progress sink that drops the lines."""


def by_id(result: StageResult) -> dict[str, CheckResult]:
    return {check.id: check for check in result.checks}


def failing(result: StageResult) -> dict[str, CheckResult]:
    return {check.id: check for check in result.checks if check.status == "failed"}


def requests_log(out: Path) -> list[dict[str, Any]]:
    """The stage's own request log (contract/requests.jsonl)."""
    path = out / "contract" / "requests.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
