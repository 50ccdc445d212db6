"""The route table: every HTTP route, declared once.

Each `Route` holds the method, the path (under `/api`), the handler and what the OpenAPI document says about
it. `function_app.py` registers a trigger per route (`shared.http.functions`), the dev server mounts those
same functions, path parameters are matched and validated from the path, and `openapi.json` is generated
from this table. Order matters only for the document and for literals before templates (as the Functions
host prefers them).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi.responses import JSONResponse, Response

from shared.http import models
from shared.http.call import Call
from shared.http.handlers import chat, lifecycle, sessions, system, transfer, usage
from shared.http.openapi import build_document
from shared.http.route import Route


async def openapi(call: Call) -> Response:
    """This API's OpenAPI 3.1 document, generated from the route table."""
    return JSONResponse(document())


_SESSION = (400, 404, 422, 503)  # 503: storage unavailable or misconfigured
ROUTE_TABLE: tuple[Route, ...] = (
    Route(
        "post",
        "/chat",
        chat.chat,
        "chat",
        "Send a message; routed to a backend and saved. Streams with SSE on request.",
        models.ChatRequest,
        models.ChatResponse,
        errors=(400, 404, 409, 413, 415, 422, 429, 502, 503, 504),
        streams=True,
    ),
    Route(
        "post",
        "/sessions/{session_id}/resume",
        chat.resume_session,
        "resumeSession",
        "Restore a conversation; with a message, continue it.",
        models.ResumeRequest,
        models.ResumeResponse,
        errors=(*_SESSION, 409, 413, 415, 429, 502, 504),
        request_optional=True,
    ),
    Route(
        "get",
        "/sessions",
        sessions.list_sessions,
        "listSessions",
        "The caller's sessions, newest first.",
        None,
        models.SessionList,
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
    Route(
        "post",
        "/sessions/import",
        transfer.import_session,
        "importSession",
        "Import a conversation (OpenAI messages, an AgentSession, a legacy AgentThread or an export) as a new "
        "session of the caller's; 409 when the caller already has the requested session id.",
        models.ImportRequest,
        models.SessionResponse,
        success=201,
        errors=(400, 409, 413, 415, 422, 503),
    ),
    Route(
        "get",
        "/sessions/{session_id}",
        sessions.get_session,
        "getSession",
        "One session: messages, turn records, summary.",
        None,
        models.SessionResponse,
        errors=_SESSION,
    ),
    Route(
        "delete",
        "/sessions/{session_id}",
        sessions.delete_session,
        "deleteSession",
        "Erase a session's snapshot and metadata.",
        success=204,
        errors=(*_SESSION, 409),
    ),
    Route(
        "get",
        "/sessions/{session_id}/analytics",
        sessions.session_analytics,
        "sessionAnalytics",
        "Routing analytics of one session.",
        None,
        models.Analytics,
        errors=_SESSION,
    ),
    Route(
        "get",
        "/sessions/{session_id}/export",
        transfer.export_session,
        "exportSession",
        "The whole session as one versioned JSON document (messages, AgentSession payload, turn records).",
        None,
        models.ExportDocument,
        errors=_SESSION,
    ),
    Route(
        "post",
        "/sessions/{session_id}/fork",
        transfer.fork_session,
        "forkSession",
        "A new session holding turns 1..at_turn of this one, with its lineage; the source is unchanged.",
        models.ForkRequest,
        models.SessionResponse,
        success=201,
        errors=(*_SESSION, 413, 415),
    ),
    Route(
        "post",
        "/sessions/{session_id}/turns/{turn}/feedback",
        sessions.turn_feedback,
        "giveFeedback",
        "Rate one turn (up or down, optionally the backend that should have answered, a comment); a repeat "
        "replaces it. Part of the session's data: exported, imported, forked and erased with it.",
        models.FeedbackRequest,
        models.FeedbackResponse,
        errors=(*_SESSION, 409, 413, 415),
    ),
    Route(
        "get",
        "/sessions/{session_id}/audit",
        lifecycle.session_audit,
        "sessionAudit",
        "A session's audit events (who, what, when, outcome; never content), for its owner or an admin.",
        None,
        models.AuditTrail,
        errors=(*_SESSION, 503),
    ),
    Route(
        "get",
        "/users/me/usage",
        usage.my_usage,
        "myUsage",
        "The caller's spend today and this month (UTC, summed turn cost, turns, tokens) and what remains of the "
        "budget (BUDGET_DAILY_USD, BUDGET_MONTHLY_USD, BUDGET_OVERRIDES).",
        None,
        models.UsageReport,
        errors=(400, 503),
    ),
    Route(
        "delete",
        "/users/me",
        lifecycle.erase_me,
        "eraseMe",
        "Erase every session and record of the signed-in caller; answers with a receipt.",
        None,
        models.ErasureReceipt,
        errors=(400, 403, 409, 503),
    ),
    Route(
        "delete",
        "/users/{user_id}",
        lifecycle.erase_user,
        "eraseUser",
        "Erase every session and record of a user (admin role); answers with a receipt.",
        None,
        models.ErasureReceipt,
        errors=(400, 403, 409, 422, 503),
    ),
    Route(
        "post",
        "/manage/reconcile",
        lifecycle.reconcile_metadata,
        "reconcileMetadata",
        "Rebuild missing or stale Cosmos DB records from the Blob snapshots (admin role).",
        models.ReconcileRequest,
        models.ReconcileReport,
        errors=(400, 403, 413, 415, 422, 503),
        request_optional=True,
    ),
    Route(
        "get",
        "/analytics",
        sessions.owner_analytics,
        "ownerAnalytics",
        "Routing analytics over all of the caller's sessions.",
        None,
        models.Analytics,
        errors=(400, 503),
    ),
    Route(
        "get",
        "/health",
        system.health,
        "health",
        "Storage, Cosmos DB and configured backends.",
        None,
        models.Health,
        errors=(503,),
        public=True,
        report_statuses=(503,),
    ),
    Route("get", "/openapi.json", openapi, "openapi", "This document.", public=True),
)


@cache
def document() -> dict[str, Any]:
    return build_document(ROUTE_TABLE)
