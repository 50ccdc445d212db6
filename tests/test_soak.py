"""Concurrency soak: many clients, many turns, against the dev server run as its own process (`python -m
tools.devserver`, as `make run` does), on one shared session and on sessions of their own.

What must hold however the turns interleave: every turn answered 2xx is in the snapshot exactly once, at the
turn number its answer gave, and in Cosmos exactly once; every refused turn got a 409 before its model was
called and left no trace; readers polling meanwhile only ever see whole, well-formed transcripts; the final
transcripts alternate user/assistant. Half of the clients stream (SSE), half take JSON. N and M are small and
fixed so the soak takes seconds; it is bounded in requests (N x M per workload) and by a pytest timeout.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.domain.ids import ANONYMOUS_OWNER
from tests.api_helpers import SSE_TYPE, async_client, parse_sse
from tests.consistency import assert_cosmos_matches_snapshot, assert_well_formed_transcript, load_session
from tests.fixtures_app import service_env
from tools.emulators import Azurite, CosmosEmulator, free_port
from tools.fake_model import Behaviour, FakeModelServer

CLIENTS = 8  # N
TURNS = 6  # M, per client
MODEL_DELAY = 0.05  # long enough for turns on one session to overlap
REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(180)


class DevServerProcess:
    """`python -m tools.devserver` in a child process of its own; stopped by its pid (SIGTERM, then SIGKILL)."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self._env = {**os.environ, **env}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> DevServerProcess:
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tools.devserver", "--port", str(self.port)],
                cwd=REPO,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dev server exited with {self._process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"dev server did not become healthy:\n{self.logs()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def soak_server(
    azurite: Azurite,
    cosmos_emulator: CosmosEmulator,
    model_servers: dict[str, FakeModelServer],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[DevServerProcess, dict[str, str]]]:
    env = service_env(azurite, cosmos_emulator, model_servers)
    server = DevServerProcess(env, tmp_path_factory.mktemp("soak") / "devserver.log").start()
    yield server, env
    server.stop()


@pytest.fixture
def slow_models(models: dict[str, FakeModelServer]) -> dict[str, FakeModelServer]:
    for server in models.values():
        server.set_default(Behaviour.slow(MODEL_DELAY))
    return models


@dataclass
class Outcome:
    client: int
    message: str
    status: int
    turn: int | None = None
    reply: str | None = None
    session_id: str | None = None


async def send_turn(api: httpx.AsyncClient, message: str, session_id: str | None, stream: bool) -> Outcome:
    """One turn, as JSON or as an SSE stream; a stream must end with `done`, never with `error`."""
    body: dict[str, Any] = {"message": message}
    if session_id is not None:
        body["session_id"] = session_id
    if not stream:
        response = await api.post("/chat", json=body)
        answer = response.json() if response.status_code == 200 else {}
        return Outcome(
            -1, message, response.status_code, answer.get("turn"), answer.get("reply"), answer.get("session_id")
        )
    async with api.stream("POST", "/chat", json=body, headers={"Accept": SSE_TYPE}) as response:
        if not response.headers.get("content-type", "").startswith(SSE_TYPE):
            await response.aread()
            return Outcome(-1, message, response.status_code)
        events = list(parse_sse([line async for line in response.aiter_lines()]))
    names = [event.name for event in events]
    assert names[0] == "route" and names[-1] == "done", names
    done = events[-1].data
    return Outcome(-1, message, response.status_code, done["turn"], done["reply"], done["session_id"])


async def client_loop(api: httpx.AsyncClient, index: int, session_id: str | None, seed: int) -> AsyncIterator[Outcome]:
    jitter = random.Random(seed)  # noqa: S311 - scheduling jitter, not security
    own_session = session_id
    pause = (0.0, MODEL_DELAY)
    for turn in range(TURNS):
        await asyncio.sleep(jitter.uniform(*pause))
        message = f"client {index} turn {turn}: what is {index} plus {turn}?"
        outcome = await send_turn(api, message, own_session, stream=index % 2 == 1)
        outcome.client = index
        if own_session is None and outcome.status == 200:
            own_session = outcome.session_id
        # Refused: back off a little (less than Retry-After: these clients are impatient on purpose).
        pause = (MODEL_DELAY, 4 * MODEL_DELAY) if outcome.status == 409 else (0.0, MODEL_DELAY)
        yield outcome


async def run_client(api: httpx.AsyncClient, index: int, session_id: str | None, seed: int) -> list[Outcome]:
    return [outcome async for outcome in client_loop(api, index, session_id, seed)]


