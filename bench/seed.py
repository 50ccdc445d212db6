"""Build long conversations fast, in the exact stored form real turns would have left, in both stores.

Ours: running 500 real turns to reach turn 500 would take minutes, so the history is written directly. It is
not written as one compacted snapshot (the best case for a load): the store's own compaction rule
(`SnapshotStore._should_compact`, with the store's own encoders) is replayed over the entries, so the blobs
hold the snapshot and journal split that 500 real turns would have produced. The Agent Framework message
dicts have the shape a real turn stores (`Message.to_dict()` of the user message and of the reply, with
`author_name` and a `chatcmpl-` message id), with prose text and routing records from the real router.
Cosmos gets one turn document per entry and the session summary.

Theirs: the documents `CosmosHistoryProvider.save_messages` writes (id, session_id, sort_key = time in ns +
index, source_id, message), upserted in transactional batches of at most 100 like the provider does, one
"save" per exchange with the saves a second apart, all before the measured turns.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.cosmos.aio import ContainerProxy

from shared.domain.clock import utc_iso
from shared.domain.records import Entry, TurnRecord
from shared.domain.routing import PriorTurn, RouterConfig, decide
from shared.domain.sessions import Snapshot, summarize
from shared.storage.codec import encode_journal_member, encode_snapshot
from shared.storage.metadata import MetadataStore
from shared.storage.snapshots import SnapshotStore

AUTHOR = "router-local"
BLOCK_LIMIT = 4 * 1024 * 1024  # Append Block's maximum size


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def af_message(role: str, text: str, backend: str | None = None) -> dict[str, Any]:
    """A message dict as `Message.to_dict()` gives it after a real turn (checked against a stored one)."""
    message: dict[str, Any] = {
        "type": "message",
        "role": role,
        "contents": [{"type": "text", "text": text, "additional_properties": {}}],
    }
    if role == "assistant":
        message["author_name"] = f"router-{backend or 'local'}"
        message["message_id"] = "chatcmpl-" + uuid.uuid4().hex[:24]
    message["additional_properties"] = {}
    return message


def make_entries(
    exchanges: Sequence[tuple[str, str]],
    configured: Sequence[str],
    models: dict[str, str],
    start: datetime,
    first_turn: int = 1,
    config: RouterConfig | None = None,
) -> list[Entry]:
    """Entries for `exchanges`, routed by the real router, a minute apart starting at `start`."""
    config = config or RouterConfig()
    entries: list[Entry] = []
    prior: list[PriorTurn] = []
    for offset, (user, reply) in enumerate(exchanges):
        turn = first_turn + offset
        decision = decide(user, prior[-6:], configured, config)
        started = start + timedelta(minutes=offset)
        record = TurnRecord(
            turn=turn,
            backend=decision.backend,
            model=models[decision.backend],
            complexity=decision.complexity,
            reason=decision.reason,
            router_version=decision.router_version,
            route_requested="auto",
            switched_from=decision.switched_from,
            fallback_chain=(),
            latency_ms=round(850.0 + (turn * 37) % 400 + 0.123, 3),
            turn_ms=round(870.0 + (turn * 37) % 400 + 0.456, 3),
            input_tokens=_tokens(user) + 40 * min(turn, 25),
            output_tokens=_tokens(reply),
            cost=0.0,
            started_at=utc_iso(started),
            completed_at=utc_iso(started + timedelta(seconds=1.2)),
            user_chars=len(user),
            reply_chars=len(reply),
            signals=tuple(decision.signals),
            follow_up=decision.follow_up,
        )
        af = (af_message("user", user), af_message("assistant", reply, decision.backend))
        openai = ({"role": "user", "content": user}, {"role": "assistant", "content": reply})
        entries.append(Entry(record, af, openai))
        prior.append(PriorTurn(decision.backend, decision.complexity, len(user)))
    return entries


def natural_layout(
    store: SnapshotStore, owner: str, session_id: str, created_at: str, entries: Sequence[Entry]
) -> tuple[Snapshot, list[bytes], list[int]]:
    """The snapshot and journal members that saving `entries` one turn at a time would leave, and the turns
    whose save was a compaction.

    Turn 1 creates the snapshot; every later turn appends a journal member unless the store's rule says
    compact, which rewrites the snapshot with everything and starts a new, empty journal generation.
    """
    snapshot = Snapshot(
        session_id=session_id,
        owner=owner,
        created_at=created_at,
        updated_at=entries[0].record.completed_at,
        entries=(entries[0],),
        generation=1,
    )
    snapshot = replace(snapshot, snapshot_turns=1, snapshot_bytes=len(encode_snapshot(snapshot)))
    members: list[bytes] = []
    compactions: list[int] = []
    for entry in entries[1:]:
        updated = entry.record.completed_at
        member = encode_journal_member(entry, updated, {})
        if store._should_compact(snapshot, len(member)):
            compacted = replace(
                snapshot, entries=(*snapshot.entries, entry), updated_at=updated, generation=snapshot.generation + 1
            )
            snapshot = replace(
                compacted,
                snapshot_turns=compacted.turns,
                snapshot_bytes=len(encode_snapshot(compacted)),
                journal_bytes=0,
            )
            members = []
            compactions.append(entry.turn)
        else:
            members.append(member)
            snapshot = replace(
                snapshot,
                entries=(*snapshot.entries, entry),
                updated_at=updated,
                journal_bytes=snapshot.journal_bytes + len(member),
            )
    base = replace(snapshot, entries=snapshot.entries[: snapshot.snapshot_turns], journal_bytes=0)
    return base, members, compactions


async def seed_ours(
    store: SnapshotStore,
    metadata: MetadataStore | None,
    owner: str,
    session_id: str,
    entries: Sequence[Entry],
    created_at: str,
) -> Snapshot:
    """Write `entries` as a natural snapshot + journal, and (if given) their Cosmos turn documents + summary."""
    base, members, _ = natural_layout(store, owner, session_id, created_at, entries)
    await store.create(base)
    journal = store._container.get_blob_client(store.journal_name(owner, session_id))
    block: list[bytes] = []
    size = 0
    for member in members:
        if size + len(member) > BLOCK_LIMIT and block:
            await journal.append_block(b"".join(block))
            block, size = [], 0
        block.append(member)
        size += len(member)
    if block:
        await journal.append_block(b"".join(block))
    if metadata is not None:
        records = [entry.record for entry in entries]
        await metadata.record_session(summarize(session_id, owner, created_at, records), records, {})
    return base


async def seed_theirs(
    container: ContainerProxy, session_id: str, entries: Sequence[Entry], source_id: str
) -> list[tuple[str, str]]:
    """The provider's documents for `entries`, one save per exchange a second apart, ending a second ago."""
    now_ns = time.time_ns()
    operations: list[tuple[str, tuple[dict[str, Any]]]] = []
    expected: list[tuple[str, str]] = []
    for offset, entry in enumerate(entries):
        base = now_ns - (len(entries) - offset) * 1_000_000_000
        for index, message in enumerate(entry.af_messages):
            document = {
                "id": str(uuid.uuid4()),
                "session_id": session_id,
                "sort_key": base + index,
                "source_id": source_id,
                "message": dict(message),
            }
            operations.append(("upsert", (document,)))
            expected.append((str(message["role"]), str(message["contents"][0]["text"])))
    for start in range(0, len(operations), 100):
        await container.execute_item_batch(batch_operations=operations[start : start + 100], partition_key=session_id)
    return expected


def expected_transcript(entries: Sequence[Entry]) -> list[tuple[str, str]]:
    return [(str(m["role"]), str(m["contents"][0]["text"])) for entry in entries for m in entry.af_messages]


def created_at_for(turns: int) -> tuple[datetime, str]:
    """A start time far enough back that `turns` minutes of history end before now."""
    start = datetime.now(UTC) - timedelta(minutes=turns + 5)
    return start, utc_iso(start)
