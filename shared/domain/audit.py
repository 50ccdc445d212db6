"""Audit events as values: who did what to which session, when, and how it ended. Never any content.

What an event holds: the subject (`owner`, the owner key of the session's owner), the actor (the caller's
owner key, or `system:retention`), whether the actor acted as admin, the action, the outcome and, for some
actions, counts. Never a message, a reply, a title, a principal's raw id or an error text.

Events that belong to no single session (the erasure of a user) go to a synthetic partition
`user:<owner key>`; `:` can never occur in a session id, so the two never collide.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from shared.domain.errors import RoutingError, SessionBusy, SessionConflict, SessionNotFound
from shared.domain.ids import InvalidId, validate_id

RETENTION_ACTOR = "system:retention"

Action = Literal[
    "create",  # a chat turn that started a session
    "continue",  # a chat turn on an existing session (POST /chat with session_id, resume with a message)
    "read",  # GET /sessions/{id}, resume without a message
    "read_analytics",  # GET /sessions/{id}/analytics
    "export",  # a session exported (GET /sessions/{id}/export)
    "import",  # POST /sessions/import created a session (recorded on the new session)
    "fork",  # POST /sessions/{id}/fork (recorded on the source session)
    "delete",  # DELETE /sessions/{id}
    "retention_delete",  # the retention timer deleted an idle session
    "erase_user",  # DELETE /users/me or /users/{id}: in the user's synthetic partition
    "feedback",  # POST /sessions/{id}/turns/{turn}/feedback (the rating is not recorded, only that it was given)
    "read_usage",  # GET /users/me/usage: in the user's synthetic partition (no figures recorded)
]
ACTIONS: frozenset[str] = frozenset(Action.__args__)  # type: ignore[attr-defined]

# ok, or why not: the session was missing (or not the caller's), a turn held it, the request was invalid,
# the caller lacked the admin role, or something failed. `started` marks an erasure that has begun.
Outcome = Literal["ok", "not_found", "busy", "rejected", "forbidden", "error", "started"]
OUTCOMES: frozenset[str] = frozenset(Outcome.__args__)  # type: ignore[attr-defined]


def user_partition(owner: str) -> str:
    """The synthetic partition of events about a whole user (never a valid session id: it has a colon)."""
    return f"user:{validate_id(owner, 'owner')}"


def outcome_of(exc: BaseException | None) -> Outcome:
    """The outcome an exception stands for. HTTP errors are recognised by their `status` attribute, so this
    needs no HTTP types."""
    if exc is None:
        return "ok"
    match exc:
        case SessionNotFound():
            return "not_found"
        case SessionBusy() | SessionConflict():
            return "busy"
        case InvalidId() | RoutingError():
            return "rejected"
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        if status == 404:
            return "not_found"
        if status == 409:
            return "busy"
        if status == 403:
            return "forbidden"
        if 400 <= status < 500:
            return "rejected"
    return "error"


@dataclass(frozen=True)
class AuditEvent:
    session_id: str  # the partition: a session id, or user_partition(owner)
    owner: str  # subject: owner key of the data's owner
    actor: str  # owner key of the caller, or RETENTION_ACTOR
    action: str
    outcome: str
    at: str
    admin: bool = False
    details: Mapping[str, int] = field(default_factory=dict)  # counts only, never text
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {self.outcome!r}")
        if any(not isinstance(value, int) for value in self.details.values()):
            raise ValueError("audit details hold counts only")
