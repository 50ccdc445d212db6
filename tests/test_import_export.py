"""Import, export and fork over real HTTP (the function app's handlers on uvicorn, Azurite, the Cosmos emulator):
every format imports into a session that continues with its whole history, export and re-import keep the
transcript, a fork keeps exactly n turns and leaves its source untouched, bad input is refused precisely and
leaves nothing behind, and one caller can never reach another's sessions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.agents.formats import ImportLimits
from shared.config import DEFAULT_SYSTEM_PROMPT
from shared.services.import_plan import export_document, imported_snapshot, plan_import
from tests.api_helpers import client, principal, stored_blobs, stored_documents
from tests.fixtures_app import LiveServer
from tools.fake_model import FakeModelServer

LEGACY = Path(__file__).parent / "data" / "legacy_agent_thread.json"
HARD = (
    "Design a distributed rate limiter for a multi-region API. Compare token bucket and sliding window "
    "approaches, analyze the trade-offs in consistency and latency, and explain step by step how to handle clock skew."
)
OPENAI = [
    {"role": "system", "content": "You are Quill, an editor. Reply in British English."},
    {"role": "user", "content": "Fix: 'Their going to the park.'"},
    {"role": "assistant", "content": "They're going to the park."},
    {"role": "user", "content": [{"type": "text", "text": "Count the words in it."}]},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_wc", "type": "function", "function": {"name": "word_count", "arguments": '{"text": "x"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_wc", "content": "5"},
    {"role": "assistant", "content": "It has five words."},
]
AGENT_SESSION = {
    "type": "session",
    "session_id": "desktop-app-17",
    "service_session_id": None,
    "state": {
        "in_memory": {
            "messages": [
                {"type": "message", "role": "user", "contents": [{"type": "text", "text": "Name a prime above 10."}]},
                {"type": "message", "role": "assistant", "contents": [{"type": "text", "text": "11."}]},
                {"type": "message", "role": "user", "contents": [{"type": "text", "text": "And the next one?"}]},
                {"type": "message", "role": "assistant", "contents": [{"type": "text", "text": "13."}]},
            ]
        }
    },
}


LEGACY_USER = {"type": "chat_message", "role": {"value": "user"}, "contents": [{"type": "text", "text": "a"}]}
LEGACY_NO_TEXT = {"type": "chat_message", "role": {"value": "assistant"}, "contents": [{"type": "text"}]}


def exported(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """An export document of a conversation (built by the pure code, as GET .../export would answer)."""
    now = datetime(2026, 1, 5, tzinfo=UTC)
    plan = plan_import("openai", messages, limits=ImportLimits(100, 32000), now=now)
    return json.loads(json.dumps(export_document(imported_snapshot(plan, "elsewhere1", "someone", now), now)))


def shape(message: dict[str, Any]) -> tuple[Any, ...]:
    """What matters of one OpenAI-format message, for comparing what the model got with the transcript."""
    calls = tuple(call["id"] for call in message.get("tool_calls") or ())
    return message["role"], message.get("content") or "", calls, message.get("tool_call_id")


def sent_history(model: FakeModelServer) -> list[tuple[Any, ...]]:
    """The last request's messages after the agent's own instructions, as shapes."""
    messages = model.requests[-1]["json"]["messages"]
    assert messages[0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    return [shape(message) for message in messages[1:]]


async def raw_blobs(env: dict[str, str], prefix: str) -> dict[str, bytes]:
    """Every blob under `prefix`, byte for byte, read with the Storage SDK (not our code)."""
    from azure.storage.blob.aio import ContainerClient

    async with ContainerClient.from_connection_string(
        env["STORAGE_CONNECTION_STRING"], env["SNAPSHOT_CONTAINER"]
    ) as container:
        names = [blob.name async for blob in container.list_blobs(name_starts_with=prefix)]
        return {name: await (await container.download_blob(name)).readall() for name in names}


async def owned_documents(env: dict[str, str], owner: str) -> list[dict[str, Any]]:
    documents = await stored_documents(env)
    return [item for items in documents.values() for item in items if item.get("userId") == owner]


@pytest.fixture
def env(make_env: Callable[..., dict[str, str]]) -> dict[str, str]:
    return make_env()


@pytest.fixture
def server(live_server: Callable[..., LiveServer], env: dict[str, str]) -> LiveServer:
    return live_server(env)


@pytest.fixture
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    with client(server.url, principal("alice")) as api:
        yield api


@pytest.fixture
def bob(server: LiveServer) -> Iterator[httpx.Client]:
    with client(server.url, principal("bob")) as api:
        yield api


def chat(api: httpx.Client, message: str, session_id: str | None = None, route: str = "auto") -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "route": route}
    if session_id:
        body["session_id"] = session_id
    response = api.post("/chat", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def import_(api: httpx.Client, fmt: str, data: Any, **extra: Any) -> httpx.Response:
    return api.post("/sessions/import", json={"format": fmt, "data": data, **extra})


# ---- import ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "data", "turns", "messages"),
    [
        ("openai", OPENAI, 2, 7),
        ("agent_session", AGENT_SESSION, 2, 4),
        ("agent_thread_legacy", json.loads(LEGACY.read_text(encoding="utf-8")), 4, 11),
        ("export", exported(OPENAI), 2, 7),
    ],
    ids=["openai", "agent_session", "agent_thread_legacy", "export"],
)
def test_each_format_imports_into_a_session_whose_next_turn_carries_every_imported_message(
    alice: httpx.Client, models: dict[str, FakeModelServer], fmt: str, data: Any, turns: int, messages: int
) -> None:
    created = import_(alice, fmt, data)
    assert created.status_code == 201, created.text
    view = created.json()
    session_id = view["session_id"]
    assert created.headers["location"] == f"/api/sessions/{session_id}"
    assert len(view["turns"]) == turns and view["summary"]["turns"] == turns
    assert len(view["messages"]) == messages
    assert all(turn["imported"] and turn["backend"] is None and turn["cost"] == 0 for turn in view["turns"])
    assert view["lineage"]["kind"] == "import" and view["lineage"]["format"] == fmt
    assert alice.get(f"/sessions/{session_id}").json() == view

    reply = chat(alice, "Summarise our conversation.", session_id, route="local")
    assert reply["turn"] == turns + 1 and reply["created"] is False
    assert sent_history(models["local"]) == [
        *(shape(message) for message in view["messages"]),
        ("user", "Summarise our conversation.", (), None),
    ]


def test_imported_system_messages_reach_the_model_on_the_next_turn(
    alice: httpx.Client, models: dict[str, FakeModelServer]
) -> None:
    session_id = import_(alice, "openai", OPENAI).json()["session_id"]
    chat(alice, "And now?", session_id, route="cloud")
    sent = models["cloud"].requests[-1]["json"]["messages"]
    assert {"role": "system", "content": OPENAI[0]["content"]} in sent


def test_a_realistic_legacy_thread_imports_every_turn_and_the_router_continues_it(
    alice: httpx.Client, models: dict[str, FakeModelServer]
) -> None:
    data = json.loads(LEGACY.read_text(encoding="utf-8"))
    view = import_(alice, "agent_thread_legacy", data).json()
    assert [turn["turn"] for turn in view["turns"]] == [1, 2, 3, 4]
    assert [message["role"] for message in view["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert view["messages"][4]["tool_calls"][0]["function"]["name"] == "get_weather"
    answer = chat(alice, "thanks!", view["session_id"])  # the router decides with imported turns behind it
    assert answer["turn"] == 5 and answer["route"]["backend"] == "local" and answer["route"]["switched_from"] is None
    sent = models["local"].requests[-1]["json"]["messages"]
    assert sent[1]["content"].startswith("You are Fjord") and sent[-1] == {"role": "user", "content": "thanks!"}
    assert len(sent) == 1 + len(view["messages"]) + 1


def test_imported_turns_are_recorded_in_cosmos_like_live_ones(alice: httpx.Client, env: dict[str, str]) -> None:
    session_id = import_(alice, "agent_session", AGENT_SESSION).json()["session_id"]
    listed = alice.get("/sessions").json()["sessions"]
    assert [(item["session_id"], item["turns"]) for item in listed] == [(session_id, 2)]
    analytics = alice.get(f"/sessions/{session_id}/analytics").json()
    assert analytics["total_exchanges"] == 2 and analytics["routing_distribution"] == {}
    assert analytics["total_cost"] == 0


# ---- export ------------------------------------------------------------------------------------------------------


def test_export_then_import_gives_an_identical_transcript(
    alice: httpx.Client, bob: httpx.Client, models: dict[str, FakeModelServer]
) -> None:
    first = chat(alice, "hi! what's the capital of France?")
    chat(alice, HARD, first["session_id"])
    chat(alice, "thanks!", first["session_id"])
    response = alice.get(f"/sessions/{first['session_id']}/export")
    assert response.status_code == 200
    document = response.json()
    assert document["schema"] == "hybrid-llm-router.export" and document["schema_version"] == 1
    assert document["session"]["session_id"] == first["session_id"] and document["session"]["turns"] == 3
    assert document["session"]["agent_framework_version"]
    assert document["agent_session"]["state"]["in_memory"]["messages"][0]["contents"][0]["text"].startswith("hi!")
    assert [turn["backend"] for turn in document["turns"]] == ["local", "cloud", "local"]

    copied = import_(bob, "export", document)
    assert copied.status_code == 201, copied.text
    view = copied.json()
    original = alice.get(f"/sessions/{first['session_id']}").json()
    assert view["messages"] == original["messages"]
    assert [turn["extra"]["original"]["backend"] for turn in view["turns"]] == ["local", "cloud", "local"]
    assert [turn["complexity"] for turn in view["turns"]] == [turn["complexity"] for turn in original["turns"]]
    assert view["lineage"] == {"kind": "import", "format": "export", "source_session_id": first["session_id"]}

    again = bob.get(f"/sessions/{view['session_id']}/export").json()
    assert again["messages"] == document["messages"]
    assert again["agent_session"]["state"] == document["agent_session"]["state"]
    assert [turn["message_count"] for turn in again["turns"]] == [turn["message_count"] for turn in document["turns"]]


def test_export_and_fork_are_audited_on_the_source_and_import_on_the_new_session(alice: httpx.Client) -> None:
    session_id = chat(alice, "hello")["session_id"]
    assert alice.get(f"/sessions/{session_id}/export").status_code == 200
    fork = alice.post(f"/sessions/{session_id}/fork", json={"at_turn": 1}).json()
    imported = import_(alice, "openai", OPENAI).json()
    source_events = alice.get(f"/sessions/{session_id}/audit").json()["events"]
    assert {(event["action"], event["outcome"]) for event in source_events} >= {("export", "ok"), ("fork", "ok")}
    import_events = alice.get(f"/sessions/{imported['session_id']}/audit").json()["events"]
    assert [(event["action"], event["outcome"]) for event in import_events] == [("import", "ok")]
    assert fork["session_id"] != session_id


# ---- fork --------------------------------------------------------------------------------------------------------


async def test_a_fork_at_n_has_exactly_n_turns_and_leaves_its_source_byte_identical(
    alice: httpx.Client, env: dict[str, str], models: dict[str, FakeModelServer]
) -> None:
    source = chat(alice, "turn one", route="local")["session_id"]
    for text in ("turn two", "turn three"):
        chat(alice, text, source, route="local")
    before = await raw_blobs(env, f"alice/{source}/")
    source_view = alice.get(f"/sessions/{source}").json()

    response = alice.post(f"/sessions/{source}/fork", json={"at_turn": 2})
    assert response.status_code == 201, response.text
    fork = response.json()
    assert fork["session_id"] != source and len(fork["turns"]) == 2 and fork["summary"]["turns"] == 2
    assert fork["lineage"] == {"kind": "fork", "source_session_id": source, "source_turn": 2}
    assert fork["messages"] == source_view["messages"][:4]
    assert alice.get(f"/sessions/{fork['session_id']}").json()["lineage"] == fork["lineage"]
    assert await raw_blobs(env, f"alice/{source}/") == before
    assert alice.get(f"/sessions/{source}").json() == source_view

    chat(alice, "a different turn three", fork["session_id"], route="local")
    assert [content for _, content, *_ in sent_history(models["local"])] == [
        "turn one",
        source_view["messages"][1]["content"],
        "turn two",
        source_view["messages"][3]["content"],
        "a different turn three",
    ]


async def test_a_fork_outside_the_session_is_refused_naming_at_turn_and_creates_nothing(
    alice: httpx.Client, env: dict[str, str]
) -> None:
    source = chat(alice, "one")["session_id"]
    chat(alice, "two", source)
    before = sorted(await raw_blobs(env, "alice/"))
    for at_turn in (0, 3, "1", None, 1.5):
        response = alice.post(f"/sessions/{source}/fork", json={"at_turn": at_turn})
        assert response.status_code == 422, at_turn
        assert response.json()["error"]["field"] == "at_turn"
    assert "between 1 and 2" in alice.post(f"/sessions/{source}/fork", json={"at_turn": 3}).json()["error"]["message"]
    missing = alice.post(f"/sessions/{source}/fork", json={})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "at_turn"
    assert sorted(await raw_blobs(env, "alice/")) == before


# ---- refusals leave nothing behind -------------------------------------------------------------------------------


def _broken_export() -> dict[str, Any]:
    document = exported(OPENAI)
    document["turns"][1]["message_count"] = 9
    return document


@pytest.mark.parametrize(
    ("fmt", "data", "field"),
    [
        ("openai", [*OPENAI[:3], {"role": "robot", "content": "beep"}], "data[3].role"),
        ("openai", [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], "data[0].content[0].type"),
        (
            "agent_session",
            {**AGENT_SESSION, "state": {"in_memory": {"messages": [{"type": "message", "role": "user"}]}}},
            "data.state.in_memory.messages[0].contents",
        ),
        ("agent_session", {**AGENT_SESSION, "service_session_id": "resp_9"}, "data.service_session_id"),
        (
            "agent_thread_legacy",
            {"type": "agent_thread_state", "chat_message_store_state": {"messages": [LEGACY_USER, LEGACY_NO_TEXT]}},
            "data.chat_message_store_state.messages[1].contents[0].text",
        ),
        ("agent_thread_legacy", {"type": "agent_thread_state", "service_thread_id": "th_1"}, "data.service_thread_id"),
        ("export", _broken_export(), "data.turns[1].message_count"),
        ("export", {**exported(OPENAI), "schema_version": 99}, "data.schema_version"),
    ],
    ids=["openai-role", "openai-image", "session-contents", "session-service", "legacy-text", "legacy-service",
         "export-count", "export-version"],
)  # fmt: skip
async def test_malformed_data_is_refused_with_the_field_and_leaves_nothing_behind(
    alice: httpx.Client, env: dict[str, str], fmt: str, data: Any, field: str
) -> None:
    response = import_(alice, fmt, data)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_import" and error["field"] == field and error["message"].startswith(field)
    assert await raw_blobs(env, "alice/") == {}
    assert await owned_documents(env, "alice") == []


def test_the_request_itself_is_checked_before_the_data(alice: httpx.Client) -> None:
    unknown = import_(alice, "csv", [])
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "format"
    assert "agent_thread_legacy" in unknown.json()["error"]["message"]
    bad_id = import_(alice, "openai", OPENAI, session_id="../escape")
    assert bad_id.status_code == 422 and bad_id.json()["error"]["field"] == "session_id"
    missing = alice.post("/sessions/import", json={"format": "openai"})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "data"


async def test_imports_beyond_the_size_limits_are_refused(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]]
) -> None:
    env = make_env(IMPORT_MAX_BYTES="2048", IMPORT_MAX_MESSAGES="5")
    server = live_server(env)
    with client(server.url, principal("alice")) as api:
        big = import_(api, "openai", [{"role": "user", "content": "x" * 3000}])
        assert big.status_code == 413 and big.json()["error"]["code"] == "body_too_large"
        many = import_(api, "openai", OPENAI)
        assert many.status_code == 422
        assert many.json()["error"]["field"] == "data" and "at most 5" in many.json()["error"]["message"]
        assert await stored_blobs(env) == []
        # A chat body is still held to REQUEST_MAX_BYTES, not to the import limit.
        assert chat(api, "y" * 3000)["turn"] == 1


# ---- isolation ---------------------------------------------------------------------------------------------------


def test_importing_into_an_existing_session_id_of_the_callers_is_a_conflict(
    alice: httpx.Client, bob: httpx.Client
) -> None:
    first = import_(alice, "openai", OPENAI, session_id="trip-2026")
    assert first.status_code == 201 and first.json()["session_id"] == "trip-2026"
    kept = alice.get("/sessions/trip-2026").json()
    again = import_(alice, "agent_session", AGENT_SESSION, session_id="trip-2026")
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "session_exists",
        "message": "You already have a session with this id.",
        "field": "session_id",
    }
    assert alice.get("/sessions/trip-2026").json() == kept
    # Another owner's ids are theirs: the same id imports for bob without touching alice's session.
    theirs = import_(bob, "agent_session", AGENT_SESSION, session_id="trip-2026")
    assert theirs.status_code == 201 and len(theirs.json()["turns"]) == 2
    assert alice.get("/sessions/trip-2026").json() == kept


async def test_exporting_or_forking_someone_elses_session_looks_like_a_missing_one(
    alice: httpx.Client, bob: httpx.Client, env: dict[str, str]
) -> None:
    session_id = chat(alice, "my secret plan")["session_id"]
    missing_export = bob.get("/sessions/nosuchsession/export")
    missing_fork = bob.post("/sessions/nosuchsession/fork", json={"at_turn": 1})
    assert missing_export.status_code == missing_fork.status_code == 404
    for response in (
        bob.get(f"/sessions/{session_id}/export"),
        bob.post(f"/sessions/{session_id}/fork", json={"at_turn": 1}),
    ):
        assert response.status_code == 404
        assert response.json() == missing_export.json()
    assert await raw_blobs(env, "bob/") == {}
    assert await owned_documents(env, "bob") == []


# ---- redaction ---------------------------------------------------------------------------------------------------


def test_imported_messages_are_masked_before_they_are_stored_when_redaction_is_on(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]]
) -> None:
    server = live_server(make_env(PII_REDACTION="true"))
    messages = [
        {"role": "user", "content": "Mail me at jane.doe@example.com please."},
        {"role": "assistant", "content": "Noted: jane.doe@example.com."},
    ]
    with client(server.url, principal("alice")) as api:
        view = import_(api, "openai", messages).json()
        exported_ = api.get(f"/sessions/{view['session_id']}/export").json()
    assert [message["content"] for message in view["messages"]] == ["Mail me at [EMAIL] please.", "Noted: [EMAIL]."]
    assert view["turns"][0]["extra"]["redaction"] == {"applied": True, "kinds": ["EMAIL"]}
    assert "jane.doe" not in json.dumps(exported_)
