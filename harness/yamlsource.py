"""Load YAML or JSON into plain Python values while remembering where every value came from.

Users fix what they can find: every problem the harness reports names ``FILE:LINE``. ruamel.yaml's
round-trip loader keeps line information on its container types; we convert those containers to
plain dicts and lists (so the rest of the harness never sees ruamel types) and keep a side table
from key path to line number.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from harness.problems import InputError, PathPart, Problem

Path_ = tuple[PathPart, ...]


@dataclass(frozen=True)
class SourceMap:
    """Line numbers (1-based) of keys and items, by path, for one loaded file."""

    file: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[PathPart]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        probe = tuple(path)
        while True:
            if probe in self.lines:
                return self.lines[probe]
            if not probe:
                return None
            probe = probe[:-1]

    def problem(self, path: Sequence[PathPart], message: str) -> Problem:
        from harness.problems import format_path

        return Problem(self.file, self.line_of(path), format_path(path), message)


@dataclass(frozen=True)
class LoadedDocument:
    """A parsed YAML/JSON document: plain data plus where each part of it sits in the file."""

    data: Any
    source: SourceMap


def _plain(node: Any, path: Path_, lines: dict[Path_, int]) -> Any:
    if isinstance(node, CommentedMap):
        result: dict[str, Any] = {}
        for key, value in node.items():
            # Keys are strings in every format we read; a YAML key like `200` becomes "200".
            skey = key.isoformat() if isinstance(key, _dt.date) else str(key)
            try:
                line, _col = node.lc.key(key)
                lines[(*path, skey)] = line + 1
            except (KeyError, TypeError):
                pass
            result[skey] = _plain(value, (*path, skey), lines)
        return result
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for index, value in enumerate(node):
            try:
                line, _col = node.lc.item(index)
                lines[(*path, index)] = line + 1
            except (KeyError, TypeError, IndexError):
                pass
            items.append(_plain(value, (*path, index), lines))
        return items
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, _dt.datetime | _dt.date):
        # Specs and OpenAPI documents treat dates as strings (JSON has no date type).
        return node.isoformat()
    if isinstance(node, str):
        return str(node)
    if node is None:
        return None
    return str(node)


def parse_text(text: str, file: str) -> LoadedDocument:
    """Parse YAML (or JSON, which YAML 1.2 contains) text; syntax errors become ``InputError``."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or exc.context or "invalid YAML"
        raise InputError([Problem(file, line, "", f"invalid YAML: {what}")]) from None
    except YAMLError as exc:
        raise InputError([Problem(file, None, "", f"invalid YAML: {exc}")]) from None
    except ValueError as exc:  # ruamel builds dates while parsing: 2027-02-30 fails there
        raise InputError([_impossible_date(text, file, exc)]) from None
    root_line = getattr(getattr(raw, "lc", None), "line", None)
    lines: dict[Path_, int] = {(): root_line + 1 if isinstance(root_line, int) else 1}
    data = _plain(raw, (), lines)
    return LoadedDocument(data, SourceMap(file, lines))


_DATE = re.compile(r"(?<![\w'\"])(\d{4})-(\d{1,2})-(\d{1,2})(?![\w'\"])")


def _impossible_date(text: str, file: str, error: ValueError) -> Problem:
    """Locate the unquoted date that does not exist (the only ValueError ruamel raises)."""
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _DATE.finditer(line):
            try:
                _dt.date(*(int(part) for part in match.groups()))
            except ValueError:
                return Problem(
                    file,
                    number,
                    "",
                    f"not a calendar date: {match.group(0)} (quote it to keep it text)",
                )
    return Problem(file, None, "", f"invalid YAML: {error}")


def read_text(path: Path, name: str) -> str:
    """A file's UTF-8 text; a missing or unreadable file is an ``InputError`` named ``name``."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError([Problem(name, None, "", "file not found")]) from None
    except IsADirectoryError:
        raise InputError([Problem(name, None, "", "is a directory, expected a file")]) from None
    except UnicodeDecodeError:
        raise InputError([Problem(name, None, "", "not UTF-8 text")]) from None
    except OSError as exc:
        raise InputError([Problem(name, None, "", f"cannot read: {exc.strerror}")]) from None


def load_file(path: Path, display: str | None = None) -> LoadedDocument:
    """Read and parse a file; a missing or unreadable file is an ``InputError``, not a traceback."""
    name = display or str(path)
    return parse_text(read_text(path, name), name)
