"""Every error the HTTP API promises, provoked honestly over real HTTP: the status, the JSON error body, the
headers (Retry-After, Allow), and that a failed turn stores nothing in Blob Storage or Cosmos DB."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api_helpers import async_client, client, conforming, principal, stored_blobs, stored_documents
from tests.fixtures_app import LiveServer
from tools.fake_model import Behaviour, FakeModelServer, unused_port

HARD = (
    "Design a distributed rate limiter for a multi-region API. Compare token bucket and sliding window "
    "approaches, analyze the trade-offs in consistency and latency, and explain step by step how to handle clock skew."
)


@pytest.fixture
def checked(api: httpx.Client) -> httpx.Client:
    return conforming(api)


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The `error` object of a JSON error answer with this status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return body["error"]


# ---- 400 ---------------------------------------------------------------------------------------------------------


MALFORMED_BODIES = {
    "truncated": (b'{"message": "hi"', "not valid JSON"),
    "empty": (b"", "required"),
    "array": (b'["hi"]', "JSON object"),
    "string": (b'"hi"', "JSON object"),
    "latin-1": (b'{"message": "caf\xe9"}', "UTF-8"),
    "deeply nested": (b"[" * 100_000 + b"]" * 100_000, ""),
}


def test_every_malformed_body_is_400(checked: httpx.Client) -> None:
    # One server for every case: each request is refused before any storage or model call.
    for case, (content, why) in MALFORMED_BODIES.items():
        response = checked.post("/chat", content=content, headers={"Content-Type": "application/json"})
        error = error_of(response, 400)
        assert error["code"] == "malformed_request" and why in error["message"], case


def test_a_malformed_principal_header_is_400(checked: httpx.Client) -> None:
    headers = {"X-MS-CLIENT-PRINCIPAL-ID": "alice", "X-MS-CLIENT-PRINCIPAL": "%%% not base64 %%%"}
    assert error_of(checked.get("/sessions", headers=headers), 400)["code"] == "invalid_principal"


def test_a_continuation_this_service_did_not_issue_is_400(checked: httpx.Client) -> None:
    error = error_of(checked.get("/sessions", params={"continuation": "bm90LWEtY3Vyc29y"}), 400)
    assert error["field"] == "continuation"


# ---- 404 and 405 -------------------------------------------------------------------------------------------------


def test_a_missing_session_is_404_on_every_route(checked: httpx.Client) -> None:
    responses = [
        checked.get("/sessions/doesnotexist"),
        checked.post("/sessions/doesnotexist/resume"),
        checked.post("/sessions/doesnotexist/resume", json={"message": "hi"}),
        checked.post("/chat", json={"message": "hi", "session_id": "doesnotexist"}),
        checked.get("/sessions/doesnotexist/analytics"),
        checked.delete("/sessions/doesnotexist"),
    ]
    assert [error_of(r, 404) for r in responses] == [{"code": "session_not_found", "message": "No such session."}] * 6


def test_an_unknown_path_is_a_json_404(checked: httpx.Client) -> None:
    assert error_of(checked.get("/nope"), 404)["code"] == "not_found"


def test_a_wrong_method_is_a_json_405_naming_the_allowed_ones(checked: httpx.Client) -> None:
    cases = [
        ("GET", "/chat", {"POST"}),
        ("PUT", "/chat", {"POST"}),
        ("PATCH", "/sessions/abc", {"GET", "DELETE"}),
        ("GET", "/sessions/abc/resume", {"POST"}),
        ("POST", "/health", {"GET"}),
    ]
    for method, path, allowed in cases:
        response = checked.request(method, path)
        assert error_of(response, 405)["code"] == "method_not_allowed", (method, path)
        assert {item.strip() for item in response.headers["allow"].split(",")} - {"HEAD"} == allowed, (method, path)


# ---- 409 ---------------------------------------------------------------------------------------------------------


async def test_a_second_turn_while_one_runs_is_409_and_is_refused_before_its_model_call(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer]
) -> None:
    async with async_client(live_server().url) as api:
        first = (await api.post("/chat", json={"message": "hello", "route": "local"})).json()
        models["local"].script(Behaviour.slow(1.5, reply="the slow answer"))
        body = {"message": "racer one", "session_id": first["session_id"], "route": "local"}
        slow = asyncio.create_task(api.post("/chat", json=body))
        for _ in range(2000):  # until the first turn holds the session and waits on its model
            if len(models["local"].requests) == 2 or slow.done():
                break
            await asyncio.sleep(0.005)
        assert not slow.done(), "the first turn ended before the second was sent"
        busy = await api.post("/chat", json={**body, "message": "racer two"})
        busy_resume = await api.post(f"/sessions/{first['session_id']}/resume", json={"message": "racer three"})
        winner = await slow
        view = (await api.get(f"/sessions/{first['session_id']}")).json()

    for response in (busy, busy_resume):
        assert error_of(response, 409)["code"] == "session_busy"
        assert int(response.headers["retry-after"]) >= 1
    assert winner.status_code == 200 and winner.json()["reply"] == "the slow answer"
    assert len(models["local"].requests) == 2
    assert [m["content"] for m in view["messages"]] == ["hello", first["reply"], "racer one", "the slow answer"]


# ---- 413 and 415 -------------------------------------------------------------------------------------------------


def test_a_body_larger_than_the_limit_is_413_whether_declared_or_streamed(
    live_server: Callable[..., LiveServer],
) -> None:
    with client(live_server(REQUEST_MAX_BYTES="2048").url) as api:
        declared = api.post("/chat", json={"message": "x" * 3000})

        def chunks() -> Any:
            yield b'{"message": "'
            for _ in range(10):
                yield b"x" * 500
            yield b'"}'

        streamed = api.post("/chat", content=chunks(), headers={"Content-Type": "application/json"})
        within = api.post("/chat", json={"message": "x" * 1000})
    assert error_of(declared, 413)["code"] == "body_too_large"
    assert "transfer-encoding" in streamed.request.headers
    assert error_of(streamed, 413)["code"] == "body_too_large"
    assert within.status_code == 200


def test_a_message_longer_than_the_limit_is_413_naming_the_field(live_server: Callable[..., LiveServer]) -> None:
    with client(live_server(MESSAGE_MAX_CHARS="100").url) as api:
        too_long = api.post("/chat", json={"message": "y" * 101})
        resume_too_long = api.post("/sessions/abc/resume", json={"message": "y" * 101})
        at_limit = api.post("/chat", json={"message": "y" * 100})
    error = error_of(too_long, 413)
    assert error["field"] == "message" and "100" in error["message"]
    assert error_of(resume_too_long, 413)["field"] == "message"
    assert at_limit.status_code == 200


def test_a_body_that_is_not_json_is_415(checked: httpx.Client) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/xml"):
        response = checked.post("/chat", content=b'{"message": "hi"}', headers={"Content-Type": content_type})
        assert error_of(response, 415)["code"] == "unsupported_media_type", content_type


# ---- 422 ---------------------------------------------------------------------------------------------------------


def test_an_unknown_route_is_422_naming_the_allowed_routes(checked: httpx.Client) -> None:
    error = error_of(checked.post("/chat", json={"message": "hi", "route": "mars"}), 422)
    assert error["field"] == "route"
    for route in ("auto", "local", "cloud", "foundry", "apim"):
        assert route in error["message"]


INVALID_BODIES = {
    "traversal id": ({"message": "hi", "session_id": "../etc"}, "session_id"),
    "long id": ({"message": "hi", "session_id": "x" * 65}, "session_id"),
    "unknown field": ({"message": "hi", "colour": "blue"}, "colour"),
    "empty message": ({"message": ""}, "message"),
    "number message": ({"message": 42}, "message"),
    "no message": ({"session_id": "abc"}, "message"),
    "stream not a flag": ({"message": "hi", "stream": "yes"}, "stream"),
}


def test_an_invalid_value_is_422_naming_the_field(checked: httpx.Client) -> None:
    for case, (body, field) in INVALID_BODIES.items():
        error = error_of(checked.post("/chat", json=body), 422)
        assert error["field"] == field, case
    unknown = error_of(checked.post("/chat", json={"message": "hi", "colour": "blue"}), 422)
    assert "Unknown field" in unknown["message"]


def test_a_blank_message_is_422(checked: httpx.Client) -> None:
    error = error_of(checked.post("/chat", json={"message": "   \n "}), 422)
    assert error["field"] == "message"


def test_a_bad_session_id_in_the_path_is_422(checked: httpx.Client) -> None:
    for response in (
        checked.get("/sessions/bad.id"),
        checked.get("/sessions/bad.id/analytics"),
        checked.get("/sessions/-leading"),
        checked.post("/sessions/bad.id/resume"),
        checked.delete("/sessions/bad.id"),
    ):
        error = error_of(response, 422)
        assert error["code"] == "invalid_id" and error["field"] == "session_id", response.request.url


def test_bad_list_parameters_are_422(checked: httpx.Client) -> None:
    for params in ({"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"page": "2"}):
        assert error_of(checked.get("/sessions", params=params), 422)["code"] == "invalid_request"


def test_a_forced_route_to_an_unconfigured_backend_is_422_naming_the_configured_ones(checked: httpx.Client) -> None:
    error = error_of(checked.post("/chat", json={"message": "hi", "route": "foundry"}), 422)
    assert error["field"] == "route" and "local" in error["message"] and "cloud" in error["message"]


# ---- the backends fail: 429, 502, 504, and nothing is stored ------------------------------------------------------


async def assert_nothing_stored(env: dict[str, str]) -> None:
    assert await stored_blobs(env) == []
    assert await stored_documents(env) == {"turns": [], "sessions": []}


async def test_every_backend_rate_limited_is_429_with_retry_after_and_stores_nothing(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]], models: dict[str, FakeModelServer]
) -> None:
    env = make_env()
    models["cloud"].script(Behaviour.rate_limited(retry_after=7))
    models["local"].script(Behaviour.rate_limited(retry_after=7))
    with client(live_server(env).url) as api:
        response = api.post("/chat", json={"message": HARD})
        assert api.get("/sessions").json()["sessions"] == []
    error = error_of(response, 429)
    assert error["code"] == "backends_failed" and response.headers["retry-after"] == "7"
    assert [r["server"] for r in models["cloud"].requests + models["local"].requests] == ["cloud", "local"]
    await assert_nothing_stored(env)


async def test_every_backend_failing_is_502_and_an_existing_session_keeps_its_turns(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]], models: dict[str, FakeModelServer]
) -> None:
    env = make_env()
    with client(live_server(env).url) as api:
        first = api.post("/chat", json={"message": "hello"}).json()
        blobs_before = await stored_blobs(env)
        documents_before = await stored_documents(env)
        models["cloud"].script(Behaviour.error(500))
        models["local"].script(Behaviour.error(503, retry_after=4))
        response = api.post("/chat", json={"message": HARD, "session_id": first["session_id"]})
        view = api.get(f"/sessions/{first['session_id']}").json()
    error = error_of(response, 502)
    assert error["code"] == "backends_failed" and "cloud" in error["message"] and "local" in error["message"]
    assert response.headers["retry-after"] == "4"
    assert view["summary"]["turns"] == 1 and len(view["messages"]) == 2
    assert await stored_blobs(env) == blobs_before
    documents_after = await stored_documents(env)
    assert [d["turn"] for d in documents_after["turns"]] == [1]
    assert [d["turns"] for d in documents_after["sessions"]] == [d["turns"] for d in documents_before["sessions"]]


async def test_every_backend_refusing_connections_is_502_and_stores_nothing(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]], models: dict[str, FakeModelServer]
) -> None:
    env = make_env(
        LOCAL_MODEL_ENDPOINT=f"http://127.0.0.1:{unused_port()}/v1",
        CLOUD_MODEL_ENDPOINT=f"http://127.0.0.1:{unused_port()}/v1",
    )
    with client(live_server(env).url) as api:
        response = api.post("/chat", json={"message": "hello"})
    error = error_of(response, 502)
    assert "connection" in error["message"]
    await assert_nothing_stored(env)


async def test_a_stopped_model_server_is_502(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]], models: dict[str, FakeModelServer]
) -> None:
    env = make_env(backends=("local",))
    models["local"].stop()  # the `models` fixture starts it again
    with client(live_server(env).url) as api:
        response = api.post("/chat", json={"message": "hello"})
    assert error_of(response, 502)["code"] == "backends_failed"
    await assert_nothing_stored(env)


async def test_every_backend_timing_out_is_504_and_stores_nothing(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]], models: dict[str, FakeModelServer]
) -> None:
    env = make_env(MODEL_TIMEOUT_SECONDS="0.3")
    models["cloud"].script(Behaviour.slow(2.0))
    models["local"].script(Behaviour.slow(2.0))
    with client(live_server(env).url) as api:
        response = api.post("/chat", json={"message": HARD})
    error = error_of(response, 504)
    assert "cloud (timeout)" in error["message"] and "local (timeout)" in error["message"]
    await assert_nothing_stored(env)


# ---- 503 ---------------------------------------------------------------------------------------------------------


def test_unreachable_storage_is_503_with_retry_after(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]]
) -> None:
    env = make_env(STORAGE_MAX_RETRIES="0")
    dead = f"BlobEndpoint=http://127.0.0.1:{unused_port()}/devstoreaccount1"
    env["STORAGE_CONNECTION_STRING"] = re.sub(r"BlobEndpoint=[^;]+", dead, env["STORAGE_CONNECTION_STRING"])
    with client(live_server(env).url) as api:
        for response in (api.post("/chat", json={"message": "hi"}), api.get("/sessions/abc"), api.get("/health")):
            assert error_of(response, 503)["code"] == "storage_unavailable"
            assert int(response.headers["retry-after"]) >= 1


def test_a_deployment_without_any_backend_is_503(live_server: Callable[..., LiveServer]) -> None:
    with client(live_server(backends=()).url) as api:
        response = api.post("/chat", json={"message": "hi"})
        health = api.get("/health")
    assert error_of(response, 503)["code"] == "no_backend" and "retry-after" in response.headers
    assert health.status_code == 503 and health.json()["backends"] == {}


# ---- 500 ---------------------------------------------------------------------------------------------------------


async def test_a_corrupt_snapshot_is_500_with_only_a_correlation_id_that_the_log_carries(
    live_server: Callable[..., LiveServer],
    make_env: Callable[..., dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from azure.storage.blob.aio import ContainerClient

    env = make_env()
    with client(live_server(env).url, principal("erin")) as api:
        session = api.post("/chat", json={"message": "hello"}).json()["session_id"]
        async with ContainerClient.from_connection_string(
            env["STORAGE_CONNECTION_STRING"], env["SNAPSHOT_CONTAINER"]
        ) as container:
            await container.upload_blob(f"erin/{session}/snapshot.json.gz", b"\x1f\x8b not gzip at all", overwrite=True)
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="shared.api"):
            responses = [
                api.get(f"/sessions/{session}"),
                api.post(f"/sessions/{session}/resume"),
                api.post("/chat", json={"message": "more", "session_id": session}),
            ]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    ids = set()
    for response in responses:
        error = error_of(response, 500)
        assert set(error) == {"code", "message", "correlation_id"}
        assert error["code"] == "internal" and error["message"] == "Internal error."
        assert "gzip" not in response.text and "Snapshot" not in response.text and session not in response.text
        assert error["correlation_id"] in logged
        ids.add(error["correlation_id"])
    assert len(ids) == 3
