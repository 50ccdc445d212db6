"""Conversation snapshots in Azure Blob Storage: a compacted snapshot plus an append-only journal.

Layout, for owner `o` and session `s` (both validated ids, the only parts of any name):

    o/s/snapshot.json.gz    block blob: the versioned envelope with every entry up to some turn and the
                            journal generation it goes with, the session's lease (one turn at a time) and
                            its index tags
    o/s/journal.jsonl.gz    append blob: one gzip member per turn after the snapshot; its metadata
                            `generation` says which snapshot generation it continues

A turn appends one small gzip member (its messages in both formats and its turn record) to the
journal, on the condition that the journal is as the turn read it (ETag and append position), so saving
costs the same at turn 10 and at turn 500. When the journal has at least `compact_every` turns and has grown
to half the snapshot's size, the next turn rewrites the snapshot with everything under the next generation,
then restarts the journal empty under that generation: the bytes written per turn stay bounded (amortized)
and a load reads at most 1.5x the compacted size.

Both names are fixed, so a reader fetches the two blobs at once (`shared.storage.journal`: how they fit).

Concurrency: a turn holds a 60 s blob lease on the snapshot (renewed while the model runs), so a second
turn on the same session is refused before its model is called; the journal's ETag and append position are a
second line of defence if a lease is ever lost. A new session is written only if absent: its snapshot first
(from then on it exists), its empty journal beside the turn's metadata writes; a journal not written yet reads
as empty and the first append writes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobClient, ContainerClient

from shared.aio import both
from shared.domain.errors import SessionBusy, SessionConflict, SessionNotFound, SnapshotCorrupt
from shared.domain.feedback import Feedback
from shared.domain.ids import validate_id
from shared.domain.sessions import Snapshot
from shared.storage import journal, lease
from shared.storage.cache import SessionCache
from shared.storage.codec import (
    apply_journal,
    decode_journal,
    decode_snapshot,
    encode_feedback_member,
    encode_journal_member,
    encode_snapshot,
    index_tags,
)
from shared.storage.journal import UNTOLD, JournalRead, SnapshotBehind
from shared.storage.lease import SessionLock

logger = logging.getLogger(__name__)

# Stored as opaque gzip (no Content-Encoding): HTTP clients would otherwise inflate it transparently.
_GZIP = ContentSettings(content_type="application/gzip")
# Work on a whole conversation (JSON + gzip) above this size runs in a thread, not on the event loop, so one
# long conversation does not stall every other request of the worker.
OFF_LOOP_BYTES = 256 * 1024
T = TypeVar("T")
_BLOB_CLIENTS = 1024  # blob clients kept (two per active session: snapshot and journal)


async def _off_loop(function: Callable[[Any], T], argument: Any) -> T:
    size = argument.snapshot_bytes if isinstance(argument, Snapshot) else len(argument)
    if size > OFF_LOOP_BYTES:
        return await asyncio.to_thread(function, argument)
    return function(argument)


class _JournalGone(Exception):
    """The journal a snapshot names was deleted (a compaction replaced its generation while we read)."""


class SnapshotStore:
    def __init__(
        self, container: ContainerClient, *, compact_every: int = 16, cache: SessionCache | None = None
    ) -> None:
        self._container = container
        self._compact_every = compact_every
        self._cache = SessionCache() if cache is None else cache
        self._clients: dict[str, BlobClient] = {}

    @staticmethod
    def snapshot_name(owner: str, session_id: str) -> str:
        return f"{validate_id(owner, 'owner')}/{validate_id(session_id)}/snapshot.json.gz"

    @staticmethod
    def journal_name(owner: str, session_id: str) -> str:
        return f"{validate_id(owner, 'owner')}/{validate_id(session_id)}/journal.jsonl.gz"

    @staticmethod
    def named_journal_name(owner: str, session_id: str, generation: int) -> str:
        """The journal of one generation in the layout before envelope schema 4 (read, never written)."""
        return f"{validate_id(owner, 'owner')}/{validate_id(session_id)}/journal-{generation:06d}.jsonl.gz"

    def _journal(self, owner: str, session_id: str) -> BlobClient:
        return self._blob(self.journal_name(owner, session_id))

    def _blob(self, name: str) -> BlobClient:
        """A client for one blob, kept for the next turns (building one builds the SDK's whole operation set)."""
        client = self._clients.pop(name, None) or self._container.get_blob_client(name)
        self._clients[name] = client  # most recently used last
        if len(self._clients) > _BLOB_CLIENTS:
            del self._clients[next(iter(self._clients))]
        return client

    async def ensure_container(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._container.create_container()

    async def ping(self) -> None:
        await self._container.get_container_properties()

    async def exists(self, owner: str, session_id: str) -> bool:
        return bool(await self._blob(self.snapshot_name(owner, session_id)).exists())

    async def load(self, owner: str, session_id: str) -> Snapshot:
        """The whole conversation, without the lease. A copy this worker holds is checked and brought up to date
        in one step (the snapshot read only if it changed, beside the journal read from where the copy ends);
        without one, the snapshot and the journal are read at once."""
        cached = self._cache.get(owner, session_id)
        if cached is not None:
            blob, name = self._journal(owner, session_id), self.snapshot_name(owner, session_id)
            changed, tail = await both(self._if_changed(name, cached.etag), journal.tail(blob, cached))
            if changed is None and tail is not None:
                with contextlib.suppress(SnapshotBehind):
                    told = await journal.told(blob, tail)
                    extended = None if told is None else journal.extended(cached, told)
                    if extended is not None:
                        return self._remember(extended)
            if changed is not None:
                # compacted meanwhile: its journal, or if that moved on again, everything read again
                with contextlib.suppress(_JournalGone, SnapshotBehind):
                    return self._remember(await self._with_journal(await self._decoded(owner, session_id, *changed)))
        return self._remember(await self._load(owner, session_id))

    async def _load(self, owner: str, session_id: str) -> Snapshot:
        """The snapshot and the journal, read at once. A compaction racing the reads is retried."""
        for _attempt in range(3):
            try:
                return await self._joined(owner, session_id, *await self._read_both(owner, session_id))
            except (_JournalGone, SnapshotBehind):
                continue  # a compaction moved the session on between our reads: read again
        raise SessionConflict("the session was compacted repeatedly while being read")

    async def _read_both(self, owner: str, session_id: str) -> tuple[tuple[bytes, str | None], JournalRead | None]:
        return await both(
            self._get(self.snapshot_name(owner, session_id)),
            journal.read(self._journal(owner, session_id)),
        )

    async def _joined(
        self,
        owner: str,
        session_id: str,
        snapshot_read: tuple[bytes, str | None],
        read: JournalRead | None,
        *,
        current: bool = False,
    ) -> Snapshot:
        """The session from a snapshot and a journal read beside it (a snapshot in the named layout reads its
        own journal now). `current`: the lease's ETag proved the snapshot read is the latest."""
        snapshot = await self._decoded(owner, session_id, *snapshot_read)
        if snapshot.named_journal:
            return await self._with_journal(snapshot)
        return await journal.joined(self._journal(owner, session_id), snapshot, read, current=current)

    async def _get(self, name: str) -> tuple[bytes, str | None]:
        try:
            download = await self._blob(name).download_blob()
            return await download.readall(), download.properties.etag
        except ResourceNotFoundError:
            raise SessionNotFound(name.split("/")[1]) from None

    async def _if_changed(self, name: str, etag: str | None) -> tuple[bytes, str | None] | None:
        """The snapshot blob if its ETag is no longer `etag`, else None (a 304: nothing downloaded)."""
        try:
            download = await self._blob(name).download_blob(etag=etag, match_condition=MatchConditions.IfModified)
            return await download.readall(), download.properties.etag
        except ResourceNotFoundError:
            self._cache.drop(*name.split("/")[:2])
            raise SessionNotFound(name.split("/")[1]) from None
        except HttpResponseError as exc:
            if exc.status_code == 304:  # the SDK raises a 304 as ResourceModifiedError (or ResourceNotModifiedError)
                return None
            raise

    async def _decoded(self, owner: str, session_id: str, data: bytes, etag: str | None) -> Snapshot:
        snapshot = replace(await _off_loop(decode_snapshot, data), etag=etag)
        if snapshot.owner != owner or snapshot.session_id != session_id:
            raise SnapshotCorrupt("snapshot names a different owner or session than its path")
        return snapshot

    async def _with_journal(self, snapshot: Snapshot) -> Snapshot:
        """`snapshot` with its journal, read after it."""
        if not snapshot.named_journal:
            blob = self._journal(snapshot.owner, snapshot.session_id)
            return await journal.joined(blob, snapshot, await journal.read(blob), current=False)
        named = self._blob(self.named_journal_name(snapshot.owner, snapshot.session_id, snapshot.generation))
        try:
            data = await (await named.download_blob()).readall()
        except ResourceNotFoundError:
            if await self._unchanged(snapshot):
                return replace(snapshot, journal_bytes=0)  # a new session whose journal is not written yet
            raise _JournalGone from None  # a compaction replaced this generation between our two reads
        return apply_journal(snapshot, decode_journal(data), len(data))

    async def _unchanged(self, snapshot: Snapshot) -> bool:
        try:
            properties = await self._blob(self.snapshot_name(snapshot.owner, snapshot.session_id)).get_blob_properties()
        except ResourceNotFoundError:
            raise SessionNotFound(snapshot.session_id) from None
        return snapshot.etag is not None and properties.etag == snapshot.etag

    def forget(self, owner: str, session_id: str) -> None:
        """Drop this worker's copy of the session (the next load reads it whole, as another worker would)."""
        self._cache.drop(owner, session_id)

    def _remember(self, snapshot: Snapshot) -> Snapshot:
        if not snapshot.named_journal:  # a copy of the old layout would save nothing: its journal is read whole
            self._cache.put(snapshot)
        return snapshot

    async def load_held(self, lock: SessionLock, owner: str, session_id: str) -> Snapshot:
        """The session as the holder of its lease reads it (both blobs at once, after the lease was taken): a
        snapshot whose ETag is the lease's is the latest, so an empty journal's generation need not be asked."""
        read = await self._read_both(owner, session_id)
        current = read[0][1] is not None and read[0][1] == lock.lease.etag
        with contextlib.suppress(_JournalGone, SnapshotBehind):
            return self._remember(await self._joined(owner, session_id, *read, current=current))
        return self._remember(await self._load(owner, session_id))

    @contextlib.asynccontextmanager
    async def opened(self, owner: str, session_id: str) -> AsyncIterator[tuple[SessionLock, Snapshot]]:
        """The session under its lease, loaded: SessionBusy at once if another turn holds it.

        The reads go out with the lease request: the journal's new part when this worker has a copy (the
        lease's answer carries the snapshot's ETag, which says whether the copy is still good), else the
        snapshot and the journal. So a session takes one step before its model call, warm or cold."""
        cached = self._cache.get(owner, session_id)
        blob = self._journal(owner, session_id)
        reading: asyncio.Future[Any] = asyncio.ensure_future(
            journal.tail(blob, cached) if cached is not None else self._read_both(owner, session_id)
        )
        try:
            lock = await self._acquire(owner, session_id)
        except BaseException:
            reading.cancel()
            with contextlib.suppress(BaseException):
                await reading
            raise
        try:
            snapshot = await self._leased(owner, session_id, lock, cached, reading)
            yield lock, snapshot
        finally:
            await lock.release()

    async def _leased(
        self, owner: str, session_id: str, lock: SessionLock, cached: Snapshot | None, reading: asyncio.Future[Any]
    ) -> Snapshot:
        """The session as the lease found it: the copy brought up to date, or what was read beside the lease if
        the lease's ETag says the snapshot read is current, else read again."""
        etag = lock.lease.etag
        try:
            first = await reading
        except SessionNotFound:
            first = None
        if cached is not None and first is not None and etag is not None and etag == cached.etag:
            extended = journal.extended(cached, first)
            if extended is not None:
                return self._remember(extended)
        if cached is None and first is not None and etag is not None and first[0][1] == etag:
            with contextlib.suppress(_JournalGone, SnapshotBehind):
                return self._remember(await self._joined(owner, session_id, *first, current=True))
        self._cache.drop(owner, session_id)
        return self._remember(await self._load(owner, session_id))

    async def create(self, snapshot: Snapshot) -> Snapshot:
        """Write a brand-new session (its first entries); fails with SessionConflict if the id is taken."""
        saved = await self.create_snapshot(snapshot)
        created = await self.create_journal(saved)
        return saved if created is None else replace(saved, journal_etag=created, journal_generation=saved.generation)

    async def create_snapshot(self, snapshot: Snapshot) -> Snapshot:
        """The new session's snapshot, only if absent (SessionConflict if the id is taken): from here the session
        exists. Its journal may follow (`create_journal`, which a turn runs beside its metadata writes): until it
        does, a reader takes the journal as empty and the first append creates it."""
        data = await _off_loop(encode_snapshot, snapshot)
        try:
            written = await self._blob(self.snapshot_name(snapshot.owner, snapshot.session_id)).upload_blob(
                data, overwrite=False, tags=index_tags(snapshot), content_settings=_GZIP
            )
        except ResourceExistsError:
            raise SessionConflict(f"session {snapshot.session_id} already exists") from None
        saved = replace(snapshot, snapshot_turns=snapshot.turns, snapshot_bytes=len(data), etag=written["etag"])
        # A fork or an import may be made from another session as loaded: nothing of that one's journal carries over.
        return self._remember(
            replace(saved, journal_bytes=0, journal_etag=None, journal_generation=0, named_journal=False)
        )

    async def create_journal(self, snapshot: Snapshot) -> str | None:
        """The new session's (empty) journal, only if absent (never resets one that has members): its ETag, which
        the next append is conditioned on and this worker's copy learns; None if one was there."""
        try:
            created = await journal.start(
                self._journal(snapshot.owner, snapshot.session_id), snapshot.generation, None, snapshot.session_id
            )
        except SessionConflict:
            return None  # there already
        cached = self._cache.get(snapshot.owner, snapshot.session_id)
        if created is not None and cached is not None and cached.etag == snapshot.etag and cached.journal_etag is None:
            self._cache.put(replace(cached, journal_etag=created, journal_generation=snapshot.generation))
        return created

    @contextlib.asynccontextmanager
    async def locked(self, owner: str, session_id: str) -> AsyncIterator[SessionLock]:
        """Hold the session for one turn; SessionBusy at once if another turn holds it."""
        lock = await self._acquire(owner, session_id)
        try:
            yield lock
        finally:
            await lock.release()

    async def _acquire(self, owner: str, session_id: str) -> SessionLock:
        try:
            return await lease.acquire(self._blob(self.snapshot_name(owner, session_id)), session_id)
        except SessionNotFound:
            self._cache.drop(owner, session_id)
            raise

    def _should_compact(self, snapshot: Snapshot, member_bytes: int) -> bool:
        if snapshot.named_journal:
            return True  # a session of the layout before schema 4: its next save rewrites it in this one
        if snapshot.journal_turns + 1 < self._compact_every:
            return False
        return (snapshot.journal_bytes + member_bytes) * 2 >= snapshot.snapshot_bytes

    async def append(self, lock: SessionLock, before: Snapshot, after: Snapshot) -> Snapshot:
        """Save the one new entry of `after` (which is `before` plus a turn), under the session's lease."""
        if after.turns != before.turns + 1:
            raise ValueError("append saves exactly one new turn")
        entry = after.entries[-1]
        made = after.summaries[len(before.summaries) :]  # a summary of older turns the turn made, if any
        if len(made) > 1:
            raise ValueError("a turn makes at most one summary")
        member = encode_journal_member(entry, after.updated_at, after.agent_state, made[0] if made else None)
        session_id = after.session_id
        try:
            if self._should_compact(before, len(member)):
                return self._remember(await self._compact(lock, after))
            saved = self._remember(await self._append_member(lock, before, after, member))
        except BaseException:
            self._cache.drop(after.owner, session_id)  # whatever happened, the next turn reads the session again
            raise
        if index_tags(before)["lastActiveDay"] != index_tags(saved)["lastActiveDay"]:
            try:
                await self.retag(lock, saved)
            except AzureError:
                # The turn is saved; a stale day tag only makes retention look at the session early, where it
                # re-checks the exact time and rewrites the tag.
                logger.warning("turn saved but the index tags of session %s are stale", session_id)
        return saved

    async def append_feedback(self, lock: SessionLock, before: Snapshot, turn: int, feedback: Feedback) -> Snapshot:
        """Save feedback on one turn (replacing any earlier), under the session's lease: one journal member."""
        after = before.with_feedback(turn, feedback)
        try:
            if before.named_journal:
                return self._remember(await self._compact(lock, after))
            member = encode_feedback_member(turn, feedback)
            return self._remember(await self._append_member(lock, before, after, member))
        except BaseException:
            self._cache.drop(after.owner, after.session_id)
            raise

    async def _append_member(self, lock: SessionLock, before: Snapshot, after: Snapshot, member: bytes) -> Snapshot:
        """Append one member to the journal as `before` read it: the same ETag and append position (a second line
        of defence behind the lease: a writer whose read went stale is refused). A journal not written yet, or
        left behind by a compaction, is started for this generation first."""
        blob = self._journal(after.owner, after.session_id)
        if before.journal_generation == UNTOLD:
            before = await journal.asked(blob, before, lock.lease)
        etag, position = before.journal_etag, before.journal_bytes
        if before.journal_generation != before.generation:
            etag, position = await journal.begin(blob, before, lock.lease), 0
        etag = await journal.append(blob, member, position, etag, after.session_id)
        return replace(
            after, journal_bytes=position + len(member), journal_etag=etag, journal_generation=before.generation
        )

    async def _compact(self, lock: SessionLock, snapshot: Snapshot) -> Snapshot:
        """Rewrite the snapshot with everything under the next generation, then restart the journal for it.

        Never destroys what another writer saved: the journal is first fenced (`journal.fence`: refused if it is
        not as this turn read it), the snapshot is replaced only under our lease and only if unchanged since it
        was read, and the journal is restarted only if it is still the fenced one. Until it is (or if that
        fails), the journal left behind is of an older generation, which readers pass over (its turns are in the
        snapshot) and the next append restarts.
        """
        owner, session_id = snapshot.owner, snapshot.session_id
        if not snapshot.named_journal:
            snapshot = await journal.fence(self._journal(owner, session_id), snapshot, lock.lease)
        compacted = replace(snapshot, generation=snapshot.generation + 1, named_journal=False)
        snapshot_blob = self._blob(self.snapshot_name(owner, session_id))
        data = await _off_loop(encode_snapshot, compacted)
        conditions: dict[str, Any] = {}
        if snapshot.etag is not None:
            conditions = {"etag": snapshot.etag, "match_condition": MatchConditions.IfNotModified}
        upload = snapshot_blob.upload_blob(
            data, overwrite=True, lease=lock.lease, tags=index_tags(compacted), content_settings=_GZIP, **conditions
        )
        try:
            etag = (await upload)["etag"]
        except HttpResponseError as exc:
            if exc.status_code not in (409, 412):
                raise
            landed = await journal.holds(snapshot_blob, data, whole=True)  # changed since read, unless resent
            if landed is None:
                raise SessionConflict(f"session {session_id} changed while the turn ran") from None
            etag = landed
        logger.info("compacted session %s: %d turns, %d bytes", session_id, compacted.turns, len(data))
        compacted = replace(
            compacted, snapshot_turns=compacted.turns, snapshot_bytes=len(data), journal_bytes=0, etag=etag
        )
        restart = self._restart_journal(snapshot, compacted)
        if not snapshot.named_journal:
            return await restart
        old = self._blob(self.named_journal_name(owner, session_id, snapshot.generation))
        restarted, _ = await both(restart, journal.drop_named(old))
        return restarted

    async def _restart_journal(self, before: Snapshot, compacted: Snapshot) -> Snapshot:
        """The compacted session with its journal restarted; as it is if that fails (the next append does it)."""
        seen = None if before.named_journal else before.journal_etag
        try:
            blob = self._journal(compacted.owner, compacted.session_id)
            etag = await journal.start(blob, compacted.generation, seen, compacted.session_id)
        except (SessionConflict, AzureError):
            logger.warning("session %s compacted, its journal not restarted yet", compacted.session_id)
            left = 0 if seen is None else before.journal_generation
            return replace(compacted, journal_etag=seen, journal_generation=left)
        return replace(compacted, journal_etag=etag, journal_generation=compacted.generation)

    async def delete(self, owner: str, session_id: str, lock: SessionLock | None = None) -> bool:
        """Remove every blob of the session; True if anything was there. SessionBusy while a turn runs.

        With `lock` (a lease this caller holds, as retention and erasure take it to re-check the session
        first) the snapshot is deleted under that lease, so no turn can slip in between check and delete.
        """
        prefix = f"{validate_id(owner, 'owner')}/{validate_id(session_id)}/"
        self._cache.drop(owner, session_id)
        names = [blob.name async for blob in self._container.list_blobs(name_starts_with=prefix)]
        snapshot = prefix + "snapshot.json.gz"
        # Journals first, the snapshot (the session's existence) last, so a crash leaves a readable remnant
        # or nothing; a repeat finishes the job.
        for name in sorted(names, key=lambda item: item == snapshot):
            lease = lock.lease if lock is not None and name == snapshot else None
            try:
                await self._blob(name).delete_blob(lease=lease)
            except ResourceNotFoundError:
                continue
            except HttpResponseError as exc:
                if exc.status_code in (409, 412):  # leased by a running turn
                    raise SessionBusy(session_id) from None
                raise
        return bool(names)

    async def retag(self, lock: SessionLock, snapshot: Snapshot) -> None:
        """Rewrite the index tags from the snapshot (repairs a tag left stale by a failed tag write)."""
        blob = self._blob(self.snapshot_name(snapshot.owner, snapshot.session_id))
        await blob.set_blob_tags(index_tags(snapshot), lease=lock.lease)

    async def owner_sessions(self, owner: str) -> AsyncIterator[str]:
        """Session ids with any blob under `owner/` (one prefix per session, not every blob): erasure's check
        for sessions whose tags are missing, e.g. a half-written one."""
        async for item in self._container.walk_blobs(name_starts_with=f"{validate_id(owner, 'owner')}/"):
            parts = item.name.split("/")
            if len(parts) >= 2 and parts[1]:
                yield parts[1]

    async def find_by_tags(self, expression: str) -> AsyncIterator[tuple[str, str]]:
        """(owner, session id) of every snapshot matching a blob index tag expression."""
        async for item in self._container.find_blobs_by_tags(expression):
            parts = item.name.split("/")
            if len(parts) == 3 and parts[2] == "snapshot.json.gz":
                yield parts[0], parts[1]
