"""Import, export and fork over the two stores (the plans themselves are pure: `import_plan.py`).

The whole new session is written to Blob in one create (the source of truth; nothing is written before
every check passed), then its records go to Cosmos, which is derived: a failed metadata write is logged and
left to reconcile, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.agents.formats import ImportLimits
from shared.config import Settings
from shared.domain.clock import utc_now
from shared.domain.errors import SessionConflict, SessionExists
from shared.domain.ids import new_session_id, validate_id
from shared.domain.sessions import Snapshot, summary_of
from shared.services.events import SessionView
from shared.services.import_plan import (
    ImportPlan,
    export_document,
    fork_snapshot,
    imported_snapshot,
    plan_import,
    redacted,
)
from shared.storage.metadata import MetadataStore
from shared.storage.snapshots import SnapshotStore

logger = logging.getLogger(__name__)


@dataclass
class SessionTransfer:
    settings: Settings
    snapshots: SnapshotStore
    metadata: MetadataStore
    clock: Callable[[], datetime] = utc_now

    def __post_init__(self) -> None:
        self._limits = ImportLimits.of(self.settings)
        self._redactor = self.settings.redactor

    async def import_session(self, owner: str, fmt: str, data: object, session_id: str | None = None) -> SessionView:
        validate_id(owner, "owner")
        if session_id is not None:
            validate_id(session_id)
        now = self.clock()
        plan = self._plan(fmt, data, now)
        if session_id is not None and await self.snapshots.exists(owner, session_id):
            raise SessionExists(session_id)
        snapshot = imported_snapshot(plan, session_id or new_session_id(), owner, now)
        try:
            saved = await self.snapshots.create(snapshot)
        except SessionConflict:
            if session_id is None:
                raise
            raise SessionExists(session_id) from None
        logger.info("imported session %s (%s, %d turns)", saved.session_id, fmt, saved.turns)
        return await self._record_metadata(saved)

    async def export_session(self, owner: str, session_id: str) -> dict[str, Any]:
        validate_id(owner, "owner")
        validate_id(session_id)
        snapshot = await self.snapshots.load(owner, session_id)
        return export_document(snapshot, self.clock())

    async def fork_session(self, owner: str, session_id: str, at_turn: int) -> SessionView:
        validate_id(owner, "owner")
        validate_id(session_id)
        # A plain read: the source is never leased or written, so a turn running on it is not disturbed.
        source = await self.snapshots.load(owner, session_id)
        view = await self.save_new(fork_snapshot(source, at_turn, new_session_id(), self.clock()))
        logger.info("forked session %s at turn %d into %s", session_id, at_turn, view.snapshot.session_id)
        return view

    def plan_messages(self, messages: object, now: datetime) -> ImportPlan:
        """OpenAI chat messages as a validated import plan (masked when PII_REDACTION is on)."""
        return self._plan("openai", messages, now)

    def _plan(self, fmt: str, data: object, now: datetime) -> ImportPlan:
        plan = plan_import(fmt, data, limits=self._limits, now=now)
        return plan if self._redactor is None else redacted(plan, self._redactor)

    async def save_new(self, snapshot: Snapshot) -> SessionView:
        """Write a session built elsewhere (a fork with imported turns): Blob first, only if absent, then Cosmos."""
        return await self._record_metadata(await self.snapshots.create(snapshot))

    async def _record_metadata(self, snapshot: Snapshot) -> SessionView:
        """Every turn record and the summary. Cosmos is derived data: a failure is logged, not raised (the
        session is durable in Blob already; reconcile repairs Cosmos)."""
        summary = summary_of(snapshot)
        try:
            await self.metadata.record_session(summary, snapshot.records, snapshot.feedback)
        except Exception:  # noqa: BLE001 - logged; the session is durable in Blob
            logger.exception("session %s saved, but its metadata write failed", snapshot.session_id)
        return SessionView(snapshot, summary)
