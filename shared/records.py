"""Plain values shared by the turn, the snapshot store and the metadata store: ids, turn records, entries.

Nothing here does I/O. A `TurnRecord` is the routing metadata of one exchange; an `Entry` is one exchange
as stored (the turn record beside its messages in both formats, so Cosmos can always be rebuilt from Blob).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.settings import ID_PATTERN, Price

ANONYMOUS_OWNER = "anonymous"


class InvalidId(ValueError):
    """An id does not match the allowed pattern; raised before any storage call."""

    def __init__(self, field_name: str, value: object) -> None:
        super().__init__(f"{field_name} must match {ID_PATTERN.pattern}")
        self.field = field_name
        self.value = value


def validate_id(value: object, field_name: str = "session_id") -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise InvalidId(field_name, value)
    return value


def new_session_id() -> str:
    return uuid.uuid4().hex


def owner_key(principal_id: str) -> str:
    """The storage key of a principal: the id itself when it is a safe id, else a stable hash of it.

    Storage names and Cosmos ids are derived only from keys that match `ID_PATTERN`; identity providers
    do not promise that, so an unusual principal id is hashed rather than trusted into a blob path.
    """
    # Taken as is only when it is a safe id that cannot collide with the shared anonymous owner or with the
    # hashed form of another principal's id.
    if ID_PATTERN.fullmatch(principal_id) and principal_id != ANONYMOUS_OWNER and not principal_id.startswith("h-"):
        return principal_id
    return "h-" + hashlib.sha256(principal_id.encode("utf-8")).hexdigest()[:40]


def utc_iso(moment: datetime) -> str:
    """Fixed-width UTC timestamps, so that string order is time order (Cosmos ORDER BY, blob tags)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fallback_chain"] = [attempt.to_dict() for attempt in self.fallback_chain]
        data["signals"] = list(self.signals)
        data["fallback_from"] = self.fallback_from
        data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnRecord:
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
            started_at=str(data["started_at"]),
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
class SessionSummary:
    """What Cosmos keeps per session (partition /userId); always derivable from the turn records."""

    session_id: str
    owner: str
    created_at: str
    last_active: str
    turns: int
    backends: Mapping[str, int]
    switches: int
    fallbacks: int
    input_tokens: int
    output_tokens: int
    cost: float
    title: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["backends"] = dict(self.backends)
        return data


def summarize(session_id: str, owner: str, created_at: str, records: Sequence[TurnRecord]) -> SessionSummary:
    backends: dict[str, int] = {}
    for record in records:
        if record.backend:
            backends[record.backend] = backends.get(record.backend, 0) + 1
    return SessionSummary(
        session_id=session_id,
        owner=owner,
        created_at=created_at,
        last_active=records[-1].completed_at if records else created_at,
        turns=len(records),
        backends=backends,
        switches=sum(1 for record in records if record.switched_from),
        fallbacks=sum(1 for record in records if record.fallback_chain),
        input_tokens=sum(record.input_tokens for record in records),
        output_tokens=sum(record.output_tokens for record in records),
        cost=round(sum(record.cost for record in records), 8),
    )


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was really observed, stable for small samples."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def analytics(
    records: Sequence[TurnRecord],
    all_cloud: Price | None = None,
    all_cloud_basis: str = "no all-cloud reference price was given",
) -> dict[str, Any]:
    """Routing analytics over turn records (one session's or an owner's); aggregated here, not in SQL.

    `all_cloud` is the price the same tokens would have cost had every turn gone to the cloud backend; the
    caller picks it (and says why it is None in `all_cloud_basis`), so this stays pure.
    """
    distribution: dict[str, int] = {}
    latencies: dict[str, list[float]] = {}
    tokens: dict[str, dict[str, int]] = {}
    cost: dict[str, float] = {}
    fallbacks = 0
    for record in records:
        if record.fallback_chain:
            fallbacks += 1
        if record.backend is None:
            continue
        backend = record.backend
        distribution[backend] = distribution.get(backend, 0) + 1
        if record.latency_ms is not None:
            latencies.setdefault(backend, []).append(float(record.latency_ms))
        bucket = tokens.setdefault(backend, {"input": 0, "output": 0})
        bucket["input"] += record.input_tokens
        bucket["output"] += record.output_tokens
        cost[backend] = round(cost.get(backend, 0.0) + record.cost, 8)
    return {
        "total_exchanges": len(records),
        "routing_distribution": distribution,
        "model_switches": sum(1 for record in records if record.switched_from),
        "fallbacks": fallbacks,
        "latency_ms": {
            backend: {"mean": round(sum(values) / len(values), 3), "p95": round(percentile(values, 0.95), 3)}
            for backend, values in latencies.items()
        },
        "tokens": tokens,
        "cost": cost,
        "total_cost": round(sum(cost.values()), 8),
        **all_cloud_comparison(tokens, round(sum(cost.values()), 8), all_cloud, all_cloud_basis),
    }


def all_cloud_comparison(
    tokens: Mapping[str, Mapping[str, int]], total_cost: float, price: Price | None, basis: str
) -> dict[str, Any]:
    """What the same tokens would have cost on the cloud backend, and how much routing saved (negative: lost)."""
    if price is None:
        return {"all_cloud_cost": None, "saved_vs_all_cloud": None, "all_cloud_basis": basis}
    input_tokens = sum(bucket["input"] for bucket in tokens.values())
    output_tokens = sum(bucket["output"] for bucket in tokens.values())
    all_cloud_cost = round(
        (input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1_000_000, 8
    )
    return {
        "all_cloud_cost": all_cloud_cost,
        "saved_vs_all_cloud": round(all_cloud_cost - total_cost, 8),
        "all_cloud_basis": basis,
    }
