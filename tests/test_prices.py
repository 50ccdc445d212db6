"""The built-in price table: every entry sourced and dated, looked up case-insensitively by model or alias, overridden
by PRICE_TABLE, never applied to the local backend; turns and analytics priced from it out of the box."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.domain.pricing import BUILTIN_PRICES_PATH, Price, builtin_prices, quote
from tests.fixtures_app import LiveServer
from tools.fake_model import Behaviour, FakeModelServer


def test_every_built_in_entry_has_a_source_a_date_and_prices_per_million_tokens() -> None:
    document = json.loads(BUILTIN_PRICES_PATH.read_text(encoding="utf-8"))
    assert (document["currency"], document["unit"]) == ("USD", "per_million_tokens")
    assert len(document["models"]) >= 19
    for entry in document["models"]:
        assert entry["source"].startswith("https://"), entry["model"]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry["as_of"]), entry["model"]
        assert entry["input"] >= 0 and entry["output"] >= 0, entry["model"]
    # What this project's users deploy is there: GPT-4o, 4o-mini, 4.1 (+mini, nano), the o-series, Foundry models.
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o1", "o3-mini", "o4-mini"):
        assert model in builtin_prices()
    assert {entry.provider for entry in builtin_prices().values()} == {"openai", "foundry"}


@pytest.mark.parametrize(
    ("model", "entry", "price"),
    [
        ("gpt-4o-mini", "gpt-4o-mini", Price(0.15, 0.6)),
        ("GPT-4o-Mini", "gpt-4o-mini", Price(0.15, 0.6)),  # names match case-insensitively
        ("gpt-4o-2024-08-06", "gpt-4o", Price(2.5, 10)),  # a dated version is an alias
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13", Price(5, 15)),  # ...unless it has a price of its own
        ("gpt-35-turbo", "gpt-3.5-turbo", Price(0.5, 1.5)),  # Azure's spelling
        ("DeepSeek-R1", "deepseek-r1", Price(1.35, 5.4)),
    ],
)
def test_a_model_is_priced_from_the_built_in_table_by_name_or_alias(model: str, entry: str, price: Price) -> None:
    quoted = quote({}, "cloud", model)
    assert (quoted.price, quoted.origin, quoted.key, quoted.as_of) == (price, "built-in", entry, "2026-08-11")
    assert quoted.paid and f"built-in price of {entry}" in quoted.basis and "2026-08-11" in quoted.basis


def test_price_table_overrides_the_built_in_price_per_backend_and_per_model() -> None:
    table = {"cloud": Price(1, 2), "foundry:gpt-4o-mini": Price(0, 0)}
    assert quote(table, "cloud", "gpt-4o-mini").price == Price(1, 2)
    assert quote(table, "cloud", "gpt-4o-mini").basis == "PRICE_TABLE['cloud']"
    free = quote(table, "foundry", "gpt-4o-mini")
    assert (free.price, free.origin, free.paid) == (Price(0, 0), "configured", False)
    assert quote(table, "apim", "gpt-4o-mini").price == Price(0.15, 0.6)  # any non-local backend, by model


def test_a_local_model_is_free_unless_configured_and_an_unknown_name_has_no_price() -> None:
    local = quote({}, "local", "gpt-4o-mini")  # even a local model named like a cloud one
    assert (local.price, local.origin, local.paid) == (None, "local", False)
    assert quote({"local": Price(0.1, 0.1)}, "local", "llama3.2").paid
    unknown = quote({}, "cloud", "team-gpt")
    assert (unknown.price, unknown.origin, unknown.paid) == (None, "unknown", True)  # not assumed free
    assert "'team-gpt' is not a model of the built-in price table" in unknown.basis


async def test_a_turn_on_gpt_4o_mini_costs_the_built_in_price_to_the_cent(
    make_services: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    services = await make_services(SYSTEM_PROMPT="Be brief.")  # no PRICE_TABLE at all
    models["cloud"].script(Behaviour.text("x" * 400_000))  # 100,000 output tokens
    result = await services.conversations.chat("alice", "What is two plus two?", route="cloud")
    record = result.record
    assert (record.input_tokens, record.output_tokens) == (8, 100_000)
    # 8 * 0.15 + 100,000 * 0.60 = 60,001.2 micro-dollars: 6 cents.
    assert record.cost == 0.0600012 and round(record.cost * 100) == 6


async def test_analytics_say_which_price_was_used_built_in_with_its_date_or_configured(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer]
) -> None:
    for table in ({}, {"cloud": {"input": 1, "output": 2}}):
        server = live_server(PRICE_TABLE=json.dumps(table))  # one at a time: a process has one set of services
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post("/chat", json={"message": "hi", "route": "cloud"}).status_code == 200
            answer = client.get("/analytics").json()
        server.stop()
        if not table:
            assert answer["total_cost"] > 0 and answer["saved_vs_all_cloud"] == 0
            assert answer["prices"]["cloud"] == {
                "model": "gpt-4o-mini", "input": 0.15, "output": 0.6, "source": "built-in", "as_of": "2026-08-11",
                "basis": "built-in price of gpt-4o-mini (Azure Global Standard, as of 2026-08-11)",
            }  # fmt: skip
            assert "built-in price of gpt-4o-mini" in answer["all_cloud_basis"]
        else:
            assert answer["prices"]["cloud"]["source"] == "configured" and answer["prices"]["cloud"]["as_of"] is None
            assert "PRICE_TABLE['cloud']" in answer["all_cloud_basis"]
        assert answer["prices"]["local"]["source"] == "local" and answer["prices"]["local"]["input"] is None
