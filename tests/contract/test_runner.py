"""The contract stage on the bundled example (simulated): it passes, says what it ran, behaves
the same with and without CI variables and whatever schemathesis.toml lies around, and turns
bad input into one located line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.contract.checks import HARNESS_CHECK_CODES, all_check_names, builtin_check_names
from harness.contract.options import ContractOptions
from harness.contract.runner import plan_contract, run_contract
from harness.project import load_project
from harness.results.serialize import read_stage
from tests.conftest import EXAMPLE_SPEC, REPO, run_cli
from tests.contract.helpers import BROKEN_SPEC, free_port, requests_log


def test_simulated_example_passes_with_a_summary(tmp_path: Path) -> None:
    project = load_project(EXAMPLE_SPEC)
    lines: list[str] = []
    result = run_contract(
        project, ContractOptions(max_examples=5, static_checks=False), tmp_path, lines.append
    )
    assert result.status == "passed", [
        (c.id, c.summary) for c in result.checks if c.status in ("failed", "error")
    ]
    names = all_check_names()
    operations = list(project.provider.operations)
    assert [c.id for c in result.checks] == [
        f"contract/{op}/{name}" for op in operations for name in names
    ]
    assert (
        "of 80 checks (4 operations x 20 checks; simulated, seed 0, 5 examples)" in result.summary
    )
    assert result.summary.startswith("0 failed, ")
    counts = {status: sum(c.status == status for c in result.checks) for status in ("passed",)}
    assert counts["passed"] >= 70  # a handful are not applicable (no documented headers...)
    assert result.metrics["requests"] >= 100 and result.metrics["tokens_fetched"] >= 1
    assert result.artifacts == {"requests": "contract/requests.jsonl"}
    assert any("simulated provider at http://127.0.0.1:" in line for line in lines)
    assert any(line.startswith("contract: fuzzing") for line in lines)
    # both kinds of cases went out, and some were judged by the stateful phase too
    log = requests_log(tmp_path)
    assert {r["status"] for r in log} >= {200, 201, 400}
    assert by_code(result, "HC101")  # the harness's own checks ran and passed
    checks = {c.id: c for c in result.checks}
    assert checks["contract/listPets/rate_limit_headers"].status == "passed"
    assert checks["contract/createToken/auth_accepted"].status == "skipped"
    assert checks["contract/listPets/auth_accepted"].status == "passed"


def by_code(result: object, code: str) -> list[object]:
    return [
        c
        for c in getattr(result, "checks", ())
        if code in c.attributes.get("codes", ()) and c.status == "passed"
    ]


def test_checks_keep_schemathesis_codes() -> None:
    names = builtin_check_names()
    assert "not_a_server_error" in names and "response_schema_conformance" in names
    assert set(HARNESS_CHECK_CODES) <= set(all_check_names())
    assert plan_contract(load_project(EXAMPLE_SPEC), ContractOptions(operations=("getPet",)))[
        0
    ] == ("getPet", "not_a_server_error")


_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import hypothesis
    from harness.contract.options import ContractOptions
    from harness.contract.runner import run_contract
    from harness.project import load_project

    profile = hypothesis.settings.get_current_profile_name()
    out = Path(sys.argv[2])
    result = run_contract(
        load_project(sys.argv[1]),
        ContractOptions(max_examples=5, seed=11, operations=("getPet",), static_checks=False),
        out,
        lambda line: None,
    )
    print(json.dumps({"profile": profile, "status": result.status}))
    """
)


