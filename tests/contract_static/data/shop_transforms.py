"""The shop integration's own transformation functions, as the spec names them (test fixture).

Each has a bug of the kind the data-mapping check exists for; tests/contract_static/test_mapping.py
asserts that the check finds it and shows a minimal source record.
"""

from __future__ import annotations

STATUS = {"new": "open", "paid": "done", "shipped": "closed"}


def status(value: str) -> str:
    """Raises KeyError for a state the table forgot ("cancelled")."""
    return STATUS[value]


def to_cents(total: float) -> int:
    """Truncates instead of rounding: 0.29 * 100 is 28.999999999999996, so 28 cents."""
    return int(total * 100)
