"""Routing metadata in Azure Cosmos DB: one document per turn and one summary per session.

Blob Storage is the source of truth; everything here can be rebuilt from the snapshots (reconcile).
Turn documents live in the session's partition (`/sessionId`) with an id derived from owner, session
and turn, so a retried write rewrites the same item. Summaries live in the owner's partition
(`/userId`), which is what listing a caller's sessions reads. Every query is parameterized and carries
its partition-key filter in the SQL text.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from azure.cosmos import PartitionKey
from azure.cosmos.aio import ContainerProxy, CosmosClient, DatabaseProxy
from azure.cosmos.exceptions import CosmosResourceNotFoundError

from shared.records import SessionSummary, TurnRecord, validate_id

logger = logging.getLogger(__name__)

TURNS_PARTITION_KEY = "/sessionId"
SESSIONS_PARTITION_KEY = "/userId"
AUDIT_PARTITION_KEY = "/sessionId"
DOCUMENT_SCHEMA_VERSION = 1
T = TypeVar("T")


class InvalidCursor(ValueError):
    """A continuation token that this service did not issue."""


def turn_document_id(owner: str, session_id: str, turn: int) -> str:
    return f"{owner}.{session_id}.{turn:06d}"


def turn_document(owner: str, session_id: str, record: TurnRecord) -> dict[str, Any]:
    return {
        **record.to_dict(),
        "id": turn_document_id(owner, session_id, record.turn),
        "type": "turn",
        "schemaVersion": DOCUMENT_SCHEMA_VERSION,
        "sessionId": session_id,
        "userId": owner,
    }


def summary_document(summary: SessionSummary) -> dict[str, Any]:
    return {
        **summary.to_dict(),
        "id": summary.session_id,
        "type": "session",
        "schemaVersion": DOCUMENT_SCHEMA_VERSION,
        "userId": summary.owner,
        # One sortable key (time, then id) makes keyset paging need no composite index.
        "sortKey": f"{summary.last_active}|{summary.session_id}",
    }


def summary_from_document(document: dict[str, Any]) -> SessionSummary:
    return SessionSummary(
        session_id=document["session_id"],
        owner=document["owner"],
        created_at=document["created_at"],
        last_active=document["last_active"],
        turns=int(document["turns"]),
        backends=dict(document.get("backends", {})),
        switches=int(document.get("switches", 0)),
        fallbacks=int(document.get("fallbacks", 0)),
        input_tokens=int(document.get("input_tokens", 0)),
        output_tokens=int(document.get("output_tokens", 0)),
        cost=float(document.get("cost", 0.0)),
        title=document.get("title"),
    )


def encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(sort_key.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        sort_key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("continuation token is not valid") from None
    time_part, _, session_id = sort_key.partition("|")
    if not time_part or not session_id:
        raise InvalidCursor("continuation token is not valid")
    validate_id(session_id, "continuation")
    return sort_key


class MetadataStore:
    def __init__(
        self,
        client: CosmosClient,
        database: str,
        turns_container: str,
        sessions_container: str,
        audit_container: str,
        *,
        create_resources: bool = False,
    ) -> None:
        self._client = client
        self._database_name = database
        self._create_resources = create_resources
        self._names = {"turns": turns_container, "sessions": sessions_container, "audit": audit_container}
        database_proxy: DatabaseProxy = client.get_database_client(database)
        self._database = database_proxy
        self.turns: ContainerProxy = database_proxy.get_container_client(turns_container)
        self.sessions: ContainerProxy = database_proxy.get_container_client(sessions_container)
        self.audit: ContainerProxy = database_proxy.get_container_client(audit_container)

    async def ensure_resources(self) -> None:
        """Create the database and containers if missing: local emulator only (in Azure, Bicep does it)."""
        database = await self._client.create_database_if_not_exists(self._database_name)
        for key, partition in (
            ("turns", TURNS_PARTITION_KEY),
            ("sessions", SESSIONS_PARTITION_KEY),
            ("audit", AUDIT_PARTITION_KEY),
        ):
            await database.create_container_if_not_exists(self._names[key], PartitionKey(path=partition))

    async def recreate_missing(self) -> bool:
        """Create the database and containers if missing and this process may (COSMOS_CREATE_RESOURCES): the local
        emulator keeps everything in memory and comes back empty after a restart. False when it may not."""
        if not self._create_resources:
            return False
        await self.ensure_resources()
        return True

    async def _again_if_missing(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run a write or query, and once more after recreating the resources if they were missing (a 404 from
        an upsert or a query means a missing database or container, never a missing item)."""
        try:
            return await operation()
        except CosmosResourceNotFoundError:
            if not await self.recreate_missing():
                raise
        logger.warning("Cosmos database %s or a container of it was missing: created again", self._database_name)
        return await operation()

    async def ping(self) -> None:
        await self._database.read()

    async def record_turn(self, summary: SessionSummary, record: TurnRecord) -> None:
        """Write one turn and the session's summary; both are idempotent upserts."""

        async def write() -> None:
            # Independent documents in different containers: written concurrently, one round trip instead of two.
            await asyncio.gather(
                self.turns.upsert_item(turn_document(summary.owner, summary.session_id, record)),
                self.sessions.upsert_item(summary_document(summary)),
            )

        await self._again_if_missing(write)

    async def put_summary(self, summary: SessionSummary) -> None:
        await self._again_if_missing(lambda: self.sessions.upsert_item(summary_document(summary)))

    async def session_turns(self, owner: str, session_id: str) -> list[TurnRecord]:
        query = (
            "SELECT * FROM c WHERE c.sessionId = @session AND c.userId = @owner AND c.type = 'turn' ORDER BY c.turn ASC"
        )
        parameters: list[dict[str, Any]] = [
            {"name": "@session", "value": session_id},
            {"name": "@owner", "value": owner},
        ]

        async def read() -> list[TurnRecord]:
            items = self.turns.query_items(query, parameters=parameters, partition_key=session_id)
            return [TurnRecord.from_dict(item) async for item in items]

        return await self._again_if_missing(read)

    async def owner_turns(self, owner: str) -> list[TurnRecord]:
        """All of an owner's turn records: a cross-partition query over the turns container."""
        query = "SELECT * FROM c WHERE c.userId = @owner AND c.type = 'turn'"

        async def read() -> list[TurnRecord]:
            items = self.turns.query_items(query, parameters=[{"name": "@owner", "value": owner}])
            return [TurnRecord.from_dict(item) async for item in items]

        return await self._again_if_missing(read)

    async def summary(self, owner: str, session_id: str) -> SessionSummary | None:
        try:
            document = await self.sessions.read_item(session_id, partition_key=owner)
        except CosmosResourceNotFoundError:
            return None
        return summary_from_document(document)

    async def list_sessions(
        self, owner: str, limit: int, cursor: str | None = None
    ) -> tuple[list[SessionSummary], str | None]:
        """Newest first, `limit` at a time; the cursor is the sort key of the last item returned."""
        return await self._again_if_missing(lambda: self._list_sessions(owner, limit, cursor))

    async def _list_sessions(
        self, owner: str, limit: int, cursor: str | None
    ) -> tuple[list[SessionSummary], str | None]:
        parameters: list[dict[str, Any]] = [
            {"name": "@owner", "value": owner},
            {"name": "@take", "value": limit + 1},
        ]
        where = "c.userId = @owner AND c.type = 'session'"
        if cursor is not None:
            where += " AND c.sortKey < @after"
            parameters.append({"name": "@after", "value": decode_cursor(cursor)})
        query = f"SELECT TOP @take * FROM c WHERE {where} ORDER BY c.sortKey DESC"  # noqa: S608 - fixed text
        items = [item async for item in self.sessions.query_items(query, parameters=parameters, partition_key=owner)]
        page = [summary_from_document(item) for item in items[:limit]]
        next_cursor = encode_cursor(items[limit - 1]["sortKey"]) if len(items) > limit else None
        return page, next_cursor

    async def delete_session(self, owner: str, session_id: str) -> int:
        """Delete a session's turn documents and summary; returns how many documents were removed."""
        query = "SELECT c.id FROM c WHERE c.sessionId = @session AND c.userId = @owner"
        parameters: list[dict[str, Any]] = [
            {"name": "@session", "value": session_id},
            {"name": "@owner", "value": owner},
        ]

        async def read() -> list[str]:
            items = self.turns.query_items(query, parameters=parameters, partition_key=session_id)
            return [item["id"] async for item in items]

        ids = await self._again_if_missing(read)
        removed = 0
        for item_id in ids:
            with contextlib.suppress(CosmosResourceNotFoundError):
                await self.turns.delete_item(item_id, partition_key=session_id)
                removed += 1
        with contextlib.suppress(CosmosResourceNotFoundError):
            await self.sessions.delete_item(session_id, partition_key=owner)
            removed += 1
        return removed
