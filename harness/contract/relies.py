"""What the integration relies on, checked statically between the spec and the documents.

``harness validate`` already refuses a spec that names a field or an operation its documents do
not have. These checks go further and ask whether what the integration *relies on* holds: a
field the mapping marks required must be required (and not nullable) in the provider's response;
its type must survive the declared transformation into the destination field's type; every value
of an enum the mapping translates must have a translation; the operations the integration calls
must take what it sends (the token request's form fields, the destination's request body) and be
protected by an auth scheme of the kind the spec authenticates with.

They run on a :class:`~harness.project.Project`, whose documents may be newer than the spec (a
project built with this month's provider document is how a team asks "does our integration
still fit?"), so every lookup copes with absence instead of assuming ``validate`` passed.

Every judgement is a :class:`~harness.results.model.CheckResult` with the id
``contract/relies/<check>/<subject>``; each finding names the spec line and, where the document
defines the thing, the document line, plus the JSON path in the response or request body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.openapi.document import OpenAPIDocument, Operation, Ref
from harness.openapi.fields import (
    FieldInfo,
    field_schema,
    lookup_field,
    record_fields,
    records_schema,
)
from harness.problems import PathPart, format_path
from harness.project import Project
from harness.results.model import CheckResult, Finding
from harness.spec.model import MappingRow, Transformation

# Stable codes of the findings this module reports (docs/contract-static.md lists them).
MISSING_OPERATION = "HC501"
NOT_ACCEPTED = "HC502"
NOT_SENT = "HC503"
MISSING_FIELD = "HC504"
INCOMPATIBLE_TYPE = "HC505"
REQUIREDNESS = "HC506"
UNMAPPED_ENUM_VALUE = "HC507"
UNKNOWN_ENUM_KEY = "HC508"
DESTINATION_ENUM = "HC509"
AUTH_SCHEME = "HC510"
UNKNOWN_SCOPE = "HC511"
NO_BODY = "HC512"

_SCALARS = frozenset({"string", "integer", "number", "boolean"})


def check_relies_on(project: Project) -> tuple[CheckResult, ...]:
    """One CheckResult per used operation, auth, mapped field and translated enum."""
    return tuple(_Checker(project).run())


@dataclass
class _Collector:
    """The findings of one check, built with the spec and document lines already resolved."""

    checker: _Checker
    check: str
    findings: list[Finding] = field(default_factory=list)

    def add(
        self,
        code: str,
        message: str,
        *,
        spec_path: Sequence[PathPart],
        operation: str | None = None,
        json_path: str | None = None,
        document: OpenAPIDocument | None = None,
        node: Any = None,
    ) -> None:
        details: dict[str, Any] = {
            "spec": self.checker.spec_where(spec_path),
            "spec_path": format_path(spec_path),
        }
        if document is not None:
            where = self.checker.document_where(document, node)
            if where is not None:
                details["document"] = where
        self.findings.append(
            Finding(
                check=self.check,
                message=message,
                code=code,
                operation=operation,
                json_path=json_path,
                details=details,
            )
        )


class _Checker:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.spec = project.spec.spec
        self.source = project.spec.source
        self._indexes: dict[int, dict[int, tuple[PathPart, ...]]] = {}

    # -- locations ---------------------------------------------------------------------------

    def spec_where(self, path: Sequence[PathPart]) -> str:
        line = self.source.line_of(path)
        return f"{self.source.file}:{line}" if line is not None else self.source.file

    def document_where(self, document: OpenAPIDocument, node: Any) -> str | None:
        """``FILE:LINE`` of a node of ``document`` (found by identity), when it is in the file."""
        if node is None:
            return None
        index = self._indexes.get(id(document))
        if index is None:
            index = self._indexes[id(document)] = node_paths(document.data)
        path = index.get(id(node))
        if path is None:
            return None
        line = document.source.line_of(path)
        return f"{document.display}:{line}" if line is not None else document.display

    # -- the checks ----------------------------------------------------------------------------

    def run(self) -> Iterator[CheckResult]:
        yield from self._auth()
        yield from self._operations()
        yield from self._fields()

    def _auth(self) -> Iterator[CheckResult]:
        auth = self.spec.authentication
        if auth is None or auth.kind in ("none", "custom"):
            return
        out = _Collector(self, "auth_scheme")
        doc = self.project.provider
        schemes = security_schemes(doc)
        matching = [name for name, scheme in schemes.items() if scheme_serves(scheme, auth.kind)]
        where: list[PathPart] = ["authentication", "kind"]
        if not matching:
            listing = ", ".join(f"{n} ({_describe_scheme(s)})" for n, s in schemes.items())
            out.add(
                AUTH_SCHEME,
                f"the spec authenticates with {auth.kind}, but {doc.display} declares no such "
                f"security scheme (schemes: {listing or 'none'})",
                spec_path=where,
            )
        if auth.kind == "api_key" and matching:
            exact = [
                n
                for n in matching
                if str(schemes[n].get("in")) == auth.key_in
                and str(schemes[n].get("name", "")).lower() == str(auth.key_name).lower()
            ]
            if not exact:
                found = ", ".join(
                    f"{schemes[n].get('in')} '{schemes[n].get('name')}'" for n in matching
                )
                out.add(
                    AUTH_SCHEME,
                    f"the spec sends the API key in {auth.key_in} '{auth.key_name}', the document "
                    f"expects it in {found}",
                    spec_path=["authentication", "key_name"],
                    document=doc,
                    node=schemes[matching[0]],
                )
        if auth.kind == "oauth2_client_credentials" and matching and auth.scopes:
            offered: set[str] = set()
            for name in matching:
                offered.update(_client_credentials_scopes(schemes[name]))
            for index, scope in enumerate(auth.scopes):
                if scope not in offered:
                    out.add(
                        UNKNOWN_SCOPE,
                        f"scope '{scope}' is not offered by the document's client-credentials "
                        f"flow (scopes: {', '.join(sorted(offered)) or 'none'})",
                        spec_path=["authentication", "scopes", index],
                        document=doc,
                        node=schemes[matching[0]],
                    )
        mapping = self.spec.data_mapping
        if mapping is not None and matching:
            op = doc.operations.get(mapping.source_operation)
            if op is not None:
                required = _effective_security(doc, op)
                if required and not any(
                    requirement and set(requirement) <= set(matching) for requirement in required
                ):
                    names = " or ".join(" + ".join(sorted(r)) or "none" for r in required)
                    out.add(
                        AUTH_SCHEME,
                        f"'{op.operation_id}' requires {names}, none of which is a "
                        f"{auth.kind} scheme",
                        spec_path=["data_mapping", "source_operation"],
                        operation=op.operation_id,
                        document=doc,
                        node=op.definition,
                    )
        yield _result(
            "auth",
            auth.kind,
            f"the document supports {auth.kind} as the spec uses it",
            out.findings,
        )

    def _operations(self) -> Iterator[CheckResult]:
        spec = self.spec
        auth = spec.authentication
        if auth is not None and auth.kind == "oauth2_client_credentials" and auth.token_operation:
            yield self._token_operation(auth.token_operation)
        if spec.data_mapping is not None:
            yield self._source_operation(spec.data_mapping.source_operation)
        dest = spec.destination
        if (
            dest is not None
            and dest.kind == "api"
            and dest.operation
            and self.project.destination is not None
        ):
            yield self._destination_operation(self.project.destination, dest.operation)

    def _lookup(
        self, out: _Collector, doc: OpenAPIDocument, op_id: str, where: list[PathPart]
    ) -> Operation | None:
        op = doc.operations.get(op_id)
        if op is None:
            known = ", ".join(sorted(doc.operations)) or "none"
            out.add(
                MISSING_OPERATION,
                f"operation '{op_id}' is not in {doc.display} (operations: {known})",
                spec_path=where,
                operation=op_id,
            )
        return op

    def _token_operation(self, op_id: str) -> CheckResult:
        auth = self.spec.authentication
        assert auth is not None
        doc = self.project.provider
        out = _Collector(self, "operation")
        where: list[PathPart] = ["authentication", "token_operation"]
        op = self._lookup(out, doc, op_id, where)
        if op is not None:
            body = _request_body(doc, op)
            sent = {"grant_type", "client_id", "client_secret"}
            if auth.scopes:
                sent.add("scope")
            if auth.refresh_tokens:
                sent.add("refresh_token")
            if body is None:
                out.add(
                    NO_BODY,
                    f"'{op_id}' documents no form or JSON request body for the token request",
                    spec_path=where,
                    operation=op_id,
                    document=doc,
                    node=op.definition,
                )
            else:
                self._sent_fields(out, doc, op, body, sent, where, "$")
                grant = lookup_field(doc, body, "grant_type")
                if isinstance(grant, FieldInfo) and grant.enum is not None:
                    wanted = ["client_credentials"] + (
                        ["refresh_token"] if auth.refresh_tokens else []
                    )
                    for value in wanted:
                        if value not in grant.enum:
                            out.add(
                                NOT_ACCEPTED,
                                f"'{op_id}' does not accept grant_type '{value}' (accepts: "
                                f"{', '.join(map(str, grant.enum))})",
                                spec_path=where,
                                operation=op_id,
                                json_path="$.grant_type",
                                document=doc,
                                node=_node(field_schema(doc, body, "grant_type")),
                            )
            response = doc.response_body_schema(op)
            if response is None:
                out.add(
                    NO_BODY,
                    f"'{op_id}' documents no JSON 2xx response, so there is no access_token to read",
                    spec_path=where,
                    operation=op_id,
                    document=doc,
                    node=op.definition,
                )
            else:
                token = lookup_field(doc, response, "access_token")
                if isinstance(token, str):
                    out.add(
                        MISSING_FIELD,
                        f"{token}, in the response of '{op_id}'",
                        spec_path=where,
                        operation=op_id,
                        json_path="$.access_token",
                        document=doc,
                        node=response.node,
                    )
                elif not token.required:
                    out.add(
                        REQUIREDNESS,
                        f"'{op_id}' documents access_token as optional in its response",
                        spec_path=where,
                        operation=op_id,
                        json_path="$.access_token",
                        document=doc,
                        node=_node(field_schema(doc, response, "access_token")),
                    )
        return _result(
            "operation",
            op_id,
            f"'{op_id}' takes the token request the integration sends",
            out.findings,
            role="token",
        )

    def _sent_fields(
        self,
        out: _Collector,
        doc: OpenAPIDocument,
        op: Operation,
        body: Ref,
        sent: set[str],
        where: list[PathPart],
        root: str,
    ) -> None:
        """Required body fields must be sent; sent fields must be accepted where extra are barred."""
        documented = dict(record_fields(doc, body))
        for name, info in documented.items():
            if info.required and name not in sent:
                out.add(
                    NOT_SENT,
                    f"'{op.operation_id}' requires '{name}' in its request body, which the "
                    "integration does not send",
                    spec_path=where,
                    operation=op.operation_id,
                    json_path=f"{root}.{name}",
                    document=doc,
                    node=_node(field_schema(doc, body, name)),
                )
        if _forbids_extra(doc, body):
            for name in sorted(sent - documented.keys()):
                out.add(
                    NOT_ACCEPTED,
                    f"'{op.operation_id}' does not accept '{name}' in its request body "
                    "(additional properties are not allowed)",
                    spec_path=where,
                    operation=op.operation_id,
                    json_path=f"{root}.{name}",
                    document=doc,
                    node=doc.deref(body.node, body.uri).node,
                )

    def _source_operation(self, op_id: str) -> CheckResult:
        doc = self.project.provider
        mapping = self.spec.data_mapping
        assert mapping is not None
        out = _Collector(self, "operation")
        where: list[PathPart] = ["data_mapping", "source_operation"]
        op = self._lookup(out, doc, op_id, where)
        attributes: dict[str, Any] = {}
        if op is not None:
            body = doc.response_body_schema(op)
            if body is None:
                out.add(
                    NO_BODY,
                    f"'{op_id}' documents no JSON 2xx response body to read records from",
                    spec_path=where,
                    operation=op_id,
                    document=doc,
                    node=op.definition,
                )
            elif records_schema(doc, body, mapping.records_path) is None:
                out.add(
                    MISSING_FIELD,
                    f"'{mapping.records_path}' is not in the response of '{op_id}'",
                    spec_path=["data_mapping", "records_path"],
                    operation=op_id,
                    json_path=f"$.{mapping.records_path}",
                    document=doc,
                    node=body.node,
                )
            required = [
                f"{p.node.get('in')} {p.node.get('name')}"
                for p in doc.parameters(op)
                if p.node.get("required") and p.node.get("in") != "body"
            ]
            if required:
                # The spec does not say how the integration fills these: evidence, not a verdict.
                attributes["required_parameters"] = required
        return _result(
            "operation",
            op_id,
            f"'{op_id}' answers with the records the mapping reads",
            out.findings,
            role="source",
            **attributes,
        )

    def _destination_operation(self, doc: OpenAPIDocument, op_id: str) -> CheckResult:
        mapping = self.spec.data_mapping
        out = _Collector(self, "operation")
        where: list[PathPart] = ["destination", "operation"]
        op = self._lookup(out, doc, op_id, where)
        if op is not None:
            body = doc.request_body_schema(op)
            if body is None:
                out.add(
                    NO_BODY,
                    f"'{op_id}' takes no JSON request body to write records with",
                    spec_path=where,
                    operation=op_id,
                    document=doc,
                    node=op.definition,
                )
            elif mapping is not None:
                written: set[str] = set()
                for index, row in enumerate(mapping.fields):
                    written.add(row.destination.split(".", 1)[0].removesuffix("[]"))
                    found = lookup_field(doc, body, row.destination)
                    if isinstance(found, str):
                        out.add(
                            NOT_ACCEPTED,
                            f"{found}, in the request body of '{op_id}'",
                            spec_path=["data_mapping", "fields", index, "destination"],
                            operation=op_id,
                            json_path=_json_path("$", row.destination),
                            document=doc,
                            node=doc.deref(body.node, body.uri).node,
                        )
                for name, info in record_fields(doc, body):
                    if info.required and name not in written:
                        out.add(
                            NOT_SENT,
                            f"'{op_id}' requires '{name}' in its request body, which no mapping "
                            "row writes",
                            spec_path=["data_mapping", "fields"],
                            operation=op_id,
                            json_path=f"$.{name}",
                            document=doc,
                            node=_node(field_schema(doc, body, name)),
                        )
        return _result(
            "operation",
            op_id,
            f"'{op_id}' takes the records the mapping writes",
            out.findings,
            role="destination",
        )

    # -- mapping rows ----------------------------------------------------------------------------

    def _fields(self) -> Iterator[CheckResult]:
        mapping = self.spec.data_mapping
        if mapping is None:
            return
        doc = self.project.provider
        op = doc.operations.get(mapping.source_operation)
        body = doc.response_body_schema(op) if op is not None else None
        record = records_schema(doc, body, mapping.records_path) if body is not None else None
        base = records_json_path(doc, body, mapping.records_path)
        dest_body = self._destination_body()
        for index, row in enumerate(mapping.fields):
            if record is None:
                reason = (
                    f"no record schema: see contract/relies/operation/{mapping.source_operation}"
                )
                yield _skipped("field", row.source, reason, index=index)
                if _kind(row) == "enum":
                    yield _skipped("enum", row.source, reason, index=index)
                continue
            info = lookup_field(doc, record, row.source)
            yield self._field(index, row, record, info, base, dest_body)
            if _kind(row) == "enum":
                yield self._enum(index, row, info, base, dest_body)

    def _destination_body(self) -> tuple[OpenAPIDocument, Ref] | None:
        dest = self.spec.destination
        doc = self.project.destination
        if dest is None or dest.kind != "api" or doc is None or not dest.operation:
            return None
        op = doc.operations.get(dest.operation)
        body = doc.request_body_schema(op) if op is not None else None
        return None if body is None else (doc, body)

    def _field(
        self,
        index: int,
        row: MappingRow,
        record: Ref,
        info: FieldInfo | str,
        base: str,
        dest_body: tuple[OpenAPIDocument, Ref] | None,
    ) -> CheckResult:
        doc = self.project.provider
        mapping = self.spec.data_mapping
        assert mapping is not None
        op_id = mapping.source_operation
        out = _Collector(self, "field")
        where: list[PathPart] = ["data_mapping", "fields", index]
        json_path = _json_path(base, row.source)
        node = _node(field_schema(doc, record, row.source))
        if isinstance(info, str):
            out.add(
                MISSING_FIELD,
                f"{info}, in the response of '{op_id}'",
                spec_path=[*where, "source"],
                operation=op_id,
                json_path=json_path,
                document=doc,
                node=doc.deref(record.node, record.uri).node,
            )
            return _result("field", row.source, "", out.findings, index=index)
        if row.required and not info.required:
            out.add(
                REQUIREDNESS,
                f"the mapping marks '{row.source}' required, but '{op_id}' documents it as "
                "optional: records without it are valid responses",
                spec_path=[*where, "required"],
                operation=op_id,
                json_path=json_path,
                document=doc,
                node=node,
            )
        if row.required and info.nullable:
            out.add(
                REQUIREDNESS,
                f"the mapping marks '{row.source}' required, but '{op_id}' documents it as "
                "nullable",
                spec_path=[*where, "required"],
                operation=op_id,
                json_path=json_path,
                document=doc,
                node=node,
            )
        problem = _source_type_problem(row, info)
        if problem is not None:
            out.add(
                INCOMPATIBLE_TYPE,
                problem,
                spec_path=[*where, "transformation"] if row.transformation else [*where, "source"],
                operation=op_id,
                json_path=json_path,
                document=doc,
                node=node,
            )
        if dest_body is not None:
            self._destination_field(out, index, row, info, dest_body)
        return _result(
            "field",
            row.source,
            f"'{row.source}' is in the response of '{op_id}' as the mapping needs it",
            out.findings,
            index=index,
        )

    def _destination_field(
        self,
        out: _Collector,
        index: int,
        row: MappingRow,
        info: FieldInfo,
        dest_body: tuple[OpenAPIDocument, Ref],
    ) -> None:
        doc, body = dest_body
        dest = self.spec.destination
        assert dest is not None and dest.operation is not None
        where: list[PathPart] = ["data_mapping", "fields", index]
        target = lookup_field(doc, body, row.destination)
        if isinstance(target, str):
            return  # the destination operation's check reports it, once
        json_path = _json_path("$", row.destination)
        node = _node(field_schema(doc, body, row.destination))
        if target.required and not row.required:
            out.add(
                REQUIREDNESS,
                f"'{dest.operation}' requires '{row.destination}', but the mapping marks the row "
                "optional: records without it would be rejected",
                spec_path=[*where, "required"],
                operation=dest.operation,
                json_path=json_path,
                document=doc,
                node=node,
            )
        produced = _produced_types(row, info)
        many = "[]" in row.source and "[]" not in row.destination
        if many:
            if target.types and "array" not in target.types:
                out.add(
                    INCOMPATIBLE_TYPE,
                    f"'{row.source}' gives a list, but '{row.destination}' is "
                    f"{_types(target.types)} in '{dest.operation}'",
                    spec_path=[*where, "destination"],
                    operation=dest.operation,
                    json_path=json_path,
                    document=doc,
                    node=node,
                )
                return
            items = lookup_field(doc, body, row.destination + "[]")
            if isinstance(items, str):
                return
            target = items
        if produced and target.types and not _accepts(target.types, produced):
            out.add(
                INCOMPATIBLE_TYPE,
                f"the mapping gives {_types(produced)} for '{row.destination}', which "
                f"'{dest.operation}' takes as {_types(target.types)}",
                spec_path=[*where, "transformation"] if row.transformation else [*where, "source"],
                operation=dest.operation,
                json_path=json_path,
                document=doc,
                node=node,
            )
        if _kind(row) == "none" and info.enum is not None and target.enum is not None:
            outside = [v for v in info.enum if v not in target.enum]
            if outside:
                out.add(
                    DESTINATION_ENUM,
                    f"'{row.source}' can be {_values(outside)}, which '{row.destination}' does "
                    f"not accept (accepts: {_values(target.enum)}); translate it with kind: enum",
                    spec_path=[*where, "transformation"] if row.transformation else where,
                    operation=dest.operation,
                    json_path=json_path,
                    document=doc,
                    node=node,
                )

    def _enum(
        self,
        index: int,
        row: MappingRow,
        info: FieldInfo | str,
        base: str,
        dest_body: tuple[OpenAPIDocument, Ref] | None,
    ) -> CheckResult:
        mapping = self.spec.data_mapping
        assert mapping is not None and row.transformation is not None
        op_id = mapping.source_operation
        if isinstance(info, str):
            return _skipped(
                "enum", row.source, f"'{row.source}' is not in the document", index=index
            )
        if info.enum is None:
            return _skipped(
                "enum",
                row.source,
                f"'{op_id}' lists no values for '{row.source}': coverage cannot be checked",
                index=index,
            )
        doc = self.project.provider
        out = _Collector(self, "enum")
        where: list[PathPart] = ["data_mapping", "fields", index, "transformation", "values"]
        json_path = _json_path(base, row.source)
        values = row.transformation.values or {}
        provider = {_enum_key(v): v for v in info.enum}
        node = None
        mapping_op = doc.operations.get(op_id)
        if mapping_op is not None:
            body = doc.response_body_schema(mapping_op)
            record = records_schema(doc, body, mapping.records_path) if body else None
            node = _node(field_schema(doc, record, row.source)) if record else None
        for key, value in provider.items():
            if key not in values:
                out.add(
                    UNMAPPED_ENUM_VALUE,
                    f"'{op_id}' can send {row.source} = {json.dumps(value)}, which the mapping "
                    "does not translate",
                    spec_path=where,
                    operation=op_id,
                    json_path=json_path,
                    document=doc,
                    node=node,
                )
        for key in values:
            if key not in provider:
                out.add(
                    UNKNOWN_ENUM_KEY,
                    f"the mapping translates {row.source} = '{key}', a value '{op_id}' does not "
                    f"have (values: {_values(info.enum)})",
                    spec_path=[*where, key],
                    operation=op_id,
                    json_path=json_path,
                )
        if dest_body is not None:
            dest_doc, dest_ref = dest_body
            dest = self.spec.destination
            assert dest is not None
            target = lookup_field(dest_doc, dest_ref, row.destination)
            if isinstance(target, FieldInfo) and target.enum is not None:
                for key, value in values.items():
                    if value not in target.enum:
                        out.add(
                            DESTINATION_ENUM,
                            f"the mapping translates '{key}' to {json.dumps(value)}, which "
                            f"'{row.destination}' does not accept (accepts: "
                            f"{_values(target.enum)})",
                            spec_path=[*where, key],
                            operation=dest.operation,
                            json_path=_json_path("$", row.destination),
                            document=dest_doc,
                            node=_node(field_schema(dest_doc, dest_ref, row.destination)),
                        )
        return _result(
            "enum",
            row.source,
            f"every value of '{row.source}' has a translation ({len(provider)} values)",
            out.findings,
            index=index,
        )


# -- results -------------------------------------------------------------------------------------


def _result(
    check: str, subject: str, passed: str, findings: list[Finding], **attributes: Any
) -> CheckResult:
    if findings:
        count = len(findings)
        summary = f"{count} finding{'s' if count != 1 else ''}: {findings[0].message}"
    else:
        summary = passed
    return CheckResult(
        id=f"contract/relies/{check}/{subject}",
        name=f"relies on {check}: {subject}",
        status="failed" if findings else "passed",
        summary=summary,
        findings=tuple(findings),
        attributes={"check": check, "subject": subject, **attributes},
    )


def _skipped(check: str, subject: str, reason: str, **attributes: Any) -> CheckResult:
    return CheckResult(
        id=f"contract/relies/{check}/{subject}",
        name=f"relies on {check}: {subject}",
        status="skipped",
        summary=reason,
        attributes={"check": check, "subject": subject, **attributes},
    )


# -- helpers -------------------------------------------------------------------------------------


def node_paths(data: Any) -> dict[int, tuple[PathPart, ...]]:
    """id(mapping) -> its path, for every mapping of a document (nodes keep their identity):
    how a finding about a node reached through ``$ref`` names its line in the file."""
    paths: dict[int, tuple[PathPart, ...]] = {}
    stack: list[tuple[Any, tuple[PathPart, ...]]] = [(data, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            paths.setdefault(id(node), path)
            stack.extend((value, (*path, key)) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, (*path, index)) for index, value in enumerate(node))
    return paths


def _node(ref: Ref | None) -> Any:
    return None if ref is None else ref.node


def _kind(row: MappingRow) -> str:
    return "none" if row.transformation is None else row.transformation.kind


def _json_path(base: str, dotted: str) -> str:
    return base + "." + dotted.replace("[]", "[*]")


def records_json_path(doc: OpenAPIDocument, body: Ref | None, records_path: str | None) -> str:
    """``$.items[*]`` for records in a list under ``items``; ``$`` for a single record."""
    if body is None:
        return "$"
    node = field_schema(doc, body, records_path) if records_path else doc.deref(body.node, body.uri)
    base = f"$.{records_path}" if records_path else "$"
    resolved = None if node is None else node.node
    if isinstance(resolved, dict) and (resolved.get("type") == "array" or "items" in resolved):
        return base + "[*]"
    return base


def _request_body(doc: OpenAPIDocument, op: Operation) -> Ref | None:
    """The token request's body schema: form-encoded first (what OAuth2 sends), else JSON."""
    if doc.version == "2.0":
        form = [p for p in doc.parameters(op) if p.node.get("in") == "formData"]
        if form:
            schema = {
                "type": "object",
                "properties": {str(p.node["name"]): {} for p in form},
                "required": [str(p.node["name"]) for p in form if p.node.get("required")],
            }
            return Ref(schema, doc.uri)
        return doc.request_body_schema(op)
    body = op.definition.get("requestBody")
    if body is None:
        return None
    ref = doc.deref(body)
    content = ref.node.get("content") or {}
    for media, media_object in content.items():
        bare = media.split(";", 1)[0].strip().lower()
        if (
            bare == "application/x-www-form-urlencoded"
            and isinstance(media_object, dict)
            and "schema" in media_object
        ):
            return doc.deref(media_object["schema"], ref.uri)
    return doc.request_body_schema(op)


