"""Chat answered as Server-Sent Events over real HTTP: event order (route, fallback, delta, done), that `done`
is the JSON answer and what GET shows afterwards, real incremental delivery, and failures midway."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.api_helpers import (
    SSE_TYPE,
    Event,
    client,
    component_errors,
    conforming,
    parse_sse,
    stored_blobs,
    stored_documents,
    stream_chat,
)
from tests.fixtures_app import LiveServer
from tools.fake_model import Behaviour, FakeModelServer

HARD = (
    "Design a distributed rate limiter for a multi-region API. Compare token bucket and sliding window "
    "approaches, analyze the trade-offs in consistency and latency, and explain step by step how to handle clock skew."
)
LONG_REPLY = " ".join(f"word{n}" for n in range(40))


@pytest.fixture
def checked(api: httpx.Client) -> httpx.Client:
    return conforming(api)


def names(events: list[Event]) -> list[str]:
    return [event.name for event in events]


def assert_well_ordered(events: list[Event]) -> None:
    """route first; fallbacks only before the first delta; exactly one terminal event (done or error), last."""
    sequence = names(events)
    assert sequence[0] == "route", sequence
    assert sequence[-1] in ("done", "error") and sequence.count("done") + sequence.count("error") == 1, sequence
    first_delta = sequence.index("delta") if "delta" in sequence else len(sequence)
    assert all(name == "fallback" for name in sequence[1:first_delta] if name not in ("done", "error")), sequence
    assert set(sequence[first_delta:-1]) <= {"delta"}, sequence
    for event in events:
        if event.name == "done":
            assert component_errors("ChatResponse", event.data) == []
        if event.name == "error":
            assert component_errors("ErrorBody", event.data) == [] and event.data["status"] >= 400


def test_stream_sends_route_then_deltas_then_done_equal_to_the_saved_turn(
    checked: httpx.Client, models: dict[str, FakeModelServer]
) -> None:
    models["local"].script(Behaviour.text(LONG_REPLY))
    response, events = stream_chat(checked, {"message": "tell me something nice"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(SSE_TYPE) and response.headers["cache-control"] == "no-cache"
    assert_well_ordered(events)
    assert names(events)[-1] == "done" and names(events).count("delta") > 1
    route, done = events[0].data, events[-1].data
    assert (route["backend"], route["model"], route["turn"]) == ("local", "llama3.2", 1)
    assert route["session_id"] == done["session_id"]
    assert "".join(event.data["text"] for event in events if event.name == "delta") == done["reply"] == LONG_REPLY

    view = checked.get(f"/sessions/{done['session_id']}").json()
    record = view["turns"][-1]
    assert view["messages"][-1] == {"role": "assistant", "content": done["reply"]}
    assert record["turn"] == done["turn"] == 1
    for key in ("backend", "model", "complexity", "reason", "switched_from", "fallback_from", "router_version"):
        assert done["route"][key] == record[key], key
    assert done["route"]["fallback_chain"] == record["fallback_chain"]
    assert done["usage"] == {"input_tokens": record["input_tokens"], "output_tokens": record["output_tokens"]}
    assert (done["latency_ms"], done["cost"]) == (record["latency_ms"], record["cost"])
    assert done["usage"]["output_tokens"] > 0


def test_stream_true_in_the_body_streams_without_an_accept_header(checked: httpx.Client) -> None:
    first = checked.post("/chat", json={"message": "hello"}).json()
    with checked.stream(
        "POST", "/chat", json={"message": "again", "session_id": first["session_id"], "stream": True}
    ) as r:
        assert r.headers["content-type"].startswith(SSE_TYPE)
        events = list(parse_sse(r.iter_lines()))
    assert_well_ordered(events)
    assert events[-1].data["turn"] == 2 and events[-1].data["created"] is False
    assert checked.get(f"/sessions/{first['session_id']}").json()["summary"]["turns"] == 2


def test_events_arrive_while_the_model_is_still_answering(
    checked: httpx.Client, models: dict[str, FakeModelServer]
) -> None:
    """Nothing is buffered: the route and the first words reach the client before the turn is saved."""
    models["local"].script(Behaviour.text(LONG_REPLY, chunk_delay=0.1))
    seen: list[Event] = []
    with checked.stream("POST", "/chat", json={"message": "hello"}, headers={"Accept": SSE_TYPE}) as response:
        lines = response.iter_lines()
        for event in parse_sse(lines):
            seen.append(event)
            if event.name == "delta":
                break
        session_id = seen[0].data["session_id"]
        assert names(seen) == ["route", "delta"]
        assert checked.get(f"/sessions/{session_id}").status_code == 404, "saved before the answer was complete"
        seen.extend(parse_sse(lines))
    assert_well_ordered(seen)
    assert checked.get(f"/sessions/{session_id}").json()["messages"][-1]["content"] == LONG_REPLY


def test_a_fallback_event_comes_between_route_and_the_first_delta(
    checked: httpx.Client, models: dict[str, FakeModelServer]
) -> None:
    models["cloud"].script(Behaviour.error(500))
    _, events = stream_chat(checked, {"message": HARD})
    assert_well_ordered(events)
    assert names(events)[:2] == ["route", "fallback"]
    assert events[0].data["backend"] == "cloud"
    assert events[1].data == {"from": "cloud", "error": "server", "to": "local"}
    done = events[-1].data
    assert done["route"]["backend"] == "local" and done["route"]["fallback_from"] == "cloud"
    assert checked.get(f"/sessions/{done['session_id']}").json()["turns"][0]["fallback_chain"][0]["backend"] == "cloud"


async def test_a_model_failing_midway_ends_with_an_error_event_and_saves_nothing(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]], models: dict[str, FakeModelServer]
) -> None:
    env = make_env()
    with client(live_server(env).url) as api:
        models["local"].script(Behaviour.broken_stream(LONG_REPLY))
        _, fresh = stream_chat(api, {"message": "hello"})
        assert_well_ordered(fresh)
        assert "delta" in names(fresh) and names(fresh)[-1] == "error"
        assert fresh[-1].data["code"] == "stream_broken" and fresh[-1].data["status"] == 502
        assert api.get(f"/sessions/{fresh[0].data['session_id']}").status_code == 404
        assert await stored_blobs(env) == []
        assert await stored_documents(env) == {"turns": [], "sessions": []}

        first = api.post("/chat", json={"message": "hello"}).json()
        before = api.get(f"/sessions/{first['session_id']}").json()
        models["local"].script(Behaviour.broken_stream(LONG_REPLY))
        _, existing = stream_chat(api, {"message": "more please", "session_id": first["session_id"]})
        assert names(existing)[-1] == "error"
        assert api.get(f"/sessions/{first['session_id']}").json() == before
        again = api.post("/chat", json={"message": "more please", "session_id": first["session_id"]})
        assert again.status_code == 200 and again.json()["turn"] == 2, "the session is not left locked"
    assert [d["turn"] for d in (await stored_documents(env))["turns"]] == [1, 2]


async def test_every_backend_failing_while_streaming_ends_with_an_error_event_and_saves_nothing(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]], models: dict[str, FakeModelServer]
) -> None:
    env = make_env()
    models["cloud"].script(Behaviour.error(500))
    models["local"].script(Behaviour.reset())
    with client(live_server(env).url) as api:
        _, events = stream_chat(api, {"message": HARD})
    assert_well_ordered(events)
    assert names(events) == ["route", "fallback", "error"]
    assert events[-1].data["code"] == "backends_failed" and events[-1].data["status"] == 502
    assert await stored_blobs(env) == []


def test_a_refused_streaming_request_is_a_plain_json_error(checked: httpx.Client) -> None:
    missing, events = stream_chat(checked, {"message": "hi", "session_id": "doesnotexist"})
    assert events == [] and missing.status_code == 404
    assert missing.json()["error"]["code"] == "session_not_found"
    invalid, events = stream_chat(checked, {"message": "hi", "route": "mars"})
    assert events == [] and invalid.status_code == 422
