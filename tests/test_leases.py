"""The session lease: held for exactly one turn, released however the turn ends, and never bypassed.

These protect the races a review found: a delete racing a turn, a client hanging up mid-stream, and a
compaction by a writer whose read went stale.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from azure.storage.blob.aio import ContainerClient

from shared.app import Services
from shared.domain.clock import utc_iso
from shared.domain.errors import SessionBusy, SessionConflict
from shared.storage.snapshots import SnapshotStore
from tests.fixtures_app import LiveServer
from tests.test_snapshots import T0, grow, make_entry
from tools.fake_model import Behaviour, FakeModelServer


async def wait_for_request(server: FakeModelServer, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(server.requests) < count:
        assert time.monotonic() < deadline, "the model never received the request"
        await asyncio.sleep(0.02)


async def test_deleting_a_session_while_a_turn_runs_is_refused_and_touches_nothing(
    services: Services, models: dict[str, FakeModelServer]
) -> None:
    conversations = services.conversations
    session = (await conversations.chat("alice", "turn 1", route="local")).session_id
    for turn in (2, 3, 4):
        await conversations.chat("alice", f"turn {turn}", session, route="local")
    models["local"].script(Behaviour.slow(1.0, reply="slow answer"))
    running = asyncio.create_task(conversations.chat("alice", "turn 5", session, route="local"))
    await wait_for_request(models["local"], 5)
    with pytest.raises(SessionBusy):
        await conversations.delete("alice", session)
    assert (await running).turn == 5
    loaded = await services.snapshots.load("alice", session)
    assert loaded.turns == 5, "the refused delete must not have removed any journal"
    assert await conversations.delete("alice", session) is True


async def test_a_compaction_from_a_stale_read_is_refused_and_loses_no_saved_turn(container: ContainerClient) -> None:
    """A writer that lost its lease and read an old snapshot must not reset the journal others append to."""
    store = SnapshotStore(container, compact_every=1)  # every save that can compact does
    await grow(store, "alice", "s", 2)
    stale = await store.load("alice", "s")
    for turn in (3, 4):  # another writer moves on, compacting and appending
        when = T0.replace(hour=10 + turn)
        async with store.locked("alice", "s") as lock:
            before = await store.load("alice", "s")
            await store.append(lock, before, before.with_entry(make_entry(turn, when), utc_iso(when), {}))
    assert (await store.load("alice", "s")).generation > stale.generation
    async with store.locked("alice", "s") as lock:
        with pytest.raises(SessionConflict):
            await store.append(lock, stale, stale.with_entry(make_entry(3, text="stale"), utc_iso(T0), {}))
    loaded = await store.load("alice", "s")
    assert [entry.turn for entry in loaded.entries] == [1, 2, 3, 4]
    assert all("stale" not in message["content"] for message in loaded.openai_messages())


def test_a_client_hanging_up_mid_stream_frees_the_session_at_once(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer]
) -> None:
    server = live_server()
    with httpx.Client(base_url=server.url, timeout=30) as api:
        session = api.post("/chat", json={"message": "hello", "route": "local"}).json()["session_id"]
        reply = " ".join(f"word{n}" for n in range(40))
        models["local"].script(Behaviour.text(reply, chunk_delay=0.3))  # about 5 s of streaming
        body = {"message": "tell me a long story", "session_id": session, "route": "local", "stream": True}
        with api.stream("POST", "/chat", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("event: delta"):
                    break  # hang up in the middle of the answer
        statuses: list[int] = []
        deadline = time.monotonic() + 15  # far below the 60 s a leaked lease would block the session
        while time.monotonic() < deadline:
            answer: Any = api.post("/chat", json={"message": "are you there?", "session_id": session, "route": "local"})
            statuses.append(answer.status_code)
            if answer.status_code == 200:
                break
            assert answer.status_code == 409, answer.text
            time.sleep(0.25)
    assert statuses[-1] == 200, f"the session stayed blocked after the client hung up: {statuses}"
