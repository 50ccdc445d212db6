"""One Cosmos DB database and its three containers, with recovery from missing resources.

The stores (`turns.py`, `summaries.py`, `audit.py`) run every query and write through `again_if_missing`:
the local emulator keeps everything in memory and comes back empty after a restart, so a 404 from an upsert
or a query (a missing database or container, never a missing item) recreates them once, when this process
may (`COSMOS_CREATE_RESOURCES`). In Azure the resources come from Bicep and a 404 is raised as it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.cosmos import PartitionKey
from azure.cosmos.aio import ContainerProxy, CosmosClient
from azure.cosmos.exceptions import CosmosResourceExistsError, CosmosResourceNotFoundError

from shared.storage.indexing import Kind, indexing_policy

logger = logging.getLogger(__name__)

TURNS_PARTITION_KEY = "/sessionId"
SESSIONS_PARTITION_KEY = "/userId"
AUDIT_PARTITION_KEY = "/sessionId"
T = TypeVar("T")
_PARTITION_KEYS: dict[Kind, str] = {
    "turns": TURNS_PARTITION_KEY,
    "sessions": SESSIONS_PARTITION_KEY,
    "audit": AUDIT_PARTITION_KEY,
}


@dataclass(frozen=True)
class ContainerNames:
    turns: str
    sessions: str
    audit: str


class CosmosDatabase:
    """The database and its containers. Only the stores of this package use `container()`."""

    def __init__(
        self, client: CosmosClient, database: str, names: ContainerNames, *, create_resources: bool = False
    ) -> None:
        self._client = client
        self._name = database
        self._names = names
        self._create_resources = create_resources
        self._database = client.get_database_client(database)
        self._recreating = asyncio.Lock()  # concurrent writes that all found the database gone recreate it once
        self._containers: dict[Kind, ContainerProxy] = {
            kind: self._database.get_container_client(getattr(names, kind)) for kind in _PARTITION_KEYS
        }

    def container(self, kind: Kind) -> ContainerProxy:
        return self._containers[kind]

    async def ensure_resources(self) -> None:
        """Create the database and containers if missing, with their indexing policies: local emulator only (in
        Azure, Bicep does it). Another process creating them at the same moment makes the create answer 409; the
        second attempt then reads them. An existing container keeps the policy it has."""
        for attempt in (1, 2):
            try:
                database = await self._client.create_database_if_not_exists(self._name)
                for kind, partition in _PARTITION_KEYS.items():
                    await database.create_container_if_not_exists(
                        getattr(self._names, kind), PartitionKey(path=partition), indexing_policy=indexing_policy(kind)
                    )
                return
            except CosmosResourceExistsError:
                if attempt == 2:
                    raise

    async def recreate_missing(self) -> bool:
        """Create the database and containers if missing and this process may; False when it may not."""
        if not self._create_resources:
            return False
        async with self._recreating:
            await self.ensure_resources()
        return True

    async def again_if_missing(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run a write or query, and once more after recreating the resources if they were missing."""
        try:
            return await operation()
        except CosmosResourceNotFoundError:
            if not await self.recreate_missing():
                raise
        logger.warning("Cosmos database %s or a container of it was missing: created again", self._name)
        return await operation()

    async def upsert(self, kind: Kind, document: dict[str, Any]) -> float:
        """Create or replace one item; returns the write's request charge in RU (`x-ms-request-charge`)."""
        container = self._containers[kind]
        charges: list[float] = []

        def charged(headers: Any, _: Any) -> None:
            charges.append(_request_charge(headers))

        async def write() -> None:
            await container.upsert_item(document, response_hook=charged)

        await self.again_if_missing(write)
        return sum(charges)

    async def query(
        self,
        kind: Kind,
        query: str,
        parameters: Mapping[str, Any],
        *,
        partition: str | None = None,
        charges: list[float] | None = None,
    ) -> list[dict[str, Any]]:
        """Every item a parameterized query returns (`parameters` maps each `@name` in the text, without its @, to
        its value); within one partition when `partition` is given. With
        `charges`, the request charge (RU, `x-ms-request-charge`) of every response is appended to it."""
        container = self._containers[kind]
        bound = [{"name": f"@{name}", "value": value} for name, value in parameters.items()]

        async def read() -> list[dict[str, Any]]:
            options: dict[str, Any] = {} if partition is None else {"partition_key": partition}
            if charges is not None:
                options["response_hook"] = lambda headers, _: charges.append(_request_charge(headers))
            return [item async for item in container.query_items(query, parameters=bound, **options)]

        return await self.again_if_missing(read)

    async def ping(self) -> None:
        await self._database.read()


def _request_charge(headers: Any) -> float:
    try:
        return float(headers.get("x-ms-request-charge") or 0.0)
    except (TypeError, ValueError):
        return 0.0
