"""`harness validate`: the example passes; every broken input exits 2 with located, one-line problems."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from harness.spec.model import IntegrationSpec
from harness.spec.schema import spec_schema
from harness.yamlsource import load_file

from .conftest import BROKEN, EXAMPLE_SPEC, REPO, run_cli, run_cli_process

PROBLEM_LINE = re.compile(
    r"^(?P<file>[^:\s][^:]*?)(?::(?P<line>\d+))?: (?:(?P<path>[^\s:]+): )?(?P<message>.+)$"
)
SUPPORT_FILES = {"invalid-provider.openapi.yaml", "swagger-1.2.yaml"}
CORPUS = sorted(p for p in BROKEN.iterdir() if p.name not in SUPPORT_FILES)
CANARIES = ("s3cr3t-canary-value", "tok-canary-value")


def _expectations(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return {}
    return dict(re.findall(r"^# expect-([a-z]+): (.*)$", text, flags=re.MULTILINE))


def test_example_is_valid() -> None:
    result = run_cli("validate", str(EXAMPLE_SPEC))
    assert result.code == 0, result.stderr
    assert "valid - Petstore inventory sync" in result.stdout
    assert "4 operations" in result.stdout
    assert "data mapping: 6 fields" in result.stdout


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("broken", CORPUS, ids=lambda p: p.name)
def test_broken_input_exits_2_with_located_problems(broken: Path) -> None:
    result = run_cli("validate", str(broken.relative_to(REPO)), cwd=REPO)
    assert result.code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines, "no problem reported"
    for line in lines:
        match = PROBLEM_LINE.match(line)
        assert match, f"not a one-line problem: {line!r}"
        assert match["file"].endswith((".yaml", ".json", ".md")), line
    for canary in CANARIES:
        assert canary not in result.stderr + result.stdout

    expect = _expectations(broken)
    if not expect:
        assert str(broken.relative_to(REPO)) in result.stderr
        return
    parsed = [PROBLEM_LINE.match(line) for line in lines]
    wanted_file = expect.get("file", str(broken.relative_to(REPO)))
    hits = [
        m
        for m in parsed
        if m is not None
        and m["file"] == wanted_file
        and ("path" not in expect or m["path"] == expect["path"])
        and ("message" not in expect or expect["message"] in m["message"])
        and ("line" not in expect or m["line"] == expect["line"])
    ]
    assert hits, f"expected {expect} in:\n{result.stderr}"


@pytest.mark.parametrize(
    ("name", "line", "path"),
    [
        ("unknown-top-key.yaml", 10, "efort"),
        ("misspelled-nested-key.yaml", 32, "rate_limits.brust"),
        ("inline-client-secret.yaml", 25, "authentication.client_secret"),
        ("mapping-field-absent.yaml", 83, "data_mapping.fields[3].source"),
        ("unknown-source-operation.yaml", 66, "data_mapping.source_operation"),
        ("wrong-type-burst.yaml", 32, "rate_limits.burst"),
        ("missing-oauth-secret.yaml", 21, "authentication.client_secret"),
        ("json-unknown-key.json", 2, "provider.modee"),
    ],
)
def test_exact_locations(name: str, line: int, path: str) -> None:
    broken = BROKEN / name
    result = run_cli("validate", str(broken.relative_to(REPO)), cwd=REPO)
    assert f"tests/data/broken/{name}:{line}: {path}: " in result.stderr
    # The line really is where that key is written.
    if name.endswith(".yaml"):
        key = path.rsplit(".", 1)[-1].split("[")[0]
        text_line = broken.read_text().splitlines()[line - 1]
        assert key in text_line or path.endswith("client_secret")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = EXAMPLE_SPEC.read_text()
    text = text.replace("  burst: 20", "  brust: 20").replace(
        "backoff: exponential", "backoff: sometimes"
    )
    text = text.replace("client_secret: ${PETSTORE_CLIENT_SECRET}", "client_secret: hunter2-canary")
    spec = EXAMPLE_SPEC.parent / "tmp-all-at-once.yaml"
    spec.write_text(text)
    try:
        result = run_cli("validate", str(spec))
    finally:
        spec.unlink()
    assert result.code == 2
    assert len(result.stderr.strip().splitlines()) == 3, result.stderr
    assert "hunter2-canary" not in result.stderr


def test_json_format_lists_problems() -> None:
    result = run_cli("validate", "--format", "json", str(BROKEN / "unknown-top-key.yaml"))
    assert result.code == 2
    payload = json.loads(result.stdout)
    assert payload["valid"] is False
    assert payload["problems"][0]["path"] == "efort"
    assert payload["problems"][0]["line"] == 10
    ok = json.loads(run_cli("validate", "--format", "json", str(EXAMPLE_SPEC)).stdout)
    assert ok["valid"] is True and ok["provider"]["operations"] == 4


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "--frmat", "json", "x.yaml"],
        ["validate"],
        ["validate", "--format", "xml", "x.yaml"],
        ["no-such-command"],
        ["init"],
    ],
)
def test_bad_flags_are_one_line_and_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.code == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_real_process_help_and_bad_input() -> None:
    help_ = run_cli_process("--help")
    assert help_.code == 0
    for command in ("validate", "init", "spec", "schema"):
        assert command in help_.stdout
    bad = run_cli_process("validate", str(BROKEN / "yaml-syntax.yaml"))
    assert bad.code == 2 and "Traceback" not in bad.stderr
    assert "yaml-syntax.yaml:6: invalid YAML" in bad.stderr


def test_schema_and_model_agree() -> None:
    """Every schema property has a model field and vice versa (the schema is the source of truth)."""
    import dataclasses
    import typing

    schema = spec_schema()
    defs = schema["$defs"]

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        return node

    def check(node: dict[str, Any], cls: type, where: str) -> None:
        node = resolve(node)
        props = node.get("properties", {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert set(props) == set(fields), (
            f"{where}: schema {sorted(props)} vs model {sorted(fields)}"
        )
        hints = typing.get_type_hints(cls)
        for name, prop in props.items():
            for arg in [hints[name], *typing.get_args(hints[name])]:
                for candidate in [arg, *typing.get_args(arg)]:
                    if dataclasses.is_dataclass(candidate) and isinstance(candidate, type):
                        sub = resolve(prop)
                        if sub.get("type") == "array":
                            sub = resolve(sub["items"])
                        check(sub, candidate, f"{where}.{name}")

    check(schema, IntegrationSpec, "spec")


# --- hypothesis: mutations of the example ----------------------------------------------------

EXAMPLE = load_file(EXAMPLE_SPEC).data


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


# Free-form mappings (their keys are user data, so any key is allowed there).
_OPEN_MAPPINGS = {("integration_under_test", "env"), ("rate_limits", "operation_costs")}


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


MAPPINGS = [
    p
    for p in _paths(EXAMPLE)
    if isinstance(_get(EXAMPLE, p), dict) and p[-1:] != ("values",) and p not in _OPEN_MAPPINGS
]
LEAVES = [p for p in _paths(EXAMPLE) if p and not isinstance(_get(EXAMPLE, p), dict | list)]


def _dump(data: Any, path: Path) -> None:
    yaml = YAML()
    yaml.default_flow_style = False
    with path.open("w") as handle:
        yaml.dump(data, handle)


def _format(path: tuple[Any, ...]) -> str:
    from harness.problems import format_path

    return format_path(path)


def _mutated_spec(tmp_dir: Path, data: Any) -> Path:
    spec = tmp_dir / "integration.yaml"
    _dump(data, spec)
    return spec


def _fresh_copy() -> Any:
    data = json.loads(json.dumps(EXAMPLE))
    data["provider"]["openapi"] = str(EXAMPLE_SPEC.parent / "provider.openapi.yaml")
    data["destination"]["openapi"] = str(EXAMPLE_SPEC.parent / "destination.openapi.yaml")
    data["integration_under_test"]["working_dir"] = str(REPO / "examples")
    return data


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    where=st.sampled_from(MAPPINGS),
    key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=12),
)
def test_unknown_key_anywhere_is_named(tmp_path: Path, where: tuple[Any, ...], key: str) -> None:
    data = _fresh_copy()
    target = _get(data, where)
    key = f"zz_{key}"  # never a real key of the format, so it must be reported as unknown
    target[key] = 1
    result = run_cli("validate", str(_mutated_spec(tmp_path, data)))
    assert result.code == 2
    assert f": {_format((*where, key))}: unknown key '{key}'" in result.stderr
    assert "Traceback" not in result.stderr


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(where=st.sampled_from(LEAVES), replacement=st.sampled_from([[["nested"]], {"a": {"b": 1}}]))
def test_wrong_type_anywhere_is_located(
    tmp_path: Path, where: tuple[Any, ...], replacement: Any
) -> None:
    data = _fresh_copy()
    parent = _get(data, where[:-1])
    parent[where[-1]] = replacement
    result = run_cli("validate", str(_mutated_spec(tmp_path, data)))
    assert result.code == 2, f"{_format(where)} accepted {replacement!r}"
    assert "Traceback" not in result.stderr
    reported = [m["path"] for line in result.stderr.splitlines() if (m := PROBLEM_LINE.match(line))]
    path_text = _format(where)
    assert any(
        p and (p == path_text or p.startswith(path_text) or path_text.startswith(p))
        for p in reported
    ), result.stderr


def test_openapi_document_by_url(tmp_path: Path) -> None:
    """A spec may name its documents by http(s) URL; an unreachable one is a one-line error."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """The test reads stderr: keep the server's access log out of it."""

    handler = functools.partial(Quiet, directory=str(EXAMPLE_SPEC.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        data = _fresh_copy()
        data["provider"]["openapi"] = f"{base}/provider.openapi.yaml"
        ok = run_cli("validate", str(_mutated_spec(tmp_path, data)))
        assert ok.code == 0, ok.stderr
        data["provider"]["openapi"] = f"{base}/missing.yaml"
        missing = run_cli("validate", str(_mutated_spec(tmp_path, data)))
        assert missing.code == 2
        assert missing.stderr.count("\n") == 1
        assert "missing.yaml: cannot fetch OpenAPI document: HTTP 404" in missing.stderr
        data["provider"]["openapi"] = "http://127.0.0.1:9/unreachable.yaml"  # discard port
        unreachable = run_cli("validate", str(_mutated_spec(tmp_path, data)))
        assert unreachable.code == 2 and unreachable.stderr.count("\n") == 1, unreachable.stderr
    finally:
        server.shutdown()
        server.server_close()
