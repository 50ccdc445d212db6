"""Backend cooldowns with the fake models: after BACKEND_COOLDOWN_FAILURES failures a backend is skipped (not called)
for BACKEND_COOLDOWN_SECONDS, one trial call then decides; a 429's Retry-After cools it for that long; health shows
each backend's state and stays 200 while another backend can answer. Over HTTP with a short cooldown, and on the
services with an injected clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from shared.services.conversations import Conversations
from tests.api_helpers import client, stream_chat
from tests.fixtures_app import LiveServer
from tools.fake_model import Behaviour, FakeModelServer

HARD = (
    "Design a distributed rate limiter for a multi-region API. Compare token bucket and sliding window "
    "approaches, analyze the trade-offs in consistency and latency, and explain step by step how to handle clock skew."
)


def cloud_state(api: httpx.Client, status: int = 200) -> dict[str, Any]:
    health = api.get("/health")
    assert health.status_code == status, health.text
    state: dict[str, Any] = health.json()["backends"]["cloud"]
    return state


def test_three_failures_cool_the_cloud_down_then_one_trial_call_closes_the_circuit(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer]
) -> None:
    server = live_server(BACKEND_COOLDOWN_SECONDS="1.5")
    models["cloud"].script(Behaviour(status=503, times=3))
    with client(server.url) as api:
        for count in range(1, 4):
            route = api.post("/chat", json={"message": HARD}).json()["route"]
            assert (route["backend"], route["fallback_from"]) == ("local", "cloud")
            assert "fell back to local after cloud (server)" in route["reason"]
            assert cloud_state(api)["consecutive_failures"] == count
        assert len(models["cloud"].requests) == 3
        state = cloud_state(api)  # 200: local can still answer
        assert state["state"] == "cooling_down" and 0 < state["cooldown_seconds_left"] <= 1.5
        assert api.get("/health").json()["backends"]["local"]["state"] == "ok"

        # The fourth hard turn does not call the cloud at all: local answers, and the record says why.
        response, events = stream_chat(api, {"message": HARD})
        assert response.status_code == 200 and len(models["cloud"].requests) == 3
        fallback = next(event.data for event in events if event.name == "fallback")
        assert fallback == {"from": "cloud", "error": "cooldown", "to": "local"}
        route = next(event.data for event in events if event.name == "done")["route"]
        assert route["backend"] == "local" and route["fallback_chain"][0]["error"] == "cooldown"
        assert (
            "fell back to local after cloud (cooldown); cloud not called: cooling down after failures"
            in (route["reason"])
        )

        deadline = time.monotonic() + 5
        while cloud_state(api)["state"] != "trial":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        recovered = api.post("/chat", json={"message": HARD}).json()  # the one trial call: it works
        assert recovered["route"]["backend"] == "cloud" and recovered["route"]["fallback_chain"] == []
        assert len(models["cloud"].requests) == 4
        assert cloud_state(api) == {
            "model": "gpt-4o-mini", "state": "ok", "cooldown_seconds_left": None, "consecutive_failures": 0,
        }  # fmt: skip


def test_a_429_with_retry_after_cools_the_backend_for_that_long(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer]
) -> None:
    server = live_server()  # BACKEND_COOLDOWN_SECONDS stays 30: the Retry-After decides
    models["cloud"].script(Behaviour.rate_limited(retry_after=5))
    with client(server.url) as api:
        route = api.post("/chat", json={"message": HARD}).json()["route"]
        assert route["backend"] == "local" and route["fallback_chain"][0]["error"] == "rate_limited"
        state = cloud_state(api)
        assert state["state"] == "cooling_down" and 4 < state["cooldown_seconds_left"] <= 5
        assert state["consecutive_failures"] == 1  # one 429 was enough
        assert api.post("/chat", json={"message": HARD}).json()["route"]["backend"] == "local"
        assert len(models["cloud"].requests) == 1


def test_when_every_backend_is_cooling_down_turns_get_503_and_health_is_degraded(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer]
) -> None:
    server = live_server(backends=("cloud",))
    models["cloud"].script(Behaviour.rate_limited(retry_after=5))
    with client(server.url) as api:
        first = api.post("/chat", json={"message": HARD})
        assert first.status_code == 429 and first.headers["retry-after"] == "5"
        second = api.post("/chat", json={"message": HARD})
        assert second.status_code == 503 and len(models["cloud"].requests) == 1
        assert second.json()["error"]["code"] == "backends_cooling_down"
        assert "cloud (cooldown)" in second.json()["error"]["message"]
        assert second.headers["retry-after"] in ("4", "5")
        assert cloud_state(api, 503)["state"] == "cooling_down"
        assert api.get("/health").json()["status"] == "degraded"


async def test_with_an_injected_clock_a_failed_trial_reopens_the_circuit_and_a_good_one_closes_it(
    make_services: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    services = await make_services()  # BACKEND_COOLDOWN_FAILURES=3, BACKEND_COOLDOWN_SECONDS=30
    ticks = [100.0]
    conversations = Conversations(
        services.settings, services.snapshots, services.metadata, services.backends, monotonic=lambda: ticks[0]
    )
    breaker = conversations.guard.breakers["cloud"]
    cloud = models["cloud"]
    cloud.script(Behaviour(status=500, times=3))
    for _ in range(3):
        assert (await conversations.chat("alice", HARD)).record.backend == "local"
    assert breaker.open_until == 130.0 and len(cloud.requests) == 3

    ticks[0] = 129.9
    skipped = (await conversations.chat("alice", HARD)).record
    assert skipped.backend == "local" and [a.error for a in skipped.fallback_chain] == ["cooldown"]
    assert "cooldown" in skipped.reason and len(cloud.requests) == 3

    ticks[0] = 130.0  # the cooldown is over: one trial call, which fails: open again for the whole cooldown
    cloud.script(Behaviour.error(500))
    assert (await conversations.chat("alice", HARD)).record.backend == "local"
    assert len(cloud.requests) == 4 and breaker.open_until == 160.0
    ticks[0] = 159.0
    assert (await conversations.chat("alice", HARD)).record.backend == "local" and len(cloud.requests) == 4

    ticks[0] = 160.0  # two turns at once when the trial is due: exactly one of them calls the cloud
    cloud.set_default(Behaviour(delay=0.5))
    both = await asyncio.gather(*(conversations.chat("alice", HARD) for _ in range(2)))
    assert sorted(result.record.backend for result in both) == ["cloud", "local"] and len(cloud.requests) == 5
    assert conversations.backend_states()["cloud"] == {
        "state": "ok", "cooldown_seconds_left": None, "consecutive_failures": 0,
    }  # fmt: skip
    assert breaker.open_until is None
