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
from shared.http import openai_models as oai_models
from shared.http.call import Call
from shared.http.handlers import chat, dashboard, lifecycle, sessions, system, transfer, usage
from shared.http.handlers import openai as oai
from shared.http.openapi import build_document
from shared.http.route import Route
from shared.http.static import ASSET_MEDIA_TYPES


async def openapi(call: Call) -> Response:
    """This API's OpenAPI 3.1 document, generated from the route table."""
    return JSONResponse(document())


def _day(name: str, description: str) -> dict[str, Any]:
    """An optional query parameter holding a UTC day (the handler checks the same pattern, and the date)."""
    schema = {"type": "string", "format": "date", "pattern": sessions.DAY_PATTERN.pattern}
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


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
        "Routing analytics over the caller's sessions, all of them or the turns completed in a period of UTC days.",
        None,
        models.Analytics,
        errors=(400, 422, 503),
        query=(
            _day("from", "First UTC day (YYYY-MM-DD) whose completed turns count; 422 if after `to`."),
            _day("to", "Last UTC day (YYYY-MM-DD) whose completed turns count."),
        ),
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
    Route(
        "get",
        "/v1/models",
        oai.list_models,
        "listModels",
        "OpenAI-compatible: the models this router serves (`auto` and each configured backend).",
        None,
        oai_models.ModelList,
        errors=(503,),
        openai=True,
    ),
    Route(
        "post",
        "/v1/chat/completions",
        oai.chat_completions,
        "createChatCompletion",
        "OpenAI-compatible Chat Completions with durable history: the whole conversation on every call, stored "
        "once (X-Session-Id names the session; without it the caller's matching session is found, else a new one "
        "starts); an edit or a regenerate forks; a client's retry of a saved turn gets its stored answer again.",
        oai_models.ChatCompletionRequest,
        oai_models.ChatCompletion,
        errors=(400, 404, 409, 413, 415, 422, 429, 502, 503, 504),
        streams=True,
        openai=True,
        response_headers=(
            ("X-Session-Id", "The session the turn was stored in (a fork's, after an edit or a regenerate)."),
            ("X-Router-Backend", "The backend that answered."),
            ("X-Router-Model", "The model that answered."),
            ("X-Router-Reason", "Why the router chose it (ASCII, at most 200 characters)."),
            ("X-Idempotent-Replay", "true when the answer is a saved turn's, given again to a retry."),
        ),
    ),
    Route("get", "/openapi.json", openapi, "openapi", "This document.", public=True),
    # The dashboard: static files only (no data), so anonymous; the page calls this API with the caller's identity.
    Route(
        "get",
        "/dashboard",
        dashboard.dashboard,
        "dashboard",
        "The dashboard page (static; it calls this API from the browser with the caller's identity).",
        public=True,
        files=("text/html",),
        bodiless=((304, "Not modified (If-None-Match)"), (308, "The same path without a trailing slash")),
    ),
    Route(
        "get",
        "/dashboard/assets/{name}",
        dashboard.dashboard_asset,
        "dashboardAsset",
        "One of the dashboard's packaged files (scripts, stylesheet, icon); no other name is served.",
        errors=(404, 422),
        public=True,
        files=ASSET_MEDIA_TYPES,
        bodiless=((304, "Not modified (If-None-Match)"),),
    ),
)


@cache
def document() -> dict[str, Any]:
    return build_document(ROUTE_TABLE)
