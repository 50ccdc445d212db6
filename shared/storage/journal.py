"""A session's journal blob (`<owner>/<session>/journal.jsonl.gz`): how it is read, asked about, (re)started, and
how it continues the snapshot read beside it.

An append blob of gzip members, one per turn after the snapshot, whose metadata `generation` names the snapshot
generation it continues. A journal of the snapshot's generation continues it; an older one was left by a
compaction (a crash or a read between its two writes: the snapshot, then the journal restarted) and everything
in it is in the snapshot already; a newer one means the snapshot was read before a compaction, and the reader
reads both again. Sessions written before envelope schema 4 name their journal by generation
(`journal-000001.jsonl.gz`): `shared.storage.snapshots` reads those snapshot first, then journal, and their next
save rewrites them in this layout.

The reads here are always ranged: the SDK reads an empty blob whole with a second request when its range is
refused, and a journal read is on every turn's path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobClient, BlobLeaseClient

from shared.aio import both
from shared.domain.errors import SessionConflict
from shared.domain.sessions import Snapshot
from shared.storage.codec import apply_journal, decode_journal

logger = logging.getLogger(__name__)

# Stored as opaque gzip (no Content-Encoding): HTTP clients would otherwise inflate it transparently.
CONTENT = ContentSettings(content_type="application/gzip")
GENERATION = "generation"  # the metadata key
UNTOLD = -1  # the generation of a journal read as empty from 0: a refused range tells neither it nor the ETag
SHRUNK = -2  # a journal now shorter than the position read from: restarted since that position was known


class SnapshotBehind(Exception):
    """The journal continues a later generation than the snapshot read beside it: read both again."""


@dataclass(frozen=True)
class JournalRead:
    """A journal as read from an offset: the bytes past it, its ETag and its generation (or UNTOLD, SHRUNK)."""

    data: bytes
    etag: str | None
    generation: int


def generation_of(metadata: Mapping[str, str] | None) -> int:
    try:
        return int((metadata or {}).get(GENERATION, "0"))
    except ValueError:
        return 0  # not ours: taken as a journal left behind


def metadata(generation: int) -> dict[str, str]:
    return {GENERATION: str(generation)}


async def read(blob: BlobClient, offset: int = 0) -> JournalRead | None:
    """The journal past `offset`, or None if there is none.

    Read from one byte early: a range that starts at the end is refused (Azure answers 416, with neither ETag nor
    metadata), so only an empty journal read from 0 comes back without its generation (UNTOLD), and a refusal
    past 0 means the journal is shorter than `offset` (SHRUNK)."""
    try:
        download = await blob.download_blob(offset=max(offset - 1, 0))
        data = bytes(await download.readall())
    except ResourceNotFoundError:
        return None
    except HttpResponseError as exc:
        if exc.status_code == 416:
            return JournalRead(b"", None, SHRUNK if offset else UNTOLD)
        raise
    return JournalRead(
        data[1:] if offset else data, download.properties.etag, generation_of(download.properties.metadata)
    )


async def tail(blob: BlobClient, cached: Snapshot) -> JournalRead | None:
    """What the journal holds past a worker's copy of the session (no data when nothing), or None when the copy
    cannot be brought up to date from it (the journal is gone or restarted since)."""
    found = await read(blob, cached.journal_bytes)
    if found is None:  # still not written (fine), or gone since the copy saw it (read again)
        return JournalRead(b"", None, 0) if cached.journal_generation == 0 else None
    return None if found.generation == SHRUNK else found


async def properties(blob: BlobClient) -> tuple[str, int, int] | None:
    """ETag, generation and size of the journal, or None if there is none."""
    try:
        found = await blob.get_blob_properties()
    except ResourceNotFoundError:
        return None
    return str(found.etag), generation_of(found.metadata), int(found.size)


async def told(blob: BlobClient, read: JournalRead | None) -> JournalRead | None:
    """`read` with its generation and ETag if it was an empty journal read from 0, which a ranged read does not
    tell: asked of the service. Only needed where the snapshot read beside it may be stale (a compaction between
    the two reads); under the lease the snapshot is the latest, and the next append asks (`asked`)."""
    if read is None or read.generation != UNTOLD:
        return read
    there = await properties(blob)
    if there is None:
        return None
    etag, generation, size = there
    if size:
        raise SnapshotBehind  # appended to since it read as empty: read both again
    return JournalRead(b"", etag, generation)


async def asked(blob: BlobClient, before: Snapshot, lease: BlobLeaseClient) -> Snapshot:
    """`before` with the ETag and generation of the journal it read as empty, asked of the service. Asked at save
    time, so the answer is taken only if the lease is still this turn's (renewed beside the question): a writer
    whose lease lapsed could otherwise take up a journal that another turn's compaction has just fenced."""
    there, renewed = await both(properties(blob), _renewed(lease))
    if not renewed:
        raise SessionConflict(f"session {before.session_id} changed while the turn ran (its lease lapsed)")
    if there is None:
        return replace(before, journal_etag=None, journal_generation=0)
    etag, generation, size = there
    if generation > before.generation or (generation == before.generation and size):
        raise SessionConflict(f"session {before.session_id} changed while the turn ran")
    return replace(before, journal_etag=etag, journal_generation=generation)


