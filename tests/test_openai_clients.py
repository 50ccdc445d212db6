"""The OpenAI-compatible door (`/api/v1`) driven by the clients people already have: the real `openai` SDK
(`OpenAI`, `AsyncOpenAI`) and Agent Framework's own `OpenAIChatCompletionClient`. No hand-written HTTP here.

Clients send the whole conversation on every call; the service must store it once, fork on an edit or a
regenerate, answer a retry of a saved turn from storage, and keep principals apart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from agent_framework import Agent
from agent_framework.openai import OpenAIChatCompletionClient

from tests.api_helpers import client as api_client
from tests.api_helpers import principal
from tests.fixtures_app import LiveServer
from tools.fake_model import Behaviour, FakeModelServer

HARD = (
    "Design a rate limiter for a distributed API gateway: compare token bucket and sliding window approaches, "
    "analyze the trade-offs in consistency and latency, and explain step by step how to handle clock skew."
)
ALICE = principal("alice-01")


def sdk(server: LiveServer, headers: dict[str, str] | None = None, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", default_headers=headers or ALICE, **kwargs)


@pytest.fixture
def server(live_server: Callable[..., LiveServer]) -> Iterator[LiveServer]:
    yield live_server()


def stored(server: LiveServer, session_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    with api_client(server.url, headers or ALICE) as api:
        return dict(api.get(f"/sessions/{session_id}").json())


def sessions_of(server: LiveServer, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    with api_client(server.url, headers or ALICE) as api:
        return list(api.get("/sessions").json()["sessions"])


def test_a_plain_completion_answers_in_openai_shape_with_the_routers_headers(server: LiveServer) -> None:
    raw = sdk(server).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi! what is the capital of France?"}]
    )
    completion = raw.parse()
    assert completion.object == "chat.completion" and completion.model == "llama3.2"
    assert completion.choices[0].message.role == "assistant" and completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content.startswith("[local/llama3.2] reply to: hi!")
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-router-backend"] == "local" and raw.headers["x-router-model"] == "llama3.2"
    reason = raw.headers["x-router-reason"]
    assert reason.isascii() and 0 < len(reason) <= 200
    view = stored(server, raw.headers["x-session-id"])
    assert [m["role"] for m in view["messages"]] == ["user", "assistant"] and view["turns"][0]["backend"] == "local"


async def test_a_stream_with_usage_ends_with_a_usage_chunk_and_done(server: LiveServer) -> None:
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", default_headers=ALICE)
    raw = await client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": HARD}], stream=True, stream_options={"include_usage": True}
    )
    assert raw.headers["x-router-backend"] == "cloud" and raw.headers["x-session-id"]
    chunks = [chunk async for chunk in raw.parse()]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text.startswith("[cloud/gpt-4o-mini] reply to: Design a rate limiter")
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert stored(server, raw.headers["x-session-id"])["messages"][-1]["content"] == text
    await client.close()


def test_models_lists_auto_and_each_configured_backend(server: LiveServer) -> None:
    models = sdk(server).models.list()
    assert [model.id for model in models.data] == ["auto", "local", "cloud"]
    assert all(model.object == "model" and model.created > 0 for model in models.data)


def test_a_five_turn_conversation_sent_whole_each_time_is_stored_once(server: LiveServer) -> None:
    client = sdk(server)
    messages: list[dict[str, str]] = [{"role": "system", "content": "You answer briefly."}]
    sessions = set()
    for number in range(1, 6):
        messages.append({"role": "user", "content": f"question {number}: what is {number} + {number}?"})
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=messages)  # type: ignore[arg-type]
        sessions.add(raw.headers["x-session-id"])
        messages.append({"role": "assistant", "content": raw.parse().choices[0].message.content or ""})
    assert len(sessions) == 1
    view = stored(server, sessions.pop())
    assert len(view["turns"]) == 5
    assert [m["role"] for m in view["messages"]] == ["system"] + ["user", "assistant"] * 5  # 10 turn messages
    assert [m["content"] for m in view["messages"]] == [m["content"] for m in messages]
    assert len(sessions_of(server)) == 1


@pytest.mark.parametrize("stateless", [True, False])
def test_developer_instructions_start_a_session_and_continue_it_without_forking(
    server: LiveServer, stateless: bool
) -> None:
    """Newer OpenAI clients send instructions as `developer` messages; they are kept as system messages, and a
    conversation resent with them continues its session."""
    client = sdk(server)
    messages: list[dict[str, str]] = [{"role": "developer", "content": "Answer in one sentence."}]
    sessions = []
    for number in (1, 2, 3):
        messages.append({"role": "user", "content": f"question {number}: name a planet"})
        headers = {} if stateless or not sessions else {"X-Session-Id": sessions[-1]}
        raw = client.chat.completions.with_raw_response.create(
            model="auto",
            messages=messages,  # type: ignore[arg-type]
            extra_headers=headers,
        )
        sessions.append(raw.headers["x-session-id"])
        messages.append({"role": "assistant", "content": raw.parse().choices[0].message.content or ""})
    assert len(set(sessions)) == 1 and len(sessions_of(server)) == 1
    view = stored(server, sessions[0])
    assert [m["role"] for m in view["messages"]] == ["system"] + ["user", "assistant"] * 3
    assert view["messages"][0]["content"] == "Answer in one sentence."


def conversation(server: LiveServer, turns: int) -> tuple[str, list[dict[str, str]]]:
    client = sdk(server)
    messages: list[dict[str, str]] = []
    session_id = ""
    for number in range(1, turns + 1):
        messages.append({"role": "user", "content": f"turn {number}: tell me about planet {number}"})
        headers = {"X-Session-Id": session_id} if session_id else {}
        raw = client.chat.completions.with_raw_response.create(
            model="auto",
            messages=messages,  # type: ignore[arg-type]
            extra_headers=headers,
        )
        session_id = raw.headers["x-session-id"]
        messages.append({"role": "assistant", "content": raw.parse().choices[0].message.content or ""})
    return session_id, messages


def test_an_edit_of_turn_two_forks_at_turn_one_and_leaves_the_original_untouched(server: LiveServer) -> None:
    session_id, messages = conversation(server, 3)
    original = stored(server, session_id)
    edited = [*messages[:2], {"role": "user", "content": "turn 2, edited: tell me about the moon instead"}]
    raw = sdk(server).chat.completions.with_raw_response.create(
        model="auto",
        messages=edited,  # type: ignore[arg-type]
        extra_headers={"X-Session-Id": session_id},
    )
    fork = raw.headers["x-session-id"]
    assert fork != session_id
    view = stored(server, fork)
    assert view["lineage"] == {"kind": "fork", "source_session_id": session_id, "source_turn": 1}
    assert len(view["turns"]) == 2 and view["messages"][2]["content"] == edited[2]["content"]
    assert stored(server, session_id) == original


def test_a_regenerate_of_the_last_answer_forks_before_the_last_turn(server: LiveServer) -> None:
    session_id, messages = conversation(server, 3)
    again = messages[:-1]  # the last answer dropped, its question sent again: not a retry, a new request
    raw = sdk(server).chat.completions.with_raw_response.create(
        model="auto",
        messages=again,  # type: ignore[arg-type]
        extra_headers={"X-Session-Id": session_id},
    )
    fork = raw.headers["x-session-id"]
    assert fork != session_id and "x-idempotent-replay" not in raw.headers
    view = stored(server, fork)
    assert view["lineage"] == {"kind": "fork", "source_session_id": session_id, "source_turn": 2}
    assert len(view["turns"]) == 3 and view["turns"][2]["imported"] is False
    assert len(stored(server, session_id)["turns"]) == 3


def test_a_forced_model_routes_to_that_backend(server: LiveServer, models: dict[str, FakeModelServer]) -> None:
    raw = sdk(server).chat.completions.with_raw_response.create(
        model="cloud", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-router-backend"] == "cloud" and raw.parse().model == "gpt-4o-mini"
    assert stored(server, raw.headers["x-session-id"])["turns"][0]["route_requested"] == "cloud"
    assert len(models["cloud"].requests) == 1 and not models["local"].requests


def test_an_unknown_model_is_the_sdks_not_found_error(server: LiveServer) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        sdk(server, max_retries=0).chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "x"}])
    assert raised.value.code == "model_not_found" and raised.value.body["param"] == "model"  # type: ignore[index]
    with pytest.raises(openai.UnprocessableEntityError) as invalid:
        sdk(server, max_retries=0).chat.completions.create(
            model="auto", messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
        )
    assert invalid.value.body["param"] == "messages[0].content[0].type"  # type: ignore[index]
    with pytest.raises(openai.UnprocessableEntityError, match="last message must be a user message"):
        sdk(server, max_retries=0).chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
        )


async def test_a_second_turn_while_one_runs_is_the_sdks_conflict_error(
    server: LiveServer, models: dict[str, FakeModelServer]
) -> None:
    session_id, messages = conversation(server, 1)
    models["local"].script(Behaviour.slow(2.0))
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", default_headers=ALICE, max_retries=0)
    body = [*messages, {"role": "user", "content": "and then?"}]
    slow = asyncio.create_task(
        client.chat.completions.create(model="local", messages=body, extra_headers={"X-Session-Id": session_id})  # type: ignore[arg-type]
    )
    await asyncio.sleep(0.8)
    with pytest.raises(openai.ConflictError) as busy:
        await client.chat.completions.create(
            model="local",
            messages=body,  # type: ignore[arg-type]
            extra_headers={"X-Session-Id": session_id},
        )
    assert busy.value.response.headers["retry-after"] and busy.value.code == "session_busy"
    await slow
    assert len(stored(server, session_id)["turns"]) == 2
    await client.close()


def test_principals_are_isolated_and_a_foreign_session_id_is_not_found(server: LiveServer) -> None:
    session_id, messages = conversation(server, 1)
    bob = sdk(server, principal("bob-01"), max_retries=0)
    with pytest.raises(openai.NotFoundError):
        bob.chat.completions.create(
            model="auto",
            messages=[*messages, {"role": "user", "content": "hijack"}],  # type: ignore[arg-type]
            extra_headers={"X-Session-Id": session_id},
        )
    # Without a session id the same transcript is bob's own conversation, never alice's session.
    raw = bob.chat.completions.with_raw_response.create(
        model="auto",
        messages=[*messages, {"role": "user", "content": "mine"}],  # type: ignore[arg-type]
    )
    assert raw.headers["x-session-id"] != session_id
    assert len(stored(server, session_id)["turns"]) == 1
    assert [s["session_id"] for s in sessions_of(server, principal("bob-01"))] == [raw.headers["x-session-id"]]


def test_the_sdk_retries_a_5xx_and_nothing_is_stored_twice(
    server: LiveServer, models: dict[str, FakeModelServer]
) -> None:
    models["local"].script(Behaviour.error(503))
    models["cloud"].script(Behaviour.error(503))
    client = sdk(server, max_retries=2)
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    assert raw.http_response.request.headers["x-stainless-retry-count"] == "1"  # the first attempt got a 5xx
    session_id = raw.headers["x-session-id"]
    assert len(stored(server, session_id)["turns"]) == 1 and len(sessions_of(server)) == 1


def test_a_retry_after_a_dropped_answer_gets_the_saved_turn_with_one_model_call(
    server: LiveServer, models: dict[str, FakeModelServer]
) -> None:
    session_id, messages = conversation(server, 1)
    calls = len(models["local"].requests)
    models["local"].script(Behaviour.slow(1.5, reply="the one and only answer"))
    client = sdk(server, timeout=0.7, max_retries=6)  # gives up on the first attempt while the turn is saved
    body = [*messages, {"role": "user", "content": "turn 2: and planet 2?"}]
    raw = client.chat.completions.with_raw_response.create(
        model="local",
        messages=body,  # type: ignore[arg-type]
        extra_headers={"X-Session-Id": session_id},
    )
    assert raw.headers["x-idempotent-replay"] == "true" and raw.headers["x-session-id"] == session_id
    assert raw.parse().choices[0].message.content == "the one and only answer"
    assert len(models["local"].requests) == calls + 1
    view = stored(server, session_id)
    assert len(view["turns"]) == 2 and len(view["messages"]) == 4


async def test_a_streamed_retry_of_a_saved_turn_streams_the_stored_answer(
    server: LiveServer, models: dict[str, FakeModelServer]
) -> None:
    session_id, messages = conversation(server, 2)
    calls = len(models["local"].requests)
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", default_headers=ALICE)
    raw = await client.chat.completions.with_raw_response.create(
        model="auto",
        messages=messages[:-1],  # type: ignore[arg-type]
        stream=True,
        extra_headers={"X-Session-Id": session_id, "X-Stainless-Retry-Count": "1"},
    )
    assert raw.headers["x-idempotent-replay"] == "true"
    text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert text == messages[-1]["content"] and len(models["local"].requests) == calls
    assert len(stored(server, session_id)["turns"]) == 2
    await client.close()


async def test_an_agent_framework_agent_can_use_the_router_as_its_model(server: LiveServer) -> None:
    chat_client = OpenAIChatCompletionClient(
        model="auto",
        async_client=openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", default_headers=ALICE),
    )
    agent = Agent(client=chat_client, instructions="You are terse.", name="uses-the-router")
    session = agent.create_session()
    first = await agent.run("hi there, who are you?", session=session)
    second = await agent.run(HARD, session=session)
    assert first.text.startswith("[local/") and second.text.startswith("[cloud/")
    [summary] = sessions_of(server)
    view = stored(server, summary["session_id"])
    assert [turn["backend"] for turn in view["turns"]] == ["local", "cloud"]
    assert view["messages"][0] == {"role": "system", "content": "You are terse."}


async def test_a_stream_that_falls_back_before_its_first_text_names_the_backend_that_answered(
    server: LiveServer, models: dict[str, FakeModelServer]
) -> None:
    models["local"].script(Behaviour.error(503))
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", default_headers=ALICE, max_retries=0)
    raw = await client.chat.completions.with_raw_response.create(
        model="local", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert raw.headers["x-router-backend"] == "cloud" and raw.headers["x-router-model"] == "gpt-4o-mini"
    assert "fell back to cloud" in raw.headers["x-router-reason"]
    text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert text.startswith("[cloud/gpt-4o-mini]")
    # Every backend down before any text: the status line can still say so, as the SDK's own typed error.
    models["local"].script(Behaviour.error(503))
    models["cloud"].script(Behaviour.error(503))
    with pytest.raises(openai.InternalServerError) as failed:
        stream = await client.chat.completions.create(
            model="local", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        [chunk async for chunk in stream]
    assert failed.value.status_code == 502 and failed.value.code == "backends_failed"
    await client.close()


async def test_a_stream_broken_after_its_first_text_ends_with_an_openai_error_the_sdk_raises(
    server: LiveServer, models: dict[str, FakeModelServer]
) -> None:
    """Once text went out the status is sent; the failure comes as an OpenAI error event (mapped as any error is),
    which the SDK raises, and nothing of the turn is stored."""
    models["local"].script(Behaviour.broken_stream())
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", default_headers=ALICE, max_retries=0)
    stream = await client.chat.completions.create(
        model="local", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError) as failed:
        [chunk async for chunk in stream]
    assert failed.value.body == {
        "message": "The local backend failed mid-answer; nothing was saved.",
        "type": "api_error",
        "param": None,
        "code": "stream_broken",
    }
    assert sessions_of(server, ALICE) == []
    await client.close()
