"""Environment references (``${VAR}``): the only way a credential enters a spec.

The harness resolves them at run time and hands the resolved values to the redactor, so the
values can be scrubbed from every artifact. Nothing here ever prints a resolved value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from harness.spec.model import IntegrationSpec

ENV_REF = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}$")
_CREDENTIAL_NAME = re.compile(
    r"(SECRET|TOKEN|PASSWORD|PASSWD|API_?KEY|PRIVATE_KEY|CREDENTIAL)", re.I
)


def env_name(reference: str) -> str | None:
    """``"${FOO}"`` -> ``"FOO"``; anything else -> ``None``."""
    match = ENV_REF.match(reference)
    return match.group("name") if match else None


def looks_like_credential_name(name: str) -> bool:
    """Whether an environment variable's *name* says it holds a secret."""
    return bool(_CREDENTIAL_NAME.search(name))


def secret_env_names(spec: IntegrationSpec) -> dict[str, str]:
    """Variable name -> where the spec references it, for every credential in the spec."""
    found: dict[str, str] = {}
    if spec.authentication is not None:
        for field_name, ref in spec.authentication.credential_refs().items():
            if (name := env_name(ref)) is not None:
                found[name] = f"authentication.{field_name}"
    if spec.integration_under_test is not None and spec.integration_under_test.env:
        for key, value in spec.integration_under_test.env.items():
            if (name := env_name(value)) is not None and looks_like_credential_name(key + name):
                found[name] = f"integration_under_test.env.{key}"
    return found


def resolve_secrets(
    spec: IntegrationSpec, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Variable name -> value for every credential reference that is set in the environment."""
    env = os.environ if environ is None else environ
    return {name: env[name] for name in secret_env_names(spec) if env.get(name)}
