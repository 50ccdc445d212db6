"""The journal's fixed name and its generation (envelope schema 4): read beside the snapshot, and safe when the two
are read at different moments, when a compaction stops halfway, when a writer's read went stale, and for sessions
written in the layout before (one journal name per generation)."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from shared.domain.clock import utc_iso
from shared.domain.errors import SessionConflict
from shared.storage.codec import decode_journal
from shared.storage.snapshots import SnapshotStore
from shared.storage.transport import SharedSession, counting
from tests.test_snapshots import T0, grow, make_entry
from tools.emulators import Azurite


@pytest.fixture
async def counted(azurite: Azurite, container: ContainerClient) -> AsyncIterator[ContainerClient]:
    """The test's container through the app's transport, which counts requests (`counting()`)."""
    shared = SharedSession()
    service = BlobServiceClient.from_connection_string(azurite.connection_string, transport=shared.transport("blob"))
    yield service.get_container_client(container.container_name)
    await service.close()
    await shared.close()


async def add_turn(store: SnapshotStore, owner: str, session_id: str, turn: int, text: str = "") -> None:
    when = T0 + timedelta(minutes=turn)
    async with store.opened(owner, session_id) as (lock, before):
        await store.append(lock, before, before.with_entry(make_entry(turn, when, text), utc_iso(when), {}))


async def journal_of(container: ContainerClient, owner: str, session_id: str) -> tuple[bytes, dict[str, str]]:
    blob = container.get_blob_client(f"{owner}/{session_id}/journal.jsonl.gz")
    download = await blob.download_blob()
    return bytes(await download.readall()), dict(download.properties.metadata)


async def put_journal(
    container: ContainerClient, name: str, data: bytes, metadata: dict[str, str] | None = None
) -> None:
    blob = container.get_blob_client(name)
    await blob.create_append_blob(metadata=metadata)
    if data:
        await blob.append_block(data)


def turns_of(snapshot: object) -> list[int]:
    return [entry.turn for entry in snapshot.entries]  # type: ignore[attr-defined]


async def test_a_cold_load_reads_both_blobs_at_once_before_and_after_compactions(
    container: ContainerClient, counted: ContainerClient
) -> None:
    store = SnapshotStore(container, compact_every=3)
    await grow(store, "alice", "s", 2)
    for turns in (2, 12):  # uncompacted, then several generations on
        while (await store.load("alice", "s")).turns < turns:
            await add_turn(store, "alice", "s", (await store.load("alice", "s")).turns + 1)
        cold = SnapshotStore(counted, compact_every=3)
        with counting() as trips:
            loaded = await cold.load("alice", "s")
        assert trips.steps() == [["blob:get:journal", "blob:get:snapshot"]]
        assert turns_of(loaded) == list(range(1, turns + 1))
    assert loaded.generation > 1


async def test_a_compaction_stopped_before_restarting_the_journal_loses_and_repeats_nothing(
    container: ContainerClient,
) -> None:
    """Between the snapshot write and the journal restart the journal still holds the turns just folded into
    the snapshot, under the older generation: readers pass over it, and the next append restarts it."""
    store = SnapshotStore(container, compact_every=4)
    await grow(store, "alice", "s", 6)
    before = await store.load("alice", "s")
    left, metadata = await journal_of(container, "alice", "s")
    assert before.journal_turns and metadata == {"generation": str(before.generation)}
    await add_turn(SnapshotStore(container, compact_every=1), "alice", "s", 7)  # compacts
    compacted = await SnapshotStore(container).load("alice", "s")
    assert compacted.generation == before.generation + 1 and compacted.journal_turns == 0
    # Put back the journal as the crash would have left it.
    await container.delete_blob("alice/s/journal.jsonl.gz")
    await put_journal(container, "alice/s/journal.jsonl.gz", left, metadata)

    fresh = SnapshotStore(container, compact_every=100)
    loaded = await fresh.load("alice", "s")
    assert turns_of(loaded) == list(range(1, 8)) and loaded.journal_turns == 0
    await add_turn(SnapshotStore(container, compact_every=100), "alice", "s", 8)  # a cold worker: restarts it
    data, metadata = await journal_of(container, "alice", "s")
    assert metadata == {"generation": str(compacted.generation)}
    assert [member["turn"] for member in decode_journal(data)] == [8]
    assert [member["turn"] for member in decode_journal(left)] != [8]
    for reader in (fresh, SnapshotStore(container)):  # a warm copy (the stale journal's ETag) and a cold one
        assert turns_of(await reader.load("alice", "s")) == list(range(1, 9))
    await add_turn(fresh, "alice", "s", 9)  # the warm copy's journal was restarted by another worker
    assert turns_of(await SnapshotStore(container).load("alice", "s")) == list(range(1, 10))


async def test_a_snapshot_read_before_a_compaction_beside_a_journal_read_after_it_is_read_again(
    container: ContainerClient,
) -> None:
    store = SnapshotStore(container, compact_every=2)
    await grow(store, "alice", "s", 3)
    name = store.snapshot_name("alice", "s")
    old = await store._get(name)
    await add_turn(store, "alice", "s", 4)
    await add_turn(store, "alice", "s", 5)
    assert (await store.load("alice", "s")).generation > 1

    reader = SnapshotStore(container)
    reads = {"count": 0}
    real_get = reader._get

    async def stale_first(blob_name: str) -> tuple[bytes, str | None]:
        reads["count"] += 1
        return old if reads["count"] == 1 else await real_get(blob_name)

    reader._get = stale_first  # type: ignore[method-assign]
    loaded = await reader.load("alice", "s")
    assert reads["count"] == 2
    assert turns_of(loaded) == [1, 2, 3, 4, 5]


async def test_a_writer_whose_read_predates_a_compaction_cannot_append_to_the_restarted_journal(
    container: ContainerClient,
) -> None:
    """Both journals are empty, so the append position alone would let the stale writer in: its turn would
    land in a journal the others had moved past. The journal's ETag refuses it."""
    store = SnapshotStore(container, compact_every=1)
    await grow(store, "alice", "s", 2)  # turn 2 compacted: an empty journal
    stale = await SnapshotStore(container).load("alice", "s")
    assert stale.journal_bytes == 0 and stale.journal_etag is not None
    await add_turn(store, "alice", "s", 3)  # compacts again: the journal restarted, empty again
    moved = await SnapshotStore(container).load("alice", "s")
    assert moved.generation == stale.generation + 1 and moved.journal_bytes == 0
    writer = SnapshotStore(container, compact_every=100)  # appends rather than compacts
    async with writer.locked("alice", "s") as lock:  # the lease is no help: it lapsed and was taken again
        with pytest.raises(SessionConflict):
            await writer.append(lock, stale, stale.with_entry(make_entry(3, text="stale"), utc_iso(T0), {}))
    loaded = await SnapshotStore(container).load("alice", "s")
    assert turns_of(loaded) == [1, 2, 3]
    assert all("stale" not in message["content"] for message in loaded.openai_messages())


