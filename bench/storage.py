"""Scenario 3: bytes stored for a conversation of 100 real exchanges, ours and theirs, against the raw text.

Both conversations are made by 100 real turns (ours through `Conversations.chat`, theirs through an `Agent`
with `CosmosHistoryProvider`) with the same prose and replies. Measured:

- ours, Blob: the sum of the blob sizes under `<owner>/<session>/` (snapshot + current journal), as listed.
- ours, Cosmos: each of the session's turn documents and its summary document serialized as compact JSON
  (UTF-8), both as the query returns them (with the system properties `_rid`, `_self`, `_etag`,
  `_attachments`, `_ts`) and without those. The emulator has no storage statistics, so this is the JSON size,
  not Azure's billed size (which adds index overhead).
- theirs, Cosmos: the session's message documents, measured the same way.
- raw: the UTF-8 bytes of the user and assistant message texts.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from bench import prose
from bench.env import describe
from bench.stack import Stack, order_report, sort_key_ties, transcript_of

OWNER = "bench-storage"
EXCHANGES = 100
SYSTEM_PROPERTIES = ("_rid", "_self", "_etag", "_attachments", "_ts")


def _json_bytes(document: dict[str, Any], strip: bool) -> int:
    if strip:
        document = {key: value for key, value in document.items() if key not in SYSTEM_PROPERTIES}
    return len(json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


async def measure_one(stack: Stack, seed: int) -> dict[str, Any]:
    exchanges = prose.exchanges(seed, EXCHANGES)
    raw = sum(len(user.encode("utf-8")) + len(reply.encode("utf-8")) for user, reply in exchanges)
    session_id: str | None = None
    theirs = uuid.uuid4().hex
    for user, reply in exchanges:
        result, *_ = await stack.our_turn(OWNER, user, reply, session_id)
        session_id = result.session_id
        await stack.their_turn("storage", theirs, user, reply)
    assert session_id is not None
    container = stack.snapshots._container
    blobs = {
        blob.name.rsplit("/", 1)[1]: int(blob.size)
        async for blob in container.list_blobs(name_starts_with=f"{OWNER}/{session_id}/")
    }
    turn_docs = [
        item
        async for item in stack.metadata.database.container("turns").query_items(
            "SELECT * FROM c WHERE c.sessionId = @s",
            parameters=[{"name": "@s", "value": session_id}],
            partition_key=session_id,
        )
    ]
    summary_doc = await stack.metadata.database.container("sessions").read_item(session_id, partition_key=OWNER)
    their_container = await stack.their_container("storage")
    their_docs = [
        item
        async for item in their_container.query_items(
            "SELECT * FROM c WHERE c.session_id = @s",
            parameters=[{"name": "@s", "value": theirs}],
            partition_key=theirs,
        )
    ]
    expected = [pair for user, reply in exchanges for pair in (("user", user), ("assistant", reply))]
    snapshot = await stack.snapshots.load(OWNER, session_id)
    ours_got = [(str(m["role"]), str(m["contents"][0]["text"])) for m in snapshot.af_messages()]
    theirs_got = transcript_of(await stack.their_messages("storage", theirs))
    documents, tied = await sort_key_ties(their_container, theirs)
    blob_total = sum(blobs.values())
    cosmos_ours = sum(_json_bytes(doc, False) for doc in turn_docs) + _json_bytes(summary_doc, False)
    cosmos_ours_bare = sum(_json_bytes(doc, True) for doc in turn_docs) + _json_bytes(summary_doc, True)
    theirs_total = sum(_json_bytes(doc, False) for doc in their_docs)
    theirs_bare = sum(_json_bytes(doc, True) for doc in their_docs)
    return {
        "raw_text_bytes": raw,
        "prose_gzip_ratio": prose.compression_ratio(exchanges),
        "ours_blobs": blobs,
        "ours_blob_bytes": blob_total,
        "ours_cosmos_bytes": cosmos_ours,
        "ours_cosmos_bytes_without_system_properties": cosmos_ours_bare,
        "ours_turn_documents": len(turn_docs),
        "theirs_cosmos_bytes": theirs_total,
        "theirs_cosmos_bytes_without_system_properties": theirs_bare,
        "theirs_documents": len(their_docs),
        "snapshot_turns": snapshot.snapshot_turns,
        "journal_turns": snapshot.journal_turns,
        "order_ours": order_report(expected, ours_got),
        "order_theirs": {**order_report(expected, theirs_got), "documents": documents, "tied": tied},
    }


async def run(stack: Stack, quick: bool) -> dict[str, Any]:
    runs = [await measure_one(stack, 70_000 + index) for index in range(1 if quick else 2)]

    def figure(key: str) -> dict[str, Any]:
        return describe([float(run[key]) for run in runs], digits=1)

    raw = figure("raw_text_bytes")["p50"]
    blob = figure("ours_blob_bytes")["p50"]
    cosmos = figure("ours_cosmos_bytes")["p50"]
    theirs = figure("theirs_cosmos_bytes")["p50"]
    return {
        "scenario": "storage",
        "what": __doc__,
        "exchanges": EXCHANGES,
        "raw_text_bytes": figure("raw_text_bytes"),
        "prose_gzip_ratio": figure("prose_gzip_ratio"),
        "ours_blob_bytes": figure("ours_blob_bytes"),
        "ours_cosmos_bytes": figure("ours_cosmos_bytes"),
        "ours_cosmos_bytes_without_system_properties": figure("ours_cosmos_bytes_without_system_properties"),
        "theirs_cosmos_bytes": figure("theirs_cosmos_bytes"),
        "theirs_cosmos_bytes_without_system_properties": figure("theirs_cosmos_bytes_without_system_properties"),
        "ratios_to_raw": {
            "ours_blob": round(blob / raw, 3),
            "ours_cosmos": round(cosmos / raw, 3),
            "ours_total": round((blob + cosmos) / raw, 3),
            "theirs": round(theirs / raw, 3),
        },
        "ratio_ours_total_to_theirs": round((blob + cosmos) / theirs, 3),
        "runs": runs,
    }
