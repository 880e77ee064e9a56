"""Data mapping checks: generated provider records through the integration's transformation.

The static checks (:mod:`harness.contract.relies`) compare declarations; these run them.
Hypothesis generates records from the source operation's response record schema (the provider
document, converted to JSON Schema by :mod:`harness.openapi.jsonschema`; values drawn by the
JSON Schema engine schemathesis ships, whose strategies shrink well - hypothesis-jsonschema does
not run on the installed hypothesis). Each record goes through every mapping row: the spec's
named Python function when the row gives one (``module:function``, imported with the
integration's ``working_dir`` on ``sys.path``), else the declared semantics of the row's
transformation. Then:

* **every row** must hold: a required destination field is present, the transformation accepts
  every value the document allows (dates parse with ``from_format``, every enum value has a
  translation, conversions succeed), and a named function agrees with the row's declared kind;
* **the destination record** (all rows assembled) must validate against the request body of
  ``destination.operation`` in the destination document.

One hypothesis search per row and one for the destination schema, each with explicit settings
(no example database, a seed, no deadline, never a profile picked up from CI variables): the
same seed gives the same verdict on every machine. A failing record is shrunk by hypothesis and
re-checked before it is reported, as the minimal source record.

Declared semantics are :mod:`harness.spec.transform`'s (docs/spec-format.md, "Data Mapping";
the scenario judge applies the same ones): absent or ``null`` sources leave the destination field
out; ``date``/``datetime`` go through ``strptime(from_format)`` and ``strftime(to_format)`` with a
four-digit ``%Y``; ``enum`` looks the value up in ``values`` (non-text values by their JSON text);
``convert`` multiplies numbers by ``factor`` then converts (integers round to nearest); paths with
``[]`` give lists and the declared transformation applies to each element, a function gets the
whole list.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from random import Random
from typing import Any

from harness.openapi.fields import records_schema
from harness.openapi.jsonschema import SchemaConverter
from harness.openapi.operations import CompiledSchema
from harness.project import Project
from harness.redact import Redactor
from harness.results.model import CheckResult, Finding
from harness.spec.model import MappingRow, Transformation
from harness.spec.secrets import resolve_secrets
from harness.spec.transform import (
    TransformError,
    read_path,
    show,
    transform,
    transform_source,
    write_path,
)
from harness.spec.transform import strftime as strftime  # re-exported for existing callers

ROW_FAILED = "HC601"
REQUIRED_MISSING = "HC602"
FUNCTION_DISAGREES = "HC603"
DESTINATION_INVALID = "HC604"
FUNCTION_RAISED = "HC605"

_EXCERPT = 400


MappingError = TransformError
"""A value the declared transformation cannot map, or a function that cannot be loaded (the
message says why, in spec terms). The declared semantics live in :mod:`harness.spec.transform`,
shared with the scenario judge."""

declared = transform
"""The declared semantics of a transformation, applied to one source value (re-exported)."""


@dataclass(frozen=True)
class _Failure:
    code: str
    message: str
    json_path: str | None = None


Transform = Callable[[Any], Any]
Judge = Callable[[Any], "_Failure | None"]
"""Why a source record breaks one check, or None when it holds."""


def check_data_mapping(
    project: Project, *, seed: int, max_examples: int
) -> tuple[CheckResult, ...]:
    """One CheckResult per mapping row plus one for destination-schema validity."""
    spec = project.spec.spec
    mapping = spec.data_mapping
    if mapping is None:
        return ()
    doc = project.provider
    op = doc.operations.get(mapping.source_operation)
    body = doc.response_body_schema(op) if op is not None else None
    record = records_schema(doc, body, mapping.records_path) if body is not None else None
    if record is None:
        reason = f"no record schema for '{mapping.source_operation}': see contract/relies"
        return tuple(
            _error(f"row/{row.destination}", reason, row=row.destination) for row in mapping.fields
        )
    schema = SchemaConverter(doc).convert(record, "response")
    valid = CompiledSchema(schema)
    try:
        strategy = _record_strategy(schema)
    except Exception as exc:  # the engine cannot model this schema
        reason = f"cannot generate records for '{mapping.source_operation}': {_line(exc)}"
        return tuple(
            _error(f"row/{row.destination}", reason, row=row.destination) for row in mapping.fields
        )
    redactor = Redactor.of(resolve_secrets(spec).values())
    iut = spec.integration_under_test
    working_dir = (
        project.spec.resolve(iut.working_dir) if iut is not None and iut.working_dir else None
    )
    results: list[CheckResult] = []
    with _on_path(working_dir):
        transforms: list[Transform | None] = []
        for index, row in enumerate(mapping.fields):
            t = row.transformation
            if t is None or t.function is None:
                transforms.append(None)
                continue
            try:
                transforms.append(_load_function(t.function))
            except MappingError as exc:
                transforms.append(None)
                results.append(
                    _error(
                        f"row/{row.destination}",
                        str(exc),
                        row=row.destination,
                        index=index,
                    )
                )
        broken = {r.attributes.get("row") for r in results}
        mapper = _Mapper(mapping.fields, transforms)
        search = _Search(strategy, valid.is_valid, seed, max_examples)
        judges: dict[str, Judge] = {}
        for index, row in enumerate(mapping.fields):
            if row.destination not in broken:
                judges[f"row/{row.destination}"] = partial(mapper.row_failure, index)
        destination = _destination_judge(project, mapper, broken)
        if not isinstance(destination, str):
            judges["destination"] = destination
        started = time.monotonic()
        minimal = search.each_minimal(judges)
        share = (time.monotonic() - started) / max(1, len(judges))
        for index, row in enumerate(mapping.fields):
            key = f"row/{row.destination}"
            if key in judges:
                results.append(
                    _row_result(
                        project, index, row, judges[key], minimal.get(key), search, redactor, share
                    )
                )
        results.append(
            _destination_result(
                project, mapper, destination, minimal.get("destination"), search, redactor, share
            )
        )
    return tuple(results)


# -- generation ------------------------------------------------------------------------------------


def _record_strategy(schema: dict[str, Any]) -> Any:
    """Records the schema admits, from the JSON Schema engine schemathesis (pinned 4.32) ships."""
    import jsonschema_rs
    from schemathesis.generation.jsonschema.builder import build
    from schemathesis.specs.openapi.formats import get_default_format_strategies

    # Only documented properties: extra ones cannot change what a mapping reads (it reads
    # documented fields only), and drawing arbitrary JSON for them costs most of the time.
    closed = _closed(schema)
    strategy = build(
        closed, draft=jsonschema_rs.Draft202012, formats=get_default_format_strategies()
    )
    valid = CompiledSchema(schema)
    # The engine's values conform; the filter only guards against a gap in it.
    return strategy.filter(valid.is_valid)


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` whose objects admit no undocumented properties.

    ``unevaluatedProperties: false`` goes on every object schema except ``allOf`` members (a
    member sees only its own properties, so closing it would forbid its siblings'); the schema
    holding the ``allOf`` is closed instead, which sees them all.
    """
    closed: dict[str, Any] = json.loads(json.dumps(schema))
    defs = closed.get("$defs", {})
    members: set[int] = set()
    member_defs: set[str] = set()
    stack: list[Any] = [closed]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for part in node.get("allOf") or []:
                members.add(id(part))
                if isinstance(part, dict) and isinstance(part.get("$ref"), str):
                    member_defs.add(part["$ref"].rsplit("/", 1)[-1])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    barred = {id(defs[name]) for name in member_defs if name in defs} | members
    stack = [closed]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            objectish = "properties" in node or "allOf" in node or "$ref" in node
            if (
                objectish
                and id(node) not in barred
                and "additionalProperties" not in node
                and "unevaluatedProperties" not in node
            ):
                node["unevaluatedProperties"] = False
            stack.extend(v for k, v in node.items() if k != "unevaluatedProperties")
        elif isinstance(node, list):
            stack.extend(node)
    return closed


