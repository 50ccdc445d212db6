"""Chat and resume: a turn as JSON or as Server-Sent Events."""

from __future__ import annotations

from fastapi.responses import Response

from shared.http.call import Call
from shared.http.models import ChatRequest, ResumeRequest, ResumeResponse
from shared.http.responses import chat_model, json_response, session_model
from shared.http.streaming import sse_response
from shared.services.audit import Audited


async def chat(call: Call) -> Response:
    body = await call.body(ChatRequest)
    owner = call.caller.owner
    services = await call.services()
    if body.stream or "text/event-stream" in call.request.headers.get("accept", "").lower():
        note = Audited(body.session_id)
        saved = services.audit.turn_saved(owner, note)
        turn = services.conversations.turn(owner, body.message, body.session_id, body.route, on_saved=saved)
        events = services.audit.audited_stream(owner, body.session_id, turn, note)
        try:
            first = await events.__anext__()
        except BaseException:
            await events.aclose()
            raise
        return sse_response(first, events)
    async with call.audited(action="continue" if body.session_id else "create", session_id=body.session_id) as audited:
        saved = services.audit.turn_saved(owner, audited)
        result = await services.conversations.chat(owner, body.message, body.session_id, body.route, on_saved=saved)
        audited.session_id = result.session_id
    return json_response(chat_model(result))


async def resume_session(call: Call) -> Response:
    session_id = call.param("session_id")
    body = await call.body(ResumeRequest, optional=True)
    owner = call.caller.owner
    conversations = (await call.services()).conversations
    answer = None
    async with call.audited(action="read" if body.message is None else "continue", session_id=session_id):
        if body.message is not None:
            answer = chat_model(await conversations.chat(owner, body.message, session_id, body.route))
        view = await conversations.get(owner, session_id)
    resumed = session_model(view).model_dump()
    if answer is not None:
        resumed |= answer.model_dump(exclude={"session_id", "created"})
    return json_response(ResumeResponse.model_validate(resumed), exclude_unset=True)
