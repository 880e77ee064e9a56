"""Values that conform to a JSON Schema: deterministic by default, varied on demand for a seed.

The deterministic value follows the order users know from Stoplight Prism: an example, the
default, the first enum value, ``null`` only when nothing else is allowed, else a format-aware
value that respects bounds, lengths and patterns, with every required property present. The
varied value walks the same schema with a seeded ``random.Random``. Regular-expression patterns
are delegated to hypothesis' ``from_regex`` (drawn reproducibly from a seed). Every generated
value is checked with jsonschema_rs; when the walk cannot satisfy a schema (``not``, tricky
``oneOf``), the generator says so rather than serve a non-conforming body.

hypothesis-jsonschema would have been the natural engine here, but its 0.23.1 release does not
run on current hypothesis (it uses internals hypothesis has since changed), so we keep this
walker small and verify its output instead.
"""

from __future__ import annotations

import datetime as _dt
import random
import string
import uuid
from functools import lru_cache
from typing import Any

import jsonschema_rs
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as hs

_MAX_DEPTH = 6
_FORMATS: dict[str, str] = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uri-reference": "/example",
    "iri": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "byte": "ZXhhbXBsZQ==",
    "binary": "example",
    "password": "********",
    "duration": "P1D",
    "regex": "^.*$",
    "json-pointer": "/example",
}


class GenerationError(Exception):
    """The schema admits no value this generator can find (the engine answers 501)."""


