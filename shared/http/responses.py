"""Responses built from the documented models: the domain's values go in, the model serializes them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shared.domain.audit import AuditEvent
from shared.domain.feedback import Feedback
from shared.domain.records import TurnRecord
from shared.domain.sessions import SessionSummary
from shared.http.models import (
    Analytics,
    AuditEventInfo,
    AuditTrail,
    ChatResponse,
    RouteInfo,
    SessionResponse,
    Summary,
    Usage,
)
from shared.services.events import SessionView, TurnResult


def json_response(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None, *, exclude_unset: bool = False
) -> JSONResponse:
    body = model.model_dump(mode="json", by_alias=True, exclude_unset=exclude_unset)
    return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)


def chat_model(result: TurnResult) -> ChatResponse:
    record = result.record
    return ChatResponse(
        session_id=result.session_id,
        turn=result.turn,
        reply=result.reply,
        route=RouteInfo(
            backend=record.backend or "",
            model=record.model or "",
            complexity=record.complexity,
            reason=record.reason,
            switched_from=record.switched_from,
            fallback_from=record.fallback_from,
            router_version=record.router_version,
            fallback_chain=[attempt.to_dict() for attempt in record.fallback_chain],
        ),
        usage=Usage(input_tokens=record.input_tokens, output_tokens=record.output_tokens),
        latency_ms=record.latency_ms or 0.0,
        cost=record.cost,
        created=result.created,
    )


def summary_model(summary: SessionSummary) -> Summary:
    return Summary.model_validate(summary.to_dict())


def session_model(view: SessionView) -> SessionResponse:
    snapshot = view.snapshot
    return SessionResponse(
        session_id=snapshot.session_id,
        messages=snapshot.openai_messages(),  # type: ignore[arg-type]  # validated into OpenAIMessage
        turns=[_turn(entry.record, snapshot.feedback.get(entry.turn)) for entry in snapshot.entries],
        summary=summary_model(view.summary),
        lineage=dict(snapshot.lineage) if snapshot.lineage else None,
    )


def _turn(record: TurnRecord, feedback: Feedback | None) -> dict[str, Any]:
    """A turn record as the session's owner sees it: with the feedback it got."""
    return record.to_dict() if feedback is None else {**record.to_dict(), "feedback": feedback.to_dict()}


def analytics_model(data: Mapping[str, Any]) -> Analytics:
    return Analytics.model_validate(dict(data))


def audit_model(session_id: str, events: Sequence[AuditEvent]) -> AuditTrail:
    return AuditTrail(
        session_id=session_id,
        events=[
            AuditEventInfo(
                id=event.id, session_id=event.session_id, action=event.action, outcome=event.outcome, at=event.at,
                actor=event.actor, admin=event.admin, details=dict(event.details),
            )
            for event in events
        ],
    )  # fmt: skip
