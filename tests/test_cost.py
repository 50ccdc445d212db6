"""Cost: the price table turns the model's reported usage into exact turn costs, and analytics compare with all-cloud.

Token counts come from the fake model's usage (ceil(characters / 4) of every message sent, system prompt
included, and of the reply), so the expected costs below are exact, not approximate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.config import Settings
from shared.domain.analytics import analytics
from shared.domain.pricing import Price, cost_of
from shared.domain.records import TurnRecord
from tests.fixtures_app import LiveServer
from tools.fake_model import Behaviour, FakeModelServer

MINIMAL = {"STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true", "COSMOS_ENDPOINT": "https://127.0.0.1:8081/"}
SYSTEM = "Be brief."  # 9 characters
QUESTION = "What is two plus two?"  # 21 characters: 30 with the system prompt, so 8 input tokens
ANSWER = "Four."  # 5 characters: 2 output tokens
# USD per million tokens chosen so that the example turn costs whole cents: 8 * 1250 + 2 * 5000 = 20000 -> $0.02.
PRICES = {"local": {"input": 0, "output": 0}, "cloud": {"input": 1250, "output": 5000}}


def settings_with(prices: dict[str, Any]) -> Settings:
    return Settings.from_env({**MINIMAL, "PRICE_TABLE": json.dumps(prices)})


@pytest.mark.parametrize(
    ("backend", "model", "tokens", "cents"),
    [
        ("cloud", "gpt-4o-mini", (8, 2), 2),
        ("cloud", "gpt-4o-mini", (1_000_000, 0), 125_000),
        ("cloud", "gpt-4o", (1_000, 1_000), 2),  # the model's own price: 1000 * 5 + 1000 * 15 = 20000 -> 2 cents
        ("local", "llama3.2", (123_456, 7_890), 0),  # priced at zero
        ("foundry", "phi-4", (1_000, 1_000), 0),  # no price at all
    ],
)
def test_cost_of_known_token_counts_is_exact_to_the_cent(
    backend: str, model: str, tokens: tuple[int, int], cents: int
) -> None:
    settings = settings_with({**PRICES, "cloud:gpt-4o": {"input": 5, "output": 15}})
    assert cost_of(settings, backend, model, *tokens) * 100 == pytest.approx(cents, abs=1e-9)


def test_cost_keeps_fractions_of_a_cent_to_eight_decimals() -> None:
    settings = settings_with({"cloud": {"input": 0.15, "output": 0.6}})
    # 1234 * 0.15 + 567 * 0.6 = 185.1 + 340.2 = 525.3 micro-dollars
    assert cost_of(settings, "cloud", "gpt-4o-mini", 1234, 567) == 0.0005253


async def test_a_turn_stores_the_cost_of_the_models_reported_usage(
    make_services: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    services = await make_services(PRICE_TABLE=json.dumps(PRICES), SYSTEM_PROMPT=SYSTEM)
    models["cloud"].script(Behaviour.text(ANSWER))
    result = await services.conversations.chat("alice", QUESTION, route="cloud")
    record = result.record
    assert (record.input_tokens, record.output_tokens) == (math.ceil(30 / 4), math.ceil(5 / 4)) == (8, 2)
    assert record.cost == 0.02
    snapshot = await services.snapshots.load("alice", result.session_id)
    [cosmos] = await services.metadata.session_turns("alice", result.session_id)
    assert snapshot.records[-1].cost == cosmos.cost == 0.02


def known_records() -> list[TurnRecord]:
    def record(turn: int, backend: str | None, tokens: tuple[int, int], cost: float) -> TurnRecord:
        return TurnRecord(
            turn=turn, backend=backend, model="m", complexity=0.1, reason="", router_version="t",
            route_requested="auto", switched_from=None, fallback_chain=(), latency_ms=1.0, turn_ms=1.0,
            input_tokens=tokens[0], output_tokens=tokens[1], cost=cost,
            started_at="2026-01-01T00:00:00.000000Z", completed_at="2026-01-01T00:00:00.000000Z",
            user_chars=1, reply_chars=1,
        )  # fmt: skip

    return [
        record(1, "local", (1000, 200), 0.0),
        record(2, "cloud", (3000, 400), 0.0055),
        record(3, "local", (5000, 600), 0.0),
        record(4, None, (0, 0), 0.0),  # an imported turn: no backend, no tokens
    ]


def test_analytics_price_every_token_at_the_cloud_rate_for_the_all_cloud_comparison() -> None:
    result = analytics(known_records(), Price(1.25, 5.0), "cloud gpt-4o-mini")
    # (1000 + 3000 + 5000) * 1.25 + (200 + 400 + 600) * 5.0 = 11250 + 6000 micro-dollars
    assert result["all_cloud_cost"] == 0.01725
    assert result["total_cost"] == 0.0055 and result["cost"] == {"local": 0.0, "cloud": 0.0055}
    assert result["saved_vs_all_cloud"] == 0.01175
    assert result["all_cloud_basis"] == "cloud gpt-4o-mini"


def test_analytics_without_a_reference_price_say_null_and_why() -> None:
    result = analytics(known_records(), None, "no cloud backend is configured")
    assert result["all_cloud_cost"] is None and result["saved_vs_all_cloud"] is None
    assert result["all_cloud_basis"] == "no cloud backend is configured"


async def test_session_and_owner_analytics_over_http_show_cost_by_backend_and_the_saving(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer]
) -> None:
    server = live_server(PRICE_TABLE=json.dumps(PRICES), SYSTEM_PROMPT=SYSTEM)
    models["local"].script(Behaviour.text(ANSWER))
    models["cloud"].script(Behaviour.text(ANSWER))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        first = client.post("/chat", json={"message": QUESTION, "route": "local"}).json()
        second = client.post(
            "/chat", json={"message": QUESTION, "route": "cloud", "session_id": first["session_id"]}
        ).json()
        session = client.get(f"/sessions/{first['session_id']}/analytics").json()
        owner = client.get("/analytics").json()

    # The second turn also sends the first exchange: 9 + 21 + 5 + 21 characters = 14 tokens in, 2 out.
    assert (second["usage"]["input_tokens"], second["usage"]["output_tokens"]) == (14, 2)
    assert first["cost"] == 0.0 and second["cost"] == 0.0275  # 14 * 1250 + 2 * 5000 = 27500 micro-dollars
    # All-cloud: the local turn's 8 + 2 tokens at the cloud price too: 0.0275 + 0.02.
    for result in (session, owner):
        assert result["cost"] == {"local": 0.0, "cloud": 0.0275} and result["total_cost"] == 0.0275
        assert result["all_cloud_cost"] == 0.0475
        assert result["saved_vs_all_cloud"] == 0.02
        assert "gpt-4o-mini" in result["all_cloud_basis"] and "1250" in result["all_cloud_basis"]


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"backends": ("local",), "PRICE_TABLE": json.dumps(PRICES)}, "no cloud backend is configured"),
        # A deployment name no built-in entry knows (gpt-4o-mini itself now has a built-in price: test_prices.py).
        (
            {"CLOUD_MODEL_NAME": "team-gpt", "PRICE_TABLE": json.dumps({"local": {"input": 1, "output": 1}})},
            "PRICE_TABLE has no price for cloud:team-gpt or cloud, and 'team-gpt' is not a model of the built-in",
        ),
    ],
)
async def test_all_cloud_is_null_when_there_is_no_cloud_price_and_the_answer_says_why(
    make_services: Callable[..., Any], env: dict[str, Any], why: str
) -> None:
    services = await make_services(**env)
    result = await services.conversations.chat("alice", QUESTION, route="local")
    for answer in (
        await services.conversations.session_analytics("alice", result.session_id),
        await services.conversations.owner_analytics("alice"),
    ):
        assert answer["all_cloud_cost"] is None and answer["saved_vs_all_cloud"] is None
        assert why in answer["all_cloud_basis"]
