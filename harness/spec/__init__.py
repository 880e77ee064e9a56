"""The integration spec: its JSON Schema, typed model, loading and consistency checks.

Knows nothing of HTTP or OpenAPI; every layer above builds on it.
"""

from harness.spec.convert import spec_from_data, spec_to_data
from harness.spec.loader import LoadedSpec, load_spec, load_spec_text
from harness.spec.model import IntegrationSpec

__all__ = [
    "IntegrationSpec",
    "LoadedSpec",
    "load_spec",
    "load_spec_text",
    "spec_from_data",
    "spec_to_data",
]
