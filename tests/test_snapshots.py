"""The snapshot store on Azurite: envelope, journal, compaction, conditional writes, leases, index tags."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob.aio import ContainerClient

from shared.domain.clock import utc_iso
from shared.domain.errors import SessionBusy, SessionConflict, SessionNotFound, SnapshotCorrupt
from shared.domain.records import Entry, TurnRecord
from shared.domain.sessions import new_snapshot
from shared.storage.codec import SCHEMA_VERSION, decode_journal, encode_journal_member
from shared.storage.snapshots import SnapshotStore

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


def make_entry(turn: int, when: datetime = T0, text: str = "") -> Entry:
    user = text or f"question {turn} " + "lorem ipsum dolor sit amet " * 10
    reply = f"answer {turn} " + "consectetur adipiscing elit " * 40
    record = TurnRecord(
        turn=turn, backend="local", model="llama3.2", complexity=0.1, reason="test", router_version="t",
        route_requested="auto", switched_from=None, fallback_chain=(), latency_ms=10.0, turn_ms=12.0,
        input_tokens=10, output_tokens=20, cost=0.0, started_at=utc_iso(when), completed_at=utc_iso(when),
        user_chars=len(user), reply_chars=len(reply),
    )  # fmt: skip
    af = (
        {"type": "message", "role": "user", "contents": [{"type": "text", "text": user}]},
        {"type": "message", "role": "assistant", "contents": [{"type": "text", "text": reply}]},
    )
    return Entry(record, af, ({"role": "user", "content": user}, {"role": "assistant", "content": reply}))


async def grow(store: SnapshotStore, owner: str, session_id: str, turns: int, start: datetime = T0) -> None:
    """Create a session and add turns one at a time, exactly as conversation turns do."""
    snapshot = new_snapshot(session_id, owner, start)
    first = snapshot.with_entry(make_entry(1, start), utc_iso(start), {})
    await store.create(first)
    for turn in range(2, turns + 1):
        when = start + timedelta(minutes=turn)
        async with store.locked(owner, session_id) as lock:
            before = await store.load(owner, session_id)
            after = before.with_entry(make_entry(turn, when), utc_iso(when), {})
            await store.append(lock, before, after)


async def test_a_session_saved_turn_by_turn_loads_back_whole_and_in_order(container: ContainerClient) -> None:
    store = SnapshotStore(container, compact_every=4)
    await grow(store, "alice", "s1", 23)
    loaded = await store.load("alice", "s1")
    assert [entry.turn for entry in loaded.entries] == list(range(1, 24))
    assert loaded.openai_messages()[0]["content"].startswith("question 1 ")
    assert loaded.openai_messages()[-1]["content"].startswith("answer 23 ")
    assert len(loaded.af_messages()) == 46


async def test_compaction_rewrites_the_snapshot_and_drops_the_old_journal(container: ContainerClient) -> None:
    store = SnapshotStore(container, compact_every=4)
    await grow(store, "alice", "s1", 30)
    names = sorted([blob.name async for blob in container.list_blobs(name_starts_with="alice/s1/")])
    loaded = await store.load("alice", "s1")
    assert loaded.generation > 1, "30 turns with compact_every=4 must have compacted at least once"
    assert names == ["alice/s1/journal.jsonl.gz", "alice/s1/snapshot.json.gz"]
    journal = await container.get_blob_client("alice/s1/journal.jsonl.gz").get_blob_properties()
    assert journal.metadata == {"generation": str(loaded.generation)}  # restarted for the snapshot's generation
    assert loaded.journal_turns < loaded.turns


async def test_saving_a_turn_writes_a_bounded_number_of_bytes_however_long_the_conversation(
    container: ContainerClient,
) -> None:
    """The journal grows by one member per turn; the whole snapshot is not rewritten on every turn."""
    store = SnapshotStore(container, compact_every=16)
    await grow(store, "alice", "long", 120)
    before = await store.load("alice", "long")
    async with store.locked("alice", "long") as lock:
        after = before.with_entry(make_entry(121), utc_iso(T0 + timedelta(hours=5)), {})
        saved = await store.append(lock, before, after)
    if saved.generation == before.generation:  # an ordinary turn: one journal member, not the snapshot
        assert 0 < saved.journal_bytes - before.journal_bytes < before.snapshot_bytes / 4


async def test_envelope_is_versioned_and_keeps_both_formats_and_the_turn_records(container: ContainerClient) -> None:
    store = SnapshotStore(container)
    await grow(store, "alice", "s2", 1)
    raw = await (await container.get_blob_client("alice/s2/snapshot.json.gz").download_blob()).readall()
    document = json.loads(gzip.decompress(raw))
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["session_id"] == "s2" and document["owner"] == "alice"
    assert document["agent_framework_version"]
    assert document["agent_session"]["type"] == "session"
    assert document["agent_session"]["service_session_id"] is None
    entry = document["entries"][0]
    assert set(entry) >= {"openai", "af", "record"}
    assert entry["record"]["backend"] == "local"


async def test_a_new_session_is_created_only_if_absent(container: ContainerClient) -> None:
    store = SnapshotStore(container)
    await grow(store, "alice", "dup", 2)
    again = new_snapshot("dup", "alice", T0).with_entry(make_entry(1), utc_iso(T0), {})
    with pytest.raises(SessionConflict):
        await store.create(again)
    assert (await store.load("alice", "dup")).turns == 2, "the existing session must be untouched"


async def test_a_second_turn_on_a_held_session_is_refused_at_once(container: ContainerClient) -> None:
    store = SnapshotStore(container)
    await grow(store, "alice", "busy", 1)
    async with store.locked("alice", "busy"):
        with pytest.raises(SessionBusy):
            async with store.locked("alice", "busy"):
                pass
    async with store.locked("alice", "busy"):  # released: the next turn gets in
        pass


async def test_an_append_at_a_stale_position_is_refused_and_writes_nothing(container: ContainerClient) -> None:
    store = SnapshotStore(container)
    await grow(store, "alice", "race", 2)
    stale = await store.load("alice", "race")
    async with store.locked("alice", "race") as lock:
        fresh = await store.load("alice", "race")
        await store.append(lock, fresh, fresh.with_entry(make_entry(3), utc_iso(T0), {}))
        with pytest.raises(SessionConflict):
            await store.append(lock, stale, stale.with_entry(make_entry(3, text="lost"), utc_iso(T0), {}))
    loaded = await store.load("alice", "race")
    assert loaded.turns == 3 and "lost" not in json.dumps(loaded.openai_messages())


async def test_missing_session_and_other_owners_session_both_look_missing(container: ContainerClient) -> None:
    store = SnapshotStore(container)
    await grow(store, "alice", "mine", 1)
    for owner, session in (("alice", "nope"), ("bob", "mine")):
        with pytest.raises(SessionNotFound):
            await store.load(owner, session)
        with pytest.raises(SessionNotFound):
            async with store.locked(owner, session):
                pass


async def test_index_tags_let_retention_find_idle_sessions_without_listing(container: ContainerClient) -> None:
    store = SnapshotStore(container)
    await grow(store, "alice", "old", 1, start=T0 - timedelta(days=40))
    await grow(store, "alice", "new", 1, start=T0)
    found = [item async for item in store.find_by_tags(f"\"lastActiveDay\" < '{(T0 - timedelta(days=30)):%Y-%m-%d}'")]
    assert ("alice", "old") in found and ("alice", "new") not in found
    tags = await container.get_blob_client("alice/new/snapshot.json.gz").get_blob_tags()
    assert tags == {"owner": "alice", "session": "new", "lastActiveDay": "2026-01-10", "schema": str(SCHEMA_VERSION)}


async def test_tags_follow_the_last_active_day_when_a_turn_lands_on_a_new_day(container: ContainerClient) -> None:
    store = SnapshotStore(container, compact_every=100)
    await grow(store, "alice", "days", 1)
    later = T0 + timedelta(days=3)
    async with store.locked("alice", "days") as lock:
        before = await store.load("alice", "days")
        await store.append(lock, before, before.with_entry(make_entry(2, later), utc_iso(later), {}))
    tags = await container.get_blob_client("alice/days/snapshot.json.gz").get_blob_tags()
    assert tags["lastActiveDay"] == "2026-01-13"


async def test_delete_removes_every_blob_of_the_session_only(container: ContainerClient) -> None:
    store = SnapshotStore(container, compact_every=2)
    await grow(store, "alice", "gone", 5)
    await grow(store, "alice", "kept", 1)
    assert await store.delete("alice", "gone") is True
    assert [b.name async for b in container.list_blobs(name_starts_with="alice/gone/")] == []
    assert await store.delete("alice", "gone") is False
    assert (await store.load("alice", "kept")).turns == 1


def test_unknown_schema_version_is_refused_not_misread() -> None:
    member = encode_journal_member(make_entry(1), utc_iso(T0), {})
    document = json.loads(gzip.decompress(member))
    document["schema_version"] = 99
    with pytest.raises(SnapshotCorrupt, match="99"):
        decode_journal(gzip.compress(json.dumps(document).encode()))


def test_a_torn_final_journal_member_keeps_every_complete_one() -> None:
    members = b"".join(encode_journal_member(make_entry(turn), utc_iso(T0), {}) for turn in (1, 2))
    torn = members + encode_journal_member(make_entry(3), utc_iso(T0), {})[:20]
    assert [member["turn"] for member in decode_journal(torn)] == [1, 2]


def test_ids_that_could_escape_the_owner_folder_are_refused_before_naming_a_blob() -> None:
    for bad in ("../bob", "a/b", "", "x" * 65, "-lead", "sp ace", "dot.ted"):
        with pytest.raises(ValueError):
            SnapshotStore.snapshot_name("alice", bad)
        with pytest.raises(ValueError):
            SnapshotStore.snapshot_name(bad, "s1")