def last_user_messages(models: dict[str, FakeModelServer]) -> list[str]:
    """The last user message of every chat request the fake models received."""
    found = []
    for server in models.values():
        for request in server.requests:
            users = [m for m in request["json"]["messages"] if m.get("role") == "user"]
            content = users[-1]["content"] if users else ""
            found.append(content if isinstance(content, str) else "".join(part.get("text", "") for part in content))
    return found


async def test_racing_clients_on_one_session_each_turn_lands_once_or_is_refused_with_409_and_leaves_no_trace(
    soak_server: tuple[DevServerProcess, dict[str, str]], slow_models: dict[str, FakeModelServer]
) -> None:
    server, env = soak_server
    async with async_client(server.url) as api:
        first = await send_turn(api, "hello, let us start a shared conversation", None, stream=False)
        assert first.status == 200
        session_id = first.session_id
        assert session_id is not None
        seen_turns: list[int] = []
        stop_reading = asyncio.Event()

        async def reader() -> None:
            # Meanwhile, reads never see a torn or half-written conversation, and turns never go backwards.
            while not stop_reading.is_set():
                view = await api.get(f"/sessions/{session_id}")
                assert view.status_code == 200, view.text
                body = view.json()
                roles = [message["role"] for message in body["messages"]]
                assert roles == ["user", "assistant"] * len(body["turns"]), roles
                assert not seen_turns or len(body["turns"]) >= seen_turns[-1]
                seen_turns.append(len(body["turns"]))
                await asyncio.sleep(0.01)

        reading = asyncio.create_task(reader())
        results = await asyncio.gather(*(run_client(api, index, session_id, index) for index in range(CLIENTS)))
        stop_reading.set()
        await reading

    outcomes = [outcome for batch in results for outcome in batch]
    statuses = {outcome.status for outcome in outcomes}
    assert statuses <= {200, 409}, sorted((o.status, o.message) for o in outcomes if o.status not in (200, 409))
    answered = [outcome for outcome in outcomes if outcome.status == 200]
    refused = [outcome for outcome in outcomes if outcome.status == 409]
    assert answered and refused, f"no contention: {len(answered)} answered, {len(refused)} refused"
    assert len(seen_turns) > 1

    snapshot = await load_session(env, ANONYMOUS_OWNER, session_id)
    assert_well_formed_transcript(snapshot)
    assert snapshot.turns == 1 + len(answered)
    users = [entry.openai_messages[0]["content"] for entry in snapshot.entries]
    for outcome in answered:
        entry = snapshot.entries[outcome.turn - 1]  # type: ignore[operator]
        assert entry.openai_messages[0]["content"] == outcome.message
        assert entry.openai_messages[1]["content"] == outcome.reply
    assert sorted(users[1:]) == sorted(outcome.message for outcome in answered)  # each exactly once
    sent_to_models = last_user_messages(slow_models)
    for outcome in refused:
        assert outcome.message not in users
        assert outcome.message not in sent_to_models, "a refused turn reached a model"
    await assert_cosmos_matches_snapshot(env, ANONYMOUS_OWNER, snapshot)


async def test_concurrent_clients_on_sessions_of_their_own_all_succeed_and_every_turn_is_stored_once(
    soak_server: tuple[DevServerProcess, dict[str, str]], slow_models: dict[str, FakeModelServer]
) -> None:
    server, env = soak_server
    async with async_client(server.url) as api:
        results = await asyncio.gather(*(run_client(api, index, None, 100 + index) for index in range(CLIENTS)))
        listed = (await api.get("/sessions", params={"limit": 100})).json()["sessions"]

    for index, outcomes in enumerate(results):
        assert [outcome.status for outcome in outcomes] == [200] * TURNS, index
        assert [outcome.turn for outcome in outcomes] == list(range(1, TURNS + 1))
        session_ids = {outcome.session_id for outcome in outcomes}
        assert len(session_ids) == 1
        session_id = session_ids.pop()
        assert session_id is not None
        snapshot = await load_session(env, ANONYMOUS_OWNER, session_id)
        assert_well_formed_transcript(snapshot)
        assert [entry.openai_messages[0]["content"] for entry in snapshot.entries] == [o.message for o in outcomes]
        assert [entry.openai_messages[1]["content"] for entry in snapshot.entries] == [o.reply for o in outcomes]
        await assert_cosmos_matches_snapshot(env, ANONYMOUS_OWNER, snapshot)
    own = {outcomes[0].session_id for outcomes in results}
    assert own <= {item["session_id"] for item in listed}
    assert all(item["turns"] == TURNS for item in listed if item["session_id"] in own)