class _Search:
    """Hypothesis searches with explicit settings: the minimal record for which a check fails."""

    def __init__(
        self, strategy: Any, valid: Callable[[Any], bool], seed: int, max_examples: int
    ) -> None:
        self.strategy = strategy
        self.valid = valid
        self.seed = seed
        self.max_examples = max_examples

    def minimal(self, fails: Callable[[Any], bool]) -> Any | None:
        from hypothesis import HealthCheck, Phase, Verbosity, find, settings
        from hypothesis.errors import NoSuchExample

        # Built on the "default" profile, never the one loaded from the environment (hypothesis
        # switches to its "ci" profile when it sees CI variables): a laptop and CI agree.
        explicit = settings(
            settings.get_profile("default"),
            max_examples=self.max_examples,
            database=None,
            deadline=None,
            derandomize=False,
            phases=(Phase.explicit, Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck),
            print_blob=False,
            verbosity=Verbosity.quiet,
        )
        try:
            found = find(self.strategy, fails, settings=explicit, random=Random(self.seed))
        except NoSuchExample:
            return None
        return self._pruned(found, fails)

    def each_minimal(self, judges: dict[str, Judge]) -> dict[str, Any]:
        """A minimal failing record for every judge that fails on some record.

        One search asks "does any remaining judge fail?"; the record it shrinks to is minimal
        for each judge failing on it (a smaller record failing one of them would have been a
        smaller record failing any). Those judges are settled, the search goes on for the
        rest: as many searches as distinct failures, plus one, instead of one per judge - and
        every judge still sees at least ``max_examples`` records before it passes.
        """
        remaining = dict(judges)
        found: dict[str, Any] = {}
        while remaining:
            record = self.minimal(_any_fails(tuple(remaining.values())))
            if record is None:
                break
            failing = [key for key, judge in remaining.items() if judge(record) is not None]
            if not failing:
                break  # not reproducible: report nothing rather than a flaky record
            for key in failing:
                found[key] = self._pruned(record, _any_fails((remaining.pop(key),)))
        return found

    def _pruned(self, record: Any, fails: Callable[[Any], bool]) -> Any:
        """Drop every optional top-level field the failure does not need (hypothesis keeps
        some, depending on how the engine draws objects): the record shown is minimal."""
        if not isinstance(record, dict):
            return record
        for key in list(record):
            candidate = {k: v for k, v in record.items() if k != key}
            if self.valid(candidate) and fails(candidate):
                record = candidate
        return record


