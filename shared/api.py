"""The HTTP layer: request and response models, the caller's identity, errors, and the route handlers.

`function_app.py` registers each handler below on a route; the local dev server mounts the same handler
objects. Handlers parse and validate with the pydantic models (which also generate the OpenAPI document),
call `Conversations`, and map results and errors to JSON or Server-Sent Events. Only this module knows
about HTTP.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from azure.core.exceptions import AzureError
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from shared import audit, telemetry
from shared.backends import ModelCallError
from shared.conversation import (
    AllBackendsFailed,
    Delta,
    FallbackTaken,
    InvalidMessage,
    RouteChosen,
    SessionView,
    StreamBroken,
    TurnCompleted,
    TurnEvent,
    TurnResult,
)
from shared.erasure import erase_user as erase_owner
from shared.metadata import InvalidCursor
from shared.portability import FORMATS, InvalidFork, InvalidImport, SessionExists, transfer_of
from shared.reconcile import reconcile as reconcile_sessions
from shared.records import ANONYMOUS_OWNER, InvalidId, SessionSummary, owner_key
from shared.routing import ROUTES, BackendNotConfigured, NoBackendConfigured, UnknownRoute
from shared.runtime import Services, get_services
from shared.settings import ID_PATTERN, Settings, SettingsError, get_settings
from shared.snapshots import SessionBusy, SessionConflict, SessionNotFound, SnapshotCorrupt

logger = logging.getLogger(__name__)

RouteName = Literal["auto", "local", "cloud", "foundry", "apim"]
assert set(RouteName.__args__) == set(ROUTES)  # type: ignore[attr-defined]  # the model and the router agree

# ---- models ------------------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ChatRequest(_Strict):
    message: str = Field(description="The user's message.", min_length=1)
    session_id: str | None = Field(
        None, description="Continue this session; omit to start a new one.", pattern=ID_PATTERN.pattern
    )
    route: RouteName = Field("auto", description="Force a backend, or let the router decide.")
    stream: bool = Field(False, description="Answer as Server-Sent Events (same as Accept: text/event-stream).")


class ResumeRequest(_Strict):
    message: str | None = Field(
        None, description="Optionally continue the conversation with this message.", min_length=1
    )
    route: RouteName = Field("auto", description="Force a backend for the continuing message.")


class RouteInfo(BaseModel):
    backend: str
    model: str
    complexity: float | None
    reason: str
    switched_from: str | None
    fallback_from: str | None
    router_version: str | None = None
    fallback_chain: list[dict[str, Any]] = Field(default_factory=list)


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int


class ChatResponse(BaseModel):
    session_id: str
    turn: int
    reply: str
    route: RouteInfo
    usage: Usage
    latency_ms: float
    cost: float
    created: bool = Field(description="True when this turn started a new session.")


class OpenAIMessage(BaseModel):
    role: str
    content: str


class Summary(BaseModel):
    session_id: str
    created_at: str
    last_active: str
    turns: int
    backends: dict[str, int]
    switches: int
    fallbacks: int
    input_tokens: int
    output_tokens: int
    cost: float


class SessionResponse(BaseModel):
    session_id: str
    messages: list[OpenAIMessage]
    turns: list[dict[str, Any]]
    summary: Summary
    lineage: dict[str, Any] | None = Field(
        None, description="Where the session came from: a fork's source session and turn, or an import's format."
    )


class ResumeResponse(SessionResponse):
    turn: int | None = None
    reply: str | None = None
    route: RouteInfo | None = None
    usage: Usage | None = None
    latency_ms: float | None = None
    cost: float | None = None


class SessionList(BaseModel):
    sessions: list[Summary]
    continuation: str | None = Field(description="Pass as `continuation` for the next page; null on the last.")


class LatencyStats(BaseModel):
    mean: float
    p95: float


class TokenStats(BaseModel):
    input: int
    output: int


class Analytics(BaseModel):
    session_id: str | None = None
    total_exchanges: int
    routing_distribution: dict[str, int]
    model_switches: int
    fallbacks: int
    latency_ms: dict[str, LatencyStats]
    tokens: dict[str, TokenStats]
    cost: dict[str, float]
    total_cost: float
    all_cloud_cost: float | None = Field(
        None, description="What the same tokens would have cost on the cloud backend; null when there is no price."
    )
    saved_vs_all_cloud: float | None = Field(
        None, description="all_cloud_cost - total_cost (negative: routing cost more)."
    )
    all_cloud_basis: str | None = Field(None, description="The price used for all_cloud_cost, or why it is null.")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    storage: str
    cosmos: str
    backends: dict[str, dict[str, str]]


class ErasureReceipt(BaseModel):
    user_id: str = Field(description="The principal id whose data was erased.")
    sessions_deleted: int
    records_deleted: int = Field(description="Cosmos DB documents removed (turn records, summaries, audit events).")
    completed_at: str


class AuditEventInfo(BaseModel):
    id: str
    session_id: str
    action: str
    outcome: str
    at: str
    actor: str = Field(description="Owner key of who acted, or system:retention.")
    admin: bool
    details: dict[str, int]


class AuditTrail(BaseModel):
    session_id: str
    events: list[AuditEventInfo]


class ReconcileRequest(_Strict):
    owner: str | None = Field(
        None, description="Only this user's sessions (principal id).", min_length=1, max_length=256
    )
    session_id: str | None = Field(None, description="Only this session.", pattern=ID_PATTERN.pattern)


class ReconcileReport(BaseModel):
    sessions_checked: int
    turns_repaired: int
    summaries_repaired: int
    orphans_removed: int
    failed: int


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None
    correlation_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


# ---- errors ------------------------------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return {"error": error}


def _not_found() -> ApiError:
    # The same answer for "does not exist" and "belongs to someone else": existence is not disclosed.
    return ApiError(404, "session_not_found", "No such session.")


def _retry_after(seconds: float | None, default: int) -> dict[str, str]:
    value = default if seconds is None else max(1, round(seconds))
    return {"Retry-After": str(value)}


def to_api_error(exc: BaseException) -> ApiError | None:
    """Our error for a known failure, or None for an unexpected one (a 500 with a correlation id)."""
    match exc:
        case ApiError():
            return exc
        case InvalidId():
            return ApiError(400 if exc.field == "continuation" else 422, "invalid_id", str(exc), exc.field)
        case InvalidMessage():
            return ApiError(413 if "longer than" in str(exc) else 422, "invalid_message", str(exc), exc.field)
        case UnknownRoute():
            return ApiError(422, "invalid_route", f"route must be one of {', '.join(ROUTES)}", "route")
        case BackendNotConfigured():
            return ApiError(422, "backend_not_configured", str(exc), "route")
        case NoBackendConfigured():
            return ApiError(503, "no_backend", "No model backend is configured.", headers={"Retry-After": "60"})
        case InvalidCursor():
            return ApiError(400, "invalid_continuation", str(exc), "continuation")
        case InvalidImport():
            return ApiError(422, "invalid_import", str(exc), exc.field)
        case InvalidFork():
            return ApiError(422, "invalid_request", str(exc), exc.field)
        case SessionExists():
            return ApiError(409, "session_exists", "You already have a session with this id.", "session_id")
        case SessionNotFound():
            return _not_found()
        case SessionBusy():
            return ApiError(
                409,
                "session_busy",
                "Another turn is running on this session; retry shortly.",
                headers={"Retry-After": str(SessionBusy.retry_after_seconds)},
            )
        case SessionConflict():
            return ApiError(409, "session_conflict", "The session changed while this turn ran; nothing was saved.")
        case AllBackendsFailed():
            last = exc.last
            status = 504 if all(attempt.error == "timeout" for attempt in exc.attempts) else 502
            if last.kind == "rate_limited":
                status = 429
            headers = _retry_after(last.retry_after, 5) if last.kind in ("rate_limited", "server") else {}
            tried = ", ".join(f"{attempt.backend} ({attempt.error})" for attempt in exc.attempts)
            return ApiError(status, "backends_failed", f"Every backend failed: {tried}.", headers=headers)
        case ModelCallError():
            return ApiError(502, "backend_rejected", f"The {exc.backend} backend refused the request ({exc.kind}).")
        case SettingsError():
            # Names the setting (never a secret: keys are not validated for shape, so never echoed).
            return ApiError(503, "misconfigured", f"The service is misconfigured: {exc}", headers={"Retry-After": "60"})
        case SnapshotCorrupt():
            return None
        case AzureError() if _transient(exc):
            return ApiError(
                503, "storage_unavailable", "Storage is unavailable; retry shortly.", headers={"Retry-After": "5"}
            )
    return None


def _transient(exc: AzureError) -> bool:
    """Worth a retry: no answer at all, or a status that means "later" (not 403 RBAC, not a 404 or 412 bug)."""
    status = getattr(exc, "status_code", None)
    return status is None or status in (408, 429, 500, 502, 503, 504)


def error_response(exc: BaseException) -> JSONResponse:
    api_error = to_api_error(exc)
    if api_error is None:
        correlation_id = uuid.uuid4().hex
        logger.error("unhandled error, correlation id %s", correlation_id, exc_info=exc)
        return JSONResponse(
            {"error": {"code": "internal", "message": "Internal error.", "correlation_id": correlation_id}},
            status_code=500,
        )
    if api_error.status >= 500:
        logger.warning("request failed with %d %s", api_error.status, api_error.code)
    return JSONResponse(api_error.body(), status_code=api_error.status, headers=api_error.headers)


# ---- request parsing ---------------------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, settings: Settings, *, optional: bool = False, limit: int | None = None) -> Any:
    """The JSON body, with the size, type and encoding checked before it is parsed."""
    limit = limit or settings.request_max_bytes
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "malformed_request", "Content-Length is not a number.")
        if int(declared) > limit:
            raise ApiError(413, "body_too_large", f"Request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"Request body is larger than {limit} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if optional:
            return None
        raise ApiError(400, "malformed_request", "A JSON body is required.")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/json", "") and not content_type.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_request", "Body is not valid UTF-8.") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise ApiError(400, "malformed_request", "Body is nested too deeply.") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "malformed_request", f"Body is not valid JSON: {exc.msg} at position {exc.pos}.") from None
    except ValueError:  # valid JSON Python refuses to convert: an integer of more than 4300 digits
        raise ApiError(400, "malformed_request", "Body holds a number too long to read.") from None
    if data is None:  # `null` is not "no body": an optional body, when sent, is an object like any other
        raise ApiError(400, "malformed_request", "Body must be a JSON object.")
    if _SURROGATE_ESCAPE.search(text) and not _encodable(data):
        # `"\ud800"` is valid JSON but no character: it would fail later, when stored or sent to a model.
        raise ApiError(400, "malformed_request", "Body holds an unpaired UTF-16 surrogate escape.")
    return data


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _encodable(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_request", "Body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        kind = first["type"]
        if kind == "extra_forbidden":
            message = f"Unknown field '{field}'."
        elif kind == "literal_error":
            choices = ", ".join(ROUTES) if field == "route" else first.get("ctx", {}).get("expected", "")
            message = f"{field} must be one of {choices}."
        elif kind == "string_pattern_mismatch":
            message = f"{field} must match {ID_PATTERN.pattern}."
        else:
            message = f"{field}: {first['msg']}."
        raise ApiError(422, "invalid_request", message, field) from None


@dataclass(frozen=True)
class Caller:
    owner: str
    principal_id: str | None
    roles: frozenset[str]
    is_admin: bool


_ROLE_CLAIMS = ("roles", "role", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")


def caller_of(request: Request, settings: Settings) -> Caller:
    """Who is calling: the App Service Authentication principal when trusted and present, else anonymous.

    These headers are only trustworthy behind App Service Authentication, which strips any the client sent;
    `TRUST_PRINCIPAL_HEADERS=false` ignores them entirely.
    """
    principal_id = request.headers.get("x-ms-client-principal-id") if settings.trust_principal_headers else None
    if not principal_id:
        return Caller(ANONYMOUS_OWNER, None, frozenset(), False)
    principal_id = principal_id.strip()
    if not principal_id or len(principal_id) > 256 or any(ord(ch) < 32 for ch in principal_id):
        raise ApiError(400, "invalid_principal", "X-MS-CLIENT-PRINCIPAL-ID is not a valid principal id.")
    roles: set[str] = set()
    encoded = request.headers.get("x-ms-client-principal")
    if encoded:
        try:
            principal = json.loads(base64.b64decode(encoded + "=" * (-len(encoded) % 4)))
            role_type = principal.get("role_typ") or "roles"
            for claim in principal.get("claims") or []:
                if claim.get("typ") in (role_type, *_ROLE_CLAIMS) and isinstance(claim.get("val"), str):
                    roles.add(claim["val"])
        except (binascii.Error, ValueError, AttributeError, TypeError, RecursionError):
            raise ApiError(400, "invalid_principal", "X-MS-CLIENT-PRINCIPAL is not valid base64 JSON.") from None
    return Caller(owner_key(principal_id), principal_id, frozenset(roles), settings.admin_role in roles)


def path_param(request: Request, route: str, name: str, allowed: re.Pattern[str] = ID_PATTERN) -> str:
    """A route parameter. Under Functions' HTTP streams the host does not fill `path_params`, so the URL
    path is matched against the function's own route template as a fallback."""
    value = request.path_params.get(name) if request.path_params else None
    if value is None:
        pattern = "^/api/" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]*)", re.escape(route)) + "/?$"
        match = re.match(pattern, request.url.path)
        value = match.group(name) if match else None
    if value is None:
        raise ApiError(404, "not_found", "No such route.")
    if not allowed.fullmatch(value):
        raise ApiError(422, "invalid_id", f"{name} must match {allowed.pattern}.", name)
    return value