async def _renewed(lease: BlobLeaseClient) -> bool:
    try:
        await lease.renew()
    except ValueError:  # a lease with no id: never held, or given back
        return False
    except HttpResponseError as exc:
        if exc.status_code in (409, 412):  # lost: another holds it, or it lapsed and was taken meanwhile
            return False
        raise
    return True


async def fence(blob: BlobClient, before: Snapshot, lease: BlobLeaseClient) -> Snapshot:
    """`before` with its journal's ETag moved on by a conditional write that changes nothing else (SessionConflict
    if the journal is no longer as `before` read it). A compaction fences before it writes the snapshot: a turn
    appended since `before` was read is then refused instead of folded away, and a writer still holding the old
    ETag (one whose lease lapsed) cannot append to a journal whose turns the snapshot is about to take in."""
    if before.journal_generation == UNTOLD:
        before = await asked(blob, before, lease)
    if before.journal_etag is None:  # none as read: from here, an empty one of this generation
        created = await start(blob, before.generation, None, before.session_id)
        return replace(before, journal_etag=created, journal_generation=before.generation)
    try:
        fenced = await blob.set_blob_metadata(
            metadata(before.journal_generation), etag=before.journal_etag, match_condition=MatchConditions.IfNotModified
        )
    except HttpResponseError as exc:
        if exc.status_code in (404, 409, 412):
            raise SessionConflict(f"session {before.session_id} changed while the turn ran") from None
        raise
    return replace(before, journal_etag=str(fenced["etag"]))


async def start(blob: BlobClient, generation: int, seen: str | None, session_id: str) -> str:
    """An empty journal of `generation` in place of what was seen there (`seen`: its ETag, None for nothing), only
    if that is still what is there; its ETag. Anything else there now was written since, by another writer, and
    the turn is refused (SessionConflict)."""
    condition: dict[str, Any] = (
        {"if_none_match": "*"} if seen is None else {"etag": seen, "match_condition": MatchConditions.IfNotModified}
    )
    try:
        created = await blob.create_append_blob(content_settings=CONTENT, metadata=metadata(generation), **condition)
    except HttpResponseError as exc:
        if exc.status_code in (409, 412):
            raise SessionConflict(f"session {session_id} changed while the turn ran") from None
        raise
    return str(created["etag"])


async def begin(blob: BlobClient, before: Snapshot, lease: BlobLeaseClient) -> str:
    """The journal of `before`'s generation to append to, started in place of what `before` read there (`start`).
    If something was written there since, this generation's journal, still empty, is taken, with the lease renewed
    (`asked`): a new session's, written beside its first turn after the turn's read, or a restart the SDK sent
    again. Anything else refuses the turn."""
    try:
        return await start(blob, before.generation, before.journal_etag, before.session_id)
    except SessionConflict:
        there = await asked(blob, before, lease)
        if there.journal_generation != before.generation or there.journal_etag is None:
            raise
        return there.journal_etag


