"""Conversations: a turn start to end, and reading, listing, deleting and analysing sessions.

Everything the HTTP layer needs about conversations goes through `Conversations`; it knows nothing of HTTP.
The turn itself is `TurnRunner` (`turn.py`); this class validates the request before any storage call,
loads the session under its lease (one turn at a time) and hands the turn over.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from shared.agents.backends import Backend
from shared.config import Settings
from shared.domain.analytics import analytics
from shared.domain.backends import ROUTES
from shared.domain.clock import utc_now
from shared.domain.errors import InvalidMessage, UnknownRoute
from shared.domain.ids import new_session_id, validate_id
from shared.domain.pricing import Price
from shared.domain.records import TurnRow
from shared.domain.sessions import SessionSummary, Snapshot, new_snapshot, summary_of
from shared.observability.spans import tracer
from shared.services.context import ContextFitter
from shared.services.events import SessionView, TurnCompleted, TurnEvent, TurnResult
from shared.services.guard import TurnGuard
from shared.services.removal import remove_session
from shared.services.spend import SpendLedger
from shared.services.turn import Turn, TurnRequest, TurnRunner
from shared.storage.lease import SessionLock
from shared.storage.metadata import MetadataStore
from shared.storage.snapshots import SnapshotStore


@dataclass
class Conversations:
    settings: Settings
    snapshots: SnapshotStore
    metadata: MetadataStore
    backends: Mapping[str, Backend]
    clock: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic  # the clock of cooldowns and of the spend cache

    def __post_init__(self) -> None:
        self.context = ContextFitter(self.settings, self.backends, self.clock)
        ledger = SpendLedger(self.metadata.turns, self.settings.budget, self.clock, self.monotonic)
        self.guard = TurnGuard(self.settings, self.backends, ledger, self.clock, self.monotonic)
        self._runner = TurnRunner(self)

    @property
    def configured(self) -> tuple[str, ...]:
        return tuple(self.backends)

    def _check_message(self, message: object) -> str:
        if not isinstance(message, str):
            raise InvalidMessage("message must be a string")
        if not message.strip():
            raise InvalidMessage("message must not be empty")
        if len(message) > self.settings.message_max_chars:
            raise InvalidMessage(f"message is longer than {self.settings.message_max_chars} characters")
        return message

    # ---- a turn ------------------------------------------------------------------------------------------------

    async def turn(
        self,
        owner: str,
        message: str,
        session_id: str | None = None,
        route: str = "auto",
        *,
        stream: bool = True,
        on_saved: Callable[[str, int], Awaitable[object]] | None = None,
    ) -> AsyncGenerator[TurnEvent, None]:
        """Run one turn; yields events. Raises before the first event when the request is refused.

        With `stream=False` the model answers in one piece (no `Delta` events): cheaper when nobody watches.
        `on_saved` runs once the turn is saved, beside its metadata writes (see `TurnRequest`).
        """
        request = TurnRequest(route=route, stream=stream, on_saved=on_saved)
        message = self._check(owner, message, request)  # refused before any storage call
        if session_id is None:
            async for event in self.start(owner, message, request):
                yield event
            return
        async with self.opened(owner, session_id) as (lock, snapshot):
            async for event in self.continue_on(lock, snapshot, message, request):
                yield event

    def _check(self, owner: str, message: object, request: TurnRequest) -> str:
        validate_id(owner, "owner")
        if request.route not in ROUTES:
            raise UnknownRoute(request.route)
        return self._check_message(message)

    async def start(self, owner: str, message: str, request: TurnRequest) -> AsyncGenerator[TurnEvent, None]:
        """A turn that starts a new session (saved only if it succeeds)."""
        message = self._check(owner, message, request)
        started = self.clock()
        turn = Turn(new_snapshot(new_session_id(), owner, started), message, request, None, started)
        async for event in self._runner.run(turn):
            yield event

    @contextlib.asynccontextmanager
    async def opened(self, owner: str, session_id: str) -> AsyncIterator[tuple[SessionLock, Snapshot]]:
        """The session under its lease (one turn at a time: SessionBusy at once if a turn holds it), loaded."""
        validate_id(owner, "owner")
        validate_id(session_id)
        async with contextlib.AsyncExitStack() as stack:
            with tracer.start_as_current_span("llmrouter.snapshot.load"):
                lock, snapshot = await stack.enter_async_context(self.snapshots.opened(owner, session_id))
            yield lock, snapshot

    async def continue_on(
        self, lock: SessionLock, snapshot: Snapshot, message: str, request: TurnRequest
    ) -> AsyncGenerator[TurnEvent, None]:
        """A turn on a session the caller holds (`opened`) and has already loaded."""
        message = self._check(snapshot.owner, message, request)
        async for event in self._runner.run(Turn(snapshot, message, request, lock, self.clock())):
            yield event

    async def chat(
        self,
        owner: str,
        message: str,
        session_id: str | None = None,
        route: str = "auto",
        *,
        on_saved: Callable[[str, int], Awaitable[object]] | None = None,
    ) -> TurnResult:
        result: TurnResult | None = None
        async for event in self.turn(owner, message, session_id, route, stream=False, on_saved=on_saved):
            if isinstance(event, TurnCompleted):
                result = event.result
        if result is None:  # pragma: no cover - the stream always ends with TurnCompleted or raises
            raise RuntimeError("turn ended without a result")
        return result

    # ---- reading, listing, deleting -----------------------------------------------------------------------------

    async def get(self, owner: str, session_id: str) -> SessionView:
        validate_id(owner, "owner")
        validate_id(session_id)
        snapshot = await self.snapshots.load(owner, session_id)
        return SessionView(snapshot, summary_of(snapshot))

    async def list_sessions(
        self, owner: str, limit: int, cursor: str | None = None
    ) -> tuple[list[SessionSummary], str | None]:
        validate_id(owner, "owner")
        return await self.metadata.list_sessions(owner, limit, cursor)

    async def delete(self, owner: str, session_id: str) -> bool:
        """Erase the snapshot and every Cosmos record; True if anything existed."""
        validate_id(owner, "owner")
        validate_id(session_id)
        existed, _ = await remove_session(self.snapshots, self.metadata, owner, session_id)
        return existed

    # ---- analytics and health ----------------------------------------------------------------------------------

    async def session_analytics(self, owner: str, session_id: str) -> dict[str, Any]:
        validate_id(owner, "owner")
        validate_id(session_id)
        rows = await self.metadata.turns.rows_of_session(owner, session_id)
        summary = await self.metadata.summary(owner, session_id) if rows else None
        if not rows or summary is None or len(rows) < summary.turns:
            # Blob is the source of truth. Cosmos can lack turns: a failed metadata write not yet reconciled,
            # an emulator restarted empty, or (in Azure) container TTL expiring the oldest turn records of a
            # conversation that stayed active for longer than the retention window.
            snapshot = await self.snapshots.load(owner, session_id)
            rows = [TurnRow(session_id, record, snapshot.feedback.get(record.turn)) for record in snapshot.records]
        return {"session_id": session_id, **self._analytics(rows)}

    async def owner_analytics(self, owner: str, start: date | None = None, end: date | None = None) -> dict[str, Any]:
        """Analytics over the owner's turns completed from UTC day `start` to `end` (inclusive; None: open), with
        the period and how many sessions had a turn in it."""
        validate_id(owner, "owner")
        first, last = (day.isoformat() if day is not None else None for day in (start, end))
        # Stored times are ISO UTC (`utc_iso`), so a day's turns sort from its date to the next day's.
        before = (end + timedelta(days=1)).isoformat() if end is not None else None
        rows = await self.metadata.turns.rows_of_owner(owner, first, before)
        sessions = len({row.session_id for row in rows})
        return {"period": {"from": first, "to": last}, "sessions": sessions, **self._analytics(rows)}

    def _analytics(self, rows: Sequence[TurnRow]) -> dict[str, Any]:
        rated = [(row.record.backend, row.feedback) for row in rows if row.feedback is not None]
        return {
            **analytics([row.record for row in rows], *self._all_cloud_reference(), feedback=rated),
            "prices": self._prices(),
        }

    def _prices(self) -> dict[str, Any]:
        """The price each configured backend is charged at now: configured, built-in (with its date), or none."""
        return {
            name: self.settings.price_quote(name, backend.model).to_dict() for name, backend in self.backends.items()
        }

    def _all_cloud_reference(self) -> tuple[Price | None, str]:
        """The cloud backend's price for "saved versus all-cloud", or None and why there is none."""
        cloud = self.settings.backends.get("cloud")
        if cloud is None:
            return None, "no cloud backend is configured, so there is no all-cloud price to compare with"
        quoted = self.settings.price_quote("cloud", cloud.model)
        price = quoted.price
        if price is None:
            return None, quoted.basis
        return price, (
            f"every token at the cloud backend's price for {cloud.model}: {price.input_per_million:g} USD input "
            f"and {price.output_per_million:g} USD output per million tokens ({quoted.basis})"
        )

    async def usage(self, owner: str) -> dict[str, Any]:
        """The owner's spend today and this month (UTC), and the budget's limits and what remains of them."""
        validate_id(owner, "owner")
        return await self.guard.ledger.usage(owner)

    def backend_states(self) -> dict[str, dict[str, Any]]:
        """Each backend's circuit in this instance: ok, cooling_down (seconds left) or trial."""
        return self.guard.breakers.states()

    async def health(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        for name, probe in (("storage", self.snapshots.ping), ("cosmos", self.metadata.ping)):
            try:
                await probe()
                checks[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                checks[name] = f"unavailable ({type(exc).__name__})"
        return checks