def wants_stream(request: Request, body: ChatRequest) -> bool:
    return body.stream or "text/event-stream" in request.headers.get("accept", "").lower()


# ---- shaping results ---------------------------------------------------------------------------------------------


def summary_json(summary: SessionSummary) -> dict[str, Any]:
    data = summary.to_dict()
    data.pop("owner", None)
    data.pop("title", None)
    return data


def chat_json(result: TurnResult) -> dict[str, Any]:
    record = result.record
    return {
        "session_id": result.session_id,
        "turn": result.turn,
        "reply": result.reply,
        "route": {
            "backend": record.backend,
            "model": record.model,
            "complexity": record.complexity,
            "reason": record.reason,
            "switched_from": record.switched_from,
            "fallback_from": record.fallback_from,
            "router_version": record.router_version,
            "fallback_chain": [attempt.to_dict() for attempt in record.fallback_chain],
        },
        "usage": {"input_tokens": record.input_tokens, "output_tokens": record.output_tokens},
        "latency_ms": record.latency_ms,
        "cost": record.cost,
        "created": result.created,
    }


def session_json(view: SessionView) -> dict[str, Any]:
    return {
        "session_id": view.snapshot.session_id,
        "messages": view.snapshot.openai_messages(),
        "turns": [record.to_dict() for record in view.snapshot.records],
        "summary": summary_json(view.summary),
        "lineage": dict(view.snapshot.lineage) if view.snapshot.lineage else None,
    }


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _event_json(event: TurnEvent) -> tuple[str, dict[str, Any]]:
    match event:
        case RouteChosen():
            decision = event.decision
            return "route", {
                "session_id": event.session_id,
                "turn": event.turn,
                "backend": decision.backend,
                "model": event.model,
                "complexity": decision.complexity,
                "reason": decision.reason,
                "switched_from": decision.switched_from,
                "router_version": decision.router_version,
            }
        case Delta():
            return "delta", {"text": event.text}
        case FallbackTaken():
            return "fallback", {"from": event.failed.backend, "error": event.failed.error, "to": event.next_backend}
        case TurnCompleted():
            return "done", chat_json(event.result)
    raise TypeError(f"unknown event {event!r}")  # pragma: no cover


