"""Erase everything stored about one person: every session's blobs, every Cosmos record, their audit trail.

Finding the data, without listing the whole account: the blob index tag `owner`, plus a prefix walk of
`<owner>/` (one entry per session) because a half-written session may have no tagged snapshot yet; the
user's summaries (their own partition) and turn records (a cross-partition query by `userId`), because a
half-finished earlier delete may have left Cosmos records without any blob.

Each session is deleted under its blob lease when it has a snapshot (a running turn holds the lease: the
erasure waits a moment and tries again, then answers 409 so the caller retries), then its Cosmos records.
Discovery runs again after each round, so a session created while the erasure ran is caught too, and the
erasure only reports success when a final discovery finds nothing. Every step is idempotent: re-running
an interrupted erasure completes it (its receipt then counts what that run removed).

Audit: the user's audit events are personal data about their sessions and are deleted with them, except
the erasure events themselves, which are the proof of erasure. Those hold no content (who asked, whether
as admin, when, the counts) and live in the user's synthetic partition `user:<owner key>` until the audit
retention (`AUDIT_RETENTION_DAYS`) expires them. Unlike other audit writes, an erasure needs its event:
it writes it (outcome `started`) before deleting anything and refuses (the error propagates, 503) when it
cannot; at the end the same event is rewritten with the outcome and the counts. If only that last write
fails, the data is gone and the receipt is returned; the `started` event remains as the proof.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from shared.domain.audit import AuditEvent, user_partition
from shared.domain.clock import utc_iso, utc_now
from shared.domain.errors import SessionBusy
from shared.domain.ids import InvalidId, validate_id
from shared.services.audit import AuditLog
from shared.services.removal import remove_session
from shared.storage.metadata import MetadataStore
from shared.storage.snapshots import SnapshotStore

logger = logging.getLogger(__name__)

MAX_ROUNDS = 3
BUSY_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class ErasureReceipt:
    user_id: str  # as the request named the user (the principal id); storage uses its owner key
    sessions_deleted: int  # sessions of which anything (blob or record) existed
    records_deleted: int  # Cosmos documents removed: turn records, summaries, audit events (not the proof)
    completed_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Progress:
    sessions_deleted: int = 0
    records_deleted: int = 0

    def details(self) -> dict[str, int]:
        return {"sessions_deleted": self.sessions_deleted, "records_deleted": self.records_deleted}


@dataclass
class Erasure:
    snapshots: SnapshotStore
    metadata: MetadataStore
    audit: AuditLog
    clock: Callable[[], datetime] = utc_now
    busy_wait_seconds: float = BUSY_WAIT_SECONDS

    async def find_sessions(self, owner: str) -> set[str]:
        """Every session id of `owner` that has any blob or Cosmos record."""
        found: set[str] = set()
        async for _, session_id in self.snapshots.find_by_tags(f"\"owner\" = '{validate_id(owner, 'owner')}'"):
            found.add(session_id)
        async for session_id in self.snapshots.owner_sessions(owner):
            found.add(session_id)
        found |= await self.metadata.sessions_of_owner(owner)
        valid: set[str] = set()
        for session_id in found:
            try:
                valid.add(validate_id(session_id))
            except InvalidId:
                logger.error("erasure found a session name that is not a valid id under owner %s", owner)
        return valid

    async def erase_user(
        self, owner: str, *, user_id: str, actor: str, admin: bool = False, busy_wait_seconds: float | None = None
    ) -> ErasureReceipt:
        """Erase every session and record of `owner` (an owner key); SessionBusy if a turn kept one busy."""
        validate_id(owner, "owner")
        event = self.audit.event(
            session_id=user_partition(owner), owner=owner, actor=actor, action="erase_user", outcome="started",
            admin=admin,
        )  # fmt: skip
        await self.audit.write(event)  # no proof, no erasure: a failure here propagates before anything is deleted
        progress = _Progress()
        wait = self.busy_wait_seconds if busy_wait_seconds is None else busy_wait_seconds
        remaining = await self._rounds(owner, progress, wait)
        if remaining:
            await self._finish(event, "busy", {**progress.details(), "sessions_remaining": len(remaining)})
            logger.warning("erasure of owner %s incomplete: %d sessions still busy", owner, len(remaining))
            raise SessionBusy(f"{len(remaining)} sessions")
        completed_at = utc_iso(self.clock())
        if not await self._finish(event, "ok", progress.details()):
            logger.error("erasure of owner %s done, but its final audit event was not written", owner)
        logger.info(
            "erased owner %s: %d sessions, %d records", owner, progress.sessions_deleted, progress.records_deleted
        )
        return ErasureReceipt(user_id, progress.sessions_deleted, progress.records_deleted, completed_at)

    async def _rounds(self, owner: str, progress: _Progress, wait: float) -> set[str]:
        """Discover and delete until a discovery finds nothing (or MAX_ROUNDS pass); what is left, if anything."""
        remaining: set[str] = set()
        for round_number in range(MAX_ROUNDS):
            remaining = await self.find_sessions(owner)
            if not remaining and round_number > 0:
                return remaining
            busy: set[str] = set()
            for session_id in sorted(remaining):
                try:
                    existed, removed = await remove_session(self.snapshots, self.metadata, owner, session_id)
                except SessionBusy:
                    busy.add(session_id)
                    continue
                progress.sessions_deleted += int(existed)
                progress.records_deleted += removed
            progress.records_deleted += await self._erase_loose_records(owner, busy)
            if busy:
                await asyncio.sleep(wait)  # a turn holds the lease for a model call: give it a moment
        return await self.find_sessions(owner)

    async def _erase_loose_records(self, owner: str, busy: set[str]) -> int:
        """Turn records of the owner not reached through a session (matched by userId), then the owner's audit
        events. A busy session's records stay until it is erased as a whole, by the retry."""
        removed = await self.metadata.turns.delete_owner(owner, keep_sessions=frozenset(busy))
        return removed + await self.audit.delete_owner_events(owner)

    async def _finish(self, started: AuditEvent, outcome: str, details: dict[str, int]) -> bool:
        """Rewrite the erasure's event with its outcome and counts (never raises)."""
        return await self.audit.record(
            session_id=started.session_id, owner=started.owner, actor=started.actor, action="erase_user",
            outcome=outcome, admin=started.admin, details=details, event_id=started.id,
        )  # fmt: skip
