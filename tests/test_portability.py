"""Import, export and fork as pure conversions: formats to entries, validation with precise fields, turn grouping,
carried turn records, the export document and the fork snapshot. No storage; the real Agent Framework types."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from agent_framework import AgentSession, Content, Message

from shared.agents.formats import ImportLimits
from shared.agents.session import payload_of
from shared.domain.context import Window, assemble, plan_context, size_of, turns_of
from shared.domain.messages import to_openai
from shared.domain.records import Attempt, Entry, TurnRecord
from shared.domain.sessions import Snapshot, new_snapshot
from shared.domain.tokens import TokenRatio
from shared.services.import_plan import (
    EXPORT_SCHEMA,
    InvalidFork,
    InvalidImport,
    export_document,
    fork_snapshot,
    imported_snapshot,
    openai_of,
    plan_import,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
LIMITS = ImportLimits(max_messages=100, max_user_chars=500)
LEGACY = Path(__file__).parent / "data" / "legacy_agent_thread.json"

OPENAI = [
    {"role": "system", "content": "Answer like a pirate."},
    {"role": "user", "content": [{"type": "text", "text": "Where is "}, {"type": "text", "text": "the treasure?"}]},
    {"role": "assistant", "content": "Arr, under the palm tree."},
    {"role": "user", "content": "How deep?", "name": "jim"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "measure", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "three fathoms"},
    {"role": "assistant", "content": "Three fathoms, matey."},
]


def plan(fmt: str, data: Any, limits: ImportLimits = LIMITS) -> Any:
    return plan_import(fmt, data, limits=limits, now=NOW)


def refusal(fmt: str, data: Any, limits: ImportLimits = LIMITS) -> InvalidImport:
    with pytest.raises(InvalidImport) as caught:
        plan(fmt, data, limits)
    return caught.value


def routed_record(turn: int, backend: str = "cloud") -> TurnRecord:
    return TurnRecord(
        turn=turn,
        backend=backend,
        model="gpt-4o-mini",
        complexity=0.7,
        reason="complexity 0.7",
        router_version="rules-v1",
        route_requested="auto",
        switched_from=None,
        fallback_chain=(Attempt("foundry", "phi-4", "server", 12.5),),
        latency_ms=321.0,
        turn_ms=330.0,
        input_tokens=120,
        output_tokens=80,
        cost=0.00042,
        started_at="2026-02-01T10:00:00.000000Z",
        completed_at="2026-02-01T10:00:01.000000Z",
        user_chars=5,
        reply_chars=7,
    )


def live_entry(turn: int, question: str, answer: str) -> Entry:
    messages = (
        Message(role="user", contents=[Content.from_text(question)]).to_dict(),
        Message(role="assistant", contents=[Content.from_text(answer)], author_name="router-cloud").to_dict(),
    )
    return Entry(routed_record(turn), messages, tuple(to_openai(message) for message in messages))


def live_snapshot(turns: int = 3) -> Snapshot:
    snapshot = new_snapshot("source1", "alice", NOW)
    entries = tuple(live_entry(turn, f"question {turn}", f"answer {turn}") for turn in range(1, turns + 1))
    return replace(snapshot, entries=entries, updated_at="2026-03-01T12:05:00.000000Z")


# ---- openai ------------------------------------------------------------------------------------------------------


def test_openai_messages_group_into_turns_with_leading_system_messages_in_turn_one() -> None:
    entries = plan("openai", OPENAI).entries
    assert [[message["role"] for message in entry.openai_messages] for entry in entries] == [
        ["system", "user", "assistant"],
        ["user", "assistant", "tool", "assistant"],
    ]
    assert entries[0].openai_messages[1] == {"role": "user", "content": "Where is the treasure?"}
    assert entries[1].openai_messages[1]["tool_calls"][0]["id"] == "call_1"
    assert entries[1].openai_messages[2] == {"role": "tool", "content": "three fathoms", "tool_call_id": "call_1"}
    assert entries[1].af_messages[0]["author_name"] == "jim"


def test_imported_turn_records_are_marked_imported_without_routing_or_cost() -> None:
    records = [entry.record for entry in plan("openai", OPENAI).entries]
    assert [record.turn for record in records] == [1, 2]
    for record in records:
        assert record.imported and record.backend is None and record.model is None
        assert record.latency_ms is None and record.turn_ms is None and record.cost == 0.0
        assert record.started_at == record.completed_at == "2026-03-01T12:00:00.000000Z"
        assert record.extra == {"import_format": "openai"}
    assert records[0].user_chars == len("Where is the treasure?")
    assert records[1].reply_chars == len("Three fathoms, matey.")


def test_imported_messages_restore_as_an_agent_session_that_the_turn_can_continue() -> None:
    result = plan("openai", OPENAI)
    snapshot = imported_snapshot(result, "imported1", "alice", NOW)
    session = AgentSession.from_dict(payload_of(snapshot))
    history = session.state["in_memory"]["messages"]
    assert all(isinstance(message, Message) for message in history)
    assert [message.role for message in history] == [message["role"] for message in OPENAI]
    assert history[0].text == "Answer like a pirate."
    assert snapshot.lineage == {"kind": "import", "format": "openai"}


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"role": "user", "content": "hi"}, "data", "must be a list"),
        ([], "data", "has no messages"),
        (["hello"], "data[0]", "must be an object"),
        ([{"role": "user", "content": "hi"}, {"role": "wizard", "content": "x"}], "data[1].role", "one of system"),
        ([{"role": "user"}], "data[0].content", "is required"),
        ([{"role": "user", "content": 42}], "data[0].content", "string or a list"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], "data[0].content[0].type", "text"),
        ([{"role": "user", "content": [{"type": "text", "text": None}]}], "data[0].content[0].text", "string"),
        ([{"role": "user", "content": "   "}], "data[0].content", "must not be empty"),
        ([{"role": "user", "content": "x" * 501}], "data[0].content", "longer than 500"),
        (  # a system message is pinned into every later request: held to the same bound
            [{"role": "system", "content": "s" * 501}, {"role": "user", "content": "hi"}],
            "data[0].content",
            "longer than 500",
        ),
        (
            [{"role": "system", "content": "be brief"}, {"role": "assistant", "content": "ok"}],
            "data",
            "no user message",
        ),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": None}], "data[1].content", "null"),
        ([{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}], "data[1].tool_call_id", "non-empty"),
        (
            [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "nope", "content": "x"}],
            "data[1].tool_call_id",
            "does not answer",
        ),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}]},
                {"role": "user", "content": "and?"},
            ],
            "data[1].tool_calls[0]",
            "no tool result",
        ),
        (
            [{"role": "user", "content": "hi", "tool_calls": []}],
            "data[0].tool_calls",
            "only allowed on assistant",
        ),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"arguments": "{}"}}]},
            ],
            "data[1].tool_calls[0].function.name",
            "non-empty",
        ),
    ],
)
def test_malformed_openai_messages_are_refused_naming_the_field(data: Any, field: str, words: str) -> None:
    error = refusal("openai", data)
    assert error.field == field
    assert words in str(error) and str(error).startswith(field)


def test_too_many_messages_are_refused_before_any_message_is_read() -> None:
    error = refusal("openai", [{"role": "user", "content": "hi"}] * 4, ImportLimits(3, 500))
    assert error.field == "data" and "has 4 messages; at most 3" in str(error)


def test_an_unknown_format_is_refused_naming_format() -> None:
    assert refusal("yaml", []).field == "format"


# ---- agent_session -------------------------------------------------------------------------------------------------


def agent_session_payload() -> dict[str, Any]:
    """A real AgentSession.to_dict() payload: history in state.in_memory.messages, as in agent-framework 1.x."""
    session = AgentSession(session_id="elsewhere-42")
    session.state["in_memory"] = {
        "messages": [
            Message(role="system", contents=[Content.from_text("You review Python code.")]),
            Message(role="user", contents=[Content.from_text("Is `x == None` fine?")]),
            Message(role="assistant", contents=[Content.from_text("Use `x is None`.")], author_name="reviewer"),
            Message(role="user", contents=[Content.from_text("Why?")]),
            Message(role="assistant", contents=[Content.from_text("`is` checks identity; None is a singleton.")]),
        ]
    }
    session.state["preferences"] = {"tone": "terse"}
    return json.loads(json.dumps(session.to_dict()))


def test_an_agent_session_payload_imports_with_its_state_and_source_id() -> None:
    payload = agent_session_payload()
    result = plan("agent_session", payload)
    assert len(result.entries) == 2
    assert result.agent_state == {"preferences": {"tone": "terse"}}
    assert result.lineage == {"kind": "import", "format": "agent_session", "source_session_id": "elsewhere-42"}
    imported = [message for entry in result.entries for message in entry.af_messages]
    assert imported == payload["state"]["in_memory"]["messages"]  # 1.x dicts pass through unchanged
    restored = AgentSession.from_dict(payload_of(imported_snapshot(result, "s2", "alice", NOW)))
    assert restored.state["preferences"] == {"tone": "terse"}
    assert [message.text for message in restored.state["in_memory"]["messages"]][2] == "Use `x is None`."


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda p: p.update(type="thread"), "data.type", "'session'"),
        (lambda p: p.update(service_session_id="resp_123"), "data.service_session_id", "must be null"),
        (lambda p: p.update(state=[]), "data.state", "must be an object"),
        (lambda p: p["state"].pop("in_memory"), "data.state.in_memory", "must be an object"),
        (lambda p: p["state"]["in_memory"].update(messages=[]), "data.state.in_memory.messages", "no messages"),
        (
            lambda p: p["state"]["in_memory"]["messages"][3].update(role="robot"),
            "data.state.in_memory.messages[3].role",
            "one of system",
        ),
        (
            lambda p: p["state"]["in_memory"]["messages"][2]["contents"][0].update(text=7),
            "data.state.in_memory.messages[2].contents[0].text",
            "string",
        ),
        (
            lambda p: p["state"]["in_memory"]["messages"][1]["contents"][0].update(type="uri"),
            "data.state.in_memory.messages[1].contents[0].type",
            "one of text",
        ),
        (
            lambda p: p["state"]["in_memory"]["messages"][4].update(type="chat_message"),
            "data.state.in_memory.messages[4].type",
            "'message'",
        ),
        (
            lambda p: p["state"]["in_memory"]["messages"][1].update(contents="hi"),
            "data.state.in_memory.messages[1].contents",
            "must be a list",
        ),
    ],
)
def test_malformed_agent_session_payloads_are_refused_naming_the_field(change: Any, field: str, words: str) -> None:
    payload = agent_session_payload()
    change(payload)
    error = refusal("agent_session", payload)
    assert error.field == field and words in str(error)


# ---- agent_thread_legacy -------------------------------------------------------------------------------------------


def legacy() -> dict[str, Any]:
    return json.loads(LEGACY.read_text(encoding="utf-8"))


def test_todays_agent_session_cannot_read_a_legacy_thread() -> None:
    """Why the legacy format needs a converter: AgentSession.from_dict wants 1.x keys."""
    with pytest.raises(KeyError):
        AgentSession.from_dict(legacy())


def test_a_legacy_agent_thread_with_several_turns_becomes_todays_messages() -> None:
    entries = plan("agent_thread_legacy", legacy()).entries
    assert [[message["role"] for message in entry.af_messages] for entry in entries] == [
        ["system", "user", "assistant"],
        ["user", "assistant", "tool", "assistant"],
        ["user", "assistant"],
        ["user", "assistant"],
    ]
    messages = [message for entry in entries for message in entry.af_messages]
    assert all(message["type"] == "message" and isinstance(message["role"], str) for message in messages)
    assert messages[1]["author_name"] == "maria" and messages[1]["message_id"] == "msg-7f3a01"
    assert messages[1]["additional_properties"] == {"client": "web"}
    assert [content["type"] for content in messages[2]["contents"]] == ["text"]  # usage dropped
    assert messages[4]["contents"][0]["arguments"] == {"city": "Oslo", "unit": "celsius"}
    assert messages[7]["contents"][0] == {"type": "text", "text": entries[2].openai_messages[0]["content"]} | {
        "additional_properties": {}
    }  # the old "text_content" name and a plain-string role
    session = AgentSession.from_dict(
        {"type": "session", "session_id": "x", "state": {"in_memory": {"messages": messages}}}
    )
    assert all(isinstance(message, Message) for message in session.state["in_memory"]["messages"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(type="agent_thread"), "data.type"),
        (lambda d: d.update(service_thread_id="thread_abc"), "data.service_thread_id"),
        (lambda d: d.update(chat_message_store_state=None), "data.chat_message_store_state"),
        (lambda d: d["chat_message_store_state"].update(messages={}), "data.chat_message_store_state.messages"),
        (
            lambda d: d["chat_message_store_state"]["messages"][3].update(role={"value": "narrator"}),
            "data.chat_message_store_state.messages[3].role",
        ),
        (
            lambda d: d["chat_message_store_state"]["messages"][5]["contents"][0].update(call_id="call_other"),
            "data.chat_message_store_state.messages[5].contents[0].call_id",
        ),
        (
            lambda d: d["chat_message_store_state"]["messages"][6].update(author_name=5),
            "data.chat_message_store_state.messages[6].author_name",
        ),
        (
            lambda d: d["chat_message_store_state"]["messages"][1].update(additional_properties="x"),
            "data.chat_message_store_state.messages[1].additional_properties",
        ),
    ],
)
def test_malformed_legacy_threads_are_refused_naming_the_field(change: Any, field: str) -> None:
    data = legacy()
    change(data)
    assert refusal("agent_thread_legacy", data).field == field


# ---- export --------------------------------------------------------------------------------------------------------


def test_an_export_reimports_to_the_same_transcript_keeping_the_original_routing() -> None:
    source = live_snapshot(3)
    document = json.loads(json.dumps(export_document(source, LATER)))
    assert document["schema"] == EXPORT_SCHEMA and document["schema_version"] == 1
    assert document["session"]["session_id"] == "source1" and document["exported_at"] == "2026-03-02T08:30:00.000000Z"
    result = plan("export", document)
    copy_ = imported_snapshot(result, "copy1", "bob", NOW)
    assert copy_.openai_messages() == source.openai_messages()
    assert copy_.af_messages() == source.af_messages()
    record = copy_.records[1]
    assert record.imported and record.backend is None and record.cost == 0.0 and record.complexity == 0.7
    assert record.extra["original"]["backend"] == "cloud" and record.extra["original"]["cost"] == 0.00042
    assert record.extra["source_session_id"] == "source1"
    assert result.lineage == {"kind": "import", "format": "export", "source_session_id": "source1"}
    # Exported again and re-imported, the original stays the first one (never a record of a record).
    again = plan("export", json.loads(json.dumps(export_document(copy_, LATER))))
    assert again.entries[1].record.extra["original"] == record.extra["original"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(schema="something-else"), "data.schema"),
        (lambda d: d.update(schema_version=2), "data.schema_version"),
        (lambda d: d["messages"][3].update(content="edited"), "data.messages[3]"),
        (lambda d: d["messages"].pop(), "data.messages"),
        (lambda d: d["turns"][1].update(message_count=5), "data.turns[1].message_count"),
        (lambda d: d["turns"][2].pop("message_count"), "data.turns[2].message_count"),
        (lambda d: d["turns"][1].update(turn=7), "data.turns[1].turn"),
        (lambda d: d["turns"][0].pop("started_at"), "data.turns[0].started_at"),
        (lambda d: d["turns"].pop(), "data.turns"),
        (lambda d: d["agent_session"]["state"]["in_memory"]["messages"][0].update(role=None), None),
    ],
)
def test_malformed_exports_are_refused_naming_the_field(change: Any, field: str | None) -> None:
    document = json.loads(json.dumps(export_document(live_snapshot(3), LATER)))
    change(document)
    error = refusal("export", document)
    assert error.field == (field or "data.agent_session.state.in_memory.messages[0].role")


# ---- fork ----------------------------------------------------------------------------------------------------------


def test_a_fork_holds_exactly_the_first_n_turns_with_its_lineage() -> None:
    source = live_snapshot(3)
    before = copy.deepcopy(source)
    fork = fork_snapshot(source, 2, "fork1", LATER)
    assert fork.turns == 2 and fork.owner == "alice" and fork.session_id == "fork1"
    assert fork.lineage == {"kind": "fork", "source_session_id": "source1", "source_turn": 2}
    assert fork.openai_messages() == source.openai_messages()[:4]
    assert all(record.imported and record.backend is None for record in fork.records)
    assert fork.records[0].extra["original"]["backend"] == "cloud"
    assert fork.created_at == "2026-03-02T08:30:00.000000Z"
    assert source == before


@pytest.mark.parametrize("at_turn", [0, 4, -1, True])
def test_a_fork_outside_the_session_is_refused_naming_at_turn(at_turn: int) -> None:
    with pytest.raises(InvalidFork) as caught:
        fork_snapshot(live_snapshot(3), at_turn, "fork1", LATER)
    assert caught.value.field == "at_turn" and "between 1 and 3" in str(caught.value)


# ---- what the model is sent ----------------------------------------------------------------------------------------


def test_the_context_cap_keeps_system_messages_in_place_when_older_history_is_cut() -> None:
    def message(role: str, text: str) -> dict[str, Any]:
        return {"role": role, "contents": [{"type": "text", "text": text}]}

    history = [
        message("system", "be brief"),
        message("user", "a" * 50),
        message("assistant", "b" * 50),
        message("system", "now in French"),
        message("user", "c"),
        message("assistant", "d"),
    ]
    # Stored as an import groups them: turn 1 runs up to the second user message.
    pinned, turns = turns_of([(1, history[:4]), (2, history[4:])])
    exact = TokenRatio(1.0, "test")
    fixed = size_of([item for _, item in pinned], exact)

    def capped(max_messages: int, max_chars: int) -> list[Mapping[str, Any]]:
        window = Window(None, 0, max_messages, max_chars)
        plan = plan_context(turns, fixed, (), window, exact, summarize=False, backend="local")
        return assemble(pinned, turns, plan.keep_from, None)

    assert capped(10, 1000) == history
    assert capped(4, 1000) == [history[0], history[3], history[4], history[5]]
    assert capped(10, 40) == [history[0], history[3], history[4], history[5]]


def test_openai_form_of_a_text_message_is_what_a_live_turn_stores() -> None:
    message = Message(role="assistant", contents=[Content.from_text("a"), Content.from_text("b")]).to_dict()
    assert openai_of(message) == to_openai(message) == {"role": "assistant", "content": "ab"}


def test_transcript_keys_carried_turn_to_turn_equal_the_keys_of_the_whole_transcript() -> None:
    from shared.domain.sessions import said_turns
    from shared.domain.transcripts import keys_of

    snapshot = new_snapshot("s1", "alice", NOW)
    for number in range(1, 6):
        snapshot = snapshot.with_entry(
            live_entry(number, f"question {number}", f"a{number}"), "2026-03-01T12:00:00Z", {}
        )
        assert snapshot.known_keys is not None and snapshot.known_keys[0] == number
        assert snapshot.transcript_keys() == keys_of(said_turns(snapshot))
    # Entries changed some other way (a fork keeps fewer): the carried keys no longer apply and are recomputed.
    fewer = replace(snapshot, entries=snapshot.entries[:3])
    assert fewer.transcript_keys() == keys_of(said_turns(fewer)) != snapshot.transcript_keys()