async def append(blob: BlobClient, member: bytes, position: int, etag: str | None, session_id: str) -> str:
    """Append `member` to the journal as it was read (`etag`, `position`); its new ETag. A refusal may be the SDK
    sending again a request that landed (its answer lost): the member is then looked for where it was to go, and
    found there, it was saved. Otherwise the journal changed since it was read: SessionConflict."""
    condition: dict[str, Any] = {} if etag is None else {"etag": etag, "match_condition": MatchConditions.IfNotModified}
    try:
        appended = await blob.append_block(member, appendpos_condition=position, **condition)
        return str(appended["etag"])
    except ResourceNotFoundError:
        raise SessionConflict(f"the journal of session {session_id} was removed while the turn ran") from None
    except HttpResponseError as exc:
        if exc.status_code not in (409, 412):
            raise
    landed = await holds(blob, member, position)
    if landed is None:
        raise SessionConflict(f"session {session_id} changed while the turn ran")
    return landed


async def holds(blob: BlobClient, data: bytes, offset: int = 0, *, whole: bool = False) -> str | None:
    """The blob's ETag if it holds exactly `data` at `offset` (and nothing else, if `whole`): a write whose answer
    was lost, which landed. Else None."""
    try:
        download = await blob.download_blob(offset=offset, length=len(data))
        found = await download.readall()
    except ResourceNotFoundError:
        return None
    except HttpResponseError as exc:
        if exc.status_code == 416:
            return None
        raise
    if found != data or (whole and download.properties.size != offset + len(data)):
        return None
    return str(download.properties.etag)


async def drop_named(blob: BlobClient) -> None:
    """A journal of the layout before schema 4, once the snapshot that replaced it holds its turns: nothing reads it
    again, so failing to delete it leaves a stray blob (removed with its session), not a failed turn."""
    try:
        await blob.delete_blob()
    except ResourceNotFoundError:
        return
    except AzureError:
        logger.warning("could not delete %s, which nothing reads any more", blob.blob_name)


async def joined(blob: BlobClient, snapshot: Snapshot, read: JournalRead | None, *, current: bool) -> Snapshot:
    """`continued`, after asking for an empty journal's generation (`told`) unless the lease's ETag said the
    snapshot read beside it is the latest (`current`)."""
    return continued(snapshot, read if current else await told(blob, read))


def continued(snapshot: Snapshot, read: JournalRead | None) -> Snapshot:
    """`snapshot` with the (fixed-name) journal as read: applied if it continues this generation, passed
    over if a compaction left it behind (its turns are in the snapshot), SnapshotBehind if it is newer."""
    if read is None:  # a new session whose journal is not written yet
        return replace(snapshot, journal_bytes=0, journal_etag=None, journal_generation=0)
    if read.generation == UNTOLD:  # there and empty; which generation it is, the next append asks
        return replace(snapshot, journal_bytes=0, journal_etag=None, journal_generation=UNTOLD)
    if read.generation > snapshot.generation:
        raise SnapshotBehind
    seen = replace(snapshot, journal_bytes=0, journal_etag=read.etag, journal_generation=read.generation)
    if read.generation < snapshot.generation:
        return seen
    return apply_journal(seen, decode_journal(read.data), len(read.data))


def extended(cached: Snapshot, tail: JournalRead) -> Snapshot | None:
    """The copy with the journal's new part; None if the journal moved to a later generation (read again).
    An UNTOLD tail (the copy's journal is empty, and still is) is only taken where the snapshot is known to
    be the copy's: the copy stands."""
    if tail.generation == UNTOLD:
        return cached
    if tail.generation > cached.generation:
        return None
    seen = replace(cached, journal_etag=tail.etag, journal_generation=tail.generation)
    if tail.generation < cached.generation:  # left behind by a compaction: nothing in it is new
        return replace(seen, journal_bytes=0)
    if cached.journal_generation != cached.generation and cached.journal_bytes:
        return None  # a copy's position in a journal of another generation: nothing to read on from
    if not tail.data:
        return seen
    return apply_journal(seen, decode_journal(tail.data), cached.journal_bytes + len(tail.data))
