"""The OpenAI-compatible door (`/api/v1`): `GET /v1/models` and `POST /v1/chat/completions`.

It is the same turn as `POST /chat`, entered through another door: routing, fallback, redaction, telemetry,
audit and analytics behave the same. Which session a request belongs to is `shared.services.completions`'s job;
this module speaks the protocol: the request's fields, the `chat.completion` answer or its `chat.completion.chunk`
stream, and the headers that say where the turn went.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from fastapi.responses import Response

from shared.domain.clock import parse_iso
from shared.domain.errors import SessionNotFound
from shared.domain.ids import ID_PATTERN
from shared.domain.records import TurnRecord
from shared.http.call import Call
from shared.http.errors import openai_error_response
from shared.http.openai_models import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    ChunkDelta,
    CompletionUsage,
    Model,
    ModelList,
)
from shared.http.responses import json_response
from shared.http.streaming import LateHeadersStreamingResponse
from shared.services.audit import Audited
from shared.services.completions import Completion, Event
from shared.services.container import Services
from shared.services.events import Delta, FallbackTaken, Replayed, RouteChosen, TurnCompleted

_HEADER_TEXT = re.compile(r"[^\x20-\x7e]")


async def list_models(call: Call) -> Response:
    services = await call.services()
    created = int(services.started_at.timestamp())
    owned = {"auto": "hybrid-llm-router", **{name: backend.model for name, backend in services.backends.items()}}
    data = [Model(id=name, created=created, owned_by=owned[name]) for name in services.completions.models]
    return json_response(ModelList(data=data))


async def chat_completions(call: Call) -> Response:
    body = await call.body(ChatCompletionRequest, limit=call.settings.import_max_bytes)
    completion = _completion(call, body)
    services = await call.services()
    owner = call.caller.owner
    note = Audited(None)
    turn = services.completions.complete(owner, completion, on_saved=services.audit.turn_saved(owner, note))
    events = services.audit.audited_stream(owner, None, turn, note)
    # A refusal (unknown model, busy session, bad message) comes before the first event: read it here.
    head: list[Event] = []
    try:
        head.append(await anext(events))
        if not completion.stream:
            head += [event async for event in events]
    except BaseException:
        await events.aclose()
        raise
    where = _Where(services)
    if not completion.stream:
        where.follow(head)
        return json_response(_completion_json(head[-1], where), headers=where.headers())
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return LateHeadersStreamingResponse(
        _chunks(_resumed(head, events), events, where, include_usage), where.headers, openai_error_response
    )


def _completion(call: Call, body: ChatCompletionRequest) -> Completion:
    session_id = call.request.headers.get("x-session-id")
    if session_id is not None and not ID_PATTERN.fullmatch(session_id):
        raise SessionNotFound(session_id)  # not one of ours, so not the caller's: the missing-session answer
    key = call.request.headers.get("idempotency-key")
    retries = call.request.headers.get("x-stainless-retry-count", "0")
    return Completion(
        model=body.model,
        messages=body.messages,
        stream=body.stream,
        options=_options(body),
        session_id=session_id,
        idempotency_key=key[:200] if key else None,
        retry=retries.isdigit() and int(retries) > 0,
    )


def _options(body: ChatCompletionRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    limit = body.max_completion_tokens or body.max_tokens
    for name, value in (("temperature", body.temperature), ("top_p", body.top_p), ("max_tokens", limit)):
        if value is not None:
            options[name] = value
    if body.stop is not None:
        options["stop"] = [body.stop] if isinstance(body.stop, str) else body.stop
    if body.seed is not None:
        options["seed"] = body.seed
    return options


class _Where:
    """Where the turn went, learned from its events: its session, and the backend and model that answered
    (after any fallback), for the response headers."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self.session_id = self.backend = self.model = self.reason = ""
        self.replay = False

    def follow(self, events: Iterable[Event]) -> None:
        for event in events:
            self.see(event)

    def see(self, event: Event) -> None:
        if isinstance(event, Replayed):
            record = event.record
            self.session_id, self.backend, self.model = event.session_id, record.backend or "", record.model or ""
            self.reason, self.replay = record.reason, True
        elif isinstance(event, RouteChosen):
            self.session_id, self.backend, self.model = event.session_id, event.decision.backend, event.model
            self.reason = event.decision.reason
        elif isinstance(event, FallbackTaken):
            self.backend = event.next_backend
            self.model = self._services.backends[event.next_backend].model
            self.reason += f"; fell back to {event.next_backend}"

    def headers(self) -> dict[str, str]:
        headers = {
            "X-Session-Id": self.session_id,
            "X-Router-Backend": self.backend,
            "X-Router-Model": self.model,
            "X-Router-Reason": _HEADER_TEXT.sub("?", self.reason)[:200],
        }
        return {**headers, "X-Idempotent-Replay": "true"} if self.replay else headers


