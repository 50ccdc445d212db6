"""The one error mapper: every failure becomes a JSON error with a status, or a 500 with a correlation id.

Validation -> 400/422 naming the field; unknown or foreign session -> 404 (the same answer for both, so
existence is not disclosed); a concurrent turn -> 409 with Retry-After; too large -> 413; backends down
-> 429/502/503/504 with Retry-After where waiting helps. An unexpected failure is logged with a correlation
id and answered with that id only: `str(exc)` never goes to the client.
"""

from __future__ import annotations

import logging
import uuid

from fastapi.responses import JSONResponse

from shared.config import SettingsError
from shared.domain.backends import ROUTES
from shared.domain.errors import (
    REFUSALS,
    AllBackendsFailed,
    BackendNotConfigured,
    BudgetExceeded,
    ContextTooLarge,
    InvalidCursor,
    InvalidFork,
    InvalidImport,
    InvalidMessage,
    InvalidRequest,
    ModelCallError,
    NoBackendConfigured,
    SessionBusy,
    SessionConflict,
    SessionExists,
    SessionNotFound,
    StreamBroken,
    TurnNotFound,
    UnknownModel,
    UnknownRoute,
)
from shared.domain.ids import InvalidId
from shared.http.models import BudgetInfo, ErrorBody, ErrorResponse
from shared.http.openai_models import OpenAIErrorBody, OpenAIErrorResponse
from shared.storage.errors import is_transient

logger = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        budget: BudgetInfo | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}
        self.budget = budget

    def model(self, correlation_id: str | None = None) -> ErrorBody:
        return ErrorBody(
            code=self.code, message=self.message, field=self.field, correlation_id=correlation_id, budget=self.budget
        )


def not_found() -> ApiError:
    # The same answer for "does not exist" and "belongs to someone else": existence is not disclosed.
    return ApiError(404, "session_not_found", "No such session.")


def _retry_after(seconds: float | None, default: int) -> dict[str, str]:
    value = default if seconds is None else max(1, round(seconds))
    return {"Retry-After": str(value)}


def _backends_failed(exc: AllBackendsFailed) -> ApiError:
    last = exc.last
    tried = ", ".join(f"{attempt.backend} ({attempt.error})" for attempt in exc.attempts)
    notes = "".join(f" {note[0].upper()}{note[1:]}." for note in exc.notes)
    if last.kind == "cooldown":  # no backend was called: each is cooling down after failures
        message = f"Every backend is cooling down after failures: {tried}.{notes}"
        return ApiError(503, "backends_cooling_down", message, headers=_retry_after(last.retry_after, 5))
    status = 504 if all(attempt.error in ("timeout", *REFUSALS) for attempt in exc.attempts) else 502
    if last.kind == "rate_limited":
        status = 429
    headers = _retry_after(last.retry_after, 5) if last.kind in ("rate_limited", "server") else {}
    return ApiError(status, "backends_failed", f"Every backend failed: {tried}.{notes}", headers=headers)


def _budget_exceeded(exc: BudgetExceeded) -> ApiError:
    used = exc.exhausted
    message = (
        f"Your {used.period} budget of {used.limit:g} USD is used up ({used.spent:g} USD spent), so the "
        f"{exc.backend} backend is not available until it resets in {used.resets_in} s."
    )
    budget = BudgetInfo(**used.to_dict())
    return ApiError(429, "budget_exceeded", message, headers=_retry_after(used.resets_in, 60), budget=budget)


