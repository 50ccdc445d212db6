"""The journal's fixed name and its generation (envelope schema 4): read beside the snapshot, and safe when the two
are read at different moments, when a compaction stops halfway, when a writer's read went stale, and for sessions
written in the layout before (one journal name per generation)."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from shared.domain.clock import utc_iso
from shared.domain.errors import SessionConflict
from shared.domain.sessions import new_snapshot
from shared.storage import journal as journal_module
from shared.storage.codec import decode_journal
from shared.storage.journal import UNTOLD, JournalRead
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
    members = decode_journal(data)
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


# Writers whose view went stale: a lease that lapsed while the model ran, or a journal read served before the
# previous turn's append. Either may make its model call; none may land a turn where it hides or replaces another.


def user_texts(snapshot: object) -> list[str]:
    return [m["content"] for m in snapshot.openai_messages() if m["role"] == "user"]  # type: ignore[attr-defined]


async def lapse(lock: Any) -> None:
    """The lease lapses while the model runs: given back here, so others can take it; the lapsed holder still
    knows its id, as it would."""
    held = lock.lease.id
    await lock.release()
    lock.lease.id = held


@pytest.fixture
def azure_416(monkeypatch: pytest.MonkeyPatch) -> None:
    """As Azure answers: a ranged read from 0 of an empty blob is refused (416: no ETag, no metadata), where
    Azurite answers an empty 200. The journal then reads as UNTOLD, and its generation is asked for when needed."""
    real = journal_module.read

    async def read(blob: object, offset: int = 0) -> JournalRead | None:
        found = await real(blob, offset)  # type: ignore[arg-type]
        if found is not None and offset == 0 and not found.data:
            return JournalRead(b"", None, UNTOLD)
        return found

    monkeypatch.setattr(journal_module, "read", read)


async def test_with_azures_answer_to_an_empty_journal_turns_and_loads_go_on(
    container: ContainerClient, azure_416: None
) -> None:
    await grow(SnapshotStore(container, compact_every=2), "alice", "s", 1)  # a new session: its journal empty
    loaded = await SnapshotStore(container).load("alice", "s")  # without the lease: the generation is asked
    assert loaded.journal_generation == loaded.generation and loaded.journal_etag is not None
    for turn in range(2, 7):  # cold workers each time, through compactions (every 2): empty journals again
        await add_turn(SnapshotStore(container, compact_every=2), "alice", "s", turn)
    assert turns_of(await SnapshotStore(container).load("alice", "s")) == list(range(1, 7))


async def test_a_lapsed_writer_that_read_an_empty_journal_cannot_replace_the_next_generations(
    container: ContainerClient, azure_416: None
) -> None:
    await grow(SnapshotStore(container, compact_every=1), "alice", "s", 2)  # compacted: its journal empty
    writer = SnapshotStore(container, compact_every=100)
    async with writer.opened("alice", "s") as (lock, before):
        assert before.journal_generation == UNTOLD
        await lapse(lock)
        await add_turn(SnapshotStore(container, compact_every=1), "alice", "s", 3)  # compacts: generation + 1
        await add_turn(SnapshotStore(container, compact_every=100), "alice", "s", 4)  # appended to it
        with pytest.raises(SessionConflict):
            await writer.append(lock, before, before.with_entry(make_entry(3, text="stale"), utc_iso(T0), {}))
    assert turns_of(await SnapshotStore(container).load("alice", "s")) == [1, 2, 3, 4]


async def test_a_journal_read_served_before_the_previous_turns_append_cannot_fold_that_turn_away(
    container: ContainerClient,
) -> None:
    """The journal goes out beside the lease request: if it is served before the previous turn's append and the
    lease after that turn's release, this turn's view lacks that turn. A compaction from that view is refused
    (the journal is fenced first), so the previous turn is not lost."""
    await grow(SnapshotStore(container, compact_every=100), "alice", "s", 3)
    late = SnapshotStore(container, compact_every=1)  # its turn compacts
    early = await late._read_both("alice", "s")
    await add_turn(SnapshotStore(container, compact_every=100), "alice", "s", 4, "the previous turn")
    real = late._read_both

    async def served_early(owner: str, session_id: str) -> Any:
        late._read_both = real  # type: ignore[method-assign]
        return early

    late._read_both = served_early  # type: ignore[method-assign]
    with pytest.raises(SessionConflict):
        await add_turn(late, "alice", "s", 4, "the late turn")
    loaded = await SnapshotStore(container).load("alice", "s")
    assert turns_of(loaded) == [1, 2, 3, 4] and user_texts(loaded)[3].startswith("the previous turn")


@pytest.mark.parametrize("crash", [False, True])
async def test_a_lapsed_writer_cannot_append_to_a_journal_a_compaction_is_folding_in(
    container: ContainerClient, crash: bool
) -> None:
    """Between a compaction's snapshot write and its journal restart, the old journal still takes appends from
    anyone holding its ETag; the fence before the snapshot write moved it on."""
    await grow(SnapshotStore(container, compact_every=100), "alice", "s", 3)
    acknowledged, loaded = await lapsed_append_while_compacting(
        container, 4, "compacting", appends_every=100, crash=crash
    )
    assert "lapsed" not in acknowledged
    assert turns_of(loaded) == [1, 2, 3, 4] and user_texts(loaded)[3].startswith("compacting")


async def test_an_old_journal_that_cannot_be_deleted_after_its_session_is_rewritten_does_not_fail_the_turn(
    container: ContainerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.core.exceptions import ServiceRequestError
    from azure.storage.blob.aio import BlobClient

    store = SnapshotStore(container, compact_every=100)
    await grow(store, "alice", "old", 3)
    await to_schema_3(container, "alice", "old", 1)
    real_delete = BlobClient.delete_blob

    async def unreachable(self: BlobClient, *args: Any, **kwargs: Any) -> None:
        if self.blob_name.endswith("journal-000001.jsonl.gz"):
            raise ServiceRequestError("storage unreachable")
        await real_delete(self, *args, **kwargs)

    monkeypatch.setattr(BlobClient, "delete_blob", unreachable)
    await add_turn(SnapshotStore(container, compact_every=100), "alice", "old", 4)  # saved: no error
    again = await SnapshotStore(container).load("alice", "old")
    assert not again.named_journal and turns_of(again) == [1, 2, 3, 4]


BIG = "compacting " + os.urandom(6000).hex()  # incompressible: a turn this large compacts with SNAPSHOT_COMPACT_EVERY=1


async def big_session(container: ContainerClient, *, journal: bool) -> None:
    """A one-turn session whose snapshot is large (incompressible text) and whose journal is empty (or absent, as
    when the new session's journal write failed): with SNAPSHOT_COMPACT_EVERY=1 (the least allowed) the next
    large turn compacts from an empty journal, and a small one appends."""
    store = SnapshotStore(container, compact_every=1)
    first = new_snapshot("s", "alice", T0).with_entry(make_entry(1, T0, os.urandom(6000).hex()), utc_iso(T0), {})
    await store.create(first)
    if not journal:
        await container.delete_blob("alice/s/journal.jsonl.gz")


async def lapsed_append_while_compacting(
    container: ContainerClient, turn: int, compacting: str, *, appends_every: int, crash: bool = False
) -> tuple[list[str], Any]:
    """A writer whose lease lapsed saves turn `turn` (a small one: it appends, with `appends_every` as its
    SNAPSHOT_COMPACT_EVERY) after another worker's turn `turn` fenced the journal (touching, or creating, it) and
    wrote the snapshot, before that worker restarts the journal, or instead (`crash`). Which were acknowledged,
    and the session as a fresh reader finds it."""
    lapsed = SnapshotStore(container, compact_every=appends_every)
    acknowledged: list[str] = []
    async with lapsed.opened("alice", "s") as (lock, before):
        await lapse(lock)
        compactor = SnapshotStore(container, compact_every=1)
        restart = compactor._restart_journal

        async def meanwhile(prior: Any, compacted: Any) -> Any:
            with contextlib.suppress(SessionConflict):
                after = before.with_entry(make_entry(turn, T0, "lapsed"), utc_iso(T0), {})
                await lapsed.append(lock, before, after)
                acknowledged.append("lapsed")
            if crash:
                raise RuntimeError("the compacting worker stops here")
            return await restart(prior, compacted)

        compactor._restart_journal = meanwhile  # type: ignore[method-assign]
        with contextlib.suppress(RuntimeError):
            await add_turn(compactor, "alice", "s", turn, compacting)
            acknowledged.append("compacting")
    return acknowledged, await SnapshotStore(container).load("alice", "s")


async def test_a_lapsed_writer_cannot_take_up_a_journal_a_compaction_created_as_its_fence(
    container: ContainerClient,
) -> None:
    await big_session(container, journal=False)
    acknowledged, loaded = await lapsed_append_while_compacting(container, 2, BIG, appends_every=1)
    assert acknowledged == ["compacting"] and turns_of(loaded) == [1, 2]
    assert user_texts(loaded)[1].startswith("compacting")


async def test_a_lapsed_writer_cannot_take_up_an_empty_journal_a_compaction_fenced(
    container: ContainerClient, azure_416: None
) -> None:
    await big_session(container, journal=True)
    acknowledged, loaded = await lapsed_append_while_compacting(container, 2, BIG, appends_every=1)
    assert acknowledged == ["compacting"] and turns_of(loaded) == [1, 2]


@pytest.mark.parametrize("journal", [True, False])
async def test_a_fence_whose_compaction_stopped_there_does_not_refuse_the_next_turns(
    container: ContainerClient, azure_416: None, journal: bool
) -> None:
    await big_session(container, journal=journal)
    worker = SnapshotStore(container)
    async with worker.opened("alice", "s") as (lock, seen):
        await journal_module.fence(worker._blob(worker.journal_name("alice", "s")), seen, lock.lease)  # then stops
    for turn in (2, 3):
        await add_turn(SnapshotStore(container, compact_every=1), "alice", "s", turn)
    assert turns_of(await SnapshotStore(container).load("alice", "s")) == [1, 2, 3]


@contextlib.contextmanager
def answers_lost(monkeypatch: pytest.MonkeyPatch, method: str) -> Iterator[None]:
    """Within the block, every `BlobClient.<method>` lands but its answer is lost, and the SDK's retry sends it
    again (which the conditions it met the first time may refuse)."""
    from azure.storage.blob.aio import BlobClient

    real = getattr(BlobClient, method)

    async def resent(self: BlobClient, *args: Any, **kwargs: Any) -> Any:
        await real(self, *args, **kwargs)
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(BlobClient, method, resent)
    yield
    monkeypatch.setattr(BlobClient, method, real)


@pytest.mark.parametrize("compacts", [False, True])
async def test_a_save_the_sdk_sends_again_after_it_landed_is_saved_once_not_refused(
    container: ContainerClient, monkeypatch: pytest.MonkeyPatch, compacts: bool
) -> None:
    """The answer to an append (or a compaction's snapshot upload) is lost and the SDK's retry sends it again: the
    conditions it met the first time refuse it. The turn was saved, so it is reported saved, and stored once."""

    await grow(SnapshotStore(container, compact_every=100), "alice", "s", 3)
    with answers_lost(monkeypatch, "upload_blob" if compacts else "append_block"):
        await add_turn(SnapshotStore(container, compact_every=1 if compacts else 100), "alice", "s", 4, "sent twice")
    loaded = await SnapshotStore(container).load("alice", "s")
    assert turns_of(loaded) == [1, 2, 3, 4] and user_texts(loaded)[3].startswith("sent twice")
    await add_turn(SnapshotStore(container, compact_every=100), "alice", "s", 5)  # and the session goes on
    assert turns_of(await SnapshotStore(container).load("alice", "s")) == [1, 2, 3, 4, 5]


async def test_a_turn_on_the_snapshot_create_returned_is_saved(container: ContainerClient) -> None:
    """What the OpenAI endpoint does for a fork or an unknown transcript (completions._run_on_new): create the
    session, then run a turn on the snapshot `create` returned, under its lease."""
    store = SnapshotStore(container, compact_every=100)
    saved = await store.create(new_snapshot("n", "alice", T0).with_entry(make_entry(1, T0), utc_iso(T0), {}))
    async with store.locked("alice", "n") as lock:
        await store.append(lock, saved, saved.with_entry(make_entry(2, T0), utc_iso(T0), {}))
    assert turns_of(await SnapshotStore(container).load("alice", "n")) == [1, 2]


async def test_a_new_sessions_second_turn_on_a_worker_that_read_it_before_its_journal_was_written(
    container: ContainerClient, azure_416: None
) -> None:
    first = SnapshotStore(container, compact_every=100)
    saved = await first.create_snapshot(new_snapshot("n", "alice", T0).with_entry(make_entry(1, T0), utc_iso(T0), {}))
    other = SnapshotStore(container, compact_every=100)
    await other.load("alice", "n")  # e.g. the client's GET while turn 1 writes its metadata and journal
    await first.create_journal(saved)
    await add_turn(other, "alice", "n", 2)  # the user's next turn lands on the other worker
    assert turns_of(await SnapshotStore(container).load("alice", "n")) == [1, 2]


async def test_a_journal_restart_the_sdk_sent_again_does_not_refuse_the_next_turn(
    container: ContainerClient, monkeypatch: pytest.MonkeyPatch, azure_416: None
) -> None:

    store = SnapshotStore(container, compact_every=1)
    await big_session(container, journal=True)
    with answers_lost(monkeypatch, "create_append_blob"):
        await add_turn(store, "alice", "s", 2, BIG)
    await add_turn(store, "alice", "s", 3)  # the same worker, its copy's journal ETag the one replaced
    assert turns_of(await SnapshotStore(container).load("alice", "s")) == [1, 2, 3]


async def test_a_workers_copy_of_an_old_layout_session_costs_no_more_than_no_copy(
    container: ContainerClient, counted: ContainerClient
) -> None:
    await grow(SnapshotStore(container), "alice", "old", 3)
    await to_schema_3(container, "alice", "old", 1)
    worker = SnapshotStore(counted)
    with counting() as cold:
        await worker.load("alice", "old")
    with counting() as again:
        await worker.load("alice", "old")  # a GET of the session again, an export, a fork
    assert again.requests <= cold.requests and len(again.steps()) <= len(cold.steps())


async def test_a_session_read_under_its_own_lease_takes_an_empty_journal_as_the_snapshots(
    container: ContainerClient, counted: ContainerClient
) -> None:
    """Retention reads a session under its lease; the lease's ETag says the snapshot is the latest, so an empty
    journal (a one-turn session: the commonest to expire) is not asked about as a lease-less read must."""
    await grow(SnapshotStore(container), "alice", "s", 1)
    worker = SnapshotStore(counted)
    async with worker.locked("alice", "s") as lock:
        with counting() as held:
            loaded = await worker.load_held(lock, "alice", "s")
    with counting() as unheld:
        await SnapshotStore(counted).load("alice", "s")
    assert turns_of(loaded) == [1]
    assert held.steps() == [["blob:get:journal", "blob:get:snapshot"]]
    assert unheld.steps() == [["blob:get:journal", "blob:get:snapshot"], ["blob:head:journal"]]
