"""Provider and destination OpenAPI documents, and how a spec's references resolve in them."""

from harness.openapi.document import OpenAPIDocument, Operation, load_document

__all__ = ["OpenAPIDocument", "Operation", "load_document"]
