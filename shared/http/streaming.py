"""A turn as Server-Sent Events: route, delta..., fallback, then done (the JSON answer) or error.

Once the first event is out the status line is gone, so a failure travels as an `error` event carrying the
status it would have had.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Send

from shared.http.errors import internal_error, to_api_error
from shared.http.responses import chat_model
from shared.services.events import Delta, FallbackTaken, RouteChosen, TurnCompleted, TurnEvent

logger = logging.getLogger(__name__)


def sse_response(first: TurnEvent, events: AsyncGenerator[TurnEvent, None]) -> StreamingResponse:
    return StreamingResponse(
        _stream(first, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


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
            return "done", chat_model(event.result).model_dump(mode="json")
    raise TypeError(f"unknown event {event!r}")  # pragma: no cover


def _error_event(exc: BaseException) -> bytes:
    api_error = to_api_error(exc)
    if api_error is None:
        body = internal_error(exc, "turn failed mid-stream").model_dump(exclude_none=True)
        return _sse("error", {**body, "status": 500})
    return _sse("error", {**api_error.model().model_dump(exclude_none=True), "status": api_error.status})


async def _stream(first: TurnEvent, events: AsyncGenerator[TurnEvent, None]) -> AsyncIterator[bytes]:
    yield _sse(*_event_json(first))
    try:
        async for event in events:
            yield _sse(*_event_json(event))
    except Exception as exc:  # noqa: BLE001 - the status line is gone; the error travels as an event
        yield _error_event(exc)
    finally:
        await events.aclose()


class LateHeadersStreamingResponse(StreamingResponse):
    """A stream whose status line and headers go out with its first chunk, not before it.

    The OpenAI door says in headers which backend answered, which is only known once the first text arrives (a
    fallback happens before any text). Producing that first chunk here, in the response's own task, also keeps a
    model stream in one task from start to end (Agent Framework's telemetry resets context tokens it set).
    A failure before the first chunk is still a proper error response (`on_error`), not a broken stream.
    """

    def __init__(
        self,
        content: AsyncIterator[bytes],
        late_headers: Callable[[], Mapping[str, str]],
        on_error: Callable[[BaseException], JSONResponse],
    ) -> None:
        super().__init__(content, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self._late_headers = late_headers
        self._on_error = on_error

    async def stream_response(self, send: Send) -> None:
        chunks = aiter(self.body_iterator)
        try:
            first = await anext(chunks, b"")
        except Exception as exc:  # noqa: BLE001 - nothing is sent yet: answer with the error itself
            error = self._on_error(exc)
            await send({"type": "http.response.start", "status": error.status_code, "headers": error.raw_headers})
            await send({"type": "http.response.body", "body": error.body, "more_body": False})
            return
        late = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in self._late_headers().items()
        ]
        await send({"type": "http.response.start", "status": self.status_code, "headers": [*self.raw_headers, *late]})
        await send({"type": "http.response.body", "body": first, "more_body": True})
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
