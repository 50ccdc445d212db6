"""Rebuild Cosmos metadata from the Blob snapshots, which are the source of truth.

A turn's Cosmos write happens after its snapshot is saved and may fail (the turn still succeeds), the dev
emulator forgets everything on restart, and a Cosmos TTL may expire a record of a conversation that is
still alive: reconcile puts back every turn record and session summary the snapshot implies, and changes
nothing that is already right. It runs as a step of the retention timer (sessions active in the last
`RECONCILE_LOOKBACK_DAYS`), on demand for an admin (`POST /api/admin/reconcile`) and, opt in, at dev
server start (`reconcile_all`).

Sessions are found through blob index tags (`owner`, `session`, `lastActiveDay`), never by listing every
blob, and handled `RETENTION_BATCH_SIZE` at a time.

Safe beside live turns: a turn record, once written, never changes, so rewriting turns 1..N of a loaded
snapshot cannot undo a newer turn; a summary is only created if absent or replaced if unchanged since it
was read (etag), and never when it already counts more turns than the snapshot that was loaded.
Orphans (Cosmos records whose session has no snapshot) are removed when reconcile targets an owner or a
session; the timer's retention pass removes old orphans across all users.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core import MatchConditions
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)

from shared.metadata import summary_document, turn_document
from shared.records import summarize, validate_id
from shared.snapshots import SessionConflict, SessionNotFound, SnapshotCorrupt

if TYPE_CHECKING:
    from shared.runtime import Services

logger = logging.getLogger(__name__)

RECONCILE_LOOKBACK_DAYS = 2  # the timer covers what changed since its previous (daily) run, with a margin
ALL_SESSIONS = "\"lastActiveDay\" >= '0000-01-01'"  # every snapshot carries this tag

T = TypeVar("T")


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


def stored_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    """A Cosmos document without the service's system properties (`_rid`, `_etag`, `_ts`, ...)."""
    return {key: value for key, value in document.items() if not key.startswith("_")}


def differs(stored: Mapping[str, Any], expected: Mapping[str, Any], ignore: frozenset[str] = frozenset()) -> bool:
    """True when a field we derive has another value in the stored document (fields we do not derive,
    such as a title set elsewhere or a ttl, do not count)."""
    return any(stored.get(key) != value for key, value in expected.items() if key not in ignore)


def recent_sessions_expression(now: datetime, lookback_days: int = RECONCILE_LOOKBACK_DAYS) -> str:
    day = (now.astimezone(UTC) - timedelta(days=lookback_days)).strftime("%Y-%m-%d")
    return f"\"lastActiveDay\" >= '{day}'"


def owner_expression(owner: str) -> str:
    return f"\"owner\" = '{validate_id(owner, 'owner')}'"  # a validated id cannot close the quote


def session_expression(session_id: str) -> str:
    return f"\"session\" = '{validate_id(session_id)}'"


async def batched(items: AsyncIterable[T], size: int) -> AsyncGenerator[list[T], None]:
    batch: list[T] = []
    async for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# ---- one session -------------------------------------------------------------------------------------------------


async def reconcile_session(services: Services, owner: str, session_id: str, report: ReconcileReport) -> None:
    """Make the session's Cosmos records match its snapshot; remove them if the snapshot is gone.

    Reconcile reads without the session's lease, so a delete, an erasure or retention can finish between its
    read and its writes: it looks again afterwards and takes back what it wrote for a session that is gone.
    """
    before = report.turns_repaired + report.summaries_repaired
    await _repair(services, owner, session_id, report)
    if report.turns_repaired + report.summaries_repaired > before and not await services.snapshots.exists(
        owner, session_id
    ):
        removed = await services.metadata.delete_session(owner, session_id)
        logger.info("session %s was deleted while being reconciled; %d records taken back", session_id, removed)
        report.orphans_removed += removed


