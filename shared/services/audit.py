"""The audit log: who did what to which session, when, and how it ended. Never any content.

Writing an event must not fail the user's request: `record` and `audited` log and carry on. The one
exception is erasure (see `erasure.py`), which writes its event with `write` before deleting anything and
fails when it cannot, because the event is the proof that the erasure was asked for and done.

`audited` records an action with the outcome of the enclosed block; `audited_stream` does the same for a
streamed turn, whose outcome is known only at its end.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from shared.aio import finish
from shared.domain.audit import Action, AuditEvent, Outcome, outcome_of
from shared.domain.clock import utc_iso, utc_now
from shared.services.events import Replayed, TurnCompleted
from shared.storage.audit import AuditStore

logger = logging.getLogger(__name__)

E = TypeVar("E")


@dataclass
class Audited:
    """What `audited` learns inside its block: a new session's id once the turn has created it, and whether the
    turn already wrote the event (`AuditLog.turn_saved`)."""

    session_id: str | None
    recorded: bool = False


@dataclass
class AuditLog:
    store: AuditStore
    clock: Callable[[], datetime] = utc_now

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
            at=utc_iso(self.clock()),
            admin=admin,
            details=dict(details or {}),
            **extra,
        )

    async def write(self, event: AuditEvent) -> None:
        """Store the event; raises on failure (most callers want `record`, which does not)."""
        await self.store.write(event)

    async def record(
        self,
        *,
        actor: str,
        session_id: str,
        action: str,
        outcome: str = "ok",
        owner: str | None = None,
        admin: bool = False,
        details: Mapping[str, int] | None = None,
        event_id: str | None = None,
    ) -> bool:
        """Write one event and never raise; on failure log it (without content) and return False.

        `actor` is the caller's owner key; `owner` the subject (defaults to the actor: people act on their own
        sessions); `session_id` a validated session id or `user_partition(owner)`.
        """
        try:
            event = self.event(
                session_id=session_id, owner=owner or actor, actor=actor, action=action, outcome=outcome,
                admin=admin, details=details, event_id=event_id,
            )  # fmt: skip
            await self.write(event)
        except Exception:  # noqa: BLE001 - auditing must never fail the user's request
            logger.exception("could not write an audit event (%s, %s)", action, outcome)
            return False
        return True

    async def session_events(self, session_id: str, owner: str | None = None) -> list[AuditEvent]:
        return await self.store.session_events(session_id, owner)

    async def delete_owner_events(self, owner: str) -> int:
        """Every event about `owner` except the erasure events, which are the proof of erasure."""
        return await self.store.delete_owner_events(owner)

    @contextlib.asynccontextmanager
    async def audited(
        self, actor: str, session_id: str | None, action: str, *, admin: bool = False
    ) -> AsyncIterator[Audited]:
        """Record `action` with the outcome of the enclosed block (ok, or the exception's outcome, re-raised).

        Set `.session_id` inside the block when the block creates the session; with no session id at the end
        (a new session that failed before it existed) nothing is recorded: there is no session to audit.
        """
        note = Audited(session_id)
        try:
            yield note
        except BaseException as exc:
            if note.session_id is not None and not note.recorded:
                await self.record(
                    actor=actor, session_id=note.session_id, action=action, outcome=outcome_of(exc), admin=admin
                )
            raise
        if note.session_id is not None and not note.recorded:
            await self.record(actor=actor, session_id=note.session_id, action=action, admin=admin)

    def turn_saved(self, actor: str, note: Audited) -> Callable[[str, int], Awaitable[None]]:
        """A turn's `on_saved`: its ok event, written in the turn's last storage step (beside the metadata
        writes); `audited` and `audited_stream` then write nothing more for it. Action: create for turn 1."""

        async def saved(session_id: str, turn: int) -> None:
            note.session_id = session_id
            action = "create" if turn == 1 else "continue"
            note.recorded = await self.record(actor=actor, session_id=session_id, action=action)

        return saved

    async def audited_stream(
        self, actor: str, session_id: str | None, events: AsyncGenerator[E, None], note: Audited | None = None
    ) -> AsyncGenerator[E, None]:
        """Pass a turn's events through and record `create`/`continue` when the stream ends.

        The outcome is ok when a `TurnCompleted` went by, else the exception's outcome (`error` when the client
        went away mid-answer). Without a `session_id` the session is the one the first event names (`RouteChosen`,
        or `Replayed`: a stored answer given again, recorded as `read`), and the action follows its turn number.
        """
        action: Action = "continue" if session_id is not None else "create"
        completed = False
        failure: BaseException | None = None
        try:
            async for event in events:
                if session_id is None:
                    session_id = getattr(event, "session_id", None)
                    action = _action_of(event)
                completed = completed or isinstance(event, TurnCompleted | Replayed)
                yield event
        except BaseException as exc:
            failure = exc
            raise
        finally:
            # Closed early without a failure of its own (GeneratorExit: the client went away) counts as error.
            outcome = "ok" if completed else outcome_of(failure or RuntimeError("stream ended early"))
            written = note is not None and note.recorded  # by the turn itself (`turn_saved`)
            await finish(self._close_and_record(events, actor, None if written else session_id, action, outcome))

    async def _close_and_record(
        self, events: AsyncGenerator[Any, None], actor: str, session_id: str | None, action: Action, outcome: Outcome
    ) -> None:
        await events.aclose()
        if session_id is not None:
            await self.record(actor=actor, session_id=session_id, action=action, outcome=outcome)


def _action_of(event: object) -> Action:
    if isinstance(event, Replayed):
        return "read"
    return "create" if getattr(event, "turn", 1) == 1 else "continue"