async def to_schema_3(container: ContainerClient, owner: str, session_id: str, generation: int) -> None:
    """Rewrite a session as a build before envelope schema 4 left it: the journal named by its generation."""
    prefix = f"{owner}/{session_id}/"
    snapshot = container.get_blob_client(prefix + "snapshot.json.gz")
    document = json.loads(gzip.decompress(await (await snapshot.download_blob()).readall()))
    document["schema_version"] = 3
    await snapshot.upload_blob(gzip.compress(json.dumps(document).encode()), overwrite=True)
    data, _ = await journal_of(container, owner, session_id)
    members = [json.loads(line) for line in gzip.decompress(data).splitlines()] if data else []
    old = b"".join(gzip.compress(json.dumps({**member, "schema_version": 3}).encode() + b"\n") for member in members)
    await container.delete_blob(prefix + "journal.jsonl.gz")
    await put_journal(container, prefix + f"journal-{generation:06d}.jsonl.gz", old)


@pytest.mark.parametrize("feedback_first", [False, True])
async def test_a_session_in_the_layout_before_schema_4_is_read_and_its_next_save_rewrites_it(
    container: ContainerClient, counted: ContainerClient, feedback_first: bool
) -> None:
    from shared.domain.feedback import RATINGS, Feedback

    store = SnapshotStore(container, compact_every=3)
    await grow(store, "alice", "old", 5)
    generation = (await store.load("alice", "old")).generation
    await to_schema_3(container, "alice", "old", generation)

    reader = SnapshotStore(counted)
    with counting() as trips:
        loaded = await reader.load("alice", "old")
    assert loaded.named_journal and turns_of(loaded) == [1, 2, 3, 4, 5] and loaded.journal_turns > 0
    assert trips.steps()[1:] == [["blob:get:journal"]]  # its journal, named by the snapshot, read after it

    writer = SnapshotStore(container, compact_every=100)
    if feedback_first:
        async with writer.opened("alice", "old") as (lock, before):
            await writer.append_feedback(lock, before, 2, Feedback(rating=RATINGS[0], at=utc_iso(T0)))
    await add_turn(writer, "alice", "old", 6)
    names = sorted([blob.name async for blob in container.list_blobs(name_starts_with="alice/old/")])
    assert names == ["alice/old/journal.jsonl.gz", "alice/old/snapshot.json.gz"]
    again = await SnapshotStore(container).load("alice", "old")
    assert not again.named_journal and turns_of(again) == [1, 2, 3, 4, 5, 6]
    assert (2 in again.feedback) is feedback_first
