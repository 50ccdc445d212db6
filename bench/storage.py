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
- ours, request units per turn (the turn document created and the session summary replaced, concurrently):
  what the emulator's `x-ms-request-charge` header said for each turn's two writes (it answers 1 to every
  request: hard-coded in the package), and an estimate for Azure from Microsoft's published guidance
  ("Understand request units consumption in Azure Cosmos DB": a write's charge by document size plus 0.2 RU per
  index term written or changed; `bench/request_units.py`) for the last turn's two documents, under the
  containers' indexing policy (`shared/storage/indexing.py`) and, for comparison, under the default policy that
  indexes every path.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from bench import prose
from bench.env import describe
from bench.request_units import create_ru, document_bytes, index_terms, replace_ru
from bench.stack import Stack, order_report, sort_key_ties, transcript_of
from shared.storage.indexing import INDEXED_PATHS

OWNER = "bench-storage"
EXCHANGES = 100
KEY_FIELDS = ("id", "type", "schemaVersion", "sessionId", "userId")


def _returned_bytes(document: dict[str, Any]) -> int:
    """Compact UTF-8 JSON size of a document as a query returns it, system properties (`_rid`, `_ts`, ...) included;
    `document_bytes` is the size without them."""
    return len(json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


async def measure_one(stack: Stack, seed: int) -> dict[str, Any]:
    exchanges = prose.exchanges(seed, EXCHANGES)
    raw = sum(len(user.encode("utf-8")) + len(reply.encode("utf-8")) for user, reply in exchanges)
    session_id: str | None = None
    theirs = uuid.uuid4().hex
    summary_before: dict[str, Any] = {}  # the summary document as the last turn found it
    stack.metadata.request_charges.clear()
    for index, (user, reply) in enumerate(exchanges):
        if session_id is not None and index == len(exchanges) - 1:
            sessions = stack.metadata.database.container("sessions")
            summary_before = await sessions.read_item(session_id, partition_key=OWNER)
        result, *_ = await stack.our_turn(OWNER, user, reply, session_id)
        session_id = result.session_id
        await stack.their_turn("storage", theirs, user, reply)
    assert session_id is not None
    charges = list(stack.metadata.request_charges)
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
    cosmos_ours = sum(_returned_bytes(doc) for doc in turn_docs) + _returned_bytes(summary_doc)
    cosmos_ours_bare = sum(document_bytes(doc) for doc in turn_docs) + document_bytes(summary_doc)
    theirs_total = sum(_returned_bytes(doc) for doc in their_docs)
    theirs_bare = sum(document_bytes(doc) for doc in their_docs)
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
        **_documents_and_charges(turn_docs, summary_before, summary_doc, charges),
        "order_ours": order_report(expected, ours_got),
        "order_theirs": {**order_report(expected, theirs_got), "documents": documents, "tied": tied},
    }


def _documents_and_charges(
    turn_docs: list[dict[str, Any]], summary_before: dict[str, Any], summary: dict[str, Any], charges: list[float]
) -> dict[str, Any]:
    """Document sizes, the emulator's request charges per turn, and Azure's estimate for the last turn's writes."""
    last = max(turn_docs, key=lambda doc: int(doc["turn"]))

    def estimate(turns: tuple[str, ...] | None, sessions: tuple[str, ...] | None) -> dict[str, Any]:
        turn_ru, summary_ru = create_ru(last, turns), replace_ru(summary_before, summary, sessions)
        return {
            "turn_document_create": turn_ru,
            "summary_replace": summary_ru,
            "per_turn": round(turn_ru + summary_ru, 2),
            "turn_document_index_terms": len(index_terms(last, turns)),
        }

    keys = {key: last[key] for key in KEY_FIELDS}
    return {
        # what every turn document costs whatever it keeps: its keys, and the system properties the service adds
        "turn_document_floor_bytes": document_bytes(keys) + _returned_bytes(last) - document_bytes(last),
        "turn_document_bytes": [document_bytes(doc) for doc in turn_docs],
        "turn_document_bytes_with_system_properties": [_returned_bytes(doc) for doc in turn_docs],
        "summary_document_bytes": document_bytes(summary),
        "summary_document_bytes_with_system_properties": _returned_bytes(summary),
        "emulator_request_charge_per_turn": charges,
        "estimated_ru_per_turn": {
            "indexing_policy": estimate(INDEXED_PATHS["turns"], INDEXED_PATHS["sessions"]),
            "default_policy": estimate(None, None),
        },
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
        "turn_document_bytes": _pooled(runs, "turn_document_bytes"),
        "turn_document_bytes_with_system_properties": _pooled(runs, "turn_document_bytes_with_system_properties"),
        "summary_document_bytes": figure("summary_document_bytes"),
        "turn_document_floor_bytes": figure("turn_document_floor_bytes"),
        "emulator_request_charge_per_turn": _pooled(runs, "emulator_request_charge_per_turn"),
        "estimated_ru_per_turn": runs[0]["estimated_ru_per_turn"],
        "runs": runs,
    }


def _pooled(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return describe([float(value) for run in runs for value in run[key]], digits=1)


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The Cosmos documents' sizes and the request units per turn, for SUMMARY.md."""
    turn, bare = result["turn_document_bytes_with_system_properties"], result["turn_document_bytes"]
    floor = result["turn_document_floor_bytes"]["p50"]
    charge = result["emulator_request_charge_per_turn"]
    ours, default = (result["estimated_ru_per_turn"][key] for key in ("indexing_policy", "default_policy"))
    return [
        f"Cosmos documents: a turn document is {bare['p50']:.0f} bytes as written (min {bare['min']:.0f}, max "
        f"{bare['max']:.0f}; {turn['p50']:.0f} with the system properties a query returns), the session summary "
        f"{result['summary_document_bytes']['p50']:.0f} bytes as written. Of a turn document, {floor:.0f} bytes are "
        "its keys (id, type, schemaVersion, sessionId, userId) and the system properties the service adds: a floor "
        f"of {floor * EXCHANGES / 1024:.1f} KiB per {EXCHANGES} turns, "
        f"{floor * EXCHANGES / result['raw_text_bytes']['p50']:.2f}× the raw text here, whatever a document keeps.",
        "",
        f"Request units per turn (the turn document created and the session summary replaced, concurrently): the "
        f"emulator's `x-ms-request-charge` said {charge['p50']:g} RU (min {charge['min']:g}, max {charge['max']:g}), "
        "but it answers 1 to every request (hard-coded in @vercel/cosmosdb-server), so that says nothing. Estimated "
        'for Azure from Microsoft\'s published guidance ("Understand request units consumption in Azure Cosmos DB": '
        "a write's charge by document size, plus 0.2 RU per index term written or changed), for the last turn: "
        f"**{ours['per_turn']:g} RU** with the containers' indexing policy ({ours['turn_document_create']:g} for the "
        f"turn document, {ours['turn_document_index_terms']} index terms; {ours['summary_replace']:g} for the "
        f"summary), against {default['per_turn']:g} RU for the same documents under the default policy that indexes "
        f"every path ({default['turn_document_create']:g} + {default['summary_replace']:g}; "
        f"{default['turn_document_index_terms']} terms). An estimate to compare with, not a bill: the page calls "
        "its figures illustrative.",
    ]
