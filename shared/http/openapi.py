"""The OpenAPI 3.1 document, generated from the route table and the same pydantic models that validate
requests and serialize responses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.http.models import ErrorBody, ErrorResponse
from shared.http.openai_models import ChatCompletionChunk, OpenAIErrorResponse
from shared.http.route import PATH_PARAMETERS, PathParameter, Route

_STATUS_TEXT = {
    400: "Malformed request",
    403: "Needs the admin role (or a signed-in caller)",
    404: "Not found (or not yours)",
    409: "Another turn is running on the session",
    413: "Body or message too large",
    415: "Body is not JSON",
    422: "Invalid value",
    429: "Rate limited",
    502: "Every backend failed",
    503: "Unavailable",
    504: "Every backend timed out",
}


def build_document(routes: Sequence[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes`, with the schemas of every model they name."""
    models: set[type[BaseModel]] = {ErrorResponse, ErrorBody}
    for operation in routes:
        models.update(model for model in (operation.request, operation.response) if model is not None)
        if operation.openai:
            models.update((OpenAIErrorResponse, ChatCompletionChunk))
    keyed = sorted(
        ((model, "validation" if model in {op.request for op in routes} else "serialization") for model in models),
        key=lambda item: item[0].__name__,
    )
    _, schemas = models_json_schema(keyed, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
    paths: dict[str, dict[str, Any]] = {}
    for operation in routes:
        paths.setdefault(operation.path, {})[operation.method] = _operation(operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hybrid LLM router",
            "version": "1.0.0",
            "description": "Routes each chat turn to a local or cloud model and keeps the conversation durable.",
        },
        "servers": [{"url": "/api"}],
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"}},
        },
    }


# OpenAPI 3.1 media type objects have no `description`; it goes on the schema. The schema describes one event (as
# OpenAPI 3.2's itemSchema would, and as schemathesis validates each event).
_EVENTS: dict[str, Any] = {
    "type": "object",
    "description": "Events: route, delta {text}, fallback, done (the JSON answer), error.",
    "properties": {
        "event": {"enum": ["route", "delta", "fallback", "done", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["event", "data"],
}
_OPENAI_EVENTS: dict[str, Any] = {
    "type": "object",
    "description": "Events whose data is a ChatCompletionChunk (with `usage` last when asked for), then `[DONE]`.",
    "properties": {"data": {"type": "string"}},
    "required": ["data"],
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(operation: Route) -> dict[str, Any]:
    spec: dict[str, Any] = {"operationId": operation.operation_id, "summary": operation.summary}
    parameters: list[dict[str, Any]] = list(operation.query)
    for name, parameter in PATH_PARAMETERS.items():  # in this table's order, as the document always had them
        if name in operation.parameters:
            parameters.append(_path_parameter(name, parameter))
    if parameters:
        spec["parameters"] = parameters
    if operation.request is not None:
        spec["requestBody"] = {
            "required": not operation.request_optional,
            "content": {"application/json": {"schema": _ref(operation.request)}},
        }
    success: dict[str, Any] = {"description": {200: "OK", 201: "Created"}.get(operation.success, "No content")}
    if operation.response is not None:
        content: dict[str, Any] = {"application/json": {"schema": _ref(operation.response)}}
        if operation.streams:
            content["text/event-stream"] = {"schema": _OPENAI_EVENTS if operation.openai else _EVENTS}
        success["content"] = content
    elif operation.path == "/openapi.json":
        success["content"] = {"application/json": {"schema": {"type": "object"}}}
    elif operation.files:
        success["content"] = {media: {"schema": {"type": "string"}} for media in operation.files}
    if operation.response_headers:
        success["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in operation.response_headers
        }
    responses: dict[str, Any] = {str(operation.success): success}
    responses.update({str(status): {"description": description} for status, description in operation.bodiless})
    responses.update(_error_responses(operation))
    if not operation.public:
        responses["401"] = {"description": "Missing or wrong function key, or not signed in (Azure only)"}
        spec["security"] = [{"functionKey": []}]
    spec["responses"] = responses
    return spec


def _error_responses(operation: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in (*operation.errors, 500):
        schema: dict[str, Any] = _ref(OpenAIErrorResponse if operation.openai else ErrorResponse)
        if status in operation.report_statuses and operation.response is not None:
            # The report itself, or an error when the service could not even be built (storage down at start).
            schema = {"anyOf": [_ref(operation.response), schema]}
        responses[str(status)] = {
            "description": _STATUS_TEXT.get(status, "Internal error (carries a correlation id)"),
            "content": {"application/json": {"schema": schema}},
        }
    return responses


def _path_parameter(name: str, parameter: PathParameter) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "in": "path", "required": True}
    if parameter.description:
        spec["description"] = parameter.description
    spec["schema"] = dict(parameter.schema or {"type": "string", "pattern": parameter.pattern.pattern})
    return spec
