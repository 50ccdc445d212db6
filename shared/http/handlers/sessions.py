"""Reading, listing, deleting and analysing sessions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

from fastapi.responses import Response

from shared.http.call import Call
from shared.http.errors import ApiError, not_found
from shared.http.models import FeedbackRequest, FeedbackResponse, SessionList
from shared.http.responses import analytics_model, json_response, session_model, summary_model

DAY_PATTERN = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")  # date.fromisoformat alone also takes 20240101 and 2024-W01-1


def _query(call: Call, *allowed: str) -> Mapping[str, str]:
    """The query parameters, when every one is among `allowed` (422 naming the first unknown one)."""
    params = call.request.query_params
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ApiError(422, "invalid_request", f"Unknown query parameter '{unknown[0]}'.", unknown[0])
    return params


def _day(params: Mapping[str, str], name: str) -> date | None:
    """A UTC day query parameter (YYYY-MM-DD), or None when absent; 422 naming it when malformed."""
    raw = params.get(name)
    if raw is None:
        return None
    try:
        if not DAY_PATTERN.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, "invalid_request", f"{name} must be a UTC date, YYYY-MM-DD.", name) from None


async def list_sessions(call: Call) -> Response:
    params = _query(call, "limit", "continuation")
    raw_limit = params.get("limit", "20")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
        raise ApiError(422, "invalid_request", "limit must be an integer from 1 to 100.", "limit")
    cursor = params.get("continuation") or None
    if cursor is not None and len(cursor) > 512:
        raise ApiError(400, "invalid_continuation", "continuation token is not valid", "continuation")
    owner = call.caller.owner
    services = await call.services()
    sessions, next_cursor = await services.conversations.list_sessions(owner, int(raw_limit), cursor)
    return json_response(SessionList(sessions=[summary_model(item) for item in sessions], continuation=next_cursor))


async def get_session(call: Call) -> Response:
    session_id = call.param("session_id")
    async with call.audited(action="read", session_id=session_id):
        view = await (await call.services()).conversations.get(call.caller.owner, session_id)
    return json_response(session_model(view))


async def delete_session(call: Call) -> Response:
    session_id = call.param("session_id")
    async with call.audited(action="delete", session_id=session_id):
        if not await (await call.services()).conversations.delete(call.caller.owner, session_id):
            raise not_found()
    return Response(status_code=204)


async def session_analytics(call: Call) -> Response:
    session_id = call.param("session_id")
    async with call.audited(action="read_analytics", session_id=session_id):
        result = await (await call.services()).conversations.session_analytics(call.caller.owner, session_id)
    return json_response(analytics_model(result), exclude_unset=True)


async def owner_analytics(call: Call) -> Response:
    params = _query(call, "from", "to")
    start, end = _day(params, "from"), _day(params, "to")
    if start is not None and end is not None and start > end:
        raise ApiError(422, "invalid_request", "from must not be after to.", "from")
    owner = call.caller.owner
    services = await call.services()
    result = await services.conversations.owner_analytics(owner, start, end)
    return json_response(analytics_model(result), exclude_unset=True)


async def turn_feedback(call: Call) -> Response:
    session_id, turn = call.param("session_id"), int(call.param("turn"))
    body = await call.body(FeedbackRequest)
    async with call.audited(action="feedback", session_id=session_id):
        feedback = await (await call.services()).feedback.give(
            call.caller.owner,
            session_id,
            turn,
            rating=body.rating,
            preferred_backend=body.preferred_backend,
            comment=body.comment,
        )
    stored = {**feedback.to_dict(), "comment": feedback.comment}
    return json_response(FeedbackResponse(session_id=session_id, turn=turn, **stored))