async def _resumed(head: list[Event], rest: AsyncGenerator[Event, None]) -> AsyncIterator[Event]:
    for event in head:
        yield event
    async for event in rest:
        yield event


def _record_of(event: Event) -> tuple[TurnRecord, str, int]:
    if isinstance(event, Replayed):
        return event.record, event.reply, event.turn
    assert isinstance(event, TurnCompleted)
    return event.result.record, event.result.reply, event.result.turn


def _created(record: TurnRecord) -> int:
    return int(parse_iso(record.completed_at).timestamp())


def _usage(record: TurnRecord) -> CompletionUsage:
    total = record.input_tokens + record.output_tokens
    return CompletionUsage(
        prompt_tokens=record.input_tokens, completion_tokens=record.output_tokens, total_tokens=total
    )


def _completion_json(event: Event, where: _Where) -> ChatCompletion:
    record, reply, turn = _record_of(event)
    finish = str(record.extra.get("finish_reason") or "stop")
    return ChatCompletion(
        id=f"chatcmpl-{where.session_id}-{turn}",
        created=_created(record),
        model=record.model or where.model,
        choices=[Choice(message=AssistantMessage(content=reply), finish_reason=finish)],
        usage=_usage(record),
    )


async def _chunks(
    events: AsyncIterator[Event], rest: AsyncGenerator[Event, None], where: _Where, include_usage: bool
) -> AsyncIterator[bytes]:
    """The turn as `chat.completion.chunk` events, then `[DONE]`. Nothing is produced before the first text (or
    the end), so a failure before it is a proper error response; a failure after it travels as an `error` event
    (OpenAI SDKs raise it), since the status line is gone."""
    chunk_id, created = f"chatcmpl-{where.session_id or 'pending'}", int(datetime.now().timestamp())
    started = False

    def chunk(delta: ChunkDelta, finish: str | None = None, usage: CompletionUsage | None = None) -> bytes:
        choices = [] if usage is not None else [ChunkChoice(delta=delta, finish_reason=finish)]
        body = ChatCompletionChunk(id=chunk_id, created=created, model=where.model, choices=choices, usage=usage)
        return f"data: {body.model_dump_json(exclude_none=usage is None)}\n\n".encode()

    try:
        async for event in events:
            where.see(event)
            if not isinstance(event, Delta | TurnCompleted | Replayed):
                continue
            if not started:
                started, chunk_id = True, f"chatcmpl-{where.session_id}"
                yield chunk(ChunkDelta(role="assistant", content=""))
            if isinstance(event, Delta):
                yield chunk(ChunkDelta(content=event.text))
                continue
            record, reply, _ = _record_of(event)
            if isinstance(event, Replayed):
                yield chunk(ChunkDelta(content=reply))
            yield chunk(ChunkDelta(), finish=str(record.extra.get("finish_reason") or "stop"))
            if include_usage:
                yield chunk(ChunkDelta(), usage=_usage(record))
    except Exception as exc:
        if not started:
            raise
        yield b"data: " + bytes(openai_error_response(exc).body) + b"\n\n"  # mapped, logged as any error
    finally:
        await rest.aclose()
    yield b"data: [DONE]\n\n"
