"""Cross-checks between a spec and its OpenAPI documents: what the spec names must exist.

Every operation the spec names must be in the document that serves it, and every field the data
mapping reads must be in the provider's response schema (and every field it writes in the
destination's request schema). Problems are located in the spec, where the fix usually is.
"""

from __future__ import annotations

from harness.openapi.document import OpenAPIDocument
from harness.openapi.fields import FieldInfo, lookup_field, records_schema
from harness.problems import PathPart, Problem
from harness.spec.loader import LoadedSpec


def _unknown_operation(doc: OpenAPIDocument, op_id: str) -> str:
    known = ", ".join(sorted(doc.operations)) or "none"
    return f"operation '{op_id}' is not in {doc.display} (operations: {known})"


def reference_problems(
    loaded: LoadedSpec, provider: OpenAPIDocument, destination: OpenAPIDocument | None
) -> list[Problem]:
    """Everything the spec refers to that its documents do not have."""
    spec, source = loaded.spec, loaded.source
    problems: list[Problem] = []
    add = problems.append
    provider_ops = provider.operations

    auth = spec.authentication
    if auth is not None and auth.token_operation and auth.token_operation not in provider_ops:
        add(
            source.problem(
                ["authentication", "token_operation"],
                _unknown_operation(provider, auth.token_operation),
            )
        )
    if spec.rate_limits is not None:
        for op_id in spec.rate_limits.operation_costs or {}:
            if op_id not in provider_ops:
                add(
                    source.problem(
                        ["rate_limits", "operation_costs", op_id],
                        _unknown_operation(provider, op_id),
                    )
                )

    if spec.contract is not None:
        for index, rule in enumerate(spec.contract.checks or ()):
            for position, op_id in enumerate(rule.operations or ()):
                if op_id not in provider_ops:
                    add(
                        source.problem(
                            ["contract", "checks", index, "operations", position],
                            _unknown_operation(provider, op_id),
                        )
                    )

    if spec.load is not None:
        problems.extend(_load_problems(loaded, provider))

    mapping = spec.data_mapping
    if mapping is not None:
        op = provider_ops.get(mapping.source_operation)
        if op is None:
            add(
                source.problem(
                    ["data_mapping", "source_operation"],
                    _unknown_operation(provider, mapping.source_operation),
                )
            )
        else:
            body = provider.response_body_schema(op)
            record = None if body is None else records_schema(provider, body, mapping.records_path)
            if body is None:
                add(
                    source.problem(
                        ["data_mapping", "source_operation"],
                        f"operation '{op.operation_id}' documents no JSON 2xx response body",
                    )
                )
            elif record is None:
                add(
                    source.problem(
                        ["data_mapping", "records_path"],
                        f"'{mapping.records_path}' is not in the response of '{op.operation_id}'",
                    )
                )
            else:
                for index, row in enumerate(mapping.fields):
                    found = lookup_field(provider, record, row.source)
                    where: list[PathPart] = ["data_mapping", "fields", index, "source"]
                    if isinstance(found, str):
                        add(
                            source.problem(
                                where, f"{found}, in the response of '{op.operation_id}'"
                            )
                        )
                    else:
                        problems.extend(_enum_problems(loaded, index, found))

    dest = spec.destination
    if dest is not None and dest.kind == "api" and destination is not None and dest.operation:
        dest_op = destination.operations.get(dest.operation)
        if dest_op is None:
            add(
                source.problem(
                    ["destination", "operation"], _unknown_operation(destination, dest.operation)
                )
            )
        elif mapping is not None:
            body = destination.request_body_schema(dest_op)
            if body is None:
                add(
                    source.problem(
                        ["destination", "operation"],
                        f"operation '{dest.operation}' takes no JSON request body",
                    )
                )
            else:
                for index, row in enumerate(mapping.fields):
                    found = lookup_field(destination, body, row.destination)
                    if isinstance(found, str):
                        add(
                            source.problem(
                                ["data_mapping", "fields", index, "destination"],
                                f"{found}, in the request body of '{dest.operation}'",
                            )
                        )
    return problems


def _load_problems(loaded: LoadedSpec, provider: OpenAPIDocument) -> list[Problem]:
    """Operations the ``load`` section names: caught by ``harness validate``, not minutes into a
    load run (or never, for a threshold that would only ever report "never produced").

    The mix (``load.operations``) is sent to the provider, so it must name provider operations.
    A threshold judges one operation of whatever target runs: a provider operation, or one of
    ``load.integration.operations`` (``--target integration``). Those belong to the service's own
    document, which only the load stage loads; it checks them when it plans such a run.
    """
    load = loaded.spec.load
    assert load is not None
    source = loaded.source
    problems: list[Problem] = []
    for index, entry in enumerate(load.operations or ()):
        if entry.operation not in provider.operations:
            problems.append(
                source.problem(
                    ["load", "operations", index, "operation"],
                    _unknown_operation(provider, entry.operation),
                )
            )
    served = (
        {entry.operation for entry in load.integration.operations} if load.integration else set()
    )
    for index, threshold in enumerate(load.thresholds or ()):
        op_id = threshold.operation
        if op_id is None or op_id in provider.operations or op_id in served:
            continue
        message = _unknown_operation(provider, op_id)
        if served:
            message += f" nor in load.integration.operations ({', '.join(sorted(served))})"
        problems.append(source.problem(["load", "thresholds", index, "operation"], message))
    return problems


def _enum_problems(loaded: LoadedSpec, index: int, field: FieldInfo) -> list[Problem]:
    """An enum translation keyed by a value the provider never sends is almost always a typo."""
    assert loaded.spec.data_mapping is not None
    row = loaded.spec.data_mapping.fields[index]
    transformation = row.transformation
    if transformation is None or transformation.kind != "enum" or field.enum is None:
        return []
    allowed = {str(v) for v in field.enum}
    return [
        loaded.source.problem(
            ["data_mapping", "fields", index, "transformation", "values", key],
            f"'{key}' is not a value of '{row.source}' in the provider document (values: {', '.join(sorted(allowed))})",
        )
        for key in (transformation.values or {})
        if key not in allowed
    ]