def _forbids_extra(doc: OpenAPIDocument, ref: Ref) -> bool:
    node = doc.deref(ref.node, ref.uri).node
    return isinstance(node, dict) and node.get("additionalProperties") is False


def security_schemes(doc: OpenAPIDocument) -> dict[str, dict[str, Any]]:
    """The document's security schemes by name (``securityDefinitions`` in Swagger 2.0)."""
    if doc.version == "2.0":
        raw = doc.data.get("securityDefinitions") or {}
    else:
        raw = (doc.data.get("components") or {}).get("securitySchemes") or {}
    out: dict[str, dict[str, Any]] = {}
    for name, scheme in raw.items():
        node = doc.deref(scheme).node
        if isinstance(node, dict):
            out[str(name)] = node
    return out


def scheme_serves(scheme: dict[str, Any], kind: str) -> bool:
    """Whether a security scheme serves the spec's authentication kind."""
    kind_of = str(scheme.get("type", ""))
    http = str(scheme.get("scheme", "")).lower()
    if kind == "oauth2_client_credentials":
        if kind_of != "oauth2":
            return False
        flows = scheme.get("flows")
        if isinstance(flows, dict):
            return "clientCredentials" in flows
        return scheme.get("flow") == "application"
    if kind == "api_key":
        return kind_of == "apiKey"
    if kind == "basic":
        return kind_of == "basic" or (kind_of == "http" and http == "basic")
    if kind == "bearer":
        return (kind_of == "http" and http == "bearer") or kind_of in ("oauth2", "openIdConnect")
    return False