def _any_fails(judges: tuple[Judge, ...]) -> Callable[[Any], bool]:
    def fails(record: Any) -> bool:
        return any(judge(record) is not None for judge in judges)

    return fails


# -- mapping ---------------------------------------------------------------------------------------


class _Mapper:
    """Runs mapping rows over a record: the named function when a row has one, else semantics."""

    def __init__(self, rows: tuple[MappingRow, ...], transforms: list[Transform | None]) -> None:
        self.rows = rows
        self.transforms = transforms

    def row_failure(self, index: int, record: Any) -> _Failure | None:
        row = self.rows[index]
        dest_path = _json_path(row.destination)
        try:
            present, value = read_path(record, row.source)
        except MappingError as exc:
            return _Failure(ROW_FAILED, f"'{row.source}' -> '{row.destination}': {exc}", dest_path)
        if not present or value is None:
            if row.required:
                return _Failure(
                    REQUIRED_MISSING,
                    f"required '{row.destination}' is missing: the record has no "
                    f"'{row.source}'" + ("" if not present else " (it is null)"),
                    dest_path,
                )
            return None
        function = self.transforms[index]
        t = row.transformation
        try:
            actual = _apply(function, t, value, source=row.source)
        except MappingError as exc:
            return _Failure(ROW_FAILED, f"'{row.source}' -> '{row.destination}': {exc}", dest_path)
        except Exception as exc:
            assert t is not None and t.function is not None
            return _Failure(
                FUNCTION_RAISED,
                f"{t.function} raised {type(exc).__name__}: {_line(exc)}",
                dest_path,
            )
        if function is not None and t is not None and t.kind in ("date", "datetime", "enum"):
            # A function that claims a declared kind must agree with it.
            try:
                expected = _apply(None, t, value, source=row.source)
            except MappingError as exc:
                return _Failure(
                    ROW_FAILED, f"'{row.source}' -> '{row.destination}': {exc}", dest_path
                )
            if actual != expected:
                return _Failure(
                    FUNCTION_DISAGREES,
                    f"{t.function} gives {show(actual)} for '{row.destination}', the declared "
                    f"{t.kind} transformation gives {show(expected)}",
                    dest_path,
                )
        if function is not None and t is not None and t.kind == "convert":
            try:
                expected = _apply(None, t, value, source=row.source)
            except MappingError:
                expected = None
            if expected is not None and not _same_number(actual, expected):
                return _Failure(
                    FUNCTION_DISAGREES,
                    f"{t.function} gives {show(actual)} for '{row.destination}', the declared "
                    f"conversion gives {show(expected)}",
                    dest_path,
                )
        if row.required and actual is None:
            return _Failure(
                REQUIRED_MISSING, f"required '{row.destination}' is mapped to null", dest_path
            )
        return None

    def destination(self, record: Any) -> dict[str, Any] | None:
        """The destination record, or None when a row cannot map this record (its check says)."""
        out: dict[str, Any] = {}
        for index, row in enumerate(self.rows):
            if self.row_failure(index, record) is not None:
                return None
            present, value = read_path(record, row.source)
            if not present or value is None:
                continue
            mapped = _apply(self.transforms[index], row.transformation, value, source=row.source)
            write_path(out, row.destination, mapped)
        return out


