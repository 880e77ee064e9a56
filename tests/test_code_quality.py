"""Lint, format and type checks run as part of the test command, so CI and laptops agree."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO


def _tool(name: str) -> list[str]:
    """The tool installed beside this interpreter (a venv need not be activated), else on PATH."""
    beside = str(Path(sys.executable).parent)
    local = shutil.which(name, path=beside) or shutil.which(name)
    if local is None:
        pytest.skip(f"{name} is not installed (pip install '.[test]')")
    return [local]


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."]],
    ids=["ruff-check", "ruff-format"],
)
def test_ruff(command: list[str]) -> None:
    result = subprocess.run(
        [*_tool(command[0]), *command[1:]], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
