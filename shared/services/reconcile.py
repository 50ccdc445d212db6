"""Rebuild Cosmos metadata from the Blob snapshots, which are the source of truth.

A turn's Cosmos write happens after its snapshot is saved and may fail (the turn still succeeds), the dev
emulator forgets everything on restart, and a Cosmos TTL may expire a record of a conversation that is
still alive: reconcile puts back every turn record and session summary the snapshot implies, and changes
nothing that is already right. It runs as a step of the retention timer (sessions active in the last
`RECONCILE_LOOKBACK_DAYS`), on demand for an admin (`POST /api/manage/reconcile`) and at dev server start
(`reconcile_all`).

Sessions are found through blob index tags (`owner`, `session`, `lastActiveDay`), never by listing every
blob, and handled `RETENTION_BATCH_SIZE` at a time.

Safe beside live turns: a turn record, once written, never changes, so rewriting turns 1..N of a loaded
snapshot cannot undo a newer turn; a summary is only created if absent or replaced if unchanged since it
was read (etag), and never when it already counts more turns than the snapshot that was loaded.
Orphans (Cosmos records whose session has no snapshot) are removed when reconcile targets an owner or a
session; the timer's retention pass removes old orphans across all users.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from shared.aio import batched
from shared.domain.errors import SessionConflict, SessionNotFound, SnapshotCorrupt
from shared.domain.ids import validate_id
from shared.domain.sessions import summary_of
from shared.storage.metadata import MetadataStore
from shared.storage.snapshots import SnapshotStore

logger = logging.getLogger(__name__)

RECONCILE_LOOKBACK_DAYS = 2  # the timer covers what changed since its previous (daily) run, with a margin
ALL_SESSIONS = "\"lastActiveDay\" >= '0000-01-01'"  # every snapshot carries this tag


@dataclass
class ReconcileReport:
    sessions_checked: int = 0
    turns_repaired: int = 0
    summaries_repaired: int = 0
    orphans_removed: int = 0  # Cosmos documents of sessions without a snapshot
    failed: int = 0  # sessions whose snapshot could not be read (logged)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


# ---- pure --------------------------------------------------------------------------------------------------------


def recent_sessions_expression(now: datetime, lookback_days: int = RECONCILE_LOOKBACK_DAYS) -> str:
    day = (now.astimezone(UTC) - timedelta(days=lookback_days)).strftime("%Y-%m-%d")
    return f"\"lastActiveDay\" >= '{day}'"


def owner_expression(owner: str) -> str:
    return f"\"owner\" = '{validate_id(owner, 'owner')}'"  # a validated id cannot close the quote


def session_expression(session_id: str) -> str:
    return f"\"session\" = '{validate_id(session_id)}'"


# ---- the service -------------------------------------------------------------------------------------------------


@dataclass
class Reconciler:
    snapshots: SnapshotStore
    metadata: MetadataStore
    batch_size: int

    async def reconcile(
        self, *, owner: str | None = None, session_id: str | None = None, expression: str | None = None
    ) -> ReconcileReport:
        """Reconcile one session (owner and session id), an owner's sessions, every owner's copy of a session id,
        or the sessions a tag expression selects (default: all). Owner or session targets also remove orphans."""
        report = ReconcileReport()
        # Refilling an emptied Cosmos (the local emulator restarted) needs its database and containers first; in
        # Azure (COSMOS_CREATE_RESOURCES off) this does nothing.
        await self.metadata.recreate_missing()
        if owner is not None and session_id is not None:
            await self.session(owner, session_id, report)
        elif owner is not None:
            seen = await self._tagged(owner_expression(owner), report)
            for orphan in sorted(await self.metadata.sessions_of_owner(owner) - {sid for _, sid in seen}):
                await self.session(owner, orphan, report)
        elif session_id is not None:
            seen = await self._tagged(session_expression(session_id), report)
            owners = await self.metadata.turns.owners_of_session(session_id)
            for orphan_owner in sorted(owners - {o for o, _ in seen}):
                await self.session(orphan_owner, session_id, report)
        else:
            await self._tagged(expression or ALL_SESSIONS, report)
        logger.info(
            "reconcile: %d sessions checked, %d turns and %d summaries repaired, %d orphan records removed, %d failed",
            report.sessions_checked, report.turns_repaired, report.summaries_repaired, report.orphans_removed,
            report.failed,
        )  # fmt: skip
        return report

    async def recent(self, now: datetime) -> ReconcileReport:
        """The timer's step: sessions active since shortly before the previous run."""
        return await self.reconcile(expression=recent_sessions_expression(now))

    async def all(self) -> ReconcileReport:
        """Every session. For the dev server's start (the Cosmos emulator starts empty while Azurite keeps its
        data); opt in, as it reads every snapshot."""
        return await self.reconcile(expression=ALL_SESSIONS)

    async def session(self, owner: str, session_id: str, report: ReconcileReport) -> None:
        """Make the session's Cosmos records match its snapshot; remove them if the snapshot is gone.

        Reconcile reads without the session's lease, so a delete, an erasure or retention can finish between its
        read and its writes: it looks again afterwards and takes back what it wrote for a session that is gone.
        """
        before = report.turns_repaired + report.summaries_repaired
        await self._repair(owner, session_id, report)
        repaired = report.turns_repaired + report.summaries_repaired > before
        if repaired and not await self.snapshots.exists(owner, session_id):
            removed = await self.metadata.delete_session(owner, session_id)
            logger.info("session %s was deleted while being reconciled; %d records taken back", session_id, removed)
            report.orphans_removed += removed

    async def _repair(self, owner: str, session_id: str, report: ReconcileReport) -> None:
        validate_id(owner, "owner")
        validate_id(session_id)
        report.sessions_checked += 1
        try:
            snapshot = await self.snapshots.load(owner, session_id)
        except SessionNotFound:
            removed = await self.metadata.delete_session(owner, session_id)
            if removed:
                logger.info("reconcile removed %d orphan records of session %s", removed, session_id)
            report.orphans_removed += removed
            return
        except (SessionConflict, SnapshotCorrupt) as exc:
            report.failed += 1
            logger.warning("reconcile could not read session %s: %s", session_id, type(exc).__name__)
            return
        report.turns_repaired += await self.metadata.turns.repair(
            owner, session_id, snapshot.records, snapshot.feedback
        )
        report.summaries_repaired += int(await self.metadata.sessions.repair(summary_of(snapshot)))

    async def _tagged(self, expression: str, report: ReconcileReport) -> set[tuple[str, str]]:
        seen: set[tuple[str, str]] = set()
        async for batch in batched(self.snapshots.find_by_tags(expression), self.batch_size):
            for owner, session_id in batch:
                seen.add((owner, session_id))
                try:
                    await self.session(owner, session_id, report)
                except Exception:  # noqa: BLE001 - one bad session must not stop the rest
                    report.failed += 1
                    logger.exception("reconcile failed for session %s", session_id)
        return seen
