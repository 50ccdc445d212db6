"""The HTTP API over real HTTP (the function app's handlers on uvicorn, Azurite, the Cosmos emulator): every
route's happy path, resume in a fresh server process, isolation between callers, paging and fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api_helpers import (
    SSE_TYPE,
    client,
    conforming,
    documented_operation,
    parse_http_file,
    parse_sse,
    principal,
    resolve_http_variables,
    stored_blobs,
    stored_documents,
)
from tests.fixtures_app import LiveServer
from tools.emulators import free_port
from tools.fake_model import Behaviour, FakeModelServer

ROOT = Path(__file__).resolve().parent.parent
HARD = (
    "Design a distributed rate limiter for a multi-region API. Compare token bucket and sliding window "
    "approaches, analyze the trade-offs in consistency and latency, and explain step by step how to handle clock skew."
)
CHAT_FIELDS = {"session_id", "turn", "reply", "route", "usage", "latency_ms", "cost"}
ROUTE_FIELDS = {"backend", "model", "complexity", "reason", "switched_from", "fallback_from"}


def sent_messages(request: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, content) of what the backend received, without the system prompt."""
    return [(m["role"], m["content"]) for m in request["json"]["messages"] if m["role"] != "system"]


@pytest.fixture
def checked(api: httpx.Client) -> httpx.Client:
    return conforming(api)


def test_chat_starts_a_session_and_continues_it_with_the_documented_answer(
    checked: httpx.Client, models: dict[str, FakeModelServer]
) -> None:
    first = checked.post("/chat", json={"message": "hi! what's the capital of France?"})
    assert first.status_code == 200
    body = first.json()
    assert body.keys() >= CHAT_FIELDS and body["route"].keys() >= ROUTE_FIELDS
    assert body["turn"] == 1 and body["created"] is True
    assert body["route"]["backend"] == "local" and body["route"]["model"] == "llama3.2"
    assert body["reply"] == "[local/llama3.2] reply to: hi! what's the capital of France?"
    assert body["usage"]["output_tokens"] > 0 and body["usage"]["input_tokens"] > 0
    assert body["route"]["fallback_from"] is None and body["route"]["switched_from"] is None

    second = checked.post("/chat", json={"message": HARD, "session_id": body["session_id"]}).json()
    assert second["session_id"] == body["session_id"] and second["turn"] == 2 and second["created"] is False
    assert second["route"]["backend"] == "cloud" and second["route"]["switched_from"] == "local"
    assert sent_messages(models["cloud"].requests[-1]) == [
        ("user", "hi! what's the capital of France?"),
        ("assistant", body["reply"]),
        ("user", HARD),
    ]


def test_get_session_returns_openai_messages_turn_records_and_summary(checked: httpx.Client) -> None:
    first = checked.post("/chat", json={"message": "hello", "route": "local"}).json()
    second = checked.post(
        "/chat", json={"message": "again", "session_id": first["session_id"], "route": "cloud"}
    ).json()
    view = checked.get(f"/sessions/{first['session_id']}").json()
    assert view["session_id"] == first["session_id"]
    assert view["messages"] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": first["reply"]},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": second["reply"]},
    ]
    assert [(t["turn"], t["backend"], t["route_requested"]) for t in view["turns"]] == [
        (1, "local", "local"),
        (2, "cloud", "cloud"),
    ]
    assert view["summary"]["turns"] == 2 and view["summary"]["backends"] == {"local": 1, "cloud": 1}
    assert view["summary"]["switches"] == 1


def test_resume_without_a_body_restores_and_with_a_message_continues(
    checked: httpx.Client, models: dict[str, FakeModelServer]
) -> None:
    first = checked.post("/chat", json={"message": "remember the word pineapple", "route": "local"}).json()
    restored = checked.post(f"/sessions/{first['session_id']}/resume")
    assert restored.status_code == 200
    assert restored.json() == checked.get(f"/sessions/{first['session_id']}").json()
    assert restored.json().keys() >= {"session_id", "messages", "turns", "summary"}
    assert not restored.json().keys() & CHAT_FIELDS - {"session_id"}, "no chat answer without a message"

    continued = checked.post(
        f"/sessions/{first['session_id']}/resume", json={"message": "which word?", "route": "local"}
    ).json()
    assert continued.keys() >= CHAT_FIELDS and continued["turn"] == 2
    assert continued["reply"] == "[local/llama3.2] reply to: which word?"
    assert [m["content"] for m in continued["messages"]][-2:] == ["which word?", continued["reply"]]
    assert len(continued["turns"]) == 2 and continued["summary"]["turns"] == 2
    assert sent_messages(models["local"].requests[-1])[0] == ("user", "remember the word pineapple")


