"""Faults injected into the running system: Azurite and the Cosmos DB emulator stopped (and frozen) in the middle of
a run and brought back, and every way a model can fail (timeout, 500, 429 with Retry-After, connection reset,
connection refused, a stream broken halfway).

For each: the client gets a clear error (with Retry-After where it applies), no snapshot is corrupted or
half-written (it loads with its turn count unchanged and its journal decodes member by member), the service
recovers without a restart (the next request succeeds) and reconcile brings Cosmos back in line with Blob.

Retries and timeouts toward Blob, Cosmos and the models come from settings and are bounded: one test of each
proves it by an outcome (an error returned instead of a hang, under a generous pytest timeout; a request count
at the fake model), never by measuring wall-clock time.

Emulators stopped or frozen here are always started or thawed again in a `finally:`, on the same port, so the
rest of the session keeps working (the Cosmos emulator comes back empty: the service must recreate its
database and containers, and reconcile must refill them from Blob).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from shared.domain.ids import ANONYMOUS_OWNER
from tests.api_helpers import SSE_TYPE, async_client, parse_sse, principal
from tests.consistency import (
    assert_cosmos_matches_snapshot,
    assert_well_formed_transcript,
    load_session,
    store_state,
)
from tests.fixtures_app import LiveServer
from tools.emulators import Azurite, CosmosEmulator, EmulatorProcess
from tools.fake_model import Behaviour, FakeModelServer

pytestmark = pytest.mark.timeout(120)

ADMIN = principal("ops-admin", roles=["admin"])
# Small, so an outage answers within seconds (the Blob SDK's default retries wait about 81 s in total).
FAST_STORAGE = {"STORAGE_MAX_RETRIES": "0", "STORAGE_TIMEOUT_SECONDS": "2"}


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


@contextlib.contextmanager
def stopped(emulator: EmulatorProcess) -> Iterator[None]:
    """The emulator is down inside the block and always running again (same port) after it."""
    emulator.stop()
    try:
        yield
    finally:
        emulator.start()


@contextlib.contextmanager
def frozen(emulator: EmulatorProcess) -> Iterator[None]:
    """The emulator's processes are paused (SIGSTOP): connections open but nothing ever answers, like a hung
    service. Always resumed after the block."""
    assert emulator.pid is not None
    os.killpg(emulator.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(emulator.pid, signal.SIGCONT)


async def start_session(api: httpx.AsyncClient, turns: int = 2, **body: Any) -> str:
    session_id = None
    for turn in range(turns):
        payload = {"message": f"hello, message {turn + 1}", **body}
        if session_id is not None:
            payload["session_id"] = session_id
        response = await api.post("/chat", json=payload)
        assert response.status_code == 200, response.text
        session_id = response.json()["session_id"]
    assert session_id is not None
    return session_id


async def assert_intact(env: dict[str, str], session_id: str, turns: int) -> None:
    """The session loads, every blob of it decodes strictly, and it holds exactly `turns` well-formed turns."""
    snapshot = await load_session(env, ANONYMOUS_OWNER, session_id)
    assert snapshot.turns == turns
    assert_well_formed_transcript(snapshot)


async def reconcile_and_check(api: httpx.AsyncClient, env: dict[str, str], session_id: str) -> dict[str, int]:
    """Run reconcile through the admin route; Cosmos then matches the snapshot exactly."""
    response = await api.post("/manage/reconcile", json={"session_id": session_id}, headers=ADMIN)
    assert response.status_code == 200, response.text
    snapshot = await load_session(env, ANONYMOUS_OWNER, session_id)
    await assert_cosmos_matches_snapshot(env, ANONYMOUS_OWNER, snapshot)
    report: dict[str, int] = response.json()
    assert report["failed"] == 0
    return report


async def wait_for_model_call(model: FakeModelServer, count: int, task: asyncio.Task[Any]) -> None:
    for _ in range(2000):
        if len(model.requests) >= count or task.done():
            break
        await asyncio.sleep(0.005)
    assert not task.done(), "the turn ended before the fault was injected"


@pytest.fixture
async def server_env(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]]
) -> AsyncIterator[Callable[..., Any]]:
    """Start a live server on a fresh environment; returns (client, env). Clients are closed after the test."""
    clients: list[httpx.AsyncClient] = []

    def start(**overrides: str) -> tuple[httpx.AsyncClient, dict[str, str]]:
        env = make_env(**overrides)
        client = async_client(live_server(env).url)
        clients.append(client)
        return client, env

    yield start
    for client in clients:
        await client.aclose()


# ---- Azurite down --------------------------------------------------------------------------------------------------


async def test_azurite_stopped_mid_run_answers_503_with_retry_after_and_a_turn_in_flight_saves_nothing_then_recovers(
    server_env: Callable[..., Any], azurite: Azurite, models: dict[str, FakeModelServer]
) -> None:
    api, env = server_env(backends=("local",), **FAST_STORAGE)
    session_id = await start_session(api)
    busy_session = await start_session(api)
    before = await store_state(env)

    models["local"].script(Behaviour.slow(2.0, reply="an answer that will never be saved"))
    in_flight = asyncio.create_task(api.post("/chat", json={"message": "one more", "session_id": busy_session}))
    await wait_for_model_call(models["local"], 5, in_flight)
    with stopped(azurite):
        failed_in_flight = await in_flight
        refused = [
            await api.post("/chat", json={"message": "and now?", "session_id": session_id}),
            await api.post("/chat", json={"message": "a new conversation"}),
            await api.get(f"/sessions/{session_id}"),
            await api.post(f"/sessions/{session_id}/resume"),
            await api.get(f"/sessions/{session_id}/export"),
            await api.post(f"/sessions/{session_id}/fork", json={"at_turn": 1}),
            await api.delete(f"/sessions/{session_id}"),
        ]
        async with api.stream(
            "POST", "/chat", json={"message": "streamed", "session_id": session_id}, headers={"Accept": SSE_TYPE}
        ) as streamed:
            await streamed.aread()

    for response in [failed_in_flight, *refused, streamed]:
        error = error_of(response, 503)
        assert error["code"] == "storage_unavailable", response.request.url
        assert int(response.headers["retry-after"]) >= 1
    # Nothing half-written: every blob byte-identical, no Cosmos turn or summary added.
    after = await store_state(env)
    assert after["blobs"] == before["blobs"]
    assert after["cosmos"]["turns"] == before["cosmos"]["turns"]
    assert after["cosmos"]["sessions"] == before["cosmos"]["sessions"]
    await assert_intact(env, session_id, 2)
    await assert_intact(env, busy_session, 2)

    # Recovered without a restart: the untouched session continues at once.
    response = await api.post("/chat", json={"message": "back again", "session_id": session_id})
    assert response.status_code == 200 and response.json()["turn"] == 3
    # The turn that was in flight may still hold its lease (it could not release it while Azurite was down):
    # the session answers 409 with Retry-After until the lease lapses, or continues; it is never corrupted.
    response = await api.post("/chat", json={"message": "and the busy one", "session_id": busy_session})
    assert response.status_code in (200, 409), response.text
    if response.status_code == 409:
        assert error_of(response, 409)["code"] == "session_busy" and "retry-after" in response.headers
    await assert_intact(env, busy_session, 3 if response.status_code == 200 else 2)
    await assert_intact(env, session_id, 3)
    for sid in (session_id, busy_session):
        await reconcile_and_check(api, env, sid)


async def test_a_streamed_turn_whose_save_fails_because_azurite_went_down_ends_with_an_error_event(
    server_env: Callable[..., Any], azurite: Azurite, models: dict[str, FakeModelServer]
) -> None:
    api, env = server_env(backends=("local",), **FAST_STORAGE)
    session_id = await start_session(api)
    before = await store_state(env)
    models["local"].script(Behaviour.text("a streamed answer in several words", delay=2.0))
    body = {"message": "stream this", "session_id": session_id}

    async def stream() -> tuple[httpx.Response, list[Any]]:
        async with api.stream("POST", "/chat", json=body, headers={"Accept": SSE_TYPE}) as response:
            return response, list(parse_sse([line async for line in response.aiter_lines()]))

    task = asyncio.create_task(stream())
    await wait_for_model_call(models["local"], 3, task)
    with stopped(azurite):
        response, events = await task

    assert response.status_code == 200  # the status line went out with the route event
    names = [event.name for event in events]
    assert names[0] == "route" and names[-1] == "error" and "done" not in names, names
    assert events[-1].data["code"] == "storage_unavailable" and events[-1].data["status"] == 503
    after = await store_state(env)
    assert after["blobs"] == before["blobs"]
    await assert_intact(env, session_id, 2)
    new = await start_session(api, turns=1)
    await assert_intact(env, new, 1)
    await reconcile_and_check(api, env, session_id)


# ---- Cosmos DB down, and back empty ----------------------------------------------------------------------------------


async def test_cosmos_stopped_then_back_empty_turns_still_land_and_reconcile_refills_cosmos_from_blob(
    server_env: Callable[..., Any], cosmos_emulator: CosmosEmulator
) -> None:
    api, env = server_env(backends=("local",), **FAST_STORAGE)
    session_id = await start_session(api)
    with stopped(cosmos_emulator):
        # Blob is the source of truth: the turn is saved although its metadata cannot be written.
        during = await api.post("/chat", json={"message": "while cosmos is down", "session_id": session_id})
        listing = await api.get("/sessions")
        erase = await api.delete("/users/me", headers=principal("someone"))
    assert during.status_code == 200 and during.json()["turn"] == 3, during.text
    assert error_of(listing, 503)["code"] == "storage_unavailable" and "retry-after" in listing.headers
    # An erasure needs its audit proof first: without Cosmos it refuses before deleting anything.
    assert error_of(erase, 503)["code"] == "storage_unavailable"
    await assert_intact(env, session_id, 3)

    # The emulator is back, empty: no database, no containers. The service recreates them on its own.
    after = await api.post("/chat", json={"message": "cosmos is back", "session_id": session_id})
    assert after.status_code == 200 and after.json()["turn"] == 4, after.text
    listed = await api.get("/sessions")
    assert listed.status_code == 200, listed.text
    assert [item["session_id"] for item in listed.json()["sessions"]] == [session_id]
    report = await reconcile_and_check(api, env, session_id)
    assert report["turns_repaired"] == 3  # turns 1-3 were lost with the emulator's memory; turn 4 was written
    listed = (await api.get("/sessions")).json()["sessions"]
    assert listed[0]["turns"] == 4
    await assert_intact(env, session_id, 4)


async def test_reconcile_alone_recreates_an_emptied_cosmos_and_refills_it_from_blob(
    server_env: Callable[..., Any], cosmos_emulator: CosmosEmulator
) -> None:
    api, env = server_env(backends=("local",))
    session_id = await start_session(api)
    with stopped(cosmos_emulator):
        pass
    report = await reconcile_and_check(api, env, session_id)
    assert report["turns_repaired"] == 2 and report["summaries_repaired"] == 1


# ---- the models fail ---------------------------------------------------------------------------------------------

MODEL_FAULTS = {
    # name: (behaviour, status, error code, Retry-After expected)
    "timeout": (Behaviour.slow(3.0), 504, "backends_failed", None),
    "server error": (Behaviour.error(500), 502, "backends_failed", "5"),
    # A short Retry-After: the backend is cooled for that long (BACKEND_COOLDOWN_*), and the test waits it out.
    "rate limited": (Behaviour.rate_limited(retry_after=2), 429, "backends_failed", "2"),
    "connection reset": (Behaviour.reset(), 502, "backends_failed", None),
    "broken answer": (Behaviour.broken_stream("a reply that breaks off halfway"), 502, "backends_failed", None),
}


@pytest.mark.parametrize("fault", list(MODEL_FAULTS))
async def test_a_failing_model_gives_a_clear_error_leaves_the_session_intact_and_the_next_turn_succeeds(
    fault: str, server_env: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    behaviour, status, code, retry_after = MODEL_FAULTS[fault]
    api, env = server_env(backends=("local",), MODEL_TIMEOUT_SECONDS="0.5", MODEL_MAX_RETRIES="0")
    session_id = await start_session(api)
    before = await store_state(env)

    models["local"].script(behaviour)
    response = await api.post("/chat", json={"message": "this one fails", "session_id": session_id})

    error = error_of(response, status)
    if code is not None:
        assert error["code"] == code
    assert "local" in error["message"]
    if retry_after is None:
        assert "retry-after" not in response.headers
    else:
        assert response.headers["retry-after"] == retry_after
    after = await store_state(env)
    assert after["blobs"] == before["blobs"]
    assert after["cosmos"]["turns"] == before["cosmos"]["turns"]
    assert after["cosmos"]["sessions"] == before["cosmos"]["sessions"]
    await assert_intact(env, session_id, 2)
    if fault == "rate limited":
        # The backend asked for time: until its Retry-After has passed, a turn does not call it at all.
        calls = len(models["local"].requests)
        cooling = await api.post("/chat", json={"message": "too soon", "session_id": session_id})
        assert error_of(cooling, 503)["code"] == "backends_cooling_down" and len(models["local"].requests) == calls
        assert 1 <= int(cooling.headers["retry-after"]) <= 2
        await asyncio.sleep(2.0)

    recovered = await api.post("/chat", json={"message": "and now it works", "session_id": session_id})
    assert recovered.status_code == 200 and recovered.json()["turn"] == 3
    await assert_intact(env, session_id, 3)
    report = await reconcile_and_check(api, env, session_id)
    assert report["turns_repaired"] == 0 and report["summaries_repaired"] == 0


async def test_a_model_refusing_connections_is_502_and_the_session_continues_once_it_is_back(
    server_env: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    api, env = server_env(backends=("local",))
    session_id = await start_session(api)
    before = await store_state(env)
    models["local"].stop()  # same port on start(): connections are refused meanwhile
    try:
        response = await api.post("/chat", json={"message": "anyone there?", "session_id": session_id})
    finally:
        models["local"].start()
    error = error_of(response, 502)
    assert error["code"] == "backends_failed" and "local (connection)" in error["message"]
    after = await store_state(env)
    assert (after["blobs"], after["cosmos"]["turns"]) == (before["blobs"], before["cosmos"]["turns"])
    recovered = await api.post("/chat", json={"message": "back", "session_id": session_id})
    assert recovered.status_code == 200 and recovered.json()["turn"] == 3
    await assert_intact(env, session_id, 3)
    await reconcile_and_check(api, env, session_id)


async def test_a_stream_broken_halfway_ends_with_a_stream_broken_event_and_saves_nothing(
    server_env: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    api, env = server_env(backends=("local",))
    session_id = await start_session(api)
    before = await store_state(env)
    models["local"].script(Behaviour.broken_stream("one two three four five six seven eight nine ten"))
    body = {"message": "stream and break", "session_id": session_id}
    async with api.stream("POST", "/chat", json=body, headers={"Accept": SSE_TYPE}) as response:
        events = list(parse_sse([line async for line in response.aiter_lines()]))
    names = [event.name for event in events]
    assert names[0] == "route" and "delta" in names and names[-1] == "error", names
    assert events[-1].data["code"] == "stream_broken" and events[-1].data["status"] == 502
    after = await store_state(env)
    assert (after["blobs"], after["cosmos"]["turns"]) == (before["blobs"], before["cosmos"]["turns"])
    await assert_intact(env, session_id, 2)
    recovered = await api.post("/chat", json={"message": "again", "session_id": session_id})
    assert recovered.status_code == 200 and recovered.json()["turn"] == 3
    await reconcile_and_check(api, env, session_id)


# ---- retries and timeouts come from settings and are bounded -----------------------------------------------------


@pytest.mark.parametrize(
    ("retries", "status", "outcomes"),
    [("0", 502, ["error 500"]), ("2", 200, ["error 500", "error 500", "reply"])],
)
async def test_model_max_retries_from_settings_is_how_often_a_backend_is_retried(
    retries: str, status: int, outcomes: list[str], server_env: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    api, _ = server_env(backends=("local",), MODEL_MAX_RETRIES=retries)
    models["local"].script(Behaviour.error(500, retry_after=0.05), Behaviour.error(500, retry_after=0.05))
    response = await api.post("/chat", json={"message": "is this retried?"})
    assert response.status_code == status, response.text
    assert [request["outcome"] for request in models["local"].requests] == outcomes


async def test_a_hung_model_is_abandoned_after_model_timeout_seconds(
    server_env: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    api, _ = server_env(backends=("local",), MODEL_TIMEOUT_SECONDS="0.5", MODEL_MAX_RETRIES="0")
    models["local"].script(Behaviour.slow(30.0))
    response = await api.post("/chat", json={"message": "are you there?"})
    assert error_of(response, 504)["code"] == "backends_failed"
    for _ in range(500):  # the fake model notices the hang-up on its own thread
        if models["local"].requests[0]["outcome"] != "pending":
            break
        await asyncio.sleep(0.01)
    assert models["local"].requests[0]["outcome"] == "client_disconnected"


@pytest.mark.timeout(60)
async def test_a_hung_blob_service_fails_the_request_instead_of_hanging(
    server_env: Callable[..., Any], azurite: Azurite
) -> None:
    api, env = server_env(backends=("local",), STORAGE_MAX_RETRIES="0", STORAGE_TIMEOUT_SECONDS="1")
    session_id = await start_session(api)
    with frozen(azurite):
        response = await api.get(f"/sessions/{session_id}")
    assert error_of(response, 503)["code"] == "storage_unavailable"
    recovered = await api.get(f"/sessions/{session_id}")
    assert recovered.status_code == 200
    await assert_intact(env, session_id, 2)


@pytest.mark.timeout(90)
async def test_a_hung_cosmos_fails_reads_instead_of_hanging_and_turns_still_land(
    server_env: Callable[..., Any], cosmos_emulator: CosmosEmulator
) -> None:
    api, env = server_env(backends=("local",), STORAGE_MAX_RETRIES="0", STORAGE_TIMEOUT_SECONDS="1")
    session_id = await start_session(api)
    with frozen(cosmos_emulator):
        listing = await api.get("/sessions")
        turn = await api.post("/chat", json={"message": "cosmos hangs", "session_id": session_id})
    assert error_of(listing, 503)["code"] == "storage_unavailable"
    assert turn.status_code == 200 and turn.json()["turn"] == 3
    await assert_intact(env, session_id, 3)
    # The metadata write that timed out may still land once the emulator thaws; either way reconcile settles it.
    await reconcile_and_check(api, env, session_id)
