"""Audit events: who did what to which session, when, and how it ended. Never any content.

An event is one small Cosmos document in its own container (`COSMOS_AUDIT_CONTAINER`, partition key
`/sessionId`), so a session's trail is one partition read. Events that belong to no single session (the
erasure of a user) go to a synthetic partition `user:<owner key>`; `:` can never occur in a session id, so
the two never collide. Every event carries a per-item `ttl` of `AUDIT_RETENTION_DAYS` (in Azure the
container's default TTL says the same), so the audit trail has its own retention, independent of the
conversations it describes.

What an event holds: the subject (`userId`, the owner key of the session's owner), the actor (the caller's
owner key, or `system:retention`), whether the actor acted as admin, the action, the outcome and, for some
actions, counts. Never a message, a reply, a title, a principal's raw id or an error text.

Writing an event must not fail the user's request: `record` and `audited` log and carry on. The one
exception is erasure (see `shared.erasure`), which writes its event before deleting anything and fails
when it cannot, because the event is the proof that the erasure was asked for and done.

Other modules call `record(services, ...)` (one event) or `audited(services, ...)` (an event with the
outcome of the enclosed block); an export feature records `action="export"` the same way.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from azure.cosmos.aio import ContainerProxy
from azure.cosmos.exceptions import CosmosResourceNotFoundError

from shared.aio import finish
from shared.conversation import InvalidMessage, TurnCompleted
from shared.records import InvalidId, utc_iso, validate_id
from shared.routing import RoutingError
from shared.snapshots import SessionBusy, SessionConflict, SessionNotFound

if TYPE_CHECKING:
    from shared.runtime import Services

logger = logging.getLogger(__name__)

AUDIT_SCHEMA_VERSION = 1
SECONDS_PER_DAY = 86_400
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
    """The outcome an exception stands for (pure). HTTP errors are recognised by their `status` attribute,
    so this module needs no HTTP types."""
    if exc is None:
        return "ok"
    match exc:
        case SessionNotFound():
            return "not_found"
        case SessionBusy() | SessionConflict():
            return "busy"
        case InvalidId() | InvalidMessage() | RoutingError():
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

    def to_document(self, ttl_seconds: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "audit",
            "schemaVersion": AUDIT_SCHEMA_VERSION,
            "sessionId": self.session_id,
            "userId": self.owner,
            "actor": self.actor,
            "admin": self.admin,
            "action": self.action,
            "outcome": self.outcome,
            "at": self.at,
            "details": dict(self.details),
            "ttl": ttl_seconds,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> AuditEvent:
        return cls(
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

    def to_json(self) -> dict[str, Any]:
        """The public shape (GET /sessions/{id}/audit)."""
        return {
            "id": self.id,
            "session_id": self.session_id,
            "action": self.action,
            "outcome": self.outcome,
            "at": self.at,
            "actor": self.actor,
            "admin": self.admin,
            "details": dict(self.details),
        }


def _now() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    """The audit container: write one event, read a session's trail, remove a user's events on erasure."""

    def __init__(self, container: ContainerProxy, retention_days: int, clock: Callable[[], datetime] = _now) -> None:
        self._container = container
        self._ttl = retention_days * SECONDS_PER_DAY
        self._clock = clock

    def event(
        self,
        *,
        session_id: str,
        owner: str,
        actor: str,
        action: str,
        outcome: str,
        admin: bool = False,
        details: Mapping[str, int] | None = None,
        event_id: str | None = None,
    ) -> AuditEvent:
        extra = {"id": event_id} if event_id else {}
        return AuditEvent(
            session_id=session_id,
            owner=owner,
            actor=actor,
            action=action,
            outcome=outcome,
            at=utc_iso(self._clock()),
            admin=admin,
            details=dict(details or {}),
            **extra,
        )

    async def write(self, event: AuditEvent) -> None:
        """Store the event (an upsert: re-writing the same id updates it, e.g. an erasure's final outcome).
        Raises on failure; most callers want `record`, which does not."""
        await self._container.upsert_item(event.to_document(self._ttl))

    async def record(self, **fields: Any) -> bool:
        """Write an event; on any failure log it (without content) and return False, never raise."""
        try:
            event = self.event(**fields)
            await self.write(event)
        except Exception:  # noqa: BLE001 - auditing must never fail the user's request
            logger.exception("could not write an audit event (%s, %s)", fields.get("action"), fields.get("outcome"))
            return False
        return True

    async def session_events(self, session_id: str, owner: str | None = None) -> list[AuditEvent]:
        """A session's events, oldest first; only the ones whose subject is `owner` unless None (admin)."""
        query = "SELECT * FROM c WHERE c.sessionId = @session AND c.type = 'audit'"
        parameters: list[dict[str, Any]] = [{"name": "@session", "value": session_id}]
        if owner is not None:
            query += " AND c.userId = @owner"
            parameters.append({"name": "@owner", "value": owner})
        items = self._container.query_items(query, parameters=parameters, partition_key=session_id)
        events = [AuditEvent.from_document(item) async for item in items]
        return sorted(events, key=lambda event: (event.at, event.id))

    async def delete_owner_events(self, owner: str, keep_actions: frozenset[str] = frozenset({"erase_user"})) -> int:
        """Delete every event whose subject is `owner` except the kept actions (a cross-partition query:
        a user's events are spread over their sessions' partitions). Returns how many were removed."""
        query = "SELECT c.id, c.sessionId, c.action FROM c WHERE c.userId = @owner AND c.type = 'audit'"
        items = self._container.query_items(query, parameters=[{"name": "@owner", "value": owner}])
        doomed = [(item["id"], item["sessionId"]) async for item in items if item.get("action") not in keep_actions]
        removed = 0
        for item_id, partition in doomed:
            with contextlib.suppress(CosmosResourceNotFoundError):
                await self._container.delete_item(item_id, partition_key=partition)
                removed += 1
        return removed


def audit_log(services: Services) -> AuditLog:
    """The audit log of these services (a thin wrapper over the client `Services` already holds)."""
    return AuditLog(services.metadata.audit, services.settings.audit_retention_days)


async def record(
    services: Services,
    *,
    actor: str,
    session_id: str,
    action: str,
    outcome: str = "ok",
    owner: str | None = None,
    admin: bool = False,
    details: Mapping[str, int] | None = None,
) -> bool:
    """Write one audit event and never raise: the API for handlers and other features (export).

    `actor` is the caller's owner key; `owner` the subject (defaults to the actor: people act on their own
    sessions); `session_id` a validated session id or `user_partition(owner)`.
    """
    return await audit_log(services).record(
        session_id=session_id,
        owner=owner or actor,
        actor=actor,
        action=action,
        outcome=outcome,
        admin=admin,
        details=details,
    )


@dataclass
class Audited:
    """What `audited` learns inside its block: a new session's id once the turn has created it."""

    session_id: str | None


@contextlib.asynccontextmanager
async def audited(
    services: Services, actor: str, session_id: str | None, action: str, *, admin: bool = False
) -> AsyncIterator[Audited]:
    """Record `action` with the outcome of the enclosed block (ok, or the exception's outcome, re-raised).

    Set `.session_id` inside the block when the block creates the session; with no session id at the end
    (a new session that failed before it existed) nothing is recorded: there is no session to audit.
    """
    note = Audited(session_id)
    try:
        yield note
    except BaseException as exc:
        if note.session_id is not None:
            await record(
                services, actor=actor, session_id=note.session_id, action=action, outcome=outcome_of(exc), admin=admin
            )
        raise
    if note.session_id is not None:
        await record(services, actor=actor, session_id=note.session_id, action=action, admin=admin)


E = TypeVar("E")


async def audited_stream(
    services: Services, actor: str, session_id: str | None, events: AsyncGenerator[E, None]
) -> AsyncGenerator[E, None]:
    """Pass a turn's events through and record `create`/`continue` when the stream ends.

    A streamed turn's outcome is only known at its end: ok when a `TurnCompleted` went by, else the
    exception's outcome (`error` when the client went away mid-answer). A new session's id comes from the
    first event that carries one (`RouteChosen`).
    """
    action: Action = "continue" if session_id is not None else "create"
    completed = False
    failure: BaseException | None = None
    try:
        async for event in events:
            if session_id is None:
                session_id = getattr(event, "session_id", None)
            if isinstance(event, TurnCompleted):
                completed = True
            yield event
    except BaseException as exc:
        failure = exc
        raise
    finally:
        # Closed early without a failure of its own (GeneratorExit: the client went away) counts as error.
        outcome = "ok" if completed else outcome_of(failure or RuntimeError("stream ended early"))
        await finish(_close_and_record(services, events, actor, session_id, action, outcome))


async def _close_and_record(
    services: Services,
    events: AsyncGenerator[Any, None],
    actor: str,
    session_id: str | None,
    action: Action,
    outcome: Outcome,
) -> None:
    await events.aclose()
    if session_id is not None:
        await record(services, actor=actor, session_id=session_id, action=action, outcome=outcome)
