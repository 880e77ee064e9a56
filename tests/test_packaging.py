"""The built wheel carries everything the commands need at run time (schemas, templates)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from .conftest import EXAMPLE_SPEC, REPO


def test_wheel_runs_validate_and_init_without_the_source_tree(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("integration_harness-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "harness/schemas/integration-spec.schema.json" in names
    assert "harness/templates/init/integration.yaml.j2" in names
    assert any(n.endswith("entry_points.txt") for n in names)

    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    work = tmp_path / "work"
    shutil.copytree(EXAMPLE_SPEC.parent, work / "contracts" / "petstore")
    (work / "examples").mkdir()
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    # Run from a folder outside the repo so only the wheel's `harness` can be imported.
    probe = subprocess.run(
        [sys.executable, "-c", "import harness, sys; print(harness.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip().startswith(str(unpacked))
    result = subprocess.run(
        [sys.executable, "-m", "harness", "validate", "contracts/petstore/integration.yaml"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    init = subprocess.run(
        [sys.executable, "-m", "harness", "init", "new-repo"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert init.returncode == 0, init.stderr
