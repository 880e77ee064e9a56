"""``harness init``: lay out a user's repository and write a starter spec that already validates.

The starter is rendered from a Jinja2 template and pre-filled from the provider's OpenAPI
document when one is given (name, auth scheme, operations, a first data mapping), because a spec
that starts valid is one a team keeps valid.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2

from harness.openapi.document import OpenAPIDocument, load_document
from harness.openapi.fields import record_fields, records_schema
from harness.problems import InputError, Problem

FOLDERS: dict[str, str] = {
    "contracts": "Integration specs (integration.yaml) and the OpenAPI documents they name, one folder per integration.",
    "scenarios": "Fault-injection scenarios (fault plan + expectations) added to the built-in ones.",
    "loadtests": "Locust profiles and locustfiles added to the built-in ones.",
    "cassettes": "VCR cassettes recorded from the provider (secrets filtered).",
    "reports": "Output of harness runs. Not committed: add reports/* to .gitignore.",
}
_SCALARS = {"string", "integer", "number", "boolean"}
_MAX_MAPPED_FIELDS = 8


@dataclass(frozen=True)
class Scaffolded:
    spec: Path
    files: list[Path] = field(default_factory=list)


def slugify(text: str) -> str:
    """A folder-safe name: ``"Petstore Provider API"`` -> ``"petstore-provider-api"``."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "integration"


def _yaml_scalar(value: Any) -> str:
    """JSON is valid YAML, so JSON-encoding scalars and lists quotes them safely."""
    return json.dumps(value)


def _auth_from_document(doc: OpenAPIDocument | None) -> dict[str, Any]:
    if doc is None:
        return {"kind": "none"}
    if doc.version == "2.0":
        schemes = doc.data.get("securityDefinitions") or {}
    else:
        schemes = (doc.data.get("components") or {}).get("securitySchemes") or {}
    if not schemes:
        return {"kind": "none"}
    global_security = doc.data.get("security") or []
    preferred = next(
        (name for req in global_security for name in req if name in schemes), next(iter(schemes))
    )
    scheme = doc.deref(schemes[preferred]).node
    kind = scheme.get("type")
    if kind == "oauth2":
        flows = scheme.get("flows") or {}
        flow = flows.get("clientCredentials") or (
            scheme if scheme.get("flow") == "application" else None
        )
        if flow is None:
            return {
                "kind": "custom",
                "description": f"OAuth2 ({', '.join(flows) or scheme.get('flow')}): TODO describe the flow",
            }
        token_url = str(flow.get("tokenUrl", "/oauth/token"))
        token_path = urlsplit(token_url).path
        token_op = next(
            (
                op.operation_id
                for op in doc.operations.values()
                if op.path.rstrip("/") and token_path.endswith(op.path) and op.method == "post"
            ),
            None,
        )
        return {
            "kind": "oauth2_client_credentials",
            "token_operation": token_op,
            "token_url": token_url,
            "scopes": sorted(flow.get("scopes") or {}),
        }
    if kind == "apiKey":
        where = scheme.get("in")
        if where in ("header", "query"):
            return {"kind": "api_key", "key_in": where, "key_name": scheme.get("name", "X-API-Key")}
        return {"kind": "custom", "description": f"API key in {where} '{scheme.get('name')}'"}
    if kind == "basic" or (kind == "http" and str(scheme.get("scheme", "")).lower() == "basic"):
        return {"kind": "basic"}
    if kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
        return {"kind": "bearer"}
    return {"kind": "custom", "description": f"{kind}: TODO describe the authentication"}


