"""Results <-> JSON, by cattrs: tuples become lists, and reading back restores the dataclasses.

Written atomically (temporary file + rename) so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import cattrs

from harness.results.model import RunResult, StageResult

_converter = cattrs.Converter()
_converter.register_unstructure_hook(tuple, list)

T = TypeVar("T")


def to_data(value: Any) -> Any:
    """The plain-data (JSON-ready) form of any results value."""
    return _converter.unstructure(value)


def from_data(data: Any, kind: type[T]) -> T:
    """Rebuild a results value from its plain-data form."""
    return _converter.structure(data, kind)


def write_json(path: Path, value: RunResult | StageResult) -> None:
    """Write ``value`` as indented JSON, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_data(value), indent=2, ensure_ascii=False) + "\n"
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_run(path: Path) -> RunResult:
    """Read a results.json written by :func:`write_json`."""
    return from_data(json.loads(path.read_text(encoding="utf-8")), RunResult)


def read_stage(path: Path) -> StageResult:
    """Read one stage's result file."""
    return from_data(json.loads(path.read_text(encoding="utf-8")), StageResult)
