"""Per-owner budgets over HTTP with the fake models: a used-up budget sends auto turns to the local backend, refuses
an explicit paid route with 429 budget_exceeded and Retry-After, holds for fallbacks too, leaves other owners alone,
and overshoots by at most one turn when turns race; the usage route equals the turn records.

Token counts come from the fake model (ceil(characters / 4)), so every turn of a new session with the same message
costs the same: at 1000 USD per million tokens in and out, a HARD turn costs 0.078 USD (55 + 23 tokens).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared import app
from shared.domain.budget import seconds_to_reset
from shared.services.conversations import Conversations
from tests.api_helpers import async_client, client, principal
from tests.fixtures_app import LiveServer
from tools.fake_model import Behaviour, FakeModelServer

HARD = (
    "Design a distributed rate limiter for a multi-region API. Compare token bucket and sliding window "
    "approaches, analyze the trade-offs in consistency and latency, and explain step by step how to handle clock skew."
)
PRICES = json.dumps({"cloud": {"input": 1000, "output": 1000}})
TURN_COST = 0.078  # (ceil((9 + 211) / 4) + ceil(90 / 4)) * 1000 / 1e6: system prompt, message; the reply
ALICE, BOB = principal("alice"), principal("bob")


def budget_server(live_server: Callable[..., LiveServer], **env: str) -> LiveServer:
    return live_server(PRICE_TABLE=PRICES, SYSTEM_PROMPT="Be brief.", **env)


async def turns_of(api: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    sessions = (await api.get("/sessions", headers=headers)).json()["sessions"]
    views = [(await api.get(f"/sessions/{item['session_id']}", headers=headers)).json() for item in sessions]
    return [turn for view in views for turn in view["turns"]]


async def test_a_used_up_budget_sends_auto_turns_local_and_refuses_an_explicit_paid_route(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer], make_services: Callable[..., Any]
) -> None:
    server = budget_server(live_server, BUDGET_DAILY_USD="0.05")
    async with async_client(server.url) as api:
        first = (await api.post("/chat", json={"message": HARD}, headers=ALICE)).json()
        assert first["route"]["backend"] == "cloud" and first["cost"] == TURN_COST  # one turn exceeds 0.05 USD
        cloud_calls = len(models["cloud"].requests)

        body = {"message": HARD, "session_id": first["session_id"]}
        second = (await api.post("/chat", json=body, headers=ALICE)).json()
        route = second["route"]
        assert route["backend"] == "local" and len(models["cloud"].requests) == cloud_calls
        assert f"budget: daily budget of 0.05 USD used up ({TURN_COST:g} USD spent; resets in " in route["reason"]
        assert route["reason"].endswith("so local instead of cloud; switched from cloud")
        assert (route["switched_from"], route["fallback_from"], route["fallback_chain"]) == ("cloud", None, [])
        assert second["cost"] == 0

        refused = await api.post("/chat", json={"message": HARD, "route": "cloud"}, headers=ALICE)
        assert refused.status_code == 429 and len(models["cloud"].requests) == cloud_calls
        error = refused.json()["error"]
        reset = seconds_to_reset(datetime.now(UTC), "daily")
        assert error["code"] == "budget_exceeded"
        assert error["budget"]["period"] == "daily" and error["budget"]["limit"] == 0.05
        assert error["budget"]["spent"] == TURN_COST and abs(error["budget"]["resets_in"] - reset) <= 5
        assert "daily budget of 0.05 USD" in error["message"] and f"{TURN_COST:g} USD spent" in error["message"]
        assert refused.headers["retry-after"] == str(error["budget"]["resets_in"])
        # Streaming changes nothing: refused before the first event.
        body = {"message": HARD, "route": "cloud", "stream": True}
        streamed = await api.post("/chat", json=body, headers=ALICE)
        assert streamed.status_code == 429 and streamed.json()["error"]["code"] == "budget_exceeded"

        other = (await api.post("/chat", json={"message": HARD}, headers=BOB)).json()  # another owner: unaffected
        assert other["route"]["backend"] == "cloud"

        usage = await api.get("/users/me/usage", headers=ALICE)
        assert usage.status_code == 200
        records = await turns_of(api, ALICE)
        total = {"cost": round(sum(t["cost"] for t in records), 8), "turns": len(records)}
        total["tokens"] = sum(t["input_tokens"] + t["output_tokens"] for t in records)
        assert usage.json() == {
            "day": total,
            "month": total,
            "budget": {"daily": 0.05, "monthly": None, "remaining_daily": 0.0, "remaining_monthly": None},
        }
        assert total["turns"] == 2 and total["cost"] == TURN_COST
        bob = (await api.get("/users/me/usage", headers=BOB)).json()
        assert bob["day"]["cost"] == TURN_COST and bob["budget"]["remaining_daily"] == 0.0
    services = await make_services(server.env)
    container = services.metadata.database.container("audit")
    found = [item async for item in container.query_items("SELECT * FROM c WHERE c.action = 'read_usage'")]
    assert sorted((item["sessionId"], item["actor"], item["outcome"], item["details"]) for item in found) == [
        ("user:alice", "alice", "ok", {}),  # who asked, when; never a figure
        ("user:bob", "bob", "ok", {}),
    ]


def test_a_fallback_to_a_paid_backend_is_refused_by_the_budget_and_the_turn_fails_without_spending(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer]
) -> None:
    server = budget_server(live_server, BUDGET_DAILY_USD="0.05")
    with client(server.url) as api:
        first = api.post("/chat", json={"message": HARD}, headers=ALICE).json()
        assert first["route"]["backend"] == "cloud"
        cloud_calls = len(models["cloud"].requests)
        for message in ("hi! what's the capital of France?", HARD):  # routed local / sent local by the budget
            models["local"].script(Behaviour.error(503))
            failed = api.post("/chat", json={"message": message, "session_id": first["session_id"]}, headers=ALICE)
            assert failed.status_code == 502 and len(models["cloud"].requests) == cloud_calls
            error = failed.json()["error"]
            assert error["code"] == "backends_failed"
            assert error["message"].startswith("Every backend failed: local (server), cloud (budget).")
            assert "Cloud not called: daily budget of 0.05 USD used up" in error["message"]
            assert failed.headers["retry-after"] == "5"  # when local may be back, not when the budget resets
        session = api.get(f"/sessions/{first['session_id']}", headers=ALICE).json()
        assert len(session["turns"]) == 1  # nothing was stored, nothing was spent
        assert api.get("/users/me/usage", headers=ALICE).json()["day"]["cost"] == TURN_COST


def test_without_a_free_local_backend_an_auto_turn_gets_the_429_too(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer]
) -> None:
    server = budget_server(live_server, backends=("cloud", "apim"), BUDGET_MONTHLY_USD="0.05")
    with client(server.url) as api:
        assert api.post("/chat", json={"message": HARD}, headers=ALICE).status_code == 200
        refused = api.post("/chat", json={"message": "hi"}, headers=ALICE)
        assert refused.status_code == 429 and refused.json()["error"]["budget"]["period"] == "monthly"
        # apim's gpt-4o has a built-in price: it is paid too, so it does not take over as a fallback either.
        assert len(models["apim"].requests) == 0


def test_a_named_owners_override_replaces_the_default_budget(live_server: Callable[..., LiveServer]) -> None:
    server = budget_server(
        live_server, BUDGET_DAILY_USD="0.05", BUDGET_OVERRIDES=json.dumps({"alice": {"daily": 1}, "bob": {"daily": 0}})
    )
    with client(server.url) as api:
        for _ in range(2):
            assert api.post("/chat", json={"message": HARD}, headers=ALICE).json()["route"]["backend"] == "cloud"
        assert api.post("/chat", json={"message": HARD}, headers=BOB).json()["route"]["backend"] == "local"
        assert api.get("/users/me/usage", headers=ALICE).json()["budget"]["remaining_daily"] == 1 - 2 * TURN_COST


async def test_concurrent_turns_at_the_edge_of_the_budget_overshoot_it_by_at_most_one_turn(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer]
) -> None:
    limit = 0.12  # one turn (0.078) fits, two (0.156) do not
    server = budget_server(live_server, BUDGET_DAILY_USD=str(limit))
    async with async_client(server.url, ALICE) as api:
        assert (await api.post("/chat", json={"message": HARD})).json()["route"]["backend"] == "cloud"
        models["cloud"].set_default(Behaviour(delay=1.0))  # the racing turns overlap in the model call
        racing = await asyncio.gather(*(api.post("/chat", json={"message": HARD}) for _ in range(4)))
        backends = sorted(response.json()["route"]["backend"] for response in racing)
        spent = (await api.get("/users/me/usage")).json()["day"]["cost"]
    assert backends == ["cloud", "local", "local", "local"]
    overshoot = round(spent - limit, 8)
    print(f"\nbudget {limit} USD, turn {TURN_COST} USD, 4 racing turns: spent {spent} USD, overshoot {overshoot} USD")
    assert spent == round(2 * TURN_COST, 8) and 0 < overshoot <= TURN_COST


async def test_the_spend_is_read_once_per_cache_window_and_the_period_rollover_resets_it(
    make_services: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    services = await make_services(PRICE_TABLE=PRICES, SYSTEM_PROMPT="Be brief.", BUDGET_DAILY_USD="0.1")
    now = [datetime(2026, 5, 31, 23, 59, 0, tzinfo=UTC)]
    ticks = [0.0]
    conversations = Conversations(
        services.settings, services.snapshots, services.metadata, services.backends,
        clock=lambda: now[0], monotonic=lambda: ticks[0],
    )  # fmt: skip
    ledger = conversations.guard.ledger
    first = await conversations.chat("alice", HARD)
    second = await conversations.chat("alice", HARD)
    third = await conversations.chat("alice", HARD)
    # One read served all three turns: the second turn's check saw the first turn's cost without reading again.
    assert [r.record.backend for r in (first, second, third)] == ["cloud", "cloud", "local"]
    assert ledger.reads == 1
    ticks[0] += 5.0  # the cache window is over: the next paid check reads again, and Cosmos now has every turn
    assert (await ledger.spend("alice")).day.cost == round(2 * TURN_COST, 8) and ledger.reads == 2
    print(f"\nspend reads: {ledger.reads}, request charge reported: {ledger.read_ru} RU")
    now[0] += timedelta(minutes=2)  # a new day and a new month: the budget is back
    assert (await conversations.chat("alice", HARD)).record.backend == "cloud"
    assert ledger.reads == 3


def test_without_budgets_no_spend_is_ever_read(live_server: Callable[..., LiveServer]) -> None:
    server = budget_server(live_server)
    with client(server.url) as api:
        for _ in range(3):
            assert api.post("/chat", json={"message": HARD}, headers=ALICE).status_code == 200
        assert api.get("/users/me/usage", headers=ALICE).json()["budget"] == {
            "daily": None, "monthly": None, "remaining_daily": None, "remaining_monthly": None,
        }  # fmt: skip
    ledger = asyncio.run(_ledger()).guard.ledger
    assert ledger.reads == 1  # the usage route's own read only


async def _ledger() -> Conversations:
    return (await app.get_services()).conversations
