"""Tests for tools/fake_model.py, driven through the real openai SDK and Agent Framework clients.

Why real clients: the fake server is only useful if the production client stack cannot tell it from a real
backend, so every behaviour is checked by the exception or object the real SDK produces, not by raw HTTP.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from agent_framework import Agent
from agent_framework.exceptions import ChatClientException
from agent_framework.openai import OpenAIChatCompletionClient

from tools.fake_model import Behaviour, FakeModelServer, bpe_tokens, estimate_tokens, prompt_tokens, unused_port

REPO_ROOT = Path(__file__).resolve().parents[1]
USER = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def server() -> Iterator[FakeModelServer]:
    with FakeModelServer(name="local") as srv:
        yield srv


@pytest.fixture
async def client(server: FakeModelServer) -> AsyncIterator[openai.AsyncOpenAI]:
    # max_retries=0: otherwise the SDK silently retries and consumes the next scripted behaviour.
    sdk = openai.AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0, timeout=5)
    yield sdk
    await sdk.close()


def af_client(server: FakeModelServer, *, retries: int = 0, model: str = "small-model") -> OpenAIChatCompletionClient:
    """Agent Framework client on the OpenAI route with SDK retries under test control."""
    sdk = openai.AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=retries, timeout=5)
    return OpenAIChatCompletionClient(model=model, async_client=sdk)


# ---------------------------------------------------------------------------- replies on the wire


async def test_non_streaming_reply_names_backend_and_model_with_estimated_usage(
    server: FakeModelServer, client: openai.AsyncOpenAI
) -> None:
    completion = await client.chat.completions.create(model="small-model", messages=USER)

    text = "[local/small-model] reply to: What is the capital of France?"
    assert completion.object == "chat.completion"
    assert completion.model == "small-model"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == text
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == math.ceil(len(USER[0]["content"]) / 4)
    assert completion.usage.completion_tokens == estimate_tokens(text)
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


async def test_default_reply_quotes_only_first_60_chars_of_last_user_message(client: openai.AsyncOpenAI) -> None:
    long_question = "x" * 100
    messages = [*USER, {"role": "assistant", "content": "Paris"}, {"role": "user", "content": long_question}]

    completion = await client.chat.completions.create(model="m", messages=messages)

    assert completion.choices[0].message.content == f"[local/m] reply to: {'x' * 60}"


async def test_streaming_splits_reply_into_chunks_and_ends_with_usage_chunk(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="small-model", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    content = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) > 3
    assert "".join(content) == "[local/small-model] reply to: What is the capital of France?"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    final = chunks[-1]
    assert final.choices == []
    assert final.usage is not None and final.usage.completion_tokens == estimate_tokens("".join(content))
    assert all(c.usage is None for c in chunks[:-1])


async def test_streaming_without_include_usage_sends_no_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]

    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


async def test_azure_style_client_is_served_on_deployment_route(server: FakeModelServer) -> None:
    azure = openai.AsyncAzureOpenAI(
        azure_endpoint=server.azure_endpoint,
        azure_deployment="gpt-4o-prod",
        api_version="2024-10-21",
        api_key="azure-key",
        max_retries=0,
    )
    try:
        completion = await azure.chat.completions.create(model="gpt-4o-prod", messages=USER)
    finally:
        await azure.close()

    assert completion.choices[0].message.content.startswith("[local/gpt-4o-prod] reply to:")
    [request] = server.requests
    assert request["path"] == "/openai/deployments/gpt-4o-prod/chat/completions"
    assert request["query"] == {"api-version": "2024-10-21"}
    assert request["deployment"] == "gpt-4o-prod"
    assert request["headers"]["api-key"] == "azure-key"


async def test_azure_route_without_api_version_is_rejected_like_azure(server: FakeModelServer) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.url}/openai/deployments/d/chat/completions", json={"model": "d", "messages": USER}
        )

    assert response.status_code == 400
    assert "api-version" in response.json()["error"]["message"]


async def test_models_endpoint_answers_health_checks_without_consuming_script(
    server: FakeModelServer, client: openai.AsyncOpenAI
) -> None:
    server.script("scripted")

    models = await client.models.list()

    assert [m.id for m in models.data] == ["fake-model"]
    assert server.pending == 1
    assert server.requests == []


# ---------------------------------------------------------------------------- scripted behaviours


async def test_script_is_consumed_in_fifo_order_then_default_then_derived_reply(
    server: FakeModelServer, client: openai.AsyncOpenAI
) -> None:
    server.script("first", Behaviour.text("second"), {"reply": "third"})

    replies = [(await client.chat.completions.create(model="m", messages=USER)).choices[0].message.content]
    replies += [(await client.chat.completions.create(model="m", messages=USER)).choices[0].message.content]
    replies += [(await client.chat.completions.create(model="m", messages=USER)).choices[0].message.content]
    server.set_default("fallback")
    replies += [(await client.chat.completions.create(model="m", messages=USER)).choices[0].message.content]
    server.set_default(None)
    replies += [(await client.chat.completions.create(model="m", messages=USER)).choices[0].message.content]

    assert replies[:4] == ["first", "second", "third", "fallback"]
    assert replies[4].startswith("[local/m]")
    assert server.pending == 0


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
async def test_scripted_error_status_raises_matching_sdk_error(
    server: FakeModelServer, client: openai.AsyncOpenAI, status: int, exception: type[openai.APIStatusError]
) -> None:
    server.script(Behaviour.error(status, "backend unhappy"))

    with pytest.raises(exception) as caught:
        await client.chat.completions.create(model="m", messages=USER)

    assert isinstance(caught.value, openai.APIStatusError)
    assert caught.value.status_code == status
    assert caught.value.message.endswith("backend unhappy")
    assert server.requests[0]["outcome"] == f"error {status}"


async def test_rate_limit_exposes_retry_after_header(server: FakeModelServer, client: openai.AsyncOpenAI) -> None:
    server.script(Behaviour.rate_limited(retry_after=7))

    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="m", messages=USER)

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limit_exceeded"


async def test_connection_reset_raises_api_connection_error_not_timeout(
    server: FakeModelServer, client: openai.AsyncOpenAI
) -> None:
    server.script(Behaviour.reset())

    with pytest.raises(openai.APIConnectionError) as caught:
        await client.chat.completions.create(model="m", messages=USER)

    assert not isinstance(caught.value, openai.APITimeoutError)
    assert server.requests[0]["outcome"] == "reset"
    # The server keeps serving other connections after a reset.
    assert (await client.chat.completions.create(model="m", messages=USER)).choices[0].message.content


async def test_unused_port_refuses_connections() -> None:
    sdk = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{unused_port()}/v1", api_key="k", max_retries=0)
    try:
        with pytest.raises(openai.APIConnectionError):
            await sdk.chat.completions.create(model="m", messages=USER)
    finally:
        await sdk.close()


async def test_delay_beyond_client_timeout_raises_api_timeout_error(server: FakeModelServer) -> None:
    server.script(Behaviour.slow(2.0))
    sdk = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0, timeout=0.2)
    try:
        with pytest.raises(openai.APITimeoutError):
            await sdk.chat.completions.create(model="m", messages=USER)
    finally:
        await sdk.close()

    # The abandoned handler is cancelled rather than answering into the void two seconds later.
    for _ in range(50):
        if server.requests[0]["outcome"] != "pending":
            break
        await asyncio.sleep(0.02)
    assert server.requests[0]["outcome"] == "client_disconnected"


async def test_broken_stream_raises_during_iteration_after_partial_content(
    server: FakeModelServer, client: openai.AsyncOpenAI
) -> None:
    server.script(Behaviour.broken_stream("one two three four five six seven eight"))
    received: list[str] = []

    stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)

    assert "".join(received) == "one two three four "
    assert server.requests[0]["outcome"] == "broken_stream"


async def test_broken_non_streaming_answer_raises_connection_error(
    server: FakeModelServer, client: openai.AsyncOpenAI
) -> None:
    server.script(Behaviour.broken_stream())

    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="m", messages=USER)


async def test_latency_and_chunk_delay_slow_down_answers(server: FakeModelServer, client: openai.AsyncOpenAI) -> None:
    server.latency = 0.1
    server.script(Behaviour.text("a b c d", chunk_delay=0.05))

    started = time.perf_counter()
    stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
    first_byte = time.perf_counter() - started
    _ = [chunk async for chunk in stream]
    total = time.perf_counter() - started

    assert first_byte >= 0.1
    assert total >= 0.1 + 3 * 0.05


async def test_fifty_concurrent_streams_are_served_in_parallel(server: FakeModelServer) -> None:
    server.latency = 0.2
    sdk = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0, timeout=10)

    async def one(i: int) -> str:
        stream = await sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"q{i}"}], stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    try:
        started = time.perf_counter()
        replies = await asyncio.gather(*(one(i) for i in range(50)))
        elapsed = time.perf_counter() - started
    finally:
        await sdk.close()

    assert sorted(replies) == sorted(f"[local/m] reply to: q{i}" for i in range(50))
    assert elapsed < 3.0  # serialised it would take 50 x 0.2 s = 10 s


def test_behaviour_rejects_unknown_keys_and_non_error_status() -> None:
    with pytest.raises(ValueError, match="unknown behaviour keys"):
        Behaviour.from_spec({"replly": "typo"})
    with pytest.raises(ValueError, match="status"):
        Behaviour(status=200)
    with pytest.raises(ValueError, match="drop"):
        Behaviour.from_spec({"drop": "explode"})


# ---------------------------------------------------------------------------- lifecycle and control


async def test_stop_refuses_connections_and_restart_reuses_the_port(server: FakeModelServer) -> None:
    port = server.port
    sdk = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0, timeout=2)
    try:
        server.stop()
        with pytest.raises(openai.APIConnectionError):
            await sdk.chat.completions.create(model="m", messages=USER)
        server.start()
        completion = await sdk.chat.completions.create(model="m", messages=USER)
    finally:
        await sdk.close()

    assert server.port == port
    assert completion.choices[0].message.content.startswith("[local/m]")


async def test_control_api_over_http_scripts_lists_and_resets(
    server: FakeModelServer, client: openai.AsyncOpenAI
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        scripted = await http.post(
            "/_control/script",
            json={"behaviours": [{"reply": "over http"}, {"status": 503, "times": 2}], "default": {"reply": "dflt"}},
        )
        assert scripted.json() == {"pending": 3, "default": {"reply": "dflt"}}

        first = await client.chat.completions.create(model="m", messages=USER)
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                await client.chat.completions.create(model="m", messages=USER)
        after = await client.chat.completions.create(model="m", messages=USER)

        log = (await http.get("/_control/requests")).json()
        bad = await http.post("/_control/script", json={"behaviours": [{"nope": 1}]})
        reset = await http.post("/_control/reset")
        log_after_reset = (await http.get("/_control/requests")).json()

    assert first.choices[0].message.content == "over http"
    assert after.choices[0].message.content == "dflt"
    assert log["server"] == "local"
    assert [r["outcome"] for r in log["requests"]] == ["reply", "error 503", "error 503", "reply"]
    assert log["requests"][0]["json"]["messages"] == USER
    assert bad.status_code == 400
    assert reset.json() == {"ok": True}
    assert log_after_reset["requests"] == [] and server.pending == 0


def test_cli_prints_ready_line_and_serves_until_terminated() -> None:
    command = [sys.executable, "-m", "tools.fake_model", "--port", "0", "--name", "cloud", "--latency", "0.01"]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("FAKE_MODEL_READY ")
            ready = json.loads(line.removeprefix("FAKE_MODEL_READY "))
            response = httpx.post(
                f"{ready['base_url']}/chat/completions", json={"model": "big", "messages": USER}, timeout=5
            )
            assert response.json()["choices"][0]["message"]["content"].startswith("[cloud/big]")
        finally:
            process.terminate()
            exit_code = process.wait(timeout=5)
    assert exit_code == 0


# ---------------------------------------------------------------------------- Agent Framework


async def test_agent_session_sends_full_history_on_second_turn(server: FakeModelServer) -> None:
    client = af_client(server)
    agent = Agent(client=client, instructions="Answer briefly.")
    session = agent.create_session()
    try:
        first = await agent.run("Hello, who are you?", session=session)
        stream = agent.run("And what can you do?", stream=True, session=session)
        updates = [update async for update in stream]
        second = await stream.get_final_response()
    finally:
        await client.client.close()

    assert first.text == "[local/small-model] reply to: Hello, who are you?"
    assert first.usage_details is not None and first.usage_details["output_token_count"] == estimate_tokens(first.text)
    assert len([u for u in updates if u.text]) > 3
    assert second.text == "[local/small-model] reply to: And what can you do?"
    assert second.usage_details is not None
    assert second.usage_details["input_token_count"] > first.usage_details["input_token_count"]

    turn1, turn2 = server.requests
    assert turn1["stream"] is False and turn2["stream"] is True
    assert turn2["json"]["stream_options"] == {"include_usage": True}
    assert [(m["role"], m["content"]) for m in turn2["json"]["messages"]] == [
        ("system", "Answer briefly."),
        ("user", "Hello, who are you?"),
        ("assistant", first.text),
        ("user", "And what can you do?"),
    ]


async def test_agent_framework_azure_style_client_hits_deployment_route(server: FakeModelServer) -> None:
    client = OpenAIChatCompletionClient(
        model="gpt-4o-prod", azure_endpoint=server.azure_endpoint, api_version="2024-10-21", api_key="azure-key"
    )
    try:
        response = await Agent(client=client).run("ping")
    finally:
        await client.client.close()

    assert response.text == "[local/gpt-4o-prod] reply to: ping"
    [request] = server.requests
    assert request["path"] == "/openai/deployments/gpt-4o-prod/chat/completions"
    assert request["query"]["api-version"] == "2024-10-21"
    assert request["headers"]["api-key"] == "azure-key"
    assert "authorization" not in request["headers"]


async def test_agent_framework_wraps_sdk_errors_in_chat_client_exception(server: FakeModelServer) -> None:
    client = af_client(server)
    server.script(Behaviour.error(503), Behaviour.broken_stream())
    try:
        with pytest.raises(ChatClientException) as failed:
            await Agent(client=client).run("ping")
        stream = Agent(client=client).run("ping", stream=True)
        with pytest.raises(ChatClientException) as broken:
            async for _ in stream:
                pass
    finally:
        await client.client.close()

    assert isinstance(failed.value.__cause__, openai.InternalServerError)
    assert isinstance(broken.value.__cause__, openai.APIConnectionError)


async def test_default_sdk_retries_absorb_a_single_scripted_error(server: FakeModelServer) -> None:
    # Documents a trap for router tests: with the SDK default (2 retries) one scripted 503 never surfaces.
    client = OpenAIChatCompletionClient(model="m", api_key="k", base_url=server.base_url)
    server.script(Behaviour.error(503))
    try:
        response = await Agent(client=client).run("ping")
    finally:
        await client.client.close()

    assert response.text == "[local/m] reply to: ping"
    assert [r["outcome"] for r in server.requests] == ["error 503", "reply"]


# ---------------------------------------------------------------------------- token counts and windows


def test_the_bpe_count_splits_words_numbers_and_punctuation_like_a_bpe_tokenizer() -> None:
    assert bpe_tokens("hello world") == 2
    assert bpe_tokens(" internationalization") == 1 + (21 - 7 + 4) // 5  # a long word costs more
    assert bpe_tokens("1234567") == 3  # digits in threes
    assert bpe_tokens("日本語") == 3
    assert bpe_tokens("a = b;") == 4
    messages = [{"role": "system", "content": "hi"}, {"role": "user", "content": "hello world", "name": "ann"}]
    assert prompt_tokens(messages, "bpe") == (3 + 1) + (3 + 2) + 1 + 3  # per message, name, reply priming
    assert prompt_tokens(messages, "chars") == math.ceil(len("hihello world") / 4)


async def test_a_request_longer_than_the_window_is_refused_as_openai_refuses_it(
    server: FakeModelServer, client: openai.AsyncOpenAI
) -> None:
    server.configure(tokenizer="bpe", context_window=40)
    long = [{"role": "user", "content": "word " * 30}]
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(model="small-model", messages=long, max_tokens=10)
    assert refused.value.code == "context_length_exceeded" and refused.value.param == "messages"
    assert "maximum context length is 40 tokens" in refused.value.message
    fits = await client.chat.completions.create(model="small-model", messages=USER, max_tokens=10)
    assert fits.usage is not None and fits.usage.prompt_tokens == server.requests[-1]["prompt_tokens"] <= 30
    server.clear()
    assert (server.tokenizer, server.context_window) == ("chars", None)  # clear() restores the counting


async def test_a_behaviour_with_when_applies_only_to_requests_that_contain_its_text(
    server: FakeModelServer, client: openai.AsyncOpenAI
) -> None:
    server.script(Behaviour(reply="summary!", when="summarize"), "plain")
    first = await client.chat.completions.create(model="m", messages=USER)
    second = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "summarize it"}])
    assert (first.choices[0].message.content, second.choices[0].message.content) == ("plain", "summary!")
    assert server.pending == 0


async def test_messages_sent_as_given_reach_the_model_exactly_as_the_sdk_would_send_them(
    server: FakeModelServer,
) -> None:
    from shared.agents.backends import send_messages_as_given

    messages: list[Any] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "find it"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "found"},
        {"role": "user", "content": "thanks", "name": "ann"},
    ]
    bodies = []
    for given in (False, True):
        sdk = openai.AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
        client = send_messages_as_given(sdk) if given else sdk
        await client.chat.completions.create(model="m", messages=messages, temperature=0.2, max_tokens=5)
        bodies.append(server.requests[-1]["json"])
        await sdk.close()
    assert bodies[0] == bodies[1] and bodies[1]["messages"] == messages
