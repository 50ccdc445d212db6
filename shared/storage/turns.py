"""Turn records in Cosmos DB: one document per turn, in the session's partition (`/sessionId`).

Blob Storage is the source of truth; everything here can be rebuilt from the snapshots (reconcile). A turn
document keeps only what analytics, budgets and calibration read (`documents.turn_document`). Its id is derived
from owner, session and turn, and a turn record never changes once written, so every write is an idempotent
upsert and a repair can never undo a newer turn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from azure.cosmos.exceptions import CosmosResourceNotFoundError

from shared.domain.budget import Charge
from shared.domain.feedback import Feedback
from shared.domain.records import TurnRecord, TurnRow
from shared.storage.cosmos import CosmosDatabase
from shared.storage.documents import charge_of, is_current, turn_document, turn_row

_WRITERS = 8  # concurrent upserts when many turns are written at once (an import)


class TurnStore:
    def __init__(self, database: CosmosDatabase) -> None:
        self._database = database
        self._container = database.container("turns")

    async def put(self, owner: str, session_id: str, record: TurnRecord, feedback: Feedback | None = None) -> float:
        """Write the turn's document; returns the request charge of the write (RU)."""
        return await self._database.upsert("turns", turn_document(owner, session_id, record, feedback))

    async def put_many(
        self, owner: str, session_id: str, records: Sequence[TurnRecord], feedback: Mapping[int, Feedback]
    ) -> None:
        """Every record of a session written at once (an import or a fork), a few upserts at a time."""
        gate = asyncio.Semaphore(_WRITERS)

        async def write(record: TurnRecord) -> None:
            async with gate:
                await self.put(owner, session_id, record, feedback.get(record.turn))

        await asyncio.gather(*(write(record) for record in records))

    async def of_session(self, owner: str, session_id: str) -> list[TurnRecord]:
        return [row.record for row in await self.rows_of_session(owner, session_id)]

    async def of_owner(self, owner: str) -> list[TurnRecord]:
        return [row.record for row in await self.rows_of_owner(owner)]

    async def rows_of_session(self, owner: str, session_id: str) -> list[TurnRow]:
        return [turn_row(item) for item in await self._session_documents(owner, session_id)]

    async def rows_of_owner(self, owner: str, since: str | None = None, before: str | None = None) -> list[TurnRow]:
        """An owner's turns completed from `since` and before `before` (ISO times or days; None: unbounded): a
        cross-partition query over the turns container, bounded on the indexed `completed_at`."""
        query = "SELECT * FROM c WHERE c.userId = @owner AND c.type = 'turn'"
        parameters: dict[str, Any] = {"owner": owner}
        if since is not None:
            query += " AND c.completed_at >= @since"
            parameters["since"] = since
        if before is not None:
            query += " AND c.completed_at < @before"
            parameters["before"] = before
        return [turn_row(item) for item in await self._database.query("turns", query, parameters)]

    async def charges_since(self, owner: str, since: str) -> tuple[dict[str, Charge], float]:
        """The owner's turns that ran (not imported or forked copies) completed since `since` (ISO), as budgets
        count them, by document id; and the request charge of the read in RU (cross-partition: turns are
        partitioned by session)."""
        query = (
            "SELECT c.id, c.backend, c.cost, c.summary_cost, c.input_tokens, c.output_tokens, c.completed_at FROM c "
            "WHERE c.userId = @owner AND c.type = 'turn' AND c.completed_at >= @since"
        )
        parameters = {"owner": owner, "since": since}
        charges: list[float] = []
        items = await self._database.query("turns", query, parameters, charges=charges)
        return {str(item["id"]): charge_of(item) for item in items if item.get("backend")}, sum(charges)

    async def routed_since(self, since: str) -> list[dict[str, Any]]:
        """Every owner's turns completed since `since` (ISO): their routing fields and feedback, for calibration
        (an operator's cross-partition read; never part of a request)."""
        query = (
            "SELECT c.complexity, c.backend, c.route_requested, c.router_version, c.imported, c.feedback "
            "FROM c WHERE c.type = 'turn' AND c.completed_at >= @since"
        )
        return await self._database.query("turns", query, {"since": since})

    async def sessions_of_owner(self, owner: str) -> set[str]:
        """Session ids the owner has turn records of (cross-partition: turns are partitioned by session)."""
        query = "SELECT c.sessionId FROM c WHERE c.userId = @owner AND c.type = 'turn'"
        return {item["sessionId"] for item in await self._database.query("turns", query, {"owner": owner})}

    async def owners_of_session(self, session_id: str) -> set[str]:
        """Owner keys that have turn records under this session id (one partition)."""
        query = "SELECT c.userId FROM c WHERE c.sessionId = @session AND c.type = 'turn'"
        items = await self._database.query("turns", query, {"session": session_id}, partition=session_id)
        return {item["userId"] for item in items}

    async def delete_session(self, owner: str, session_id: str) -> int:
        """Delete a session's turn documents; returns how many were removed."""
        query = "SELECT c.id FROM c WHERE c.sessionId = @session AND c.userId = @owner"
        parameters = {"session": session_id, "owner": owner}
        ids = [item["id"] for item in await self._database.query("turns", query, parameters, partition=session_id)]
        return await self._delete([(item_id, session_id) for item_id in ids])

    async def delete_owner(self, owner: str, keep_sessions: frozenset[str] = frozenset()) -> int:
        """Delete every turn document of the owner except those of `keep_sessions` (cross-partition)."""
        query = "SELECT c.id, c.sessionId FROM c WHERE c.userId = @owner"
        items = await self._database.query("turns", query, {"owner": owner})
        return await self._delete(
            [(item["id"], item["sessionId"]) for item in items if item["sessionId"] not in keep_sessions]
        )

    async def repair(
        self, owner: str, session_id: str, records: Sequence[TurnRecord], feedback: Mapping[int, Feedback]
    ) -> int:
        """Write every record whose document is missing or not exactly what a turn writes now; returns how many
        were written. A document of an older schema version is rewritten whole in the current one (and so shrinks
        to what Cosmos keeps): reconcile migrates the sessions it visits."""
        stored = {int(item["turn"]): item for item in await self._session_documents(owner, session_id)}
        repaired = 0
        for record in records:
            expected = turn_document(owner, session_id, record, feedback.get(record.turn))
            current = stored.get(record.turn)
            if current is None or not is_current(current, expected):
                await self._database.upsert("turns", expected)
                repaired += 1
        return repaired

    async def _session_documents(self, owner: str, session_id: str) -> list[dict[str, Any]]:
        query = (
            "SELECT * FROM c WHERE c.sessionId = @session AND c.userId = @owner AND c.type = 'turn' ORDER BY c.turn ASC"
        )
        parameters = {"session": session_id, "owner": owner}
        return await self._database.query("turns", query, parameters, partition=session_id)

    async def _delete(self, items: Sequence[tuple[str, str]]) -> int:
        removed = 0
        for item_id, partition in items:
            with contextlib.suppress(CosmosResourceNotFoundError):
                await self._container.delete_item(item_id, partition_key=partition)
                removed += 1
        return removed
