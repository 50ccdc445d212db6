"""Session summaries in Cosmos DB: one document per session, in the owner's partition (`/userId`).

Listing a caller's sessions reads one partition, newest first, keyset-paged by `sortKey` (time, then id),
which needs no composite index. Everything here can be rebuilt from the snapshots (reconcile).
"""

from __future__ import annotations

import contextlib
from typing import Any

from azure.core import MatchConditions
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)

from shared.domain.sessions import SessionSummary
from shared.storage.cosmos import CosmosDatabase
from shared.storage.documents import (
    decode_cursor,
    differs,
    encode_cursor,
    stored_fields,
    summary_document,
    summary_from_document,
)


class SummaryStore:
    def __init__(self, database: CosmosDatabase) -> None:
        self._database = database
        self._container = database.container("sessions")

    async def put(self, summary: SessionSummary) -> float:
        """Write the session's summary; returns the request charge of the write (RU)."""
        return await self._database.upsert("sessions", summary_document(summary))

    async def get(self, owner: str, session_id: str) -> SessionSummary | None:
        try:
            document = await self._container.read_item(session_id, partition_key=owner)
        except CosmosResourceNotFoundError:
            return None
        return summary_from_document(document)

    async def delete(self, owner: str, session_id: str) -> int:
        with contextlib.suppress(CosmosResourceNotFoundError):
            await self._container.delete_item(session_id, partition_key=owner)
            return 1
        return 0

    async def page(self, owner: str, limit: int, cursor: str | None = None) -> tuple[list[SessionSummary], str | None]:
        """Newest first, `limit` at a time; the cursor is the sort key of the last item returned."""
        parameters: dict[str, Any] = {"owner": owner, "take": limit + 1}
        where = "c.userId = @owner AND c.type = 'session'"
        if cursor is not None:
            where += " AND c.sortKey < @after"
            parameters["after"] = decode_cursor(cursor)
        query = f"SELECT TOP @take * FROM c WHERE {where} ORDER BY c.sortKey DESC"  # noqa: S608 - fixed text
        items = await self._database.query("sessions", query, parameters, partition=owner)
        page = [summary_from_document(item) for item in items[:limit]]
        next_cursor = encode_cursor(items[limit - 1]["sortKey"]) if len(items) > limit else None
        return page, next_cursor

    async def sessions_of_owner(self, owner: str) -> set[str]:
        query = "SELECT c.id FROM c WHERE c.userId = @owner AND c.type = 'session'"
        return {item["id"] for item in await self._database.query("sessions", query, {"owner": owner}, partition=owner)}

    async def matching(self, owner: str, transcript: str, replay: str) -> str | None:
        """The caller's most recent session whose transcript hash is `transcript` (the request continues it) or
        whose replay hash is `replay` (the request repeats its last turn), if any: one partition, one query."""
        query = (
            "SELECT TOP 1 c.id FROM c WHERE c.userId = @owner AND c.type = 'session' "
            "AND (c.transcript_hash = @transcript OR c.replay_hash = @replay) ORDER BY c.sortKey DESC"
        )
        parameters = {"owner": owner, "transcript": transcript, "replay": replay}
        items = await self._database.query("sessions", query, parameters, partition=owner)
        return str(items[0]["id"]) if items else None

    async def idle(self, cutoff: str, after: str, take: int) -> list[tuple[str, str, str]]:
        """(owner, session id, sort key) of summaries last active before `cutoff`, in sort-key order after `after`:
        one page of a cross-partition walk (summaries are partitioned by user), bounded by TOP."""
        query = (
            "SELECT TOP @take c.id, c.userId, c.sortKey FROM c "
            "WHERE c.type = 'session' AND c.last_active < @cutoff AND c.sortKey > @after ORDER BY c.sortKey ASC"
        )
        parameters = {"take": take, "cutoff": cutoff, "after": after}
        return [
            (item["userId"], item["id"], item["sortKey"])
            for item in await self._database.query("sessions", query, parameters)
        ]

    async def repair(self, summary: SessionSummary) -> bool:
        """Create the summary if absent, or replace it if it differs and is unchanged since read (etag); never
        when the stored one already counts more turns (a turn landed after the caller's read). True if written."""
        expected = summary_document(summary)
        try:
            current = await self._container.read_item(summary.session_id, partition_key=summary.owner)
        except CosmosResourceNotFoundError:
            with contextlib.suppress(CosmosResourceExistsError):  # a turn wrote it meanwhile: theirs is newer
                await self._database.again_if_missing(lambda: self._container.create_item(expected))
                return True
            return False
        if int(current.get("turns", 0)) > summary.turns:
            return False
        if not differs(current, expected, ignore=frozenset({"title"})):
            return False
        body = {**stored_fields(current), **expected, "title": current.get("title")}
        with contextlib.suppress(CosmosAccessConditionFailedError):  # changed since read: a newer write won
            await self._container.replace_item(
                summary.session_id, body, etag=current["_etag"], match_condition=MatchConditions.IfNotModified
            )
            return True
        return False
