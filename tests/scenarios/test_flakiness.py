"""Flakiness check: the whole built-in suite, five times in a row on the careful example, at the
spec's full N, must give the same verdicts every time (all passed).

About three and a half minutes, so it runs only when asked:
``HARNESS_FLAKINESS=1 pytest tests/scenarios/test_flakiness.py`` (or, from the command line,
``harness scenarios contracts/petstore/integration.yaml --repeat 5``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..conftest import EXAMPLE_SPEC
from .conftest import explain, run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("HARNESS_FLAKINESS"), reason="set HARNESS_FLAKINESS=1 (about 3.5 min)"
    ),
]


def test_five_runs_of_the_builtin_suite_agree(tmp_path: Path) -> None:
    result = run(EXAMPLE_SPEC, tmp_path, records=None, repeat=5)
    runs = {c.id: c.attributes.get("runs") for c in result.checks}
    assert all(r == ["passed"] * 5 for r in runs.values()), explain(result)
    assert len(runs) >= 15
