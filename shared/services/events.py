"""What a turn tells its caller as it runs, and the views of a session the other services return.

A turn is an async stream of events (`RouteChosen`, `Delta`, `FallbackTaken`, `TurnCompleted`), so the
same code serves a JSON answer and a Server-Sent Events stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.records import Attempt, TurnRecord
from shared.domain.routing import Decision
from shared.domain.sessions import SessionSummary, Snapshot


@dataclass(frozen=True)
class RouteChosen:
    session_id: str
    turn: int
    decision: Decision
    model: str


@dataclass(frozen=True)
class FallbackTaken:
    failed: Attempt
    next_backend: str


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class TurnResult:
    session_id: str
    turn: int
    reply: str
    record: TurnRecord
    created: bool
    metadata_saved: bool


@dataclass(frozen=True)
class TurnCompleted:
    result: TurnResult


TurnEvent = RouteChosen | FallbackTaken | Delta | TurnCompleted


@dataclass(frozen=True)
class Replayed:
    """A request that repeats a turn already saved (a client's retry): its stored answer, no model call."""

    session_id: str
    turn: int
    reply: str
    record: TurnRecord


@dataclass(frozen=True)
class SessionView:
    snapshot: Snapshot
    summary: SessionSummary