@pytest.fixture
def devserver_process() -> Iterator[Callable[[dict[str, str]], str]]:
    """Start `python -m tools.devserver` as its own process; stopped by its pid after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> str:
        port = free_port()
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "tools.devserver", "--port", str(port)],
            env={**env, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"dev server exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("dev server did not become healthy")

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_resume_in_a_fresh_server_process_sends_every_earlier_message(
    live_server: Callable[..., LiveServer],
    make_env: Callable[..., dict[str, str]],
    models: dict[str, FakeModelServer],
    devserver_process: Callable[[dict[str, str]], str],
) -> None:
    env = make_env()
    with client(live_server(env).url) as first_server:
        one = first_server.post("/chat", json={"message": "my name is Ada", "route": "local"}).json()
        two = first_server.post(
            "/chat", json={"message": "I like graph theory", "session_id": one["session_id"], "route": "cloud"}
        ).json()
        before = first_server.get(f"/sessions/{one['session_id']}").json()

    with client(devserver_process(env)) as fresh:
        restored = fresh.post(f"/sessions/{one['session_id']}/resume").json()
        assert restored == before
        third = fresh.post(
            f"/sessions/{one['session_id']}/resume", json={"message": "what is my name?", "route": "local"}
        ).json()
    assert third["turn"] == 3 and third["route"]["switched_from"] == "cloud"
    assert sent_messages(models["local"].requests[-1]) == [
        ("user", "my name is Ada"),
        ("assistant", one["reply"]),
        ("user", "I like graph theory"),
        ("assistant", two["reply"]),
        ("user", "what is my name?"),
    ]
    assert [m["content"] for m in third["messages"]] == [
        "my name is Ada",
        one["reply"],
        "I like graph theory",
        two["reply"],
        "what is my name?",
        third["reply"],
    ]


def test_another_callers_session_is_not_found_exactly_like_a_missing_one(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]]
) -> None:
    env = make_env()
    url = live_server(env).url
    with client(url, principal("alice")) as alice, client(url, principal("bob", roles=["reader"])) as bob:
        mine = alice.post("/chat", json={"message": "alice's secret plan"}).json()["session_id"]
        missing = bob.get("/sessions/doesnotexist")
        assert missing.status_code == 404
        attempts = {
            "read": bob.get(f"/sessions/{mine}"),
            "resume": bob.post(f"/sessions/{mine}/resume"),
            "resume and continue": bob.post(f"/sessions/{mine}/resume", json={"message": "hi"}),
            "continue": bob.post("/chat", json={"message": "hi", "session_id": mine}),
            "analytics": bob.get(f"/sessions/{mine}/analytics"),
            "delete": bob.delete(f"/sessions/{mine}"),
        }
        for action, response in attempts.items():
            assert (response.status_code, response.json()) == (404, missing.json()), action
        assert bob.get("/sessions").json() == {"sessions": [], "continuation": None}
        assert bob.get("/analytics").json()["total_exchanges"] == 0
        theirs = bob.post("/chat", json={"message": "bob's own"}).json()["session_id"]
        assert [s["session_id"] for s in alice.get("/sessions").json()["sessions"]] == [mine]
        assert [s["session_id"] for s in bob.get("/sessions").json()["sessions"]] == [theirs]
        view = alice.get(f"/sessions/{mine}").json()
        assert view["summary"]["turns"] == 1 and view["messages"][0]["content"] == "alice's secret plan"


def test_without_trusted_principal_headers_every_caller_is_the_one_anonymous_owner(
    live_server: Callable[..., LiveServer],
) -> None:
    url = live_server(TRUST_PRINCIPAL_HEADERS="false").url
    with client(url, principal("alice")) as alice, client(url, principal("bob")) as bob:
        session = alice.post("/chat", json={"message": "hello"}).json()["session_id"]
        assert bob.get(f"/sessions/{session}").status_code == 200
        assert [s["session_id"] for s in bob.get("/sessions").json()["sessions"]] == [session]


def test_sessions_page_newest_first_with_a_continuation_until_null(checked: httpx.Client) -> None:
    created = [checked.post("/chat", json={"message": f"session {n}"}).json()["session_id"] for n in range(3)]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(4):
        params = {"limit": "1", **({"continuation": cursor} if cursor else {})}
        page = checked.get("/sessions", params=params).json()
        assert len(page["sessions"]) == 1
        seen.append(page["sessions"][0]["session_id"])
        cursor = page["continuation"]
        if cursor is None:
            break
    assert seen == list(reversed(created))
    everything = checked.get("/sessions").json()
    assert [s["session_id"] for s in everything["sessions"]] == seen and everything["continuation"] is None
    assert all(s["turns"] == 1 for s in everything["sessions"])


def test_analytics_of_a_session_and_of_the_caller(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]]
) -> None:
    prices = {"cloud": {"input": 2.5, "output": 10.0}, "local": {"input": 0, "output": 0}}
    url = live_server(make_env(PRICE_TABLE=json.dumps(prices))).url
    with client(url, principal("carol")) as carol, client(url, principal("dave")) as dave:
        first = carol.post("/chat", json={"message": "hi"}).json()
        second = carol.post("/chat", json={"message": HARD, "session_id": first["session_id"]}).json()
        carol.post("/chat", json={"message": "thanks!"})
        dave.post("/chat", json={"message": HARD})

        session = carol.get(f"/sessions/{first['session_id']}/analytics").json()
        assert session["session_id"] == first["session_id"]
        assert session["total_exchanges"] == 2
        assert session["routing_distribution"] == {"local": 1, "cloud": 1}
        assert session["model_switches"] == 1
        assert set(session["latency_ms"]) == {"local", "cloud"}
        assert all(stats["p95"] >= stats["mean"] > 0 for stats in session["latency_ms"].values())
        assert session["tokens"]["cloud"] == {
            "input": second["usage"]["input_tokens"],
            "output": second["usage"]["output_tokens"],
        }
        assert session["cost"]["cloud"] == pytest.approx(second["cost"]) and second["cost"] > 0
        assert session["cost"]["local"] == 0

        owner = carol.get("/analytics").json()
        assert owner["total_exchanges"] == 3
        assert owner["routing_distribution"] == {"local": 2, "cloud": 1}
        assert owner["cost"]["cloud"] == pytest.approx(second["cost"])
        assert "session_id" not in owner or owner["session_id"] is None


async def test_delete_erases_blob_and_cosmos_and_a_repeat_is_not_an_error(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]]
) -> None:
    env = make_env()
    with client(live_server(env).url) as api:
        keep = api.post("/chat", json={"message": "keep me"}).json()["session_id"]
        gone = api.post("/chat", json={"message": "forget me"}).json()["session_id"]
        api.post("/chat", json={"message": "and this", "session_id": gone})
        assert any(f"/{gone}/" in name for name in await stored_blobs(env))

        deleted = api.delete(f"/sessions/{gone}")
        assert deleted.status_code == 204 and deleted.content == b""
        assert api.delete(f"/sessions/{gone}").status_code in (204, 404)
        assert api.get(f"/sessions/{gone}").status_code == 404
        assert api.get(f"/sessions/{gone}/analytics").status_code == 404
        assert [s["session_id"] for s in api.get("/sessions").json()["sessions"]] == [keep]

    assert not any(f"/{gone}/" in name for name in await stored_blobs(env))
    documents = await stored_documents(env)
    assert {doc["sessionId"] for doc in documents["turns"]} == {keep}
    assert {doc["id"] for doc in documents["sessions"]} == {keep}


def test_health_reports_storage_cosmos_and_backends(checked: httpx.Client) -> None:
    health = checked.get("/health")
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "storage": "ok",
        "cosmos": "ok",
        "backends": {  # with each backend's cooldown state in this instance (test_cooldown.py)
            name: {"model": model, "state": "ok", "cooldown_seconds_left": None, "consecutive_failures": 0}
            for name, model in (("local", "llama3.2"), ("cloud", "gpt-4o-mini"))
        },
    }


def test_health_is_503_when_cosmos_is_unreachable(live_server: Callable[..., LiveServer]) -> None:
    from tools.fake_model import unused_port

    server = live_server(COSMOS_ENDPOINT=f"http://127.0.0.1:{unused_port()}/", COSMOS_CREATE_RESOURCES="false")
    with client(server.url) as api:
        health = api.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "degraded" and health.json()["storage"] == "ok"
    assert health.json()["cosmos"].startswith("unavailable")


@pytest.mark.parametrize(
    ("behaviour", "kind"),
    [
        (Behaviour.error(500), "server"),
        (Behaviour.rate_limited(retry_after=3), "rate_limited"),
        (Behaviour.reset(), "connection"),
        (Behaviour.slow(3.0), "timeout"),
    ],
    ids=["500", "429", "reset", "timeout"],
)
async def test_a_failing_backend_falls_back_and_the_answer_and_record_name_it(
    live_server: Callable[..., LiveServer],
    make_env: Callable[..., dict[str, str]],
    models: dict[str, FakeModelServer],
    behaviour: Behaviour,
    kind: str,
) -> None:
    env = make_env(MODEL_TIMEOUT_SECONDS="1")
    models["cloud"].script(behaviour)
    with client(live_server(env).url) as api:
        answer = api.post("/chat", json={"message": HARD})
        assert answer.status_code == 200
        body = answer.json()
        assert body["route"]["backend"] == "local" and body["reply"].startswith("[local/llama3.2]")
        assert body["route"]["fallback_from"] == "cloud"
        assert "fell back to local" in body["route"]["reason"]
        record = api.get(f"/sessions/{body['session_id']}").json()["turns"][0]
    assert record["fallback_from"] == "cloud"
    assert [(a["backend"], a["error"]) for a in record["fallback_chain"]] == [("cloud", kind)]
    [stored] = (await stored_documents(env))["turns"]
    assert [(a["backend"], a["error"]) for a in stored["fallback_chain"]] == [("cloud", kind)]


def test_a_connection_refused_backend_falls_back(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer]
) -> None:
    from tools.fake_model import unused_port

    server = live_server(CLOUD_MODEL_ENDPOINT=f"http://127.0.0.1:{unused_port()}/v1")
    with client(server.url) as api:
        body = api.post("/chat", json={"message": HARD}).json()
    assert body["route"]["backend"] == "local" and body["route"]["fallback_from"] == "cloud"
    assert body["route"]["fallback_chain"][0]["error"] == "connection"


def test_openapi_document_is_served(checked: httpx.Client) -> None:
    from shared.http.routes import document

    served = checked.get("/openapi.json")
    assert served.status_code == 200 and served.json() == json.loads(json.dumps(document()))


# What a newcomer tries first; api.http leaves out the admin routes and erasing a whole user.
CORE_OPERATIONS = {
    "exportSession",
    "forkSession",
    "sessionAudit",
    "importSession",
    "chat",
    "resumeSession",
    "listSessions",
    "getSession",
    "deleteSession",
    "sessionAnalytics",
    "ownerAnalytics",
    "health",
    "openapi",
}


def test_every_example_in_api_http_works_in_order_and_together_they_cover_the_conversation_api(
    live_server: Callable[..., LiveServer],
) -> None:
    variables, examples = parse_http_file((ROOT / "tests" / "api.http").read_text())
    server = live_server()
    variables = {**variables, "base": server.url}
    responses: dict[str, httpx.Response] = {}
    covered: set[str] = set()
    with client(server.url) as api:
        for example in examples:
            url = resolve_http_variables(example.url, variables, responses)
            headers = {k: resolve_http_variables(v, variables, responses) for k, v in example.headers.items()}
            body = resolve_http_variables(example.body, variables, responses).encode() if example.body else None
            response = api.request(example.method, url, headers=headers, content=body)
            operation = documented_operation(example.method, httpx.URL(url).path)
            assert operation is not None, example.title
            foreign = headers.get("X-MS-CLIENT-PRINCIPAL-ID") not in (None, variables["user"])
            success = min(int(code) for code in operation["responses"] if code.startswith("2"))
            expected = 404 if foreign else success
            assert response.status_code == expected, f"{example.title}: {response.text}"
            if response.headers.get("content-type", "").startswith(SSE_TYPE):
                assert [e.name for e in parse_sse(response.text.splitlines())][-1] == "done"
            if example.name:
                responses[example.name] = response
            covered.add(operation["operationId"])
    assert covered >= CORE_OPERATIONS
