"""Turn records and entries: the routing metadata of one exchange, and the exchange as stored.

A `TurnRecord` is the routing metadata analytics read (Cosmos keeps the part of it they need, the snapshot all of
it); an `Entry` is one exchange as the snapshot stores it (the turn record beside its messages in both formats, so
Cosmos can always be rebuilt from Blob).
A turn that did not run in its session (imported, or copied by a fork) is a *carried* turn: no backend,
routing, tokens or cost of its own, so nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from shared.domain.clock import utc_iso
from shared.domain.feedback import Feedback
from shared.domain.messages import text_of


@dataclass(frozen=True)
class Attempt:
    """One backend tried for a turn that failed, kept in the record's fallback chain."""

    backend: str
    model: str
    error: str
    latency_ms: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TurnRecord:
    turn: int
    backend: str | None
    model: str | None
    complexity: float | None
    reason: str
    router_version: str | None
    route_requested: str
    switched_from: str | None
    fallback_chain: tuple[Attempt, ...]
    latency_ms: float | None
    turn_ms: float | None
    input_tokens: int
    output_tokens: int
    cost: float
    started_at: str
    completed_at: str
    user_chars: int
    reply_chars: int
    signals: tuple[str, ...] = ()
    follow_up: bool = False
    imported: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fallback_from(self) -> str | None:
        return self.fallback_chain[0].backend if self.fallback_chain else None

    @property
    def summary_calls(self) -> tuple[Mapping[str, Any], ...]:
        """The calls the turn made to summarize older turns (`extra.context.summary_calls`), one per backend."""
        note = self.extra.get("context")
        calls = note.get("summary_calls") if isinstance(note, Mapping) and not self.imported else None
        return tuple(call for call in calls if isinstance(call, Mapping)) if isinstance(calls, list) else ()

    @property
    def summary_cost(self) -> float:
        return round(sum(float(call.get("cost") or 0.0) for call in self.summary_calls), 8)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fallback_chain"] = [attempt.to_dict() for attempt in self.fallback_chain]
        data["signals"] = list(self.signals)
        data["fallback_from"] = self.fallback_from
        data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnRecord:
        """A record from its stored form. Only `turn` and `completed_at` are required: a turn's Cosmos document
        keeps only what analytics read (`shared.storage.documents.kept_fields`), the rest reads as its default
        (`started_at` as "", unknown)."""
        return cls(
            turn=int(data["turn"]),
            backend=data.get("backend"),
            model=data.get("model"),
            complexity=data.get("complexity"),
            reason=str(data.get("reason", "")),
            router_version=data.get("router_version"),
            route_requested=str(data.get("route_requested", "auto")),
            switched_from=data.get("switched_from"),
            fallback_chain=tuple(Attempt(**attempt) for attempt in data.get("fallback_chain", ())),
            latency_ms=data.get("latency_ms"),
            turn_ms=data.get("turn_ms"),
            input_tokens=int(data.get("input_tokens", 0)),
            output_tokens=int(data.get("output_tokens", 0)),
            cost=float(data.get("cost", 0.0)),
            started_at=str(data.get("started_at", "")),
            completed_at=str(data["completed_at"]),
            user_chars=int(data.get("user_chars", 0)),
            reply_chars=int(data.get("reply_chars", 0)),
            signals=tuple(data.get("signals", ())),
            follow_up=bool(data.get("follow_up", False)),
            imported=bool(data.get("imported", False)),
            extra=dict(data.get("extra", {})),
        )


@dataclass(frozen=True)
class Entry:
    """One stored exchange: the turn record and its new messages in Agent Framework and OpenAI form."""

    record: TurnRecord
    af_messages: tuple[Mapping[str, Any], ...]
    openai_messages: tuple[Mapping[str, Any], ...]

    @property
    def turn(self) -> int:
        return self.record.turn

    def to_dict(self) -> dict[str, Any]:
        # The two formats of the same messages sit side by side, so gzip compresses one against the other.
        return {
            "turn": self.record.turn,
            "openai": list(self.openai_messages),
            "af": list(self.af_messages),
            "record": self.record.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        return cls(
            record=TurnRecord.from_dict(data["record"]),
            af_messages=tuple(data.get("af", ())),
            openai_messages=tuple(data.get("openai", ())),
        )


@dataclass(frozen=True)
class TurnRow:
    """A turn record as Cosmos serves it: with its session and the feedback it got (None when none)."""

    session_id: str
    record: TurnRecord
    feedback: Feedback | None = None


# ---- carried turns -------------------------------------------------------------------------------------------


def _original_of(record: TurnRecord) -> dict[str, Any] | None:
    """The routing metadata a carried turn keeps: its first real record, never a record of a record."""
    if record.imported:
        original = record.extra.get("original")
        return dict(original) if isinstance(original, Mapping) else None
    data = record.to_dict()
    data.pop("extra", None)
    return data


def _carried(
    turn: int,
    now: datetime,
    *,
    complexity: float | None,
    reason: str,
    user_chars: int,
    reply_chars: int,
    extra: Mapping[str, Any],
) -> TurnRecord:
    """A turn as stored when it did not run here: imported, no backend, routing, cost or latency of its own."""
    stamp = utc_iso(now)
    return TurnRecord(
        turn=turn, backend=None, model=None, complexity=complexity, reason=reason, router_version=None,
        route_requested="auto", switched_from=None, fallback_chain=(), latency_ms=None, turn_ms=None,
        input_tokens=0, output_tokens=0, cost=0.0, started_at=stamp, completed_at=stamp,
        user_chars=user_chars, reply_chars=reply_chars, imported=True, extra=extra,
    )  # fmt: skip


def carried_record(
    record: TurnRecord, *, turn: int, now: datetime, reason: str, extra: Mapping[str, Any]
) -> TurnRecord:
    """A turn that ran elsewhere (an export, a fork's source), keeping its first real record in `original`.

    Its complexity is kept, so the router's follow-up rule still sees how demanding the conversation was."""
    kept = {key: value for key, value in record.extra.items() if key != "original"} if record.imported else {}
    original = _original_of(record)
    return _carried(
        turn, now, complexity=record.complexity, reason=reason, user_chars=record.user_chars,
        reply_chars=record.reply_chars, extra={**kept, **extra, **({"original": original} if original else {})},
    )  # fmt: skip


def imported_record(turn: int, messages: Sequence[Mapping[str, Any]], now: datetime, fmt: str) -> TurnRecord:
    """The record of an imported turn that has no routing metadata (every import format but export)."""
    return _carried(
        turn, now, complexity=None, reason=f"imported ({fmt})",
        user_chars=sum(len(text_of(message)) for message in messages if message.get("role") == "user"),
        reply_chars=sum(len(text_of(message)) for message in messages if message.get("role") == "assistant"),
        extra={"import_format": fmt},
    )  # fmt: skip
