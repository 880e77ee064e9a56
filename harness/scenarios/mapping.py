"""The spec's data mapping, applied by the harness: what the destination *should* hold.

The judge maps every source record itself, from ``data_mapping`` alone, and compares the
destination against that. It never uses the integration's own code, so a mapping bug in the
integration shows up as a wrong value with the field named.

Where the spec leaves room, the comparison does too: an integer conversion with a factor may
round or truncate; an optional field that is absent in the source may be absent or null at
the destination; file destinations (CSV, SQLite) hold text, so values compare by their text
or JSON form. A ``function`` transformation is opaque to the harness: its field is not compared.

What a row means (paths, transformations) is :mod:`harness.spec.transform`'s, the same rules the
contract stage's mapping check runs; this module adds only the judge's tolerances.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.spec.model import DataMapping, MappingRow, Transformation
from harness.spec.transform import (
    TransformError,
    read_path,
    scaled_number,
    show,
    transform_source,
)


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
        try:
            present, raw = read_path(record, row.source)
        except TransformError as error:
            raise Unmappable(str(error)) from None
        if not present or raw is None:
            if row.required:
                raise Unmappable(f"{row.source} is {'null' if present else 'missing'}")
            absent.add(row.destination)
            continue
        transformation = row.transformation
        if transformation is not None and transformation.kind == "function":
            unchecked.add(row.destination)
            continue
        try:
            value = transform_source(transformation, raw, row.source)
            others = _rounding_alternatives(transformation, raw, value)
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


def _rounding_alternatives(
    transformation: Transformation | None, raw: Any, value: Any
) -> tuple[Any, ...]:
    """Integers the judge accepts besides the declared (rounded) one: floor, ceiling and
    truncation of the scaled value. docs/scenarios.md: "an integer conversion may round or
    truncate" - a one-unit rounding choice is not data loss; the contract stage's conversion
    check is where a function that rounds differently is reported."""
    if (
        transformation is None
        or transformation.kind != "convert"
        or transformation.to_type != "integer"
        or isinstance(raw, list)
    ):
        return ()
    scaled = scaled_number(raw, transformation.factor)
    others = {math.floor(scaled), math.ceil(scaled), int(scaled)} - {value}
    return tuple(sorted(others))


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
            out.append(f"{field_name} missing (expected {show(want, 60)})")
            continue
        got = actual[field_name]
        accepted = (want, *expected.alternatives.get(field_name, ()))
        if not any(same_value(option, got) for option in accepted):
            out.append(f"{field_name} is {show(got, 60)}, expected {show(want, 60)}")
    for field_name in sorted(expected.absent):
        got = actual.get(field_name)
        if got not in (None, "", []):
            out.append(f"{field_name} is {show(got, 60)}, expected absent (none in the source)")
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
