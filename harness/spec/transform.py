"""What a ``data_mapping`` row means: read a source path, transform the value, write the result.

Two stages apply the spec's mapping on their own: the scenario judge maps every source record
itself to know what the destination should hold, and the contract stage runs generated provider
records through the mapping to find values it cannot map. Stages may not import each other, and
two copies of these rules had already drifted apart (lists, booleans, enum keys), so a stage
could pass a record the other rejected. The rules live here, once, next to the model they
interpret; pure functions, no HTTP, no documents.

The semantics, as docs/spec-format.md ("Data Mapping") states them:

* **Paths.** ``a.b`` reads nested objects; ``tags[].name`` reads ``name`` of every item of the
  list ``tags`` (in order, one value per item). An absent part makes the whole path absent; a
  ``null`` is a present null. A ``[]`` on something that is not a list, or an item without the
  field, is an error: dropping the item would shift every later one against the rows that read
  other fields of the same items.
* **Transformations**, applied to each element of a ``[]`` path's list:
  ``none`` (or no transformation) keeps the value; ``date``/``datetime`` parse with
  ``strptime(from_format)`` and write with ``strftime(to_format)``, ``%Y`` always four digits;
  ``enum`` looks the value up in ``values``, non-text values by their JSON text (``1``,
  ``true``); ``convert`` multiplies numbers by ``factor`` and then converts: ``integer`` rounds to
  nearest, ``number`` keeps the product, ``string`` is the JSON text (whole numbers without a
  fraction), ``boolean`` takes ``true``/``false``/``1``/``0``. Only scalars convert.
  ``function`` has no declared semantics: the stage that runs the named function does so itself.
* **Destination paths** mirror source paths: ``a.b`` nests objects, ``labels[].name`` spreads a
  list over the items of ``labels``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from harness.spec.model import Transformation


class TransformError(ValueError):
    """A value the declared mapping cannot map; the message says why, in the spec's terms."""


def read_path(record: Any, path: str) -> tuple[bool, Any]:
    """``(present, value)`` of a source path in ``record``; ``[]`` paths give a list.

    Raises ``TransformError`` when the record's shape contradicts the path (a ``[]`` on a
    non-list, an item without the field): the value exists but cannot be read as declared.
    """
    head, many, rest = path.partition("[]")
    node = record
    for part in head.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    if not many or node is None:
        return True, node
    if not isinstance(node, list):
        raise TransformError(f"'{head}' is {_json_type(node)}, not a list")
    rest = rest.removeprefix(".")
    if not rest:
        return True, list(node)
    values: list[Any] = []
    for index, item in enumerate(node):
        present, value = read_path(item, rest)
        if not present:
            raise TransformError(f"'{head}[{index}]' has no '{rest}'")
        values.append(value)
    return True, values


def write_path(out: dict[str, Any], path: str, value: Any) -> None:
    """Write ``value`` at a destination path; ``a[].b`` spreads a list over the items of ``a``.

    Rows that write other fields of the same items (``labels[].id``, ``labels[].name``) fill
    the same objects, item by item, so the assembled record is what the destination receives.
    """
    parts = path.split(".")
    target = out
    for index, raw in enumerate(parts[:-1]):
        if raw.endswith("[]") and isinstance(value, list):
            items = target.setdefault(raw[:-2], [])
            rest = ".".join(parts[index + 1 :])
            while len(items) < len(value):
                items.append({})
            for item, element in zip(items, value, strict=False):
                write_path(item, rest, element)
            return
        target = target.setdefault(raw.removesuffix("[]"), {})
    target[parts[-1].removesuffix("[]")] = value


def transform_source(t: Transformation | None, value: Any, source: str) -> Any:
    """The declared transformation of a source path's value: per element for a ``[]`` path."""
    if "[]" in source and isinstance(value, list):
        return [transform(t, item) for item in value]
    return transform(t, value)


def transform(t: Transformation | None, value: Any) -> Any:
    """The declared semantics of a transformation, applied to one source value."""
    if t is None or t.kind == "none":
        return value
    kind = t.kind
    if kind in ("date", "datetime"):
        if not isinstance(value, str):
            raise TransformError(f"{show(value)} is not text to parse as a {kind}")
        if t.from_format is None or t.to_format is None:
            raise TransformError(f"a {kind} transformation needs from_format and to_format")
        try:
            parsed = datetime.strptime(value, t.from_format)
        except ValueError:
            raise TransformError(
                f"{show(value)} does not match from_format '{t.from_format}'"
            ) from None
        return strftime(parsed, t.to_format)
    if kind == "enum":
        values = t.values or {}
        if isinstance(value, dict | list):
            raise TransformError(f"{show(value)} is not a scalar to translate")
        key = value if isinstance(value, str) else json.dumps(value)
        if key not in values:
            raise TransformError(f"{show(value)} has no translation (values: {', '.join(values)})")
        return values[key]
    if kind == "convert":
        return convert(value, t.to_type, t.factor)
    raise TransformError(f"kind {kind} has no declared semantics without a function")


def strftime(moment: datetime, fmt: str) -> str:
    """``moment.strftime(fmt)`` with ``%Y`` always four digits, as Python documents it.

    glibc writes year 481 as ``481``; a destination that insists on ``DD.MM.YYYY`` rejects it.
    """
    out: list[str] = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            directive = fmt[i : i + 2]
            out.append(f"{moment.year:04d}" if directive == "%Y" else directive)
            i += 2
        else:
            out.append(fmt[i])
            i += 1
    return moment.strftime("".join(out))


def convert(value: Any, to_type: str | None, factor: float | None) -> Any:
    """A ``convert`` transformation of one scalar value."""
    if isinstance(value, dict | list):
        raise TransformError(f"{show(value)} is not a scalar to convert to {to_type}")
    if to_type == "string":
        if isinstance(value, str):
            return value
        if factor is not None and _is_number(value):
            value = value * factor
        if isinstance(value, float) and value.is_integer():
            # JSON has one number type: 1200.0 is 1200. The spec's factor is always a float,
            # so 12 cents x 100 must not turn into "1200.0".
            return str(int(value))
        return json.dumps(value)
    if to_type in ("integer", "number"):
        number = scaled_number(value, factor)
        return round(number) if to_type == "integer" else number
    if to_type == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise TransformError(f"{show(value)} is not a boolean")
    raise TransformError(f"unknown to_type {to_type!r}")


def scaled_number(value: Any, factor: float | None) -> float | int:
    """The number a conversion to ``integer`` or ``number`` starts from, before any rounding.

    Public because a judge may accept more than the rounded value (floor, ceiling, truncation)
    and needs the unrounded product to know which.
    """
    number: float | int
    if _is_number(value):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise TransformError(f"{show(value)} is not a number to convert") from None
    else:
        raise TransformError(f"{show(value)} is not a number to convert")
    if factor is not None:
        number = number * factor
    if not math.isfinite(number):
        raise TransformError(f"{show(value)} is not a finite number")
    return number


def show(value: Any, limit: int = 80) -> str:
    """A value as it appears in a message: JSON, cut at ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_type(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else type(value).__name__
