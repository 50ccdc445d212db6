"""Routing metadata in Azure Cosmos DB: the turn, summary and audit stores over one database.

Blob Storage is the source of truth; everything here can be rebuilt from the snapshots (reconcile). Every
query is parameterized and carries its partition-key filter in the SQL text, and every one of them lives in
this package. `MetadataStore` gathers the three stores and the operations that span two of them.
"""

from __future__ import annotations

from collections.abc import Mapping

from azure.cosmos.aio import CosmosClient

from shared.aio import both
from shared.domain.feedback import Feedback
from shared.domain.records import TurnRecord
from shared.domain.sessions import SessionSummary
from shared.storage.audit import AuditStore
from shared.storage.cosmos import ContainerNames, CosmosDatabase
from shared.storage.summaries import SummaryStore
from shared.storage.turns import TurnStore


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
        audit_retention_days: int = 365,
    ) -> None:
        names = ContainerNames(turns_container, sessions_container, audit_container)
        self.database = CosmosDatabase(client, database, names, create_resources=create_resources)
        self.turns = TurnStore(self.database)
        self.sessions = SummaryStore(self.database)
        self.audit = AuditStore(self.database, audit_retention_days)

    async def ensure_resources(self) -> None:
        await self.database.ensure_resources()

    async def recreate_missing(self) -> bool:
        return await self.database.recreate_missing()

    async def ping(self) -> None:
        await self.database.ping()

    async def record_turn(self, summary: SessionSummary, record: TurnRecord) -> float:
        """Write one turn and the session's summary: idempotent upserts to different containers, written
        concurrently (one round trip instead of two). Returns their request charge (RU).

        Both writes end before this returns, even when one fails: the first failure is raised then (Cosmos is
        derived data; the caller logs it and reconcile repairs), and no write of this turn can land after the
        next turn's."""
        turn, session = await both(
            self.turns.put(summary.owner, summary.session_id, record), self.sessions.put(summary)
        )
        return float(turn + session)

    async def record_session(
        self, summary: SessionSummary, records: list[TurnRecord], feedback: Mapping[int, Feedback]
    ) -> None:
        """Every turn record of a session written at once (an import or a fork), then its summary."""
        await self.turns.put_many(summary.owner, summary.session_id, records, feedback)
        await self.put_summary(summary)

    async def put_summary(self, summary: SessionSummary) -> None:
        await self.sessions.put(summary)

    async def session_turns(self, owner: str, session_id: str) -> list[TurnRecord]:
        return await self.turns.of_session(owner, session_id)

    async def owner_turns(self, owner: str) -> list[TurnRecord]:
        return await self.turns.of_owner(owner)

    async def summary(self, owner: str, session_id: str) -> SessionSummary | None:
        return await self.sessions.get(owner, session_id)

    async def list_sessions(
        self, owner: str, limit: int, cursor: str | None = None
    ) -> tuple[list[SessionSummary], str | None]:
        """Newest first, `limit` at a time, with the cursor of the next page (None on the last)."""
        return await self.sessions.page(owner, limit, cursor)

    async def delete_session(self, owner: str, session_id: str) -> int:
        """Delete a session's turn documents, then its summary (last: a crash leaves it to be found by the
        orphan pass); returns how many documents were removed."""
        removed = await self.turns.delete_session(owner, session_id)
        return removed + await self.sessions.delete(owner, session_id)

    async def sessions_of_owner(self, owner: str) -> set[str]:
        """Every session id the owner has a summary or a turn record of."""
        return await self.sessions.sessions_of_owner(owner) | await self.turns.sessions_of_owner(owner)
