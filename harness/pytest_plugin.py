"""pytest plugin: the contract stage as pytest items (``pytest --integration-spec SPEC``).

Registered through the ``pytest11`` entry point, so it is loaded by *every* pytest run where the
harness is installed. Without ``--integration-spec`` it does nothing: it adds its options and
returns from its one collection hook at once, and it imports nothing of the harness until asked.

With it, each spec contributes one item per operation x check (``contract/listPets/
not_a_server_error``) plus one item for the static checks (what the integration relies on, the
data mapping). The stage runs once, when the first of those items runs (never at collection, so
``--collect-only`` stays instant), against the simulated provider by default; every item then
reports its own verdict, with the findings (already redacted) as the failure text, so pytest's
own reports, JUnit XML and pytest-html show the contract like any other test.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

if TYPE_CHECKING:
    from harness.results.model import CheckResult, StageResult

STATIC = "static-checks"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("integration-harness", "integration-harness contract tests")
    group.addoption(
        "--integration-spec",
        action="append",
        default=[],
        metavar="SPEC",
        help="Collect the contract tests of this integration spec (repeatable).",
    )
    group.addoption(
        "--integration-only",
        action="store_true",
        help="Run only the contract items, none of the suite's own tests.",
    )
    group.addoption(
        "--integration-target",
        choices=["simulated", "live"],
        help="simulated: the harness serves the provider document; live: the spec's"
        " provider.live.base_url (allow-listed, rate-limited). Default: each spec's provider.mode.",
    )
    group.addoption("--integration-base-url", metavar="URL", help="Live base URL override.")
    group.addoption(
        "--integration-max-examples", type=int, metavar="N", help="Cases per operation and phase."
    )
    group.addoption(
        "--integration-seed", type=int, default=0, metavar="N", help="Seed (default 0)."
    )
    group.addoption(
        "--integration-out",
        metavar="DIR",
        help="Where contract.json goes (default: a temporary folder, shown in the header).",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    specs: list[str] = config.getoption("integration_spec")
    if not specs:
        return
    collected: list[pytest.Item] = []
    for spec in specs:
        node = ContractSpec.from_parent(session, path=Path(spec).resolve())
        collected.extend(node.collect())
    if config.getoption("integration_only"):
        items[:] = collected
    else:
        items.extend(collected)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    specs: list[str] = config.getoption("integration_spec")
    if not specs:
        return None
    target = config.getoption("integration_target") or "provider.mode of each spec"
    return [f"integration-harness contract: {', '.join(specs)} ({target})"]


def _target(value: str | None) -> Literal["simulated", "live"] | None:
    return "live" if value == "live" else ("simulated" if value == "simulated" else None)


class ContractSpec(pytest.File):
    """One integration spec: its items, and the one stage run they share."""

    _result: StageResult | None = None
    _out: Path | None = None

    def collect(self) -> list[pytest.Item]:
        from harness.contract.stage import plan_contract
        from harness.problems import InputError
        from harness.project import load_project

        try:
            self.project = load_project(self.path)
            self.options = self._options()
            pairs = plan_contract(self.project, self.options)
        except InputError as error:
            lines = [str(problem) for problem in error.problems]
            raise pytest.UsageError("\n".join(lines) or "invalid integration spec") from None
        items: list[pytest.Item] = [
            ContractItem.from_parent(
                self, name=f"contract/{op}/{check}", check_id=f"contract/{op}/{check}"
            )
            for op, check in pairs
        ]
        items.append(ContractItem.from_parent(self, name=f"contract/{STATIC}", check_id=STATIC))
        self._planned = {item.name for item in items}
        return items

    def _options(self) -> Any:
        from harness.contract.options import ContractOptions

        config = self.config
        target = (
            _target(config.getoption("integration_target")) or self.project.spec.spec.provider.mode
        )
        return ContractOptions(
            target=target,
            max_examples=config.getoption("integration_max_examples"),
            seed=config.getoption("integration_seed"),
            # one override for every live spec of the run; simulated ones need none
            base_url=config.getoption("integration_base_url") if target == "live" else None,
        )

    def stage_result(self) -> StageResult:
        """Run the stage once, on first use; later items read the same result."""
        if self._result is None:
            from harness.contract.stage import run_contract
            from harness.problems import InputError
            from harness.results.model import StageInterrupted, StageResult
            from harness.results.serialize import write_json

            given = self.config.getoption("integration_out")
            out = Path(given) if given else Path(tempfile.mkdtemp(prefix="harness-contract-"))
            self._out = out
            try:
                result = run_contract(self.project, self.options, out, lambda _line: None)
            except InputError as error:  # e.g. a live credential not set: every item says so
                lines = "\n".join(str(problem) for problem in error.problems)
                result = StageResult(stage="contract", status="error", summary=lines, error=lines)
            except StageInterrupted as stopped:
                write_json(out / "contract.json", stopped.partial)
                raise KeyboardInterrupt from None
            write_json(out / "contract.json", result)
            self._result = result
        return self._result

    def check(self, check_id: str) -> CheckResult | None:
        result = self.stage_result()
        return next((c for c in result.checks if c.id == check_id), None)

    def static_checks(self) -> list[CheckResult]:
        """Results that are not one of the planned operation x check items."""
        return [c for c in self.stage_result().checks if c.id not in self._planned]


class ContractFailed(Exception):
    """A contract check failed (or could not be judged); the message is the report text."""


class ContractItem(pytest.Item):
    """One operation x check of the contract stage (or the static checks, together)."""

    def __init__(self, *, check_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check_id = check_id
        self.user_properties.append(("check_id", check_id))

    @property
    def spec(self) -> ContractSpec:
        assert isinstance(self.parent, ContractSpec)
        return self.parent

    def runtest(self) -> None:
        if self.check_id == STATIC:
            error = self.spec.stage_result().error
            if error is not None and not self.spec.stage_result().checks:
                raise ContractFailed(f"the contract run could not judge: {error}")
            checks = self.spec.static_checks()
            bad = [c for c in checks if c.status in ("failed", "error")]
            if bad:
                raise ContractFailed("\n\n".join(_describe(c) for c in bad))
            if not any(c.status == "passed" for c in checks):
                pytest.skip("no static check applied")
            return
        check = self.spec.check(self.check_id)
        result = self.spec.stage_result()
        if check is None and result.error is not None:
            raise ContractFailed(f"the contract run could not judge: {result.error}")
        if check is None:
            pytest.skip("not judged in this run")
        elif check.status in ("failed", "error"):
            raise ContractFailed(_describe(check))
        elif check.status in ("skipped", "not_run"):
            pytest.skip(check.summary)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ContractFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


def _describe(check: CheckResult) -> str:
    """The check and its findings as plain text (already redacted by the stage)."""
    lines = [f"{check.id}: {check.status} - {check.summary}"]
    for finding in check.findings:
        lines.append(f"[{finding.code}] {finding.message}" if finding.code else finding.message)
        for label, value in (
            ("request", finding.request),
            ("response", finding.response_excerpt),
            ("at", finding.json_path),
            ("reproduce", finding.reproduce),
        ):
            if value:
                lines.append(f"  {label}: " + str(value).replace("\n", "\n    "))
        if finding.seed is not None:
            lines.append(f"  seed: {finding.seed}")
    return "\n".join(lines)