@lru_cache(maxsize=4096)
def _from_regex(pattern: str, draw_seed: int | None) -> str:
    """A string matching ``pattern``: the simplest one, or a varied one for a seed."""
    box: list[str] = []

    @seed(draw_seed or 0)
    @settings(
        max_examples=1 if draw_seed is None else 3,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(hs.from_regex(pattern, fullmatch=True))
    def _draw(value: str) -> None:
        box.append(value)

    try:
        _draw()
    except Exception as exc:
        raise GenerationError(f"cannot generate a string for pattern {pattern!r}: {exc}") from None
    return box[-1]


class ValueGenerator:
    """Generates values for one standalone JSON Schema (``$refs`` into its own ``$defs``)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._defs: dict[str, Any] = schema.get("$defs", {})
        self._validator = jsonschema_rs.validator_for(schema, validate_formats=True)

    def is_valid(self, value: Any) -> bool:
        return bool(self._validator.is_valid(value))

    def static(self) -> Any:
        """The deterministic value (Prism order)."""
        value = _Walk(self._defs, None).value(self.schema, 0)
        if not self.is_valid(value):
            for attempt in range(8):
                value = self.varied(attempt, check=False)
                if self.is_valid(value):
                    return value
            raise GenerationError("cannot generate a value that conforms to the schema")
        return value

    def varied(self, seed_value: int, *, check: bool = True) -> Any:
        """A value varied by ``seed_value``: the same seed gives the same value."""
        rng = random.Random(seed_value)
        for _ in range(16):
            value = _Walk(self._defs, rng).value(self.schema, 0)
            if not check or self.is_valid(value):
                return value
        raise GenerationError("cannot generate a varied value that conforms to the schema")


class _Walk:
    def __init__(self, defs: dict[str, Any], rng: random.Random | None) -> None:
        self.defs = defs
        self.rng = rng

    def _resolve(self, node: Any) -> Any:
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 64:
            name = str(node["$ref"]).rsplit("/", 1)[-1]
            extra = {k: v for k, v in node.items() if k != "$ref"}
            target = self.defs.get(name, {})
            node = {**target, **extra} if extra else target
            seen += 1
        return node

    def _merge(self, node: dict[str, Any]) -> dict[str, Any]:
        """Fold ``allOf`` into one schema: properties and required united, the rest layered."""
        if "allOf" not in node:
            return node
        merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
        for part in node["allOf"]:
            part = self._merge(self._resolve(part))
            if not isinstance(part, dict):
                continue
            for key, value in part.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required":
                    merged["required"] = sorted({*merged.get("required", []), *value})
                elif key == "type" and "type" in merged:
                    merged["type"] = _intersect_types(merged["type"], value)
                else:
                    merged.setdefault(key, value)
        return merged

    def _pick(self, options: list[Any]) -> Any:
        return options[0] if self.rng is None else self.rng.choice(options)

    def value(self, node: Any, depth: int) -> Any:
        node = self._resolve(node)
        if node is True or node == {}:
            return "value" if self.rng is None else self.rng.choice(["value", 1, True])
        if not isinstance(node, dict):
            return None
        node = self._merge(node)
        if "const" in node:
            return node["const"]
        if self.rng is None:
            for key in ("examples",):
                if node.get(key):
                    return node[key][0]
            if "default" in node:
                return node["default"]
        if node.get("enum"):
            choices = [v for v in node["enum"] if v is not None] or [None]
            return self._pick(choices)
        for key in ("oneOf", "anyOf"):
            if node.get(key):
                branches = [b for b in node[key] if self._resolve(b) != {"type": "null"}] or node[
                    key
                ]
                base = {k: v for k, v in node.items() if k not in ("oneOf", "anyOf")}
                chosen = self._resolve(self._pick(branches))
                return self.value({**base, **chosen} if isinstance(chosen, dict) else chosen, depth)
        kind = node.get("type")
        if isinstance(kind, list):
            concrete = [k for k in kind if k != "null"] or ["null"]
            kind = self._pick(concrete)
        if kind is None:
            kind = "object" if "properties" in node else "array" if "items" in node else "string"
        return getattr(self, f"_{kind}", self._string)(node, depth)

    def _null(self, node: dict[str, Any], depth: int) -> None:
        return None

    def _boolean(self, node: dict[str, Any], depth: int) -> bool:
        return True if self.rng is None else self.rng.random() < 0.5

    def _object(self, node: dict[str, Any], depth: int) -> dict[str, Any]:
        properties: dict[str, Any] = node.get("properties", {})
        required = set(node.get("required", []))
        out: dict[str, Any] = {}
        for name, prop in properties.items():
            resolved = self._resolve(prop)
            if (
                isinstance(resolved, dict)
                and resolved.get("writeOnly") is True
                and name not in required
            ):
                continue
            optional = name not in required
            if optional and (
                depth >= _MAX_DEPTH or (self.rng is not None and self.rng.random() < 0.3)
            ):
                continue
            out[name] = self.value(prop, depth + 1)
        for name in sorted(required - out.keys()):
            out[name] = "value"
        extra = node.get("additionalProperties")
        wanted = int(node.get("minProperties", 0))
        if wanted > len(out) and extra is not False:
            # Maps (only additionalProperties) still need their minimum number of entries.
            index = 1
            while len(out) < wanted:
                key = f"key{index}"
                if key not in out:
                    out[key] = self.value(extra if isinstance(extra, dict) else {}, depth + 1)
                index += 1
        return out

    def _array(self, node: dict[str, Any], depth: int) -> list[Any]:
        low = int(node.get("minItems", 0))
        high = int(node.get("maxItems", max(low, 3)))
        if self.rng is None:
            count = max(low, min(1, high)) if depth < _MAX_DEPTH else low
        else:
            count = self.rng.randint(low, max(low, min(high, low + 3)))
        items = node.get("items", {})
        values = [self.value(items, depth + 1) for _ in range(count)]
        if node.get("uniqueItems") and len(values) > 1:
            unique: list[Any] = []
            for v in values:
                if v not in unique:
                    unique.append(v)
            values = unique
        return values

    def _integer(self, node: dict[str, Any], depth: int) -> int:
        low, high = _bounds(node, integer=True)
        step = node.get("multipleOf")
        # Wide ranges (int64 spelled out as bounds) are narrowed to small, friendly numbers:
        # huge ones are valid but break JavaScript clients (Prism itself rejects beyond 2**53).
        if self.rng is None:
            if (low is None or low <= 0) and (high is None or high >= 0):
                value = 0
            else:
                value = low if low is not None and low > 0 else high
        else:
            lo = 1 if low is None else low
            if lo < -1000 and (high is None or high >= 1):
                lo = 1
            hi = lo + 1000 if high is None else min(high, lo + 1000)
            if hi < lo:
                lo, hi = max(low if low is not None else hi - 1000, hi - 1000), hi
            value = self.rng.randint(int(lo), int(max(lo, hi)))
        if isinstance(step, int | float) and step:
            value = int(-(-value // step) * step)
        return int(value)

    def _number(self, node: dict[str, Any], depth: int) -> float:
        low, high = _bounds(node, integer=False)
        if self.rng is None:
            if low is not None:
                value = (
                    float(low)
                    if "exclusiveMinimum" not in node
                    else float(low) + (min(1.0, (high - low) / 2) if high is not None else 1.0)
                )
            else:
                value = min(0.0, float(high)) if high is not None else 0.0
                if high is not None and "exclusiveMaximum" in node and value >= high:
                    value = float(high) - 1.0
        else:
            lo = float(low) if low is not None else 0.0
            hi = float(high) if high is not None else lo + 1000.0
            value = round(self.rng.uniform(lo, hi), 3)
            if "exclusiveMinimum" in node and value <= lo:
                value = lo + (hi - lo) / 2
        step = node.get("multipleOf")
        if isinstance(step, int | float) and step:
            value = float(-(-value // step) * step)
        return value

    def _string(self, node: dict[str, Any], depth: int) -> str:
        fmt = node.get("format")
        if "pattern" in node:
            return _from_regex(
                str(node["pattern"]), None if self.rng is None else self.rng.randrange(2**31)
            )
        if fmt in _FORMATS:
            return self._formatted(str(fmt))
        low = int(node.get("minLength", 0))
        high = int(node.get("maxLength", max(low, 16)))
        if self.rng is None:
            text = "string"
        else:
            text = "".join(
                self.rng.choice(string.ascii_letters)
                for _ in range(self.rng.randint(max(low, 1), max(low, min(high, 12))))
            )
        if len(text) < low:
            text = text + "x" * (low - len(text))
        return text[:high]

    def _formatted(self, fmt: str) -> str:
        if self.rng is None:
            return _FORMATS[fmt]
        rng = self.rng
        if fmt in ("date", "date-time"):
            day = _dt.date(2000, 1, 1) + _dt.timedelta(days=rng.randrange(9000))
            if fmt == "date":
                return day.isoformat()
            return f"{day.isoformat()}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z"
        if fmt == "uuid":
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if fmt in ("email", "idn-email"):
            return f"user{rng.randrange(10000)}@example.com"
        if fmt in ("uri", "url", "iri"):
            return f"https://example.com/{rng.randrange(10000)}"
        return _FORMATS[fmt]


def _bounds(node: dict[str, Any], *, integer: bool) -> tuple[Any, Any]:
    low = node.get("minimum")
    high = node.get("maximum")
    if "exclusiveMinimum" in node:
        low = node["exclusiveMinimum"] + 1 if integer else node["exclusiveMinimum"]
    if "exclusiveMaximum" in node:
        high = node["exclusiveMaximum"] - 1 if integer else node["exclusiveMaximum"]
    if integer:
        low = None if low is None else int(-(-low // 1))
        high = None if high is None else int(high // 1)
    return low, high


def _intersect_types(a: Any, b: Any) -> Any:
    left = {a} if isinstance(a, str) else set(a)
    right = {b} if isinstance(b, str) else set(b)
    both = left & right
    if ("number" in left and "integer" in right) or ("integer" in left and "number" in right):
        both.add("integer")
    result = sorted(both) or sorted(right)
    return result[0] if len(result) == 1 else result
