"""Cosmos DB document shapes (pure): turn records, session summaries, audit events, and the list cursor.

Every document carries `type` and `schemaVersion`, its partition key field (`sessionId` or `userId`) and
an id derived from validated ids, so a retried write rewrites the same item.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from shared.domain.audit import AuditEvent
from shared.domain.budget import Charge
from shared.domain.errors import InvalidCursor
from shared.domain.feedback import Feedback
from shared.domain.ids import validate_id
from shared.domain.records import TurnRecord, TurnRow
from shared.domain.sessions import SessionSummary

DOCUMENT_SCHEMA_VERSION = 1
AUDIT_SCHEMA_VERSION = 1
SECONDS_PER_DAY = 86_400


def turn_document_id(owner: str, session_id: str, turn: int) -> str:
    return f"{owner}.{session_id}.{turn:06d}"


def turn_document(owner: str, session_id: str, record: TurnRecord, feedback: Feedback | None = None) -> dict[str, Any]:
    """A turn record as Cosmos keeps it; with the turn's feedback, without its comment (that stays in Blob)."""
    document = {
        **record.to_dict(),
        "id": turn_document_id(owner, session_id, record.turn),
        "type": "turn",
        "schemaVersion": DOCUMENT_SCHEMA_VERSION,
        "sessionId": session_id,
        "userId": owner,
        # What the turn's summary calls cost besides its answer (extra.context.summary_calls), for budgets.
        "summary_cost": record.summary_cost,
    }
    if feedback is not None:
        document["feedback"] = feedback.to_dict(comment=False)
    return document


def turn_row(document: Mapping[str, Any]) -> TurnRow:
    feedback = document.get("feedback")
    return TurnRow(
        str(document["sessionId"]),
        TurnRecord.from_dict(document),
        Feedback.from_dict(feedback) if isinstance(feedback, Mapping) else None,
    )


def charge_of(document: Mapping[str, Any]) -> Charge:
    """A turn document as a budget counts it (see `TurnStore.charges_since`)."""
    tokens = int(document.get("input_tokens") or 0) + int(document.get("output_tokens") or 0)
    cost = float(document.get("cost") or 0.0) + float(document.get("summary_cost") or 0.0)
    return Charge(str(document["completed_at"]), round(cost, 8), tokens)


def summary_document(summary: SessionSummary) -> dict[str, Any]:
    return {
        **summary.to_dict(),
        "id": summary.session_id,
        "type": "session",
        "schemaVersion": DOCUMENT_SCHEMA_VERSION,
        "userId": summary.owner,
        # One sortable key (time, then id) makes keyset paging need no composite index.
        "sortKey": f"{summary.last_active}|{summary.session_id}",
    }


def summary_from_document(document: Mapping[str, Any]) -> SessionSummary:
    return SessionSummary(
        session_id=document["session_id"],
        owner=document["owner"],
        created_at=document["created_at"],
        last_active=document["last_active"],
        turns=int(document["turns"]),
        backends=dict(document.get("backends", {})),
        switches=int(document.get("switches", 0)),
        fallbacks=int(document.get("fallbacks", 0)),
        input_tokens=int(document.get("input_tokens", 0)),
        output_tokens=int(document.get("output_tokens", 0)),
        cost=float(document.get("cost", 0.0)),
        title=document.get("title"),
        transcript_hash=document.get("transcript_hash"),
        replay_hash=document.get("replay_hash"),
    )


def audit_document(event: AuditEvent, ttl_seconds: int) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": "audit",
        "schemaVersion": AUDIT_SCHEMA_VERSION,
        "sessionId": event.session_id,
        "userId": event.owner,
        "actor": event.actor,
        "admin": event.admin,
        "action": event.action,
        "outcome": event.outcome,
        "at": event.at,
        "details": dict(event.details),
        "ttl": ttl_seconds,
    }


def audit_event_from_document(document: Mapping[str, Any]) -> AuditEvent:
    return AuditEvent(
        session_id=str(document["sessionId"]),
        owner=str(document["userId"]),
        actor=str(document["actor"]),
        action=str(document["action"]),
        outcome=str(document["outcome"]),
        at=str(document["at"]),
        admin=bool(document.get("admin", False)),
        details={key: int(value) for key, value in dict(document.get("details") or {}).items()},
        id=str(document["id"]),
    )


def stored_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    """A Cosmos document without the service's system properties (`_rid`, `_etag`, `_ts`, ...)."""
    return {key: value for key, value in document.items() if not key.startswith("_")}


def differs(stored: Mapping[str, Any], expected: Mapping[str, Any], ignore: frozenset[str] = frozenset()) -> bool:
    """True when a field we derive has another value in the stored document (fields we do not derive,
    such as a title set elsewhere or a ttl, do not count)."""
    return any(stored.get(key) != value for key, value in expected.items() if key not in ignore)


def encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(sort_key.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        sort_key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("continuation token is not valid") from None
    time_part, _, session_id = sort_key.partition("|")
    if not time_part or not session_id:
        raise InvalidCursor("continuation token is not valid")
    validate_id(session_id, "continuation")
    return sort_key
