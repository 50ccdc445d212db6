"""Removing one session from both stores: what DELETE, erasure and every later cleanup share."""

from __future__ import annotations

from shared.domain.errors import SessionNotFound
from shared.storage.metadata import MetadataStore
from shared.storage.snapshots import SnapshotStore


async def remove_session(
    snapshots: SnapshotStore, metadata: MetadataStore, owner: str, session_id: str
) -> tuple[bool, int]:
    """Delete a session's blobs, then its Cosmos records: (anything existed, Cosmos documents removed).

    Under the session's lease when it has a snapshot, so a running turn makes this `SessionBusy` before
    anything is touched. Without a snapshot it clears what a half-finished earlier delete may have left
    (journals, records). Blob goes first: a crash in between leaves records the orphan passes find.
    """
    try:
        async with snapshots.locked(owner, session_id) as lock:
            had_blobs = await snapshots.delete(owner, session_id, lock=lock)
    except SessionNotFound:
        had_blobs = await snapshots.delete(owner, session_id)
    removed = await metadata.delete_session(owner, session_id)
    return had_blobs or removed > 0, removed
