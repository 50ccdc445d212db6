"""A conversation grown on the cloud model, then a turn routed to a local model with a small window.

The fake models count tokens like a BPE tokenizer (not characters / 4, which the estimate would match exactly)
and the local one refuses any request longer than its window, as a real model server does; so a request that
did not fit would fail the turn, not pass unnoticed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from bench.prose import exchanges
from shared.app import Services
from shared.domain.errors import ContextTooLarge
from tests.api_helpers import principal
from tools.fake_model import Behaviour, FakeModelServer

WINDOW = 1500
OUTPUT = 300  # MODEL_MAX_OUTPUT_TOKENS: the reserve
SUMMARY_PROMPT = "keep the memory of a conversation"  # in the summarizer's instructions
TURNS = 12


class SmallLocal:
    """Builds services whose local backend has a 1,500-token window (`await small_local(**overrides)`), and
    another worker on the same storage (`await small_local.another_worker()`)."""

    def __init__(self, make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any]) -> None:
        self._make_env, self._make_services = make_env, make_services
        self._env: dict[str, str] | None = None

    async def __call__(self, **overrides: str) -> Services:
        settings = {"LOCAL_MODEL_CONTEXT_TOKENS": str(WINDOW), "MODEL_MAX_OUTPUT_TOKENS": str(OUTPUT), **overrides}
        self._env = self._make_env(**settings)
        services: Services = await self._make_services(self._env)
        return services

    async def another_worker(self) -> Services:
        services: Services = await self._make_services(self._env)
        return services


@pytest.fixture
def small_local(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any], models: dict[str, FakeModelServer]
) -> SmallLocal:
    models["local"].configure(tokenizer="bpe", context_window=WINDOW)  # the fake model enforces the window
    models["cloud"].configure(tokenizer="bpe")
    return SmallLocal(make_env, make_services)


async def grown_on_cloud(services: Services, models: dict[str, FakeModelServer], seed: int = 3) -> str:
    """Twelve long turns forced to the cloud backend (about 4,500 tokens, three times the local window)."""
    pairs = exchanges(seed, TURNS)
    models["cloud"].script(*(reply for _, reply in pairs))
    session: str | None = None
    for question, _ in pairs:
        result = await services.conversations.chat("alice", question, session, route="cloud")
        session = result.session_id
    assert session is not None
    return session


async def summarized(services: Services, models: dict[str, FakeModelServer]) -> str:
    """A session grown on the cloud, then one local turn that had to summarize its older turns."""
    session = await grown_on_cloud(services, models)
    await services.conversations.chat("alice", "Which option should I pick?", session, route="local")
    return session


def summary_requests(server: FakeModelServer) -> list[dict[str, Any]]:
    return [request for request in server.requests if SUMMARY_PROMPT in _text(request)]


def turn_requests(server: FakeModelServer) -> list[dict[str, Any]]:
    return [request for request in server.requests if SUMMARY_PROMPT not in _text(request)]


def _text(request: dict[str, Any]) -> str:
    return "\n".join(str(message.get("content")) for message in request["json"]["messages"])


def context_of(result: Any) -> dict[str, Any]:
    context = result.record.extra["context"]
    assert isinstance(context, dict)
    return context


async def test_a_turn_routed_to_a_small_window_gets_a_summary_and_fits(
    small_local: SmallLocal, models: dict[str, FakeModelServer]
) -> None:
    services = await small_local()
    session = await grown_on_cloud(services, models)
    result = await services.conversations.chat("alice", "So, which option should I pick?", session, route="local")

    assert result.record.backend == "local"
    context = context_of(result)
    assert context["mode"] == "summary" and context["summary"]["created"] is True
    assert (context["window"], context["reserve"]) == (WINDOW, OUTPUT)
    assert context["estimated_tokens"] <= WINDOW - OUTPUT
    summarized = context["summary"]["through_turn"]
    assert context["turns_summarized"] == summarized and context["turns_sent"] == [summarized + 1, TURNS]

    # What the local model received, counted by the model itself, fits the window less the reserve.
    (request,) = turn_requests(models["local"])
    assert request["outcome"] == "reply" and request["prompt_tokens"] <= WINDOW - OUTPUT
    messages = request["json"]["messages"]
    assert [m["role"] for m in messages[:2]] == ["system", "system"]
    assert messages[1]["content"].startswith(f"Summary of turns 1-{summarized} of this conversation")
    assert messages[-1] == {"role": "user", "content": "So, which option should I pick?"}
    assert len(messages) == 2 + 2 * (TURNS - summarized) + 1

    # The summary calls went to the local backend (CONTEXT_SUMMARY_BACKEND's default), each within its window,
    # and the record counts them.
    calls = summary_requests(models["local"])
    assert calls and all(call["outcome"] == "reply" for call in calls)
    (recorded,) = context["summary_calls"]
    assert recorded["backend"] == "local" and recorded["calls"] == len(calls) and recorded["failed"] == 0
    assert recorded["input_tokens"] == sum(call["prompt_tokens"] for call in calls)

    # The stored conversation keeps every message, and the summary beside it.
    snapshot = await services.snapshots.load("alice", session)
    assert snapshot.turns == TURNS + 1 and len(snapshot.openai_messages()) == 2 * (TURNS + 1)
    (stored,) = snapshot.summaries
    assert (stored.first_turn, stored.through_turn, stored.backend, stored.made_in_turn) == (
        1,
        summarized,
        "local",
        TURNS + 1,
    )

    # Analytics count the summary calls as overhead of the backend that wrote them.
    analytics = await services.conversations.session_analytics("alice", session)
    assert analytics["summary"]["local"]["calls"] == len(calls)
    assert analytics["context"]["modes"] == {"full": TURNS, "summary": 1}


async def test_the_next_turns_reuse_the_stored_summary_in_this_process_and_the_next(
    small_local: SmallLocal, models: dict[str, FakeModelServer]
) -> None:
    services = await small_local()
    session = await summarized(services, models)
    made = len(summary_requests(models["local"]))

    again = await services.conversations.chat("alice", "And why that one?", session, route="local")
    assert len(summary_requests(models["local"])) == made  # no second summary call
    assert context_of(again)["summary"]["created"] is False and "summary_calls" not in context_of(again)

    fresh = await small_local.another_worker()  # nothing in memory: the summary comes from Blob
    resumed = await fresh.conversations.chat("alice", "Fine, thanks.", session, route="local")
    assert len(summary_requests(models["local"])) == made
    assert context_of(resumed)["mode"] == "summary" and context_of(resumed)["summary"]["created"] is False
    assert turn_requests(models["local"])[-1]["prompt_tokens"] <= WINDOW - OUTPUT
    assert len((await fresh.snapshots.load("alice", session)).summaries) == 1


async def test_the_summary_survives_export_import_and_a_fork_that_covers_it(
    small_local: SmallLocal, models: dict[str, FakeModelServer]
) -> None:
    services = await small_local()
    session = await summarized(services, models)
    original = (await services.snapshots.load("alice", session)).summaries
    through = original[0].through_turn

    exported = await services.transfer.export_session("alice", session)
    assert exported["context_summaries"] == [summary.to_dict() for summary in original]
    imported = await services.transfer.import_session("alice", "export", exported)
    assert imported.snapshot.summaries == original
    made = len(summary_requests(models["local"]))
    on_import = await services.conversations.chat("alice", "Go on.", imported.snapshot.session_id, route="local")
    assert len(summary_requests(models["local"])) == made and context_of(on_import)["mode"] == "summary"

    kept = await services.transfer.fork_session("alice", session, through)
    assert kept.snapshot.summaries == original
    dropped = await services.transfer.fork_session("alice", session, through - 1)
    assert dropped.snapshot.summaries == ()


async def test_a_malformed_summary_in_an_export_is_refused_and_nothing_is_written(
    small_local: SmallLocal, models: dict[str, FakeModelServer]
) -> None:
    services = await small_local()
    session = await summarized(services, models)
    exported = await services.transfer.export_session("alice", session)
    before = await services.conversations.list_sessions("alice", 100)
    for broken, field in (
        ({**exported["context_summaries"][0], "through_turn": "eleven"}, "data.context_summaries[0]"),
        ({**exported["context_summaries"][0], "made_in_turn": 99}, "data.context_summaries[0].made_in_turn"),
    ):
        with pytest.raises(Exception) as refused:
            await services.transfer.import_session("alice", "export", {**exported, "context_summaries": [broken]})
        assert getattr(refused.value, "field", None) == field
    assert await services.conversations.list_sessions("alice", 100) == before


async def test_a_failed_summary_call_falls_back_to_the_next_backend(
    small_local: SmallLocal, models: dict[str, FakeModelServer]
) -> None:
    services = await small_local()
    session = await grown_on_cloud(services, models)
    models["local"].script(Behaviour(status=503, when=SUMMARY_PROMPT, times=8))
    result = await services.conversations.chat("alice", "Which option should I pick?", session, route="local")

    context = context_of(result)
    assert context["mode"] == "summary" and context["summary"]["created"] is True
    local_calls, cloud_calls = context["summary_calls"]
    assert (local_calls["backend"], local_calls["calls"], local_calls["failed"]) == ("local", 1, 1)
    assert (cloud_calls["backend"], cloud_calls["failed"]) == ("cloud", 0)
    assert cloud_calls["calls"] == len(summary_requests(models["cloud"])) >= 1
    (stored,) = (await services.snapshots.load("alice", session)).summaries
    assert stored.backend == "cloud" and stored.model == "gpt-4o-mini"
    assert turn_requests(models["local"])[-1]["prompt_tokens"] <= WINDOW - OUTPUT


async def test_when_every_summary_call_fails_the_turn_goes_on_with_plain_truncation(
    small_local: SmallLocal, models: dict[str, FakeModelServer]
) -> None:
    services = await small_local()
    session = await grown_on_cloud(services, models)
    for name in ("local", "cloud"):
        models[name].script(Behaviour(status=503, when=SUMMARY_PROMPT, times=8))
    result = await services.conversations.chat("alice", "Which option should I pick?", session, route="local")

    context = context_of(result)
    assert context["mode"] == "truncated" and context["summary_failed"] is True and "summary" not in context
    assert [(call["backend"], call["failed"]) for call in context["summary_calls"]] == [("local", 1), ("cloud", 1)]
    request = turn_requests(models["local"])[-1]
    assert request["prompt_tokens"] <= WINDOW - OUTPUT
    assert not any(m["content"].startswith("Summary of turns") for m in request["json"]["messages"])
    assert context["turns_dropped"] >= 1 and context["turns_sent"][1] == TURNS
    assert (await services.snapshots.load("alice", session)).summaries == ()


async def test_with_summaries_off_older_turns_are_dropped_and_that_is_recorded(
    small_local: SmallLocal, models: dict[str, FakeModelServer]
) -> None:
    services = await small_local(CONTEXT_SUMMARY="false")
    session = await grown_on_cloud(services, models)
    result = await services.conversations.chat("alice", "Which option should I pick?", session, route="local")
    context = context_of(result)
    assert context["mode"] == "truncated" and context["turns_dropped"] >= 1 and "summary_calls" not in context
    assert summary_requests(models["local"]) == []
    assert turn_requests(models["local"])[-1]["prompt_tokens"] <= WINDOW - OUTPUT


async def test_a_message_too_long_for_the_window_is_refused_before_any_model_call(
    small_local: SmallLocal, models: dict[str, FakeModelServer]
) -> None:
    services = await small_local()
    long_message = " ".join(["the quarterly report needs another careful review"] * 130)  # about 1,700 tokens
    with pytest.raises(ContextTooLarge) as refused:
        await services.conversations.chat("alice", long_message, route="local")
    assert refused.value.backend == "local" and refused.value.window == WINDOW
    assert models["local"].requests == [] and models["cloud"].requests == []

    # Routed automatically, the turn goes where the message fits (the router would have chosen local).
    routed = await small_local(ROUTER_LOCAL_THRESHOLD="1.0")
    result = await routed.conversations.chat("alice", long_message)
    assert result.record.backend == "cloud" and "window" in result.record.reason
    assert models["local"].requests == []


async def test_a_model_that_refuses_the_fitted_request_as_too_long_gets_a_tighter_one(
    small_local: SmallLocal, models: dict[str, FakeModelServer]
) -> None:
    """The configured window is larger than the model's real one: its 400 teaches the estimate a lesson."""
    services = await small_local(CONTEXT_SUMMARY="false")
    session = await grown_on_cloud(services, models)
    models["local"].configure(tokenizer="bpe", context_window=900)
    result = await services.conversations.chat("alice", "Which option should I pick?", session, route="local")

    refused, accepted = turn_requests(models["local"])
    assert refused["outcome"] == "error 400" and accepted["outcome"] == "reply"
    assert accepted["prompt_tokens"] + OUTPUT <= 900 < refused["prompt_tokens"] + OUTPUT
    assert result.record.backend == "local" and result.record.fallback_chain == ()


