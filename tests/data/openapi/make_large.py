"""Generate ``workspace-large.json``: an OpenAPI 3.0 document with 100+ operations.

Large real-world descriptions (Jira, Zendesk, HubSpot...) are mostly the same CRUD shapes
repeated over many resources, with shared components everywhere. Writing one by hand would be
noise, so this script builds it from a table of resources and their fields; the output is
committed next to it so tests never run the script. Re-run after editing the table:

    python tests/data/openapi/make_large.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("workspace-large.json")

# A field kind -> its schema. Kinds cover formats, bounds, patterns, enums, nullables and a
# writeOnly secret (sent on create, never returned).
KINDS: dict[str, dict[str, Any]] = {
    "str": {"type": "string", "minLength": 1, "maxLength": 200},
    "text": {"type": "string", "nullable": True, "maxLength": 10000},
    "email": {"type": "string", "format": "email", "maxLength": 254},
    "uri": {"type": "string", "format": "uri"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "uuid": {"type": "string", "format": "uuid"},
    "int32": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 100000},
    "int64": {"type": "integer", "format": "int64", "minimum": 1},
    "bool": {"type": "boolean"},
    "percent": {"type": "number", "format": "float", "minimum": 0, "maximum": 100},
    "rate": {"type": "number", "format": "double", "minimum": 0, "exclusiveMinimum": True},
    "money": {"$ref": "#/components/schemas/Money"},
    "address": {"$ref": "#/components/schemas/Address"},
    "tags": {
        "type": "array",
        "maxItems": 10,
        "uniqueItems": True,
        "items": {"type": "string", "maxLength": 40},
    },
    "color": {"type": "string", "pattern": "^#[0-9a-f]{6}$", "example": "#1f883d"},
    "code": {"type": "string", "pattern": "^[A-Z]{2,5}-[0-9]{1,6}$", "example": "OPS-42"},
    "locale": {"type": "string", "pattern": "^[a-z]{2}(-[A-Z]{2})?$", "example": "en-GB"},
    "byte": {"type": "string", "format": "byte"},
    "secret": {"type": "string", "format": "password", "minLength": 8, "writeOnly": True},
}

# (plural path, schema name, parent plural or None, required fields, optional fields, actions)
# Fields are "name:kind" or "name:enum=a|b|c". Actions add POST /{plural}/{id}/{action}.
RESOURCES: list[tuple[str, str, str | None, list[str], list[str], list[str]]] = [
    (
        "accounts",
        "Account",
        None,
        ["name:str", "plan:enum=free|team|enterprise"],
        ["billing_email:email", "website:uri", "seats:int32", "address:address"],
        ["suspend", "reactivate"],
    ),
    (
        "contacts",
        "Contact",
        "accounts",
        ["email:email", "full_name:str"],
        ["phone:str", "birthday:date", "locale:locale", "notes:text"],
        [],
    ),
    (
        "users",
        "User",
        None,
        ["email:email", "display_name:str", "role:enum=admin|member|guest", "password:secret"],
        ["avatar_url:uri", "last_login_at:datetime", "time_zone:str"],
        ["deactivate"],
    ),
    (
        "teams",
        "Team",
        None,
        ["name:str"],
        ["color:color", "description:text", "member_count:int32"],
        [],
    ),
    (
        "projects",
        "Project",
        None,
        ["key:code", "name:str", "status:enum=planned|active|done|archived"],
        ["starts_on:date", "ends_on:date", "budget:money", "labels:tags"],
        ["archive"],
    ),
    (
        "tasks",
        "Task",
        "projects",
        ["title:str", "state:enum=todo|doing|review|done"],
        ["due_on:date", "estimate_hours:rate", "progress:percent", "assignee_id:int64"],
        ["complete"],
    ),
    (
        "milestones",
        "Milestone",
        "projects",
        ["title:str", "due_on:date"],
        ["description:text", "progress:percent"],
        [],
    ),
    ("comments", "Comment", "tasks", ["body:str"], ["edited_at:datetime"], []),
    (
        "attachments",
        "Attachment",
        "tasks",
        ["file_name:str", "content:byte"],
        ["content_type:str", "size_bytes:int32"],
        [],
    ),
    (
        "invoices",
        "Invoice",
        None,
        ["number:code", "total:money", "status:enum=draft|open|paid|void"],
        ["issued_on:date", "due_on:date", "memo:text"],
        ["finalize", "void"],
    ),
    (
        "payments",
        "Payment",
        None,
        ["amount:money", "method:enum=card|transfer|check"],
        ["received_at:datetime", "reference:str"],
        ["refund"],
    ),
    (
        "products",
        "Product",
        None,
        ["sku:code", "name:str", "price:money"],
        ["active:bool", "tax_rate:percent", "tags:tags"],
        [],
    ),
    (
        "warehouses",
        "Warehouse",
        None,
        ["name:str", "address:address"],
        ["capacity:int32", "manager_email:email"],
        [],
    ),
    (
        "shipments",
        "Shipment",
        None,
        ["tracking_code:str", "carrier:enum=dhl|ups|fedex|usps"],
        ["shipped_at:datetime", "delivered_at:datetime", "weight_kg:rate"],
        ["cancel"],
    ),
    (
        "tickets",
        "Ticket",
        None,
        ["subject:str", "priority:enum=low|normal|high|urgent"],
        ["description:text", "external_ref:uuid", "tags:tags"],
        ["escalate"],
    ),
    (
        "webhooks",
        "Webhook",
        None,
        ["url:uri", "events:tags"],
        ["secret:secret", "active:bool"],
        ["ping"],
    ),
    ("api-keys", "ApiKey", None, ["label:str"], ["expires_on:date", "scopes:tags"], ["rotate"]),
    (
        "audit-events",
        "AuditEvent",
        None,
        ["action:str", "actor_id:int64"],
        ["ip_address:str", "occurred_at:datetime"],
        [],
    ),
    (
        "reports",
        "Report",
        None,
        ["name:str", "kind:enum=usage|billing|activity"],
        ["period_start:date", "period_end:date"],
        [],
    ),
    (
        "dashboards",
        "Dashboard",
        None,
        ["title:str"],
        ["shared:bool", "theme_color:color", "widgets:int32"],
        [],
    ),
    ("segments", "Segment", None, ["name:str"], ["description:text", "contact_count:int32"], []),
    ("holidays", "Holiday", None, ["name:str", "on:date"], ["locale:locale"], []),
]


def field_schema(spec: str) -> tuple[str, dict[str, Any]]:
    name, kind = spec.split(":", 1)
    if kind.startswith("enum="):
        return name, {"type": "string", "enum": kind[5:].split("|")}
    return name, dict(KINDS[kind])


def singular(plural: str) -> str:
    return plural[:-1].replace("-", "_")


def operation_name(verb: str, name: str) -> str:
    return f"{verb}{name}"


def build() -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Money": {
            "type": "object",
            "required": ["amount", "currency"],
            "properties": {
                "amount": {
                    "type": "integer",
                    "format": "int64",
                    "description": "In minor units",
                    "example": 1999,
                },
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "example": "EUR"},
            },
        },
        "Address": {
            "type": "object",
            "required": ["line1", "country"],
            "properties": {
                "line1": {"type": "string", "maxLength": 200, "example": "1 Main Street"},
                "line2": {"type": "string", "nullable": True},
                "postal_code": {
                    "type": "string",
                    "pattern": "^[0-9A-Z -]{3,10}$",
                    "example": "10115",
                },
                "country": {"type": "string", "pattern": "^[A-Z]{2}$", "example": "DE"},
            },
        },
        "Resource": {
            "type": "object",
            "required": ["id", "created_at", "updated_at"],
            "properties": {
                "id": {"type": "integer", "format": "int64", "minimum": 1, "readOnly": True},
                "created_at": {"type": "string", "format": "date-time", "readOnly": True},
                "updated_at": {"type": "string", "format": "date-time", "readOnly": True},
            },
        },
        "PageMeta": {
            "type": "object",
            "required": ["page", "per_page", "total"],
            "properties": {
                "page": {"type": "integer", "minimum": 1},
                "per_page": {"type": "integer", "minimum": 1, "maximum": 100},
                "total": {"type": "integer", "minimum": 0},
                "next_page": {"type": "integer", "minimum": 2, "nullable": True},
            },
        },
        "Problem": {
            "type": "object",
            "required": ["title", "status"],
            "properties": {
                "type": {"type": "string", "format": "uri-reference"},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        },
    }
    paths: dict[str, Any] = {}
    for plural, name, parent, required, optional, actions in RESOURCES:
        properties = dict(field_schema(spec) for spec in required + optional)
        required_names = [spec.split(":", 1)[0] for spec in required]
        schemas[f"{name}Input"] = {
            "type": "object",
            "required": required_names,
            "properties": properties,
        }
        schemas[f"{name}Patch"] = {"type": "object", "minProperties": 1, "properties": properties}
        schemas[name] = {
            "allOf": [
                {"$ref": "#/components/schemas/Resource"},
                {"$ref": f"#/components/schemas/{name}Input"},
            ]
        }
        schemas[f"{name}Page"] = {
            "type": "object",
            "required": ["items", "page", "per_page", "total"],
            "properties": {
                "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}},
                "page": {"type": "integer", "minimum": 1},
                "per_page": {"type": "integer", "minimum": 1, "maximum": 100},
                "total": {"type": "integer", "minimum": 0},
                "next_page": {"type": "integer", "minimum": 2, "nullable": True},
            },
        }
        one = {"$ref": f"#/components/schemas/{name}"}
        prefix = f"/{parent}/{{{singular(parent)}_id}}" if parent else ""
        parent_params = (
            [{"$ref": f"#/components/parameters/{singular(parent)}_id"}] if parent else []
        )
        collection, item = f"{prefix}/{plural}", f"{prefix}/{plural}/{{id}}"
        tag = plural
        paths[collection] = {
            "parameters": parent_params,
            "get": {
                "operationId": operation_name("list", name),
                "tags": [tag],
                "parameters": [
                    {"$ref": "#/components/parameters/page"},
                    {"$ref": "#/components/parameters/per_page"},
                ],
                "responses": {
                    "200": {
                        "description": f"A page of {plural}",
                        "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
                        "content": {
                            "application/json": {
                                "schema": {"$ref": f"#/components/schemas/{name}Page"}
                            }
                        },
                    },
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                },
            },
            "post": {
                "operationId": operation_name("create", name),
                "tags": [tag],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{name}Input"}
                        }
                    },
                },
                "responses": {
                    "201": {
                        "description": "Created",
                        "headers": {
                            "Location": {
                                "required": True,
                                "schema": {"type": "string", "format": "uri-reference"},
                            },
                            "X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"},
                        },
                        "content": {"application/json": {"schema": one}},
                    },
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "422": {"$ref": "#/components/responses/Invalid"},
                },
            },
        }
        if not parent_params:
            del paths[collection]["parameters"]
        item_params = [*parent_params, {"$ref": "#/components/parameters/id"}]
        paths[item] = {
            "parameters": item_params,
            "get": {
                "operationId": operation_name("get", name),
                "tags": [tag],
                "responses": {
                    "200": {
                        "description": "Found",
                        "content": {"application/json": {"schema": one}},
                    },
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "404": {"$ref": "#/components/responses/NotFound"},
                },
            },
            "patch": {
                "operationId": operation_name("update", name),
                "tags": [tag],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{name}Patch"}
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "Updated",
                        "content": {"application/json": {"schema": one}},
                    },
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "404": {"$ref": "#/components/responses/NotFound"},
                    "422": {"$ref": "#/components/responses/Invalid"},
                },
            },
            "delete": {
                "operationId": operation_name("delete", name),
                "tags": [tag],
                "responses": {
                    "204": {"description": "Deleted"},
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "404": {"$ref": "#/components/responses/NotFound"},
                },
            },
        }
        for action in actions:
            paths[f"{item}/{action}"] = {
                "parameters": item_params,
                "post": {
                    "operationId": operation_name(action, name),
                    "tags": [tag],
                    "responses": {
                        "200": {
                            "description": f"The {singular(plural)} after {action}",
                            "content": {"application/json": {"schema": one}},
                        },
                        "401": {"$ref": "#/components/responses/Unauthorized"},
                        "404": {"$ref": "#/components/responses/NotFound"},
                        "409": {"$ref": "#/components/responses/Conflict"},
                    },
                },
            }
    parameters: dict[str, Any] = {
        "page": {
            "name": "page",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "default": 1},
        },
        "per_page": {
            "name": "per_page",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25},
        },
        "id": {
            "name": "id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "format": "int64", "minimum": 1},
            "example": 1,
        },
    }
    for plural, *_ in RESOURCES:
        parameters.setdefault(
            f"{singular(plural)}_id",
            {
                "name": f"{singular(plural)}_id",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "format": "int64", "minimum": 1},
                "example": 1,
            },
        )
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Workspace Admin API",
            "version": "5.2.0",
            "description": "Generated by make_large.py: many resources, one CRUD shape, shared components.",
        },
        "servers": [{"url": "https://workspace.example.com/api/v5"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "parameters": parameters,
            "headers": {
                "X-Request-Id": {
                    "required": True,
                    "description": "Echo this to support",
                    "schema": {"type": "string", "format": "uuid"},
                },
            },
            "responses": {
                "Unauthorized": {"description": "Missing or bad credentials", "content": problem},
                "NotFound": {"description": "No such record", "content": problem},
                "Conflict": {"description": "Not allowed in the current state", "content": problem},
                "Invalid": {"description": "The request body is invalid", "content": problem},
            },
            "schemas": schemas,
        },
    }


def main() -> None:
    OUTPUT.write_text(json.dumps(build(), indent=1) + "\n", encoding="utf-8")
    operations = sum(1 for item in build()["paths"].values() for key in item if key != "parameters")
    print(f"wrote {OUTPUT.name}: {operations} operations")


if __name__ == "__main__":
    main()