async def _repair(services: Services, owner: str, session_id: str, report: ReconcileReport) -> None:
    """Make the session's Cosmos records match its snapshot; remove them if the snapshot is gone."""
    validate_id(owner, "owner")
    validate_id(session_id)
    metadata = services.metadata
    report.sessions_checked += 1
    try:
        snapshot = await services.snapshots.load(owner, session_id)
    except SessionNotFound:
        removed = await metadata.delete_session(owner, session_id)
        if removed:
            logger.info("reconcile removed %d orphan records of session %s", removed, session_id)
        report.orphans_removed += removed
        return
    except (SessionConflict, SnapshotCorrupt) as exc:
        report.failed += 1
        logger.warning("reconcile could not read session %s: %s", session_id, type(exc).__name__)
        return

    query = "SELECT * FROM c WHERE c.sessionId = @session AND c.userId = @owner AND c.type = 'turn'"
    items = metadata.turns.query_items(
        query,
        parameters=[{"name": "@session", "value": session_id}, {"name": "@owner", "value": owner}],
        partition_key=session_id,
    )
    stored = {int(item["turn"]): item async for item in items}
    for record in snapshot.records:
        expected = turn_document(owner, session_id, record)
        current = stored.get(record.turn)
        if current is None or differs(current, expected):
            # Turn records are immutable once written, so an upsert cannot undo anything newer.
            await metadata.turns.upsert_item({**stored_fields(current or {}), **expected})
            report.turns_repaired += 1

    expected_summary = summary_document(summarize(session_id, owner, snapshot.created_at, snapshot.records))
    try:
        current_summary = await metadata.sessions.read_item(session_id, partition_key=owner)
    except CosmosResourceNotFoundError:
        with contextlib.suppress(CosmosResourceExistsError):  # a turn wrote it meanwhile: theirs is newer
            await metadata.sessions.create_item(expected_summary)
            report.summaries_repaired += 1
        return
    if int(current_summary.get("turns", 0)) > snapshot.turns:
        return  # a turn landed after our load; its own write is newer than what we know
    if differs(current_summary, expected_summary, ignore=frozenset({"title"})):
        body = {**stored_fields(current_summary), **expected_summary, "title": current_summary.get("title")}
        with contextlib.suppress(CosmosAccessConditionFailedError):  # changed since read: a newer write won
            await metadata.sessions.replace_item(
                session_id, body, etag=current_summary["_etag"], match_condition=MatchConditions.IfNotModified
            )
            report.summaries_repaired += 1


# ---- many sessions -----------------------------------------------------------------------------------------------


async def _reconcile_tagged(services: Services, expression: str, report: ReconcileReport) -> set[tuple[str, str]]:
    size = services.settings.retention_batch_size
    seen: set[tuple[str, str]] = set()
    async for batch in batched(services.snapshots.find_by_tags(expression), size):
        for owner, session_id in batch:
            seen.add((owner, session_id))
            try:
                await reconcile_session(services, owner, session_id, report)
            except Exception:  # noqa: BLE001 - one bad session must not stop the rest
                report.failed += 1
                logger.exception("reconcile failed for session %s", session_id)
    return seen


async def _cosmos_sessions_of_owner(services: Services, owner: str) -> set[str]:
    metadata = services.metadata
    found: set[str] = set()
    summaries = metadata.sessions.query_items(
        "SELECT c.id FROM c WHERE c.userId = @owner AND c.type = 'session'",
        parameters=[{"name": "@owner", "value": owner}],
        partition_key=owner,
    )
    found.update([item["id"] async for item in summaries])
    turns = metadata.turns.query_items(  # cross-partition: the turns container is partitioned by session
        "SELECT c.sessionId FROM c WHERE c.userId = @owner AND c.type = 'turn'",
        parameters=[{"name": "@owner", "value": owner}],
    )
    found.update([item["sessionId"] async for item in turns])
    return found


async def _cosmos_owners_of_session(services: Services, session_id: str) -> set[str]:
    items = services.metadata.turns.query_items(
        "SELECT c.userId FROM c WHERE c.sessionId = @session AND c.type = 'turn'",
        parameters=[{"name": "@session", "value": session_id}],
        partition_key=session_id,
    )
    return {item["userId"] async for item in items}


async def reconcile(
    services: Services,
    *,
    owner: str | None = None,
    session_id: str | None = None,
    expression: str | None = None,
) -> ReconcileReport:
    """Reconcile one session (owner and session id), an owner's sessions, every owner's copy of a session id,
    or the sessions a tag expression selects (default: all). Owner or session targets also remove orphans."""
    report = ReconcileReport()
    # Refilling an emptied Cosmos (the local emulator restarted) needs its database and containers first; in
    # Azure (COSMOS_CREATE_RESOURCES off) this does nothing.
    await services.metadata.recreate_missing()
    if owner is not None and session_id is not None:
        await reconcile_session(services, owner, session_id, report)
    elif owner is not None:
        seen = await _reconcile_tagged(services, owner_expression(owner), report)
        for orphan in sorted(await _cosmos_sessions_of_owner(services, owner) - {sid for _, sid in seen}):
            await reconcile_session(services, owner, orphan, report)
    elif session_id is not None:
        seen = await _reconcile_tagged(services, session_expression(session_id), report)
        for orphan_owner in sorted(await _cosmos_owners_of_session(services, session_id) - {o for o, _ in seen}):
            await reconcile_session(services, orphan_owner, session_id, report)
    else:
        await _reconcile_tagged(services, expression or ALL_SESSIONS, report)
    logger.info(
        "reconcile: %d sessions checked, %d turns and %d summaries repaired, %d orphan records removed, %d failed",
        report.sessions_checked,
        report.turns_repaired,
        report.summaries_repaired,
        report.orphans_removed,
        report.failed,
    )
    return report


async def reconcile_recent(services: Services, now: datetime) -> ReconcileReport:
    """The timer's step: sessions active since shortly before the previous run."""
    return await reconcile(services, expression=recent_sessions_expression(now))


async def reconcile_all(services: Services) -> ReconcileReport:
    """Every session. For the dev server's start (the Cosmos emulator starts empty while Azurite keeps its
    data); opt in, as it reads every snapshot."""
    return await reconcile(services, expression=ALL_SESSIONS)
