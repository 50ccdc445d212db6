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
import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from azure.cosmos.exceptions import CosmosResourceNotFoundError

from shared.audit import audit_log, user_partition
from shared.records import InvalidId, utc_iso, validate_id
from shared.snapshots import SessionBusy, SessionNotFound

if TYPE_CHECKING:
    from shared.runtime import Services

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


def _now() -> datetime:
    return datetime.now(UTC)


async def find_sessions(services: Services, owner: str) -> set[str]:
    """Every session id of `owner` that has any blob or Cosmos record."""
    found: set[str] = set()
    async for _, session_id in services.snapshots.find_by_tags(f"\"owner\" = '{validate_id(owner, 'owner')}'"):
        found.add(session_id)
    async for session_id in services.snapshots.owner_sessions(owner):
        found.add(session_id)
    metadata = services.metadata
    summaries = metadata.sessions.query_items(
        "SELECT c.id FROM c WHERE c.userId = @owner AND c.type = 'session'",
        parameters=[{"name": "@owner", "value": owner}],
        partition_key=owner,
    )
    found.update([item["id"] async for item in summaries])
    turns = metadata.turns.query_items(  # cross-partition: turn records are partitioned by session
        "SELECT c.sessionId FROM c WHERE c.userId = @owner",
        parameters=[{"name": "@owner", "value": owner}],
    )
    found.update([item["sessionId"] async for item in turns])
    valid: set[str] = set()
    for session_id in found:
        try:
            valid.add(validate_id(session_id))
        except InvalidId:
            logger.error("erasure found a session name that is not a valid id under owner %s", owner)
    return valid


async def _erase_session(services: Services, owner: str, session_id: str) -> tuple[bool, int]:
    """Delete one session's blobs (under its lease when it has a snapshot) and records: (existed, records)."""
    snapshots = services.snapshots
    try:
        async with snapshots.locked(owner, session_id) as lock:
            had_blobs = await snapshots.delete(owner, session_id, lock=lock)
    except SessionNotFound:
        # No snapshot: journals of a half-written or half-deleted session, or nothing at all.
        had_blobs = await snapshots.delete(owner, session_id)
    removed = await services.metadata.delete_session(owner, session_id)
    return had_blobs or removed > 0, removed


async def _erase_loose_records(services: Services, owner: str, busy: set[str]) -> int:
    """Turn records of the owner not reached through a session (matched by userId), then the owner's audit
    events. A busy session's records stay until it is erased as a whole, by the retry."""
    turns = services.metadata.turns
    items = turns.query_items(
        "SELECT c.id, c.sessionId FROM c WHERE c.userId = @owner",
        parameters=[{"name": "@owner", "value": owner}],
    )
    removed = 0
    for item_id, partition in [(item["id"], item["sessionId"]) async for item in items]:
        if partition in busy:
            continue
        with contextlib.suppress(CosmosResourceNotFoundError):
            await turns.delete_item(item_id, partition_key=partition)
            removed += 1
    removed += await audit_log(services).delete_owner_events(owner)
    return removed


async def erase_user(
    services: Services,
    owner: str,
    *,
    user_id: str,
    actor: str,
    admin: bool = False,
    clock: Callable[[], datetime] = _now,
    busy_wait_seconds: float = BUSY_WAIT_SECONDS,
) -> ErasureReceipt:
    """Erase every session and record of `owner` (an owner key); SessionBusy if a turn kept one busy."""
    validate_id(owner, "owner")
    log = audit_log(services)
    event = log.event(
        session_id=user_partition(owner), owner=owner, actor=actor, action="erase_user", outcome="started", admin=admin
    )
    await log.write(event)  # no proof, no erasure: a failure here propagates before anything is deleted

    sessions_deleted = 0
    records_deleted = 0
    remaining: set[str] = set()
    for round_number in range(MAX_ROUNDS):
        remaining = await find_sessions(services, owner)
        if not remaining and round_number > 0:
            break
        busy: set[str] = set()
        for session_id in sorted(remaining):
            try:
                existed, removed = await _erase_session(services, owner, session_id)
            except SessionBusy:
                busy.add(session_id)
                continue
            sessions_deleted += int(existed)
            records_deleted += removed
        records_deleted += await _erase_loose_records(services, owner, busy)
        if busy:
            await asyncio.sleep(busy_wait_seconds)  # a turn holds the lease for a model call: give it a moment
    else:
        remaining = await find_sessions(services, owner)

    details = {"sessions_deleted": sessions_deleted, "records_deleted": records_deleted}
    if remaining:
        await log.record(
            session_id=event.session_id,
            owner=owner,
            actor=actor,
            action="erase_user",
            outcome="busy",
            admin=admin,
            details={**details, "sessions_remaining": len(remaining)},
            event_id=event.id,
        )
        logger.warning("erasure of owner %s incomplete: %d sessions still busy", owner, len(remaining))
        raise SessionBusy(f"{len(remaining)} sessions")

    completed_at = utc_iso(clock())
    written = await log.record(
        session_id=event.session_id,
        owner=owner,
        actor=actor,
        action="erase_user",
        outcome="ok",
        admin=admin,
        details=details,
        event_id=event.id,
    )
    if not written:
        logger.error("erasure of owner %s done, but its final audit event was not written", owner)
    logger.info("erased owner %s: %d sessions, %d records", owner, sessions_deleted, records_deleted)
    return ErasureReceipt(user_id, sessions_deleted, records_deleted, completed_at)
