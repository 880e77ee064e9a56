"""Plain data <-> model conversion, done by cattrs rather than by hand.

YAML lists become tuples (the model is immutable); exporting omits every field still at its
default, so a spec written back out says no more than its author did.
"""

from __future__ import annotations

from typing import Any

import cattrs

from harness.spec.model import IntegrationSpec

_structure = cattrs.Converter()
_unstructure = cattrs.Converter(omit_if_default=True)


def _command(value: Any, _type: Any) -> str | tuple[str, ...] | None:
    """``command`` is a shell-like string or an argv list; keep strings, freeze lists."""
    if value is None or isinstance(value, str):
        return value
    return tuple(value)


def _as_is(value: Any, _type: Any) -> Any:
    """Scalar unions (enum targets) were already type-checked by the JSON Schema."""
    return value


_structure.register_structure_hook(str | tuple[str, ...] | None, _command)
_structure.register_structure_hook(str | int | bool, _as_is)
_unstructure.register_unstructure_hook(tuple, list)


def spec_from_data(data: dict[str, Any]) -> IntegrationSpec:
    """Build the model from data that already passed schema validation."""
    return _structure.structure(data, IntegrationSpec)


def spec_to_data(spec: IntegrationSpec) -> dict[str, Any]:
    """The plain-data form of a spec, with defaults left out: what ``spec export`` writes."""
    data: dict[str, Any] = _drop_empty(_unstructure.unstructure(spec))
    return data


def _drop_empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_empty(v) for k, v in value.items() if v is not None and v != {}}
    if isinstance(value, list | tuple):
        return [_drop_empty(v) for v in value]
    return value