def test_runs_are_the_same_with_and_without_ci_and_ignore_schemathesis_toml(
    tmp_path: Path,
) -> None:
    """hypothesis loads its `ci` profile when CI is set; schemathesis reads a schemathesis.toml
    found from the working directory. Neither may change what a contract run sends."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "schemathesis.toml").write_text(
        'base-url = "http://127.0.0.1:9/nowhere"\n[generation]\nmax-examples = 1\nmode = "negative"\n'
    )
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_ACTIONS")}
    runs = {}
    for name, extra in (("laptop", {}), ("ci", {"CI": "true"})):
        runs[name] = subprocess.Popen(
            [sys.executable, "-c", _SCRIPT, str(EXAMPLE_SPEC), str(tmp_path / name)],
            cwd=work,
            env={**base, **extra, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    outputs = {}
    for name, proc in runs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr[-2000:]
        outputs[name] = json.loads(stdout.strip().splitlines()[-1])
    assert outputs["ci"]["profile"] == "ci"  # hypothesis did see the CI variable
    assert outputs["laptop"]["profile"] == "default"
    assert outputs["laptop"]["status"] == outputs["ci"]["status"] == "passed"

    def sent(name: str) -> list[tuple[str, str, str, int]]:
        log = requests_log(tmp_path / name)
        return [(r["method"], r["path"], r["query"], r["status"]) for r in log]

    laptop, ci = sent("laptop"), sent("ci")
    assert len(laptop) > 20  # max-examples=1 from the toml would send far fewer
    assert laptop == ci


# --- bad input: one line, exit 2 ---------------------------------------------------------------


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--max-examples", "0"], "--max-examples"),
        (["--target", "nowhere"], "--target"),
        (["--operations", "listPetz"], "unknown operation 'listPetz'"),
        (["--base-url", "http://127.0.0.1:1/v1"], "--base-url: only for --target live"),
        (["--baseline", "no-such-file.yaml"], "--baseline"),
    ],
)
def test_bad_flags_are_one_line_exit_2(args: list[str], expected: str, tmp_path: Path) -> None:
    result = run_cli("contract", str(EXAMPLE_SPEC), "--out", str(tmp_path), *args)
    assert result.code == 2
    assert expected in _one_line(result.stderr)
    assert not (tmp_path / "contract.json").exists()  # refused before anything ran


def test_non_allow_listed_host_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BROKEN_API_KEY", "some-key-value")
    result = run_cli(
        "contract",
        str(BROKEN_SPEC),
        "--target",
        "live",
        "--base-url",
        "http://api.example.com/api",
        "--out",
        str(tmp_path),
    )
    assert result.code == 2
    line = _one_line(result.stderr)
    assert "host 'api.example.com' is not allowed (allowed_hosts: 127.0.0.1)" in line
    assert "broken.integration.yaml:" in line  # located in the spec


def test_unreachable_host_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BROKEN_API_KEY", "some-key-value")
    url = f"http://127.0.0.1:{free_port()}/api"
    result = run_cli(
        "contract", str(BROKEN_SPEC), "--target", "live", "--base-url", url, "--out", str(tmp_path)
    )
    assert result.code == 2
    assert "cannot reach 127.0.0.1:" in _one_line(result.stderr)


def test_missing_live_credential_is_located(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BROKEN_API_KEY", raising=False)
    result = run_cli("contract", str(BROKEN_SPEC), "--target", "live", "--out", str(tmp_path))
    assert result.code == 2
    line = _one_line(result.stderr)
    assert "authentication.api_key: BROKEN_API_KEY is not set" in line


def test_invalid_document_is_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "integration.yaml"
    spec.write_text(
        "spec_version: 1\nname: x\nintegration_type: rest\n"
        f"provider: {{name: x, openapi: {REPO / 'tests/data/broken/invalid-provider.openapi.yaml'}}}\n"
    )
    result = run_cli("contract", str(spec), "--out", str(tmp_path / "out"))
    assert result.code == 2
    assert result.stderr.strip() and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "contract.json").exists()


def test_unknown_check_in_the_spec_is_located(tmp_path: Path) -> None:
    text = BROKEN_SPEC.read_text(encoding="utf-8").replace(
        "openapi: broken.openapi.yaml", f"openapi: {BROKEN_SPEC.parent / 'broken.openapi.yaml'}"
    )
    text += (
        "  checks:\n    - operations: [getPet]\n"
        "      exclude: [response_schema_conformanse]\n      reason: typo on purpose\n"
    )
    spec = tmp_path / "integration.yaml"
    spec.write_text(text)
    result = run_cli("contract", str(spec), "--out", str(tmp_path / "out"))
    assert result.code == 2
    line = _one_line(result.stderr)
    line_number = text.splitlines().index("      exclude: [response_schema_conformanse]") + 1
    assert line.startswith(f"{spec}:{line_number}: contract.checks[0].exclude[0]: unknown check")


def test_cli_writes_contract_json_and_junit(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli(
        "contract",
        str(EXAMPLE_SPEC),
        "--max-examples",
        "2",
        "--operations",
        "getPet",
        "--out",
        str(out),
        "--junit",
        str(tmp_path / "junit.xml"),
    )
    assert result.code in (0, 1), result.stderr  # 1 only if a static check of the spec fails
    stage = read_stage(out / "contract.json")
    assert stage.stage == "contract" and stage.seed == 0
    dynamic = [c for c in stage.checks if c.id.startswith("contract/getPet/")]
    assert len(dynamic) == 20 and not [c for c in dynamic if c.status == "failed"]
    assert "contract: " in result.stdout and "getPet" in result.stdout
    assert "contract: simulated provider" in result.stderr
    junit = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    assert "contract/getPet/not_a_server_error" in junit


def test_ctrl_c_writes_partial_results_and_exits_130(tmp_path: Path) -> None:
    import signal

    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "harness", "contract", str(EXAMPLE_SPEC)),
            *("--max-examples", "500", "--out", str(tmp_path)),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until requests are going out
        if line.startswith("contract: coverage"):
            break
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted; partial results in" in stderr and "Traceback" not in stderr
    stage = read_stage(tmp_path / "contract.json")
    assert stage.incomplete is True
    assert any(c.status == "passed" for c in stage.checks)  # what finished is kept


def test_cassettes_target_judges_recordings_and_sends_nothing(tmp_path: Path) -> None:
    missing = run_cli(
        "contract", str(EXAMPLE_SPEC), "--target", "cassettes", "--cassettes", str(tmp_path / "no")
    )
    assert missing.code == 2 and "no such cassettes file or folder" in _one_line(missing.stderr)
    out = tmp_path / "out"
    result = run_cli(
        "contract",
        str(EXAMPLE_SPEC),
        "--target",
        "cassettes",
        "--cassettes",
        str(REPO / "tests" / "data" / "cassettes"),
        "--out",
        str(out),
    )
    assert result.code in (0, 1), result.stderr
    stage = read_stage(out / "contract.json")
    assert stage.checks and "recorded responses; cassettes" in stage.summary
    assert "requests" not in stage.metrics  # no provider, simulated or live, was started
    assert not (out / "contract" / "requests.jsonl").exists()