def test_over_http_the_refusal_is_a_413_naming_the_window(
    live_server: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    server = live_server(LOCAL_MODEL_CONTEXT_TOKENS=str(WINDOW), MODEL_MAX_OUTPUT_TOKENS=str(OUTPUT))
    long_message = " ".join(["the quarterly report needs another careful review"] * 130)
    with httpx.Client(base_url=server.url, headers=principal("alice"), timeout=30) as client:
        response = client.post("/chat", json={"message": long_message, "route": "local"})
    assert response.status_code == 413
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("context_length_exceeded", "message")
    assert f"{WINDOW} tokens" in error["message"]

    sdk = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", default_headers=principal("alice"))
    with pytest.raises(openai.APIStatusError) as raised:
        sdk.chat.completions.create(model="local", messages=[{"role": "user", "content": long_message}])
    assert raised.value.status_code == 413 and raised.value.code == "context_length_exceeded"
    assert models["local"].requests == []


def test_the_fake_models_count_is_not_the_estimators() -> None:
    """Guard on the test's own premise: the BPE-like count differs from characters / 4 on this prose."""
    from tools.fake_model import bpe_tokens

    text = " ".join(reply for _, reply in exchanges(3, TURNS))
    assert abs(bpe_tokens(text) - math.ceil(len(text) / 4)) / bpe_tokens(text) > 0.03