def _describe_scheme(scheme: dict[str, Any]) -> str:
    kind = str(scheme.get("type", "?"))
    if kind == "http":
        return f"http {scheme.get('scheme', '?')}"
    if kind == "apiKey":
        return f"apiKey in {scheme.get('in', '?')}"
    return kind


def _client_credentials_scopes(scheme: dict[str, Any]) -> set[str]:
    flows = scheme.get("flows")
    if isinstance(flows, dict):
        flow = flows.get("clientCredentials") or {}
        return set((flow.get("scopes") or {}).keys()) if isinstance(flow, dict) else set()
    return set((scheme.get("scopes") or {}).keys())


def _effective_security(doc: OpenAPIDocument, op: Operation) -> list[dict[str, Any]]:
    """The operation's security requirements (its own, else the document's); [] when open."""
    raw = op.definition.get("security", doc.data.get("security"))
    if not raw:
        return []
    requirements = [r for r in raw if isinstance(r, dict)]
    if any(not r for r in requirements):
        return []  # an empty requirement makes auth optional
    return requirements


def _accepts(target: frozenset[str], produced: frozenset[str]) -> bool:
    """Whether every produced JSON type is one the target accepts (integers are numbers)."""
    widened = set(target) | ({"integer"} if "number" in target else set())
    return produced <= widened