async def _sse_stream(first: TurnEvent, events: AsyncGenerator[TurnEvent, None]) -> AsyncIterator[bytes]:
    yield _sse(*_event_json(first))
    try:
        async for event in events:
            yield _sse(*_event_json(event))
    except Exception as exc:  # noqa: BLE001 - the status line is gone; the error travels as an event
        if isinstance(exc, StreamBroken):
            message = f"The {exc.error.backend} backend failed mid-answer; nothing was saved."
            api_error = ApiError(502, "stream_broken", message)
        else:
            api_error = to_api_error(exc) or ApiError(500, "internal", "Internal error.")
        body = api_error.body()["error"]
        if api_error.status == 500:
            body["correlation_id"] = uuid.uuid4().hex
            logger.error("turn failed mid-stream, correlation id %s", body["correlation_id"], exc_info=exc)
        yield _sse("error", {**body, "status": api_error.status})
    finally:
        await events.aclose()


# ---- handlers ----------------------------------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]


def handler(func: Callable[[Request, Settings], Awaitable[Response]]) -> Handler:
    """Wrap a route handler so that every failure becomes one of our JSON errors."""

    async def wrapped(request: Request) -> Response:
        try:
            settings = get_settings()
            telemetry.configure(settings)  # before the request's span: the first request is traced too
        except Exception as exc:  # noqa: BLE001 - the one error mapper
            return error_response(exc)

        async def run() -> Response:
            try:
                return await func(request, settings)
            except Exception as exc:  # noqa: BLE001 - the one error mapper
                return error_response(exc)

        return await telemetry.request_span(func.__name__, request.method, request.url.path, run)

    wrapped.__name__ = func.__name__
    wrapped.__doc__ = func.__doc__
    return wrapped


