"""Audit events in Cosmos DB: their own container (`COSMOS_AUDIT_CONTAINER`, partition key `/sessionId`), so a
session's trail is one partition read; each event carries a per-item `ttl` of `AUDIT_RETENTION_DAYS`."""

from __future__ import annotations

import contextlib

from azure.cosmos.exceptions import CosmosResourceNotFoundError

from shared.domain.audit import AuditEvent
from shared.storage.cosmos import CosmosDatabase
from shared.storage.documents import SECONDS_PER_DAY, audit_document, audit_event_from_document


class AuditStore:
    def __init__(self, database: CosmosDatabase, retention_days: int) -> None:
        self._database = database
        self._container = database.container("audit")
        self._ttl = retention_days * SECONDS_PER_DAY

    async def write(self, event: AuditEvent) -> None:
        """Store the event (an upsert: re-writing the same id updates it, e.g. an erasure's final outcome)."""
        document = audit_document(event, self._ttl)
        await self._database.upsert("audit", document)

    async def session_events(self, session_id: str, owner: str | None = None) -> list[AuditEvent]:
        """A session's events, oldest first; only the ones whose subject is `owner` unless None (admin)."""
        query = "SELECT * FROM c WHERE c.sessionId = @session AND c.type = 'audit'"
        parameters = {"session": session_id}
        if owner is not None:
            query += " AND c.userId = @owner"
            parameters["owner"] = owner
        items = await self._database.query("audit", query, parameters, partition=session_id)
        return sorted((audit_event_from_document(item) for item in items), key=lambda event: (event.at, event.id))

    async def delete_owner_events(self, owner: str, keep_actions: frozenset[str] = frozenset({"erase_user"})) -> int:
        """Delete every event whose subject is `owner` except the kept actions (a cross-partition query:
        a user's events are spread over their sessions' partitions). Returns how many were removed."""
        query = "SELECT c.id, c.sessionId, c.action FROM c WHERE c.userId = @owner AND c.type = 'audit'"
        items = await self._database.query("audit", query, {"owner": owner})
        removed = 0
        for item in items:
            if item.get("action") in keep_actions:
                continue
            with contextlib.suppress(CosmosResourceNotFoundError):
                await self._container.delete_item(item["id"], partition_key=item["sessionId"])
                removed += 1
        return removed
