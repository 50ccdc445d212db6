"""The OpenAPI 3.1 document, generated from the same pydantic models that validate requests.

The operation table here is written independently of `function_app.py`; a test checks that both
describe the same set of (method, path) pairs, so neither can drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared import api
from shared.settings import ID_PATTERN


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    success: int = 200
    errors: tuple[int, ...] = ()
    request_optional: bool = False
    streams: bool = False
    public: bool = False
    query: tuple[dict[str, Any], ...] = ()
    # Error statuses answered with the success model instead of an error (health's 503 "degraded" report).
    report_statuses: tuple[int, ...] = ()


_SESSION = (400, 404, 422, 503)  # 503: storage unavailable or misconfigured
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post",
        "/chat",
        "chat",
        "Send a message; routed to a backend and saved. Streams with SSE on request.",
        api.ChatRequest,
        api.ChatResponse,
        errors=(400, 404, 409, 413, 415, 422, 429, 502, 503, 504),
        streams=True,
    ),
    Operation(
        "post",
        "/sessions/{session_id}/resume",
        "resumeSession",
        "Restore a conversation; with a message, continue it.",
        api.ResumeRequest,
        api.ResumeResponse,
        errors=(*_SESSION, 409, 413, 415, 429, 502, 504),
        request_optional=True,
    ),
    Operation(
        "get",
        "/sessions",
        "listSessions",
        "The caller's sessions, newest first.",
        None,
        api.SessionList,
        errors=(400, 422, 503),
        query=(
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            },
            {"name": "continuation", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 512}},
        ),
    ),
    # Before /sessions/{session_id}: a literal path wins over a template (as in the Functions host).
    Operation(
        "post",
        "/sessions/import",
        "importSession",
        "Import a conversation (OpenAI messages, an AgentSession, a legacy AgentThread or an export) as a new "
        "session of the caller's; 409 when the caller already has the requested session id.",
        api.ImportRequest,
        api.SessionResponse,
        success=201,
        errors=(400, 409, 413, 415, 422, 503),
    ),
    Operation(
        "get",
        "/sessions/{session_id}",
        "getSession",
        "One session: messages, turn records, summary.",
        None,
        api.SessionResponse,
        errors=_SESSION,
    ),
    Operation(
        "delete",
        "/sessions/{session_id}",
        "deleteSession",
        "Erase a session's snapshot and metadata.",
        success=204,
        errors=(*_SESSION, 409),
    ),
    Operation(
        "get",
        "/sessions/{session_id}/analytics",
        "sessionAnalytics",
        "Routing analytics of one session.",
        None,
        api.Analytics,
        errors=_SESSION,
    ),
    Operation(
        "get",
        "/sessions/{session_id}/export",
        "exportSession",
        "The whole session as one versioned JSON document (messages, AgentSession payload, turn records).",
        None,
        api.ExportDocument,
        errors=_SESSION,
    ),
    Operation(
        "post",
        "/sessions/{session_id}/fork",
        "forkSession",
        "A new session holding turns 1..at_turn of this one, with its lineage; the source is unchanged.",
        api.ForkRequest,
        api.SessionResponse,
        success=201,
        errors=(*_SESSION, 413, 415),
    ),
    Operation(
        "get",
        "/sessions/{session_id}/audit",
        "sessionAudit",
        "A session's audit events (who, what, when, outcome; never content), for its owner or an admin.",
        None,
        api.AuditTrail,
        errors=(*_SESSION, 503),
    ),
    Operation(
        "delete",
        "/users/me",
        "eraseMe",
        "Erase every session and record of the signed-in caller; answers with a receipt.",
        None,
        api.ErasureReceipt,
        errors=(400, 403, 409, 503),
    ),
    Operation(
        "delete",
        "/users/{user_id}",
        "eraseUser",
        "Erase every session and record of a user (admin role); answers with a receipt.",
        None,
        api.ErasureReceipt,
        errors=(400, 403, 409, 422, 503),
    ),
    Operation(
        "post",
        "/manage/reconcile",
        "reconcileMetadata",
        "Rebuild missing or stale Cosmos DB records from the Blob snapshots (admin role).",
        api.ReconcileRequest,
        api.ReconcileReport,
        errors=(400, 403, 413, 415, 422, 503),
        request_optional=True,
    ),
    Operation(
        "get",
        "/analytics",
        "ownerAnalytics",
        "Routing analytics over all of the caller's sessions.",
        None,
        api.Analytics,
        errors=(400, 503),
    ),
    Operation(
        "get",
        "/health",
        "health",
        "Storage, Cosmos DB and configured backends.",
        None,
        api.Health,
        errors=(503,),
        public=True,
        report_statuses=(503,),
    ),
    Operation("get", "/openapi.json", "openapi", "This document.", public=True),
)

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


@cache
def document() -> dict[str, Any]:
    models = {api.ErrorResponse, api.ErrorBody}
    for operation in OPERATIONS:
        models.update(model for model in (operation.request, operation.response) if model is not None)
    keyed = sorted(
        ((model, "validation" if model in {op.request for op in OPERATIONS} else "serialization") for model in models),
        key=lambda item: item[0].__name__,
    )
    _, schemas = models_json_schema(keyed, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
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


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(operation: Operation) -> dict[str, Any]:
    spec: dict[str, Any] = {"operationId": operation.operation_id, "summary": operation.summary}
    parameters: list[dict[str, Any]] = list(operation.query)
    if "{user_id}" in operation.path:
        parameters.append(
            {
                "name": "user_id",
                "in": "path",
                "required": True,
                "description": "The user's principal id (X-MS-CLIENT-PRINCIPAL-ID).",
                "schema": {"type": "string", "pattern": api.PRINCIPAL_PATTERN.pattern},
            }
        )
    if "{session_id}" in operation.path:
        parameters.append(
            {
                "name": "session_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": ID_PATTERN.pattern},
            }
        )
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
            # OpenAPI 3.1 media type objects have no `description`; it goes on the schema. The schema describes
            # one event (as OpenAPI 3.2's itemSchema would, and as schemathesis validates each event).
            content["text/event-stream"] = {
                "schema": {
                    "type": "object",
                    "description": "Events: route, delta {text}, fallback, done (the JSON answer), error.",
                    "properties": {
                        "event": {"enum": ["route", "delta", "fallback", "done", "error"]},
                        "data": {"type": "string", "contentMediaType": "application/json"},
                    },
                    "required": ["event", "data"],
                }
            }
        success["content"] = content
    elif operation.path == "/openapi.json":
        success["content"] = {"application/json": {"schema": {"type": "object"}}}
    responses: dict[str, Any] = {str(operation.success): success}
    for status in (*operation.errors, 500):
        schema: dict[str, Any] = _ref(api.ErrorResponse)
        if status in operation.report_statuses and operation.response is not None:
            # The report itself, or an error when the service could not even be built (storage down at start).
            schema = {"anyOf": [_ref(operation.response), schema]}
        responses[str(status)] = {
            "description": _STATUS_TEXT.get(status, "Internal error (carries a correlation id)"),
            "content": {"application/json": {"schema": schema}},
        }
    if not operation.public:
        responses["401"] = {"description": "Missing or wrong function key (Azure only)"}
        spec["security"] = [{"functionKey": []}]
    spec["responses"] = responses
    return spec
