"""The retention job: delete every conversation idle for longer than `RETENTION_DAYS`, then reconcile.

Selection is two-step. The blob index tag `lastActiveDay` (a day, written with every turn that lands on a
new day) finds candidates without listing blobs: `"lastActiveDay" <= '<cutoff day>'` (the cutoff's own
day is included, as part of that day may be before the cutoff). The exact `updated_at` in the snapshot
decides, re-read under the session's blob lease right before deleting: a turn running holds the lease
(`SessionBusy`: skipped), and a turn that finished after the tag query shows in `updated_at` (skipped, and
the stale tag rewritten). The snapshot is then deleted under that same lease, so no turn can land between
the check and the delete, and its Cosmos records after it.

Crash safety: every step is idempotent and the blob goes first, so a re-run picks up where a crash left
off. A crash between the blob and Cosmos deletes leaves Cosmos records without a snapshot; a second,
bounded pass finds them (a cross-partition query for session summaries with `last_active` before the
cutoff, keyset-paged) and removes those whose snapshot is gone. Turn records without a summary and without
a snapshot can only come from a crash inside a Cosmos delete that removed the summary last, which cannot
happen (`MetadataStore.delete_session` removes the summary last); in Azure the containers' TTL is the
final backstop.

Batches: candidates are handled `RETENTION_BATCH_SIZE` at a time as the tag query pages in (the service's
pages hold at most 5000 names), so memory stays flat; a run may be capped to a number of batches
(`max_batches`) and the next run continues. `RETENTION_DRY_RUN`
reports what would go and deletes nothing (and takes no lease: it never blocks a turn).

Logs carry counts and session ids, never content. Each deletion writes an audit event (`retention_delete`,
actor `system:retention`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.aio import batched
from shared.domain.audit import RETENTION_ACTOR
from shared.domain.clock import parse_iso, utc_iso, utc_now
from shared.domain.errors import SessionBusy, SessionConflict, SessionNotFound
from shared.domain.ids import validate_id
from shared.services.audit import AuditLog
from shared.services.reconcile import Reconciler, ReconcileReport
from shared.storage.metadata import MetadataStore
from shared.storage.snapshots import SnapshotStore

logger = logging.getLogger(__name__)

MAX_LISTED = 1000  # sessions named in one report; the counts are always complete
# Batches one timer run handles at most: the rest waits for the next run, so a large backlog never runs into
# the host's function timeout (host.json, 10 minutes) and the reconcile step still gets its turn.
TIMER_MAX_BATCHES = 20

# ---- pure selection ----------------------------------------------------------------------------------------------


def retention_cutoff(now: datetime, days: int) -> datetime:
    """Sessions whose last activity is strictly before this instant are expired."""
    return now.astimezone(UTC) - timedelta(days=days)


def candidate_expression(cutoff: datetime) -> str:
    """Tag query for every session that may be expired: last active on the cutoff's day or before."""
    return f"\"lastActiveDay\" <= '{cutoff.astimezone(UTC):%Y-%m-%d}'"


def is_expired(updated_at: str, cutoff: datetime) -> bool:
    """The exact test, on the snapshot's own timestamp: idle since strictly before the cutoff."""
    return parse_iso(updated_at) < cutoff


def tag_is_stale(updated_at: str, cutoff: datetime) -> bool:
    """A candidate that was active after the cutoff's day carries an outdated `lastActiveDay` tag."""
    return parse_iso(updated_at).astimezone(UTC).date() > cutoff.astimezone(UTC).date()


@dataclass
class RetentionReport:
    cutoff: str
    dry_run: bool
    scanned: int = 0  # candidates the tag query returned
    expired: int = 0  # candidates the exact check found expired (what goes, or would go in a dry run)
    deleted: int = 0  # sessions deleted (0 in a dry run)
    skipped: int = 0  # active inside the window, busy with a turn, or gone meanwhile
    failed: int = 0  # could not be checked or deleted (logged; the next run retries)
    orphans_found: int = 0  # sessions with Cosmos records but no snapshot
    orphans_removed: int = 0
    records_deleted: int = 0  # Cosmos documents removed
    complete: bool = True  # False when max_batches stopped the run early
    sessions: list[str] = field(default_factory=list)  # "owner/session" of what went (or would go)

    def note(self, owner: str, session_id: str) -> None:
        if len(self.sessions) < MAX_LISTED:
            self.sessions.append(f"{owner}/{session_id}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JobReport:
    retention: RetentionReport
    reconcile: ReconcileReport | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "retention": self.retention.to_dict(),
            "reconcile": self.reconcile.to_dict() if self.reconcile is not None else None,
        }


# ---- the sweep ---------------------------------------------------------------------------------------------------


class _Budget:
    def __init__(self, max_batches: int | None) -> None:
        self.left = max_batches

    def take(self) -> bool:
        if self.left is None:
            return True
        if self.left <= 0:
            return False
        self.left -= 1
        return True


@dataclass(frozen=True)
class RetentionPolicy:
    days: int
    dry_run: bool
    batch_size: int