async def chat(request: Request, settings: Settings) -> Response:
    body = validate(ChatRequest, await read_body(request, settings))
    caller = caller_of(request, settings)
    services = await get_services()
    conversations = services.conversations
    if wants_stream(request, body):
        turn = conversations.turn(caller.owner, body.message, body.session_id, body.route)
        events = audit.audited_stream(services, caller.owner, body.session_id, turn)
        try:
            first = await events.__anext__()
        except BaseException:
            await events.aclose()
            raise
        return StreamingResponse(
            _sse_stream(first, events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    action = "continue" if body.session_id else "create"
    async with audit.audited(services, caller.owner, body.session_id, action) as audited:
        result = await conversations.chat(caller.owner, body.message, body.session_id, body.route)
        audited.session_id = result.session_id
    return JSONResponse(chat_json(result))


async def resume(request: Request, settings: Settings) -> Response:
    session_id = path_param(request, "sessions/{session_id}/resume", "session_id")
    data = await read_body(request, settings, optional=True)
    body = validate(ResumeRequest, data if data is not None else {})
    caller = caller_of(request, settings)
    services = await get_services()
    conversations = services.conversations
    answer: dict[str, Any] = {}
    async with audit.audited(services, caller.owner, session_id, "read" if body.message is None else "continue"):
        if body.message is not None:
            answer = chat_json(await conversations.chat(caller.owner, body.message, session_id, body.route))
        view = await conversations.get(caller.owner, session_id)
    return JSONResponse({**answer, **session_json(view)})


async def get_session(request: Request, settings: Settings) -> Response:
    session_id = path_param(request, "sessions/{session_id}", "session_id")
    caller = caller_of(request, settings)
    services = await get_services()
    async with audit.audited(services, caller.owner, session_id, "read"):
        view = await services.conversations.get(caller.owner, session_id)
    return JSONResponse(session_json(view))


async def delete_session(request: Request, settings: Settings) -> Response:
    session_id = path_param(request, "sessions/{session_id}", "session_id")
    caller = caller_of(request, settings)
    services = await get_services()
    async with audit.audited(services, caller.owner, session_id, "delete"):
        existed = await services.conversations.delete(caller.owner, session_id)
        if not existed:
            raise _not_found()
    return Response(status_code=204)


async def list_sessions(request: Request, settings: Settings) -> Response:
    params = request.query_params
    unknown = set(params) - {"limit", "continuation"}
    if unknown:
        raise ApiError(422, "invalid_request", f"Unknown query parameter '{sorted(unknown)[0]}'.", sorted(unknown)[0])
    raw_limit = params.get("limit", "20")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
        raise ApiError(422, "invalid_request", "limit must be an integer from 1 to 100.", "limit")
    cursor = params.get("continuation") or None
    if cursor is not None and len(cursor) > 512:
        raise ApiError(400, "invalid_continuation", "continuation token is not valid", "continuation")
    caller = caller_of(request, settings)
    sessions, next_cursor = await (await get_services()).conversations.list_sessions(
        caller.owner, int(raw_limit), cursor
    )
    return JSONResponse({"sessions": [summary_json(item) for item in sessions], "continuation": next_cursor})


async def session_analytics(request: Request, settings: Settings) -> Response:
    session_id = path_param(request, "sessions/{session_id}/analytics", "session_id")
    caller = caller_of(request, settings)
    services = await get_services()
    async with audit.audited(services, caller.owner, session_id, "read_analytics"):
        result = await services.conversations.session_analytics(caller.owner, session_id)
    return JSONResponse(result)


async def owner_analytics(request: Request, settings: Settings) -> Response:
    caller = caller_of(request, settings)
    return JSONResponse(await (await get_services()).conversations.owner_analytics(caller.owner))


# ---- data lifecycle: erasure, audit trail, reconcile (logic in shared.erasure, shared.audit, shared.reconcile) ---

# A principal id as identity providers issue it (an object id, an email, ...): hashed by owner_key before use.
PRINCIPAL_PATTERN = re.compile(r"^[^\x00-\x1f/]{1,256}$")


def _forbidden() -> ApiError:
    return ApiError(403, "forbidden", f"This needs the '{get_settings().admin_role}' role.")


async def _erase(services: Services, caller: Caller, owner: str, user_id: str) -> Response:
    receipt = await erase_owner(services, owner, user_id=user_id, actor=caller.owner, admin=caller.owner != owner)
    return JSONResponse(receipt.to_dict())


async def erase_me(request: Request, settings: Settings) -> Response:
    caller = caller_of(request, settings)
    if caller.principal_id is None:
        # Anonymous data is shared by every unauthenticated caller: nobody may erase it as "theirs".
        raise ApiError(403, "forbidden", "Sign in to erase your data.")
    return await _erase(await get_services(), caller, caller.owner, caller.principal_id)


async def erase_user(request: Request, settings: Settings) -> Response:
    user_id = path_param(request, "users/{user_id}", "user_id", PRINCIPAL_PATTERN)
    if user_id == "me":
        return await erase_me(request, settings)
    caller = caller_of(request, settings)
    services = await get_services()
    owner = owner_key(user_id)
    if not caller.is_admin:
        await audit.record(
            services,
            actor=caller.owner,
            owner=owner,
            session_id=audit.user_partition(owner),
            action="erase_user",
            outcome="forbidden",
        )
        raise _forbidden()
    return await _erase(services, caller, owner, user_id)


async def session_audit(request: Request, settings: Settings) -> Response:
    session_id = path_param(request, "sessions/{session_id}/audit", "session_id")
    caller = caller_of(request, settings)
    services = await get_services()
    events = await audit.audit_log(services).session_events(session_id, None if caller.is_admin else caller.owner)
    # The caller's own events, or all for an admin; a session counts as the caller's when it exists under
    # their key or one of their actions on it succeeded. Anyone else gets the missing-session answer.
    mine = [event for event in events if event.owner == caller.owner]
    owns = any(event.outcome == "ok" for event in mine) or await services.snapshots.exists(caller.owner, session_id)
    if not owns and not (caller.is_admin and events):
        raise _not_found()
    return JSONResponse({"session_id": session_id, "events": [event.to_json() for event in events]})


async def reconcile_metadata(request: Request, settings: Settings) -> Response:
    caller = caller_of(request, settings)
    if not caller.is_admin:
        raise _forbidden()
    data = await read_body(request, settings, optional=True)
    body = validate(ReconcileRequest, data if data is not None else {})
    owner = owner_key(body.owner) if body.owner is not None else None
    report = await reconcile_sessions(await get_services(), owner=owner, session_id=body.session_id)
    return JSONResponse(report.to_dict())


# ---- import, export, fork (logic in shared.portability) ----------------------------------------------------------

ImportFormat = Literal["openai", "agent_session", "agent_thread_legacy", "export"]
assert set(ImportFormat.__args__) == set(FORMATS)  # type: ignore[attr-defined]


class ImportRequest(_Strict):
    format: ImportFormat = Field(
        description="openai: a list of chat messages; agent_session: an AgentSession.to_dict() payload; "
        "agent_thread_legacy: a pre-1.0 AgentThread serialization; export: a document from GET .../export."
    )
    data: Any = Field(description="The conversation, in the given format.")
    session_id: str | None = Field(
        None, description="Id of the new session; omit to get a generated one.", pattern=ID_PATTERN.pattern
    )


def _integral(value: Any) -> Any:
    """JSON has one number type and JSON Schema's `integer` includes 3.0: take a whole float as the int it is."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class ForkRequest(_Strict):
    at_turn: Annotated[int, BeforeValidator(_integral)] = Field(
        description="The last turn the new session keeps (1 to the session's turns).", ge=1
    )


class ExportEnvelope(BaseModel):
    session_id: str
    created_at: str
    updated_at: str
    agent_framework_version: str
    lineage: dict[str, Any] | None
    turns: int


class ExportDocument(BaseModel):
    schema_name: Literal["hybrid-llm-router.export"] = Field(alias="schema")
    schema_version: int
    exported_at: str
    session: ExportEnvelope
    messages: list[OpenAIMessage]
    agent_session: dict[str, Any] = Field(description="The AgentSession.to_dict() payload of the whole session.")
    turns: list[dict[str, Any]] = Field(description="Every turn record, each with its message_count.")


def _created(view: SessionView) -> Response:
    location = f"/api/sessions/{view.snapshot.session_id}"
    return JSONResponse(session_json(view), status_code=201, headers={"Location": location})


async def import_session(request: Request, settings: Settings) -> Response:
    body = validate(ImportRequest, await read_body(request, settings, limit=settings.import_max_bytes))
    caller = caller_of(request, settings)
    services = await get_services()
    async with audit.audited(services, caller.owner, None, "import") as audited:
        view = await transfer_of(services).import_session(caller.owner, body.format, body.data, body.session_id)
        audited.session_id = view.snapshot.session_id
    return _created(view)


async def export_session(request: Request, settings: Settings) -> Response:
    session_id = path_param(request, "sessions/{session_id}/export", "session_id")
    caller = caller_of(request, settings)
    services = await get_services()
    async with audit.audited(services, caller.owner, session_id, "export"):
        document = await transfer_of(services).export_session(caller.owner, session_id)
    return JSONResponse(document)


async def fork_session(request: Request, settings: Settings) -> Response:
    session_id = path_param(request, "sessions/{session_id}/fork", "session_id")
    body = validate(ForkRequest, await read_body(request, settings))
    caller = caller_of(request, settings)
    services = await get_services()
    async with audit.audited(services, caller.owner, session_id, "fork"):
        view = await transfer_of(services).fork_session(caller.owner, session_id, body.at_turn)
    return _created(view)


async def health(request: Request, settings: Settings) -> Response:
    services = await get_services()
    checks = await services.conversations.health()
    healthy = checks["storage"] == "ok" and checks["cosmos"] == "ok" and bool(services.backends)
    body = {
        "status": "ok" if healthy else "degraded",
        **checks,
        "backends": {name: {"model": backend.model} for name, backend in services.backends.items()},
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


async def openapi(request: Request, settings: Settings) -> Response:
    from shared.openapi import document

    return JSONResponse(document())