def _first_mapping(doc: OpenAPIDocument | None) -> dict[str, Any] | None:
    """The first list-returning GET and its record's scalar fields: a mapping to start from."""
    if doc is None:
        return None
    candidates = sorted(doc.operations.values(), key=lambda op: ("{" in op.path, op.path))
    for op in candidates:
        if op.method != "get":
            continue
        body = doc.response_body_schema(op)
        if body is None:
            continue
        records_path = None
        node = body.node
        if isinstance(node, dict) and node.get("type") != "array":
            arrays = [
                name
                for name, prop in (node.get("properties") or {}).items()
                if isinstance(prop, dict) and doc.deref(prop, body.uri).node.get("type") == "array"
            ]
            if not arrays:
                continue
            records_path = arrays[0]
        record = records_schema(doc, body, records_path)
        if record is None:
            continue
        fields = [
            {"name": name, "required": info.required}
            for name, info in record_fields(doc, record)
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name)
            and len(info.types) == 1
            and info.types <= _SCALARS
        ][:_MAX_MAPPED_FIELDS]
        if fields:
            return {"operation": op.operation_id, "records_path": records_path, "fields": fields}
    return None


def _external_refs(node: Any) -> bool:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            return True
        return any(_external_refs(v) for v in node.values())
    if isinstance(node, list):
        return any(_external_refs(v) for v in node)
    return False


def _copy_document(source: str, doc: OpenAPIDocument, target_dir: Path) -> str:
    """Vendor a single-file local document next to the spec; keep URLs and multi-file documents as references."""
    if urlsplit(source).scheme in ("http", "https"):
        return source
    path = Path(source).resolve()
    if _external_refs(doc.data):
        return _relpath(path, target_dir)
    target = target_dir / f"provider.openapi{path.suffix or '.yaml'}"
    if path != target.resolve():
        shutil.copyfile(path, target)
    return target.name


def _relpath(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path, start.resolve())


def scaffold(
    directory: Path, *, openapi: str | None = None, name: str | None = None, force: bool = False
) -> Scaffolded:
    """Create the folders and a starter spec in ``directory``; returns what was written."""
    doc = None
    if openapi is not None:
        doc = load_document(openapi, Path.cwd(), display=openapi)
    title = name or (doc.title if doc is not None else "My integration")
    slug = slugify(title)
    spec_dir = directory / "contracts" / slug
    spec_path = spec_dir / "integration.yaml"
    if spec_path.exists() and not force:
        raise InputError(
            [Problem(str(spec_path), None, "", "already exists (use --force to overwrite)")]
        )
    if directory.exists() and not directory.is_dir():
        raise InputError([Problem(str(directory), None, "", "exists and is not a folder")])

    written: list[Path] = []
    for folder, purpose in FOLDERS.items():
        (directory / folder).mkdir(parents=True, exist_ok=True)
        readme = directory / folder / "README.md"
        if not readme.exists():
            readme.write_text(f"# {folder}/\n\n{purpose}\n", encoding="utf-8")
            written.append(readme)
    spec_dir.mkdir(parents=True, exist_ok=True)

    if openapi is not None and doc is not None:
        openapi_ref = _copy_document(openapi, doc, spec_dir)
    else:
        openapi_ref = "provider.openapi.yaml"
        starter = (
            resources.files("harness").joinpath("templates/init/provider.openapi.yaml").read_text()
        )
        (spec_dir / openapi_ref).write_text(starter, encoding="utf-8")
        doc = load_document(openapi_ref, spec_dir)
    if (
        not openapi_ref.startswith(("http://", "https://"))
        and (spec_dir / openapi_ref).parent == spec_dir
    ):
        written.append(spec_dir / openapi_ref)

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    env.filters["y"] = _yaml_scalar
    template = env.from_string(
        resources.files("harness").joinpath("templates/init/integration.yaml.j2").read_text()
    )
    text = template.render(
        name=title,
        today=_dt.date.today().isoformat(),
        source=openapi,
        spec_path=str(spec_path),
        provider_name=(doc.data.get("info", {}).get("x-provider") if doc else None) or title,
        openapi_ref=openapi_ref,
        auth=_auth_from_document(doc),
        env_prefix=re.sub(r"[^A-Z0-9]+", "_", slug.upper()).strip("_") or "PROVIDER",
        operations=[
            f"{op.operation_id}: {op.method.upper()} {op.path}"
            for op in (doc.operations.values() if doc else [])
        ],
        mapping=_first_mapping(doc),
    )
    spec_path.write_text(text, encoding="utf-8")
    written.append(spec_path)
    return Scaffolded(spec_path, written)