def to_api_error(exc: BaseException) -> ApiError | None:
    """Our error for a known failure, or None for an unexpected one (a 500 with a correlation id)."""
    match exc:
        case ApiError():
            return exc
        case InvalidId():
            return ApiError(400 if exc.field == "continuation" else 422, "invalid_id", str(exc), exc.field)
        case ContextTooLarge():
            # OpenAI's own code for it: clients that trim and retry on it (LangChain, others) do so here too.
            return ApiError(413, "context_length_exceeded", str(exc), exc.field)
        case InvalidMessage():
            return ApiError(413 if exc.too_long else 422, "invalid_message", str(exc), exc.field)
        case UnknownRoute():
            return ApiError(422, "invalid_route", f"route must be one of {', '.join(ROUTES)}", "route")
        case UnknownModel():
            return ApiError(404, "model_not_found", str(exc), "model")
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
        case InvalidRequest():
            return ApiError(422, "invalid_request", str(exc), exc.field)
        case SessionExists():
            return ApiError(409, "session_exists", "You already have a session with this id.", "session_id")
        case SessionNotFound():
            return not_found()
        case TurnNotFound():
            return ApiError(404, "turn_not_found", f"The session has no turn {exc.turn}.", "turn")
        case SessionBusy():
            message = "Another turn is running on this session; retry shortly."
            return ApiError(409, "session_busy", message, headers={"Retry-After": str(SessionBusy.retry_after_seconds)})
        case SessionConflict():
            return ApiError(409, "session_conflict", "The session changed while this turn ran; nothing was saved.")
        case AllBackendsFailed():
            return _backends_failed(exc)
        case BudgetExceeded():
            return _budget_exceeded(exc)
        case StreamBroken():
            message = f"The {exc.error.backend} backend failed mid-answer; nothing was saved."
            return ApiError(502, "stream_broken", message)
        case ModelCallError():
            return ApiError(502, "backend_rejected", f"The {exc.backend} backend refused the request ({exc.kind}).")
        case SettingsError():
            # Names the setting (never a secret: keys are not validated for shape, so never echoed).
            return ApiError(503, "misconfigured", f"The service is misconfigured: {exc}", headers={"Retry-After": "60"})
    if is_transient(exc):
        return ApiError(
            503, "storage_unavailable", "Storage is unavailable; retry shortly.", headers={"Retry-After": "5"}
        )
    return None


def internal_error(exc: BaseException, what: str = "unhandled error") -> ErrorBody:
    """A 500's body: a fresh correlation id, logged with the exception (which never reaches the client)."""
    correlation_id = uuid.uuid4().hex
    logger.error("%s, correlation id %s", what, correlation_id, exc_info=exc)
    return ErrorBody(code="internal", message="Internal error.", correlation_id=correlation_id)


def openai_error_response(exc: BaseException) -> JSONResponse:
    """The same mapping, in OpenAI's error shape (`/api/v1`): `{"error": {message, type, param, code}}`, so
    OpenAI SDKs raise their own typed exceptions (NotFoundError, RateLimitError, ...)."""
    api_error = to_api_error(exc)
    if api_error is None:
        body = internal_error(exc)
        api_error = ApiError(500, "internal", f"Internal error (correlation id {body.correlation_id}).")
    elif api_error.status >= 500:
        logger.warning("request failed with %d %s", api_error.status, api_error.code)
    error = OpenAIErrorBody(
        message=api_error.message, type=_openai_type(api_error.status), param=api_error.field, code=api_error.code
    )
    body_json = OpenAIErrorResponse(error=error).model_dump()
    return JSONResponse(body_json, status_code=api_error.status, headers=api_error.headers)


def _openai_type(status: int) -> str:
    if status == 404:
        return "not_found_error"
    if status == 429:
        return "rate_limit_error"
    return "api_error" if status >= 500 else "invalid_request_error"


def error_response(exc: BaseException) -> JSONResponse:
    api_error = to_api_error(exc)
    if api_error is None:
        body = ErrorResponse(error=internal_error(exc))
        return JSONResponse(body.model_dump(exclude_none=True), status_code=500)
    if api_error.status >= 500:
        logger.warning("request failed with %d %s", api_error.status, api_error.code)
    body = ErrorResponse(error=api_error.model())
    return JSONResponse(body.model_dump(exclude_none=True), status_code=api_error.status, headers=api_error.headers)