def _source_type_problem(row: MappingRow, info: FieldInfo) -> str | None:
    """Whether the source field's documented types fit the declared transformation."""
    transformation = row.transformation
    if transformation is None or not info.types:
        return None
    kind = transformation.kind
    shown = _types(info.types)
    if kind in ("date", "datetime") and not info.types <= {"string"}:
        return f"'{row.source}' is {shown} in the document, but a {kind} transformation parses text"
    if kind == "convert":
        allowed = _CONVERTIBLE.get(str(transformation.to_type), _SCALARS)
        if not info.types <= allowed:
            return (
                f"'{row.source}' is {shown} in the document, which does not convert to "
                f"{transformation.to_type}"
            )
    if kind == "enum" and info.types & {"object", "array"}:
        return f"'{row.source}' is {shown} in the document; an enum translation needs a scalar"
    return None


_CONVERTIBLE: dict[str, frozenset[str]] = {
    "string": _SCALARS,
    "integer": frozenset({"integer", "number", "string"}),
    "number": frozenset({"integer", "number", "string"}),
    "boolean": frozenset({"boolean", "integer", "string"}),
}


def _produced_types(row: MappingRow, info: FieldInfo) -> frozenset[str]:
    """The JSON types the transformation writes (empty: unknown)."""
    transformation: Transformation | None = row.transformation
    kind = _kind(row)
    if kind == "none":
        return info.types
    if kind in ("date", "datetime"):
        return frozenset({"string"})
    if kind == "convert" and transformation is not None and transformation.to_type:
        return frozenset({transformation.to_type})
    if kind == "enum" and transformation is not None and transformation.values:
        return frozenset(_json_type(v) for v in transformation.values.values())
    return frozenset()


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _enum_key(value: object) -> str:
    """How a document's enum value is written as a key of the spec's ``values`` map."""
    return value if isinstance(value, str) else json.dumps(value)


def _types(types: frozenset[str]) -> str:
    return " or ".join(sorted(types)) or "untyped"


def _values(values: Sequence[object]) -> str:
    return ", ".join(json.dumps(v) for v in values)