def _apply(function: Transform | None, t: Transformation | None, value: Any, *, source: str) -> Any:
    """The named function on the whole value when the row gives one, else the declared semantics."""
    if function is not None:
        return function(value)
    return transform_source(t, value, source)


def _json_path(dotted: str) -> str:
    return "$." + dotted.replace("[]", "[*]")


# -- checks ----------------------------------------------------------------------------------------


def _row_result(
    project: Project,
    index: int,
    row: MappingRow,
    judge: Judge,
    record: Any,
    search: _Search,
    redactor: Redactor,
    duration: float,
) -> CheckResult:
    t = row.transformation
    semantics = f"function {t.function}" if t is not None and t.function else "declared semantics"
    failure = None if record is None else judge(record)  # re-validated before it is reported
    findings: tuple[Finding, ...] = ()
    if record is not None and failure is not None:
        findings = (
            _finding(project, "mapping_row", failure, record, search.seed, redactor, index=index),
        )
    kind = "none" if t is None else t.kind
    return CheckResult(
        id=f"contract/mapping/row/{row.destination}",
        name=f"mapping row {row.source} -> {row.destination}",
        status="failed" if findings else "passed",
        summary=findings[0].message
        if findings
        else f"{kind} mapping holds for {search.max_examples} generated records ({semantics})",
        findings=findings,
        duration_seconds=duration,
        attributes={
            "check": "row",
            "row": row.destination,
            "source": row.source,
            "index": index,
            "semantics": semantics,
            "seed": search.seed,
            "max_examples": search.max_examples,
        },
    )


def _destination_judge(project: Project, mapper: _Mapper, broken: set[Any]) -> Judge | str:
    """The destination-schema judge, or why there is none."""
    dest = project.spec.spec.destination
    if broken:
        return "a mapping function could not be loaded: see the row checks"
    if dest is None or dest.kind != "api" or project.destination is None or not dest.operation:
        return "the destination is not an API with a document: no request schema"
    doc = project.destination
    op = doc.operations.get(dest.operation)
    body = doc.request_body_schema(op) if op is not None else None
    if body is None:
        return f"'{dest.operation}' documents no JSON request body"
    compiled = CompiledSchema(SchemaConverter(doc).convert(body, "request"))
    operation = dest.operation

    def failure(record: Any) -> _Failure | None:
        try:
            out = mapper.destination(record)
        except Exception:
            return None  # the row checks report records a row cannot map
        if out is None or compiled.is_valid(out):
            return None
        json_path, message = compiled.messages(out)[0]
        return _Failure(
            DESTINATION_INVALID,
            f"the mapped record breaks the request body of '{operation}' at {json_path}: {message}",
            json_path,
        )

    return failure