@dataclass
class Retention:
    """The sweep over the two stores, its audit events, and the reconcile step of the timer's job."""

    snapshots: SnapshotStore
    metadata: MetadataStore
    audit: AuditLog
    reconciler: Reconciler
    policy: RetentionPolicy
    clock: Callable[[], datetime] = utc_now

    async def run_job(self, now: datetime | None = None, max_batches: int | None = TIMER_MAX_BATCHES) -> JobReport:
        """The timer's work: a bounded sweep, then reconcile of recently active sessions (skipped in a dry run)."""
        now = now or self.clock()
        retention = await self.sweep(now, max_batches=max_batches)
        repaired = None
        if not retention.dry_run:
            try:
                repaired = await self.reconciler.recent(now)
            except Exception:  # noqa: BLE001 - the deletions are done and reported; reconcile runs again next time
                logger.exception("reconcile step of the retention job failed")
        return JobReport(retention, repaired)

    async def sweep(
        self,
        now: datetime,
        *,
        dry_run: bool | None = None,
        batch_size: int | None = None,
        max_batches: int | None = None,
    ) -> RetentionReport:
        """Delete every session idle since before `now - RETENTION_DAYS`; see the module docstring."""
        dry_run = self.policy.dry_run if dry_run is None else dry_run
        size = batch_size or self.policy.batch_size
        cutoff = retention_cutoff(now, self.policy.days)
        report = RetentionReport(cutoff=utc_iso(cutoff), dry_run=dry_run)
        budget = _Budget(max_batches)
        await self._sweep_snapshots(cutoff, size, budget, report)
        if report.complete:
            await self._sweep_orphans(cutoff, size, budget, report)
        logger.info(
            "retention%s: cutoff %s, scanned %d, expired %d, deleted %d, skipped %d, failed %d, "
            "orphans found %d removed %d, records deleted %d, complete %s",
            " (dry run)" if dry_run else "", report.cutoff, report.scanned, report.expired, report.deleted,
            report.skipped, report.failed, report.orphans_found, report.orphans_removed, report.records_deleted,
            report.complete,
        )  # fmt: skip
        return report

    async def _sweep_snapshots(self, cutoff: datetime, size: int, budget: _Budget, report: RetentionReport) -> None:
        # Batched here, not by the service's page size: Azurite applies `maxresults` before the tag filter and
        # then drops the continuation marker, losing matches; the SDK's own pages hold at most 5000 names.
        candidates = self.snapshots.find_by_tags(candidate_expression(cutoff))
        async with contextlib.aclosing(batched(candidates, size)) as batches:
            async for batch in batches:
                if not budget.take():
                    report.complete = False
                    return
                for owner, session_id in batch:
                    report.scanned += 1
                    try:
                        await self._expire(owner, session_id, cutoff, report)
                    except (SessionBusy, SessionNotFound):
                        report.skipped += 1  # a turn holds it (active now), or it was deleted meanwhile
                    except Exception:  # noqa: BLE001 - one session must not stop the sweep; the next run retries
                        report.failed += 1
                        logger.exception("retention could not handle session %s", session_id)

    async def _expire(self, owner: str, session_id: str, cutoff: datetime, report: RetentionReport) -> None:
        if report.dry_run:
            await self._expire_dry(owner, session_id, cutoff, report)
            return
        async with self.snapshots.locked(owner, session_id) as lock:
            try:
                snapshot = await self.snapshots.load_held(lock, owner, session_id)
            except SessionConflict:
                # Under our lease no compaction runs, so a session that cannot be pieced together is the rest
                # of something that stopped half way: finish it. (A delete goes journal first; a remnant whose
                # journal is gone loads as its snapshot alone, and expires by that snapshot's time.)
                snapshot = None
            if snapshot is not None and not is_expired(snapshot.updated_at, cutoff):
                report.skipped += 1
                if tag_is_stale(snapshot.updated_at, cutoff):
                    await self.snapshots.retag(lock, snapshot)
                return
            report.expired += 1
            await self.snapshots.delete(owner, session_id, lock=lock)
        report.records_deleted += await self._delete_records(owner, session_id)
        report.deleted += 1
        report.note(owner, session_id)

    async def _expire_dry(self, owner: str, session_id: str, cutoff: datetime, report: RetentionReport) -> None:
        """What `_expire` would do, without a lease (a dry run never blocks a turn) or any write."""
        try:
            snapshot = await self.snapshots.load(owner, session_id)
        except SessionConflict:  # a remnant that cannot be pieced together: it would be finished off
            snapshot = None
        if snapshot is None or is_expired(snapshot.updated_at, cutoff):
            report.expired += 1
            report.note(owner, session_id)
            logger.info("retention dry run: session %s would be deleted", session_id)
        else:
            report.skipped += 1

    async def _sweep_orphans(self, cutoff: datetime, size: int, budget: _Budget, report: RetentionReport) -> None:
        """Cosmos summaries idle since before the cutoff whose snapshot is gone: an interrupted delete's rest."""
        after = ""
        while True:
            if not budget.take():
                report.complete = False
                return
            page = await self.metadata.sessions.idle(utc_iso(cutoff), after, size)
            for owner, session_id, sort_key in page:
                after = sort_key
                try:
                    await self._orphan(owner, session_id, report)
                except Exception:  # noqa: BLE001 - logged; the next run retries
                    report.failed += 1
                    logger.exception("retention could not remove the records of session %s", session_id)
            if len(page) < size:
                return

    async def _orphan(self, owner: str, session_id: str, report: RetentionReport) -> None:
        owner, session_id = validate_id(owner, "owner"), validate_id(session_id)
        if await self.snapshots.exists(owner, session_id):
            return  # the snapshot decides; the first pass deals with it
        report.orphans_found += 1
        report.note(owner, session_id)
        if report.dry_run:
            return
        report.records_deleted += await self._delete_records(owner, session_id)
        report.orphans_removed += 1

    async def _delete_records(self, owner: str, session_id: str) -> int:
        """Remove a session's Cosmos records and audit the deletion; returns how many documents went."""
        removed = await self.metadata.delete_session(owner, session_id)
        await self.audit.record(
            session_id=session_id, owner=owner, actor=RETENTION_ACTOR, action="retention_delete",
            details={"records_deleted": removed},
        )  # fmt: skip
        return removed
