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

TURN_SCHEMA_VERSION = 2  # 1: the whole turn record; 2: only what is read here (`kept_fields`)
TURN_SCHEMA_VERSIONS = (1, 2)  # every version ever written, all still read
SUMMARY_SCHEMA_VERSION = 1
AUDIT_SCHEMA_VERSION = 1
SECONDS_PER_DAY = 86_400

# What a turn document keeps of its record: the fields that analytics (`shared.domain.analytics`), budgets
# (`TurnStore.charges_since`) and router calibration (`TurnStore.routed_since`) read, each with the value that
# `TurnRecord.from_dict` gives when it is absent, so a field at that value is left out. Model, reason, signals,
# start time, lengths and the other notes stay in the Blob record only. Analytics only count fallbacks, but a
# fallback chain is rare and small, and kept whole: a row still says which backend failed and why.
_KEPT_DEFAULTS: dict[str, Any] = {
    "backend": None,  # None: a carried (imported or forked) turn
    "latency_ms": None,
    "input_tokens": 0,
    "output_tokens": 0,
    "cost": 0.0,
    "switched_from": None,
    "fallback_chain": [],
    "complexity": None,  # calibration, with router_version, route_requested and imported
    "router_version": None,
    "route_requested": "auto",
    "imported": False,
}
# Of the record's notes (`extra`), the parts analytics read: the shadow router's choice and how the context
# was fitted (its summary calls, without the model that made them).
_KEPT_SHADOW = ("router_version", "backend", "primary")
_KEPT_CONTEXT = ("mode", "estimated_tokens", "summary_calls")
_KEPT_SUMMARY_CALL = ("backend", "calls", "failed", "input_tokens", "output_tokens", "latency_ms", "cost")


def turn_document_id(owner: str, session_id: str, turn: int) -> str:
    return f"{owner}.{session_id}.{turn:06d}"


def turn_document(owner: str, session_id: str, record: TurnRecord, feedback: Feedback | None = None) -> dict[str, Any]:
    """A turn as Cosmos keeps it (schema 2): its keys, `kept_fields` of its record, and the rating of its feedback
    (the comment and time stay in Blob)."""
    document: dict[str, Any] = {
        "id": turn_document_id(owner, session_id, record.turn),
        "type": "turn",
        "schemaVersion": TURN_SCHEMA_VERSION,
        "sessionId": session_id,
        "userId": owner,
        **kept_fields(record),
    }
    if feedback is not None:
        document["feedback"] = _kept_feedback(feedback)
    return document


def kept_fields(record: TurnRecord) -> dict[str, Any]:
    """The fields of a turn record that its Cosmos document keeps; see `_KEPT_DEFAULTS`."""
    data = record.to_dict()
    kept = {"turn": record.turn, "completed_at": record.completed_at}
    kept.update((key, data[key]) for key, default in _KEPT_DEFAULTS.items() if not _same(data[key], default))
    extra = _kept_extra(record.extra)
    if extra:
        kept["extra"] = extra
    if record.summary_cost:  # what the turn's summary calls cost besides its answer, for budgets
        kept["summary_cost"] = record.summary_cost
    return kept


def kept_record(record: TurnRecord) -> TurnRecord:
    """A turn record as it reads back from its Cosmos document: every field analytics read, the rest at its
    default (no model, reason, start time, lengths, signals or other notes)."""
    return TurnRecord.from_dict(kept_fields(record))


def _same(value: Any, default: Any) -> bool:
    # 0.0 is a real complexity or latency, not a missing one: where None is the default, only None is left out
    return value is None if default is None else bool(value == default)


def _kept_extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    shadow = extra.get("shadow")
    if isinstance(shadow, Mapping):
        kept["shadow"] = {key: shadow[key] for key in _KEPT_SHADOW if key in shadow}
    context = extra.get("context")
    if isinstance(context, Mapping):
        note = {key: context[key] for key in _KEPT_CONTEXT if key in context}
        if isinstance(note.get("summary_calls"), list):
            note["summary_calls"] = [
                {key: call[key] for key in _KEPT_SUMMARY_CALL if key in call}
                for call in note["summary_calls"]
                if isinstance(call, Mapping)
            ]
        kept["context"] = note
    return kept


def _kept_feedback(feedback: Feedback) -> dict[str, Any]:
    kept = {"rating": feedback.rating}
    if feedback.preferred_backend is not None:  # calibration reads it
        kept["preferred_backend"] = feedback.preferred_backend
    return kept


def turn_row(document: Mapping[str, Any]) -> TurnRow:
    """A turn document of any version as analytics read it. Version 1 held the whole record and version 2 holds
    what analytics read: the same `TurnRecord.from_dict` reads both, with the same analytics."""
    version = document.get("schemaVersion")
    if version not in TURN_SCHEMA_VERSIONS:
        known = ", ".join(map(str, TURN_SCHEMA_VERSIONS))
        raise ValueError(f"turn document {document.get('id')} has schema version {version!r}, not one of {known}")
    feedback = document.get("feedback")
    return TurnRow(
        str(document["sessionId"]),
        TurnRecord.from_dict(document),
        Feedback.from_dict(feedback) if isinstance(feedback, Mapping) else None,
    )


def is_current(stored: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    """True when a stored turn document is exactly the one `turn_document` makes now (system properties aside):
    a missing, different or extra field, or an older schema version, is drift that reconcile rewrites."""
    return stored_fields(stored) == dict(expected)


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
        "schemaVersion": SUMMARY_SCHEMA_VERSION,
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