def _destination_result(
    project: Project,
    mapper: _Mapper,
    judge: Judge | str,
    record: Any,
    search: _Search,
    redactor: Redactor,
    duration: float,
) -> CheckResult:
    dest = project.spec.spec.destination
    op_id = dest.operation if dest is not None and dest.operation else "destination"
    check_id = f"contract/mapping/destination_schema/{op_id}"
    name = f"mapped records validate against {op_id}"
    if isinstance(judge, str):
        return CheckResult(
            id=check_id,
            name=name,
            status="skipped",
            summary=judge,
            attributes={"check": "destination_schema"},
        )
    found = None if record is None else judge(record)  # re-validated before it is reported
    findings: tuple[Finding, ...] = ()
    if record is not None and found is not None:
        findings = (
            _finding(
                project,
                "destination_schema",
                found,
                record,
                search.seed,
                redactor,
                destination=mapper.destination(record),
                operation=op_id,
            ),
        )
    return CheckResult(
        id=check_id,
        name=name,
        status="failed" if findings else "passed",
        summary=findings[0].message
        if findings
        else f"{search.max_examples} mapped records validate against '{op_id}'",
        findings=findings,
        duration_seconds=duration,
        attributes={
            "check": "destination_schema",
            "operation": op_id,
            "seed": search.seed,
            "max_examples": search.max_examples,
        },
    )


def _finding(
    project: Project,
    check: str,
    failure: _Failure,
    record: Any,
    seed: int,
    redactor: Redactor,
    *,
    index: int | None = None,
    destination: Any = None,
    operation: str | None = None,
) -> Finding:
    shown = redactor.text(json.dumps(record, sort_keys=True, ensure_ascii=False, default=str))
    mapping = project.spec.spec.data_mapping
    assert mapping is not None
    details: dict[str, Any] = {"source_record": json.loads(shown)}
    if destination is not None:
        details["destination_record"] = json.loads(
            redactor.text(json.dumps(destination, sort_keys=True, default=str))
        )
    if index is not None:
        source = project.spec.source
        line = source.line_of(["data_mapping", "fields", index])
        details["spec"] = f"{source.file}:{line}" if line is not None else source.file
    excerpt = shown if len(shown) <= _EXCERPT else shown[:_EXCERPT] + "..."
    return Finding(
        check=check,
        message=redactor.text(f"{failure.message}; minimal source record: {excerpt}"),
        code=failure.code,
        operation=operation or mapping.source_operation,
        json_path=failure.json_path,
        seed=seed,
        details=details,
    )


def _error(suffix: str, reason: str, **attributes: Any) -> CheckResult:
    return CheckResult(
        id=f"contract/mapping/{suffix}",
        name=f"mapping {suffix}",
        status="error",
        summary=reason,
        attributes={"check": suffix.split("/", 1)[0], **attributes},
    )


# -- functions -------------------------------------------------------------------------------------


@contextmanager
def _on_path(directory: Path | None) -> Iterator[None]:
    """The integration's working_dir on ``sys.path`` while its functions are imported and run."""
    if directory is None:
        yield
        return
    entry = str(directory)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with suppress(ValueError):
            sys.path.remove(entry)


def _load_function(reference: str) -> Transform:
    module_name, _, name = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise MappingError(f"cannot import {module_name} for {reference}: {_line(exc)}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise MappingError(f"{reference}: {module_name} has no function '{name}'")
    return function  # type: ignore[no-any-return]


# -- wording ---------------------------------------------------------------------------------------


def _same_number(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return bool(actual == expected)
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)
    return bool(actual == expected)


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
