"""The spec's data mapping, applied by the harness: what the destination *should* hold.

The judge maps every source record itself, from ``data_mapping`` alone, and compares the
destination against that. It never uses the integration's own code, so a mapping bug in the
integration shows up as a wrong value with the field named.

Where the spec leaves room, the comparison does too: an integer conversion with a factor may
round or truncate; an optional field that is absent in the source may be absent or null at
the destination; file destinations (CSV, SQLite) hold text, so values compare by their text
or JSON form. A ``function`` transformation is opaque to the harness: its field is not compared.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from harness.spec.model import DataMapping, MappingRow, Transformation


class Unmappable(ValueError):
    """The record cannot be mapped (a required field is missing, a value does not convert)."""


@dataclass(frozen=True)
class Expected:
    """What the destination should hold for one source record."""

    key: str
    values: Mapping[str, Any]
    """Destination field -> expected value; a field absent here must be absent or null."""
    alternatives: Mapping[str, tuple[Any, ...]]
    """Destination field -> other acceptable values (rounding or truncation of a factor)."""
    unchecked: frozenset[str]
    """Fields the harness cannot compute (``function`` transformations)."""
    absent: frozenset[str] = frozenset()
    """Optional fields absent or null in the source: absent or null at the destination."""


_MISSING = object()


def read_path(record: Any, path: str) -> Any:
    """A source value by mapping path: ``a.b`` for nesting, ``tags[].name`` for a list of values.

    Returns ``_MISSING`` when a part is absent (``None`` is a present null).
    """
    if "[]" in path:
        head, _, rest = path.partition("[]")
        items = read_path(record, head) if head else record
        if items is _MISSING or items is None:
            return items
        if not isinstance(items, list):
            raise Unmappable(f"{head} must be a list, got {type(items).__name__}")
        rest = rest.lstrip(".")
        if not rest:
            return list(items)
        values = [read_path(item, rest) for item in items]
        if any(v is _MISSING for v in values):
            raise Unmappable(f"{path}: an item has no {rest}")
        return values
    node = record
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def key_row(mapping: DataMapping) -> MappingRow:
    """The row whose destination field identifies a record: the first required one."""
    return next((row for row in mapping.fields if row.required), mapping.fields[0])


def map_record(mapping: DataMapping, record: Any) -> Expected:
    """The destination record the mapping makes of ``record``; ``Unmappable`` if it cannot."""
    if not isinstance(record, Mapping):
        raise Unmappable(f"a record must be an object, got {type(record).__name__}")
    values: dict[str, Any] = {}
    alternatives: dict[str, tuple[Any, ...]] = {}
    unchecked: set[str] = set()
    absent: set[str] = set()
    for row in mapping.fields:
        raw = read_path(record, row.source)
        if raw is _MISSING or raw is None:
            if row.required:
                raise Unmappable(f"{row.source} is {'missing' if raw is _MISSING else 'null'}")
            absent.add(row.destination)
            continue
        transformation = row.transformation
        if transformation is not None and transformation.kind == "function":
            unchecked.add(row.destination)
            continue
        try:
            value, others = transform(transformation, raw)
        except (ValueError, TypeError, KeyError, OverflowError) as error:
            raise Unmappable(f"{row.source}: {error}") from None
        values[row.destination] = value
        if others:
            alternatives[row.destination] = others
    key = key_row(mapping).destination
    if key not in values:
        raise Unmappable(f"no value for the key field {key}")
    return Expected(
        _text(values[key]),
        values,
        alternatives,
        frozenset(unchecked - set(values)),
        frozenset(absent - set(values)),
    )


def transform(transformation: Transformation | None, value: Any) -> tuple[Any, tuple[Any, ...]]:
    """(the mapped value, other acceptable values) for one field."""
    if transformation is None or transformation.kind == "none":
        return value, ()
    kind = transformation.kind
    if kind == "enum":
        table = transformation.values or {}
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"{value!r} is not an enum value")
        mapped = table.get(str(value))
        if mapped is None:
            raise ValueError(f"{value!r} is not one of {', '.join(table)}")
        return mapped, ()
    if kind in ("date", "datetime"):
        if not isinstance(value, str):
            raise ValueError(f"expected a {kind} string, got {type(value).__name__}")
        return _reformat(value, transformation, kind == "date"), ()
    if kind == "convert":
        return _convert(value, transformation)
    raise ValueError(f"unknown transformation {kind}")


def _reformat(value: str, transformation: Transformation, is_date: bool) -> str:
    if transformation.from_format is not None:
        parsed = datetime.strptime(value, transformation.from_format)
    elif is_date:
        parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
    else:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if transformation.to_format is None:
        return parsed.date().isoformat() if is_date else parsed.isoformat()
    # strftime does not zero-pad years below 1000 on every platform; the formats mean 4 digits.
    return parsed.strftime(transformation.to_format.replace("%Y", f"{parsed.year:04d}"))


def _convert(value: Any, transformation: Transformation) -> tuple[Any, tuple[Any, ...]]:
    target = transformation.to_type
    factor = transformation.factor
    if target == "string":
        if factor is not None and _is_number(value):
            value = value * factor
        return _text(value), ()
    if target == "boolean":
        if isinstance(value, bool):
            return value, ()
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true", ()
        if _is_number(value):
            return bool(value), ()
        raise ValueError(f"{value!r} does not convert to a boolean")
    number = float(value) if isinstance(value, str) else value
    if not _is_number(number):
        raise ValueError(f"{value!r} is not a number")
    scaled = number * factor if factor is not None else number
    if not math.isfinite(scaled):
        raise ValueError(f"{value!r} is not finite")
    if target == "integer":
        rounded = round(scaled)
        others = {math.floor(scaled), math.ceil(scaled), int(scaled)} - {rounded}
        return rounded, tuple(sorted(others))
    return scaled, ()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def differences(expected: Expected, actual: Mapping[str, Any]) -> list[str]:
    """Every way ``actual`` differs from ``expected``, one phrase per field."""
    out: list[str] = []
    for field_name, want in expected.values.items():
        if field_name not in actual:
            out.append(f"{field_name} missing (expected {_show(want)})")
            continue
        got = actual[field_name]
        accepted = (want, *expected.alternatives.get(field_name, ()))
        if not any(same_value(option, got) for option in accepted):
            out.append(f"{field_name} is {_show(got)}, expected {_show(want)}")
    for field_name in sorted(expected.absent):
        got = actual.get(field_name)
        if got not in (None, "", []):
            out.append(f"{field_name} is {_show(got)}, expected absent (none in the source)")
    return out


def same_value(want: Any, got: Any) -> bool:
    """Equal as JSON values, or as text when the destination stores text (CSV, SQLite)."""
    if isinstance(want, bool) or isinstance(got, bool):
        return want is got or (isinstance(got, str) and got.lower() == _text(want))
    if _is_number(want) and _is_number(got):
        return math.isclose(float(want), float(got), rel_tol=1e-9, abs_tol=1e-9)
    if want == got:
        return True
    if isinstance(got, str) and not isinstance(want, str):
        try:
            return same_value(want, json.loads(got))
        except ValueError:
            return _text(want) == got
    if isinstance(got, int | float) and isinstance(want, str):
        return _text(got) == want
    return False


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
