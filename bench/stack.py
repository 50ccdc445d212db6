"""Both conversation stores, side by side in one process, against the same emulators and the same fake model.

Ours: `shared.conversation.Conversations` with the real snapshot and metadata stores (timed subclasses, see
`bench.instrument`) and the real backends (`shared.backends.build_backends`: an Agent Framework `Agent` over
`OpenAIChatCompletionClient`), configured with a local and a cloud backend that both point at one fake model
process answering at once. Theirs: an Agent Framework `Agent` over the same kind of client and the same fake
model, with `CosmosHistoryProvider` as its only context provider, in a container of its own in the same
Cosmos emulator. Both stream the reply.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import openai
from agent_framework import Agent, AgentSession, Message
from agent_framework.openai import OpenAIChatCompletionClient
from azure.cosmos import PartitionKey
from azure.cosmos.aio import ContainerProxy, CosmosClient
from azure.storage.blob.aio import BlobServiceClient

from bench.env import FakeModel
from bench.instrument import Phases, TimedHistoryProvider, TimedMetadataStore, TimedSnapshotStore
from shared.agents.backends import Backend, build_backends
from shared.config import Settings
from shared.services.conversations import Conversations
from shared.services.events import TurnResult
from shared.storage.transport import RoundTrips, SharedSession, counting
from tools.emulators import Azurite, CosmosEmulator

MODELS = {"local": "llama3.2", "cloud": "gpt-4o-mini"}
SOURCE_ID = "azure_cosmos_history"  # CosmosHistoryProvider.DEFAULT_SOURCE_ID


def settings_env(azurite: Azurite, cosmos: CosmosEmulator, model: FakeModel, suffix: str) -> dict[str, str]:
    return {
        "STORAGE_CONNECTION_STRING": azurite.connection_string,
        "SNAPSHOT_CONTAINER": f"bench-{suffix}",
        "COSMOS_ENDPOINT": cosmos.endpoint,
        "COSMOS_KEY": cosmos.key,
        "COSMOS_DATABASE": f"bench-{suffix}",
        "LOCAL_MODEL_ENDPOINT": model.base_url,
        "LOCAL_MODEL_NAME": MODELS["local"],
        "CLOUD_MODEL_ENDPOINT": model.base_url,
        "CLOUD_MODEL_NAME": MODELS["cloud"],
        "CLOUD_MODEL_API_KEY": "fake-key",
        "MODEL_TIMEOUT_SECONDS": "60",
    }


@dataclass
class TheirTurn:
    total_ms: float
    phases: dict[str, Any]
    reply: str


@dataclass
class Stack:
    settings: Settings
    model: FakeModel
    phases: Phases
    snapshots: TimedSnapshotStore
    metadata: TimedMetadataStore
    backends: dict[str, Backend]
    conversations: Conversations
    cosmos: CosmosClient
    their_database: Any
    _closers: list[Any] = field(default_factory=list)
    _their: dict[str, tuple[Agent, TimedHistoryProvider, ContainerProxy]] = field(default_factory=dict)

    # ---- ours --------------------------------------------------------------------------------------------------

    async def our_turn(
        self, owner: str, message: str, reply: str, session_id: str | None
    ) -> tuple[TurnResult, float, RoundTrips]:
        """One real turn through `Conversations.chat`: the result, the wall time in ms and its storage round trips
        (ours only: the same Cosmos client serves theirs, but theirs runs outside this block)."""
        self.model.script([reply], when=message)
        self.phases.clear()
        started = time.perf_counter()
        with counting() as trips:
            result = await self.conversations.chat(owner, message, session_id)
        return result, (time.perf_counter() - started) * 1000.0, trips

    # ---- theirs ------------------------------------------------------------------------------------------------

    async def their_container(self, name: str) -> ContainerProxy:
        if name not in self._their:
            container = await self.their_database.create_container_if_not_exists(
                id=name, partition_key=PartitionKey(path="/session_id")
            )
            provider = TimedHistoryProvider(container_client=container, phases=Phases())
            client = openai.AsyncOpenAI(base_url=self.model.base_url, api_key="fake-key", max_retries=0, timeout=60)
            self._closers.append(client.close)
            agent = Agent(
                client=OpenAIChatCompletionClient(model=MODELS["local"], async_client=client),
                name="router-local",
                context_providers=[provider],
            )
            self._their[name] = (agent, provider, container)
        return self._their[name][2]

    def their_provider(self, name: str) -> TimedHistoryProvider:
        return self._their[name][1]

    async def their_turn(self, container_name: str, session_id: str, message: str, reply: str) -> TheirTurn:
        await self.their_container(container_name)
        agent, provider, _ = self._their[container_name]
        self.model.script([reply])
        provider.phases.clear()
        started = time.perf_counter()
        stream = agent.run(message, session=AgentSession(session_id=session_id), stream=True)
        async for _update in stream:
            pass
        response = await stream.get_final_response()
        total = (time.perf_counter() - started) * 1000.0
        return TheirTurn(total, dict(provider.phases), response.text)

    async def their_messages(self, container_name: str, session_id: str) -> list[Message]:
        return await self.their_provider(container_name).get_messages(session_id)

    async def close(self) -> None:
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                await closer()


async def build_stack(azurite: Azurite, cosmos: CosmosEmulator, model: FakeModel, label: str) -> Stack:
    suffix = f"{label}-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env(settings_env(azurite, cosmos, model, suffix))
    phases = Phases()
    closers: list[Any] = []
    session = SharedSession()  # the service's own transport: one aiohttp session, requests countable
    closers.append(session.close)
    blob_service = BlobServiceClient.from_connection_string(
        settings.storage_connection_string or "", transport=session.transport("blob")
    )
    closers.append(blob_service.close)
    snapshots = TimedSnapshotStore(
        blob_service.get_container_client(settings.snapshot_container),
        compact_every=settings.snapshot_compact_every,
        phases=phases,
    )
    await snapshots.ensure_container()
    cosmos_client = CosmosClient(
        settings.cosmos_endpoint, credential=settings.cosmos_key or "", transport=session.transport("cosmos")
    )
    closers.append(cosmos_client.close)
    metadata = TimedMetadataStore(
        cosmos_client,
        settings.cosmos_database,
        settings.cosmos_turns_container,
        settings.cosmos_sessions_container,
        settings.cosmos_audit_container,
        phases=phases,
    )
    await metadata.ensure_resources()
    backends = build_backends(settings)
    closers += [backend.close for backend in backends.values()]
    conversations = Conversations(settings, snapshots, metadata, backends)
    their_database = await cosmos_client.create_database_if_not_exists(f"theirs-{suffix}")
    return Stack(
        settings, model, phases, snapshots, metadata, backends, conversations, cosmos_client, their_database, closers
    )


def transcript_of(messages: list[Message]) -> list[tuple[str, str]]:
    return [(str(message.role), message.text) for message in messages]


def order_report(expected: list[tuple[str, str]], got: list[tuple[str, str]]) -> dict[str, Any]:
    """How a resumed transcript differs from the one written: exact match, misplaced messages, swapped pairs."""
    misplaced = sum(1 for index, item in enumerate(got) if index >= len(expected) or expected[index] != item)
    position = {item: index for index, item in enumerate(got)}
    swapped = 0
    for index in range(0, len(expected) - 1, 2):
        user, assistant = expected[index], expected[index + 1]
        if user in position and assistant in position and position[user] > position[assistant]:
            swapped += 1
    return {
        "messages": len(expected),
        "returned": len(got),
        "in_order": got == expected,
        "misplaced": misplaced,
        "exchanges_reversed": swapped,
    }


async def sort_key_ties(container: Any, session_id: str) -> tuple[int, int]:
    """(documents, documents whose sort_key equals another's) of a CosmosHistoryProvider session, as Cosmos
    returns them: the ties are what can reorder a transcript."""
    keys = [
        item["sort_key"]
        async for item in container.query_items(
            "SELECT c.sort_key FROM c WHERE c.session_id = @s",
            parameters=[{"name": "@s", "value": session_id}],
            partition_key=session_id,
        )
    ]
    counts: dict[Any, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return len(keys), sum(count for count in counts.values() if count > 1)
