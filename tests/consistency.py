"""Checks shared by the soak, fault and hostile-input tests: what the stores hold, read with the SDKs.

`store_state` captures every blob (name and content hash) and every Cosmos document (turns, sessions, audit) of
one test's container and database, so a test can prove that a batch of requests changed nothing. The session
checks load a conversation the way the service does, decode its journal strictly (a torn gzip member would be
silently skipped by the service's reader, so it is looked for here), and compare Cosmos with the snapshot:
every turn record exactly once, the summary counting the same turns, and a well-formed transcript.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Mapping
from typing import Any

from azure.cosmos.aio import CosmosClient
from azure.cosmos.exceptions import CosmosResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from shared.domain.feedback import Feedback
from shared.domain.records import TurnRecord
from shared.domain.sessions import Snapshot, summary_of
from shared.storage.documents import stored_fields, summary_document, turn_document, turn_document_id
from shared.storage.snapshots import SnapshotStore

COSMOS_CONTAINERS = ("turns", "sessions", "audit")


async def blob_contents(env: Mapping[str, str]) -> dict[str, str]:
    """Every blob of the test's container: name -> sha256 of its content (empty when the container is missing)."""
    async with ContainerClient.from_connection_string(
        env["STORAGE_CONNECTION_STRING"], env["SNAPSHOT_CONTAINER"]
    ) as container:
        if not await container.exists():
            return {}
        found = {}
        async for blob in container.list_blobs():
            data = await (await container.download_blob(blob.name)).readall()
            found[blob.name] = hashlib.sha256(data).hexdigest()
        return found


async def cosmos_documents(env: Mapping[str, str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Every document of the three containers, by id, without system properties (`_etag`, `_ts`, ...)."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    async with CosmosClient(env["COSMOS_ENDPOINT"], credential=env["COSMOS_KEY"]) as cosmos:
        database = cosmos.get_database_client(env["COSMOS_DATABASE"])
        for name in COSMOS_CONTAINERS:
            container = database.get_container_client(name)
            try:
                found[name] = {item["id"]: stored_fields(item) async for item in container.read_all_items()}
            except CosmosResourceNotFoundError:
                found[name] = {}
    return found


async def store_state(env: Mapping[str, str]) -> dict[str, Any]:
    return {"blobs": await blob_contents(env), "cosmos": await cosmos_documents(env)}


def strict_journal_members(data: bytes) -> list[dict[str, Any]]:
    """Decode a journal member by member and fail on any torn or unreadable member (the service would skip it)."""
    members: list[dict[str, Any]] = []
    while data:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        text = decompressor.decompress(data)
        assert decompressor.eof, f"journal ends with a torn gzip member ({len(data)} bytes)"
        members.extend(json.loads(line) for line in text.splitlines() if line.strip())
        data = decompressor.unused_data
    return members


async def load_session(env: Mapping[str, str], owner: str, session_id: str) -> Snapshot:
    """The session as the service loads it, after checking every stored blob of it decodes strictly."""
    async with ContainerClient.from_connection_string(
        env["STORAGE_CONNECTION_STRING"], env["SNAPSHOT_CONTAINER"]
    ) as container:
        prefix = f"{owner}/{session_id}/"
        async for blob in container.list_blobs(name_starts_with=prefix):
            data = await (await container.download_blob(blob.name)).readall()
            if blob.name.endswith("snapshot.json.gz"):
                json.loads(gzip.decompress(data))
            else:
                strict_journal_members(data)
        return await SnapshotStore(container).load(owner, session_id)


def assert_well_formed_transcript(snapshot: Snapshot) -> None:
    """User and assistant messages alternate, one pair per turn, and turns are numbered 1..n."""
    roles = [message["role"] for message in snapshot.openai_messages()]
    assert roles == ["user", "assistant"] * snapshot.turns, roles
    assert [record.turn for record in snapshot.records] == list(range(1, snapshot.turns + 1))
    for entry in snapshot.entries:
        assert [message["role"] for message in entry.openai_messages] == ["user", "assistant"], entry.record.turn


async def assert_cosmos_matches_snapshot(env: Mapping[str, str], owner: str, snapshot: Snapshot) -> None:
    """Every turn record of the snapshot is in Cosmos exactly once, nothing else is, and the summary agrees."""
    documents = await cosmos_documents(env)
    session_id = snapshot.session_id
    turns = [doc for doc in documents["turns"].values() if doc["sessionId"] == session_id]
    assert sorted(doc["turn"] for doc in turns) == list(range(1, snapshot.turns + 1)), "turn records in Cosmos"
    for record in snapshot.records:
        # exactly what a turn writes now (the lean document): no field missing, different or left over
        expected = turn_document(owner, session_id, record, snapshot.feedback.get(record.turn))
        assert documents["turns"][expected["id"]] == expected, record.turn
    summary = next(
        (doc for doc in documents["sessions"].values() if doc["id"] == session_id and doc["userId"] == owner), None
    )
    assert summary is not None, "no session summary in Cosmos"
    expected_summary = summary_document(summary_of(snapshot))
    assert {key: summary.get(key) for key in expected_summary if key != "title"} == {
        key: value for key, value in expected_summary.items() if key != "title"
    }


def version_1_turn_document(
    owner: str, session_id: str, record: TurnRecord, feedback: Feedback | None = None
) -> dict[str, Any]:
    """A turn document exactly as schema version 1 wrote it (the whole record), frozen here: the service no longer
    writes this shape but still reads it, and reconcile rewrites it."""
    document = {
        **record.to_dict(),
        "id": turn_document_id(owner, session_id, record.turn),
        "type": "turn",
        "schemaVersion": 1,
        "sessionId": session_id,
        "userId": owner,
        "summary_cost": record.summary_cost,
    }
    if feedback is not None:
        document["feedback"] = feedback.to_dict(comment=False)
    return document
