"""Moving conversations in and out of the service: import, export and fork.

Import accepts four formats and turns each into the same thing, a new session's entries:

    openai               a list of Chat Completions messages ({"role", "content"}, text parts, tool calls)
    agent_session        an `AgentSession.to_dict()` payload (agent-framework-core 1.x, history in
                         state.in_memory.messages)
    agent_thread_legacy  a pre-1.0 `AgentThread` serialization ({"type": "agent_thread_state",
                         "chat_message_store_state": {"messages": [{"type": "chat_message", ...}]}}), which
                         today's `AgentSession.from_dict` cannot read; its messages are rewritten as 1.x dicts
    export               our own export document (below), for a lossless round trip

Everything is validated before the first write, and a refusal names the exact place (`data[3].role`,
`data.state.in_memory.messages[2].contents[0].text`), so a bad import creates nothing.

Turns. Messages are grouped into turns the way a live session stores them: a user message and every message
up to the next user message form one turn; messages before the first user message (system instructions,
an assistant greeting) belong to turn 1. An export keeps its own grouping (each exported turn says how many
messages it holds). System messages are stored in the history like any other message, and the turn sends
them to the model on every later turn (`cap_context` keeps them when it trims old history).

Carried turns. A turn that did not run in this session (imported, or copied by a fork) is stored with
`imported=True` and no routing of its own: backend, model, latency, tokens and cost are empty, so a
session's analytics and an owner's totals count only exchanges that really ran there and nothing is counted
twice. When the turn had routing metadata (an export, a fork), that record is kept whole under
`extra["original"]`; its complexity is kept too, so the router's follow-up rule still sees how demanding
the conversation was.

Export is one JSON document: `schema`/`schema_version`, the session envelope (ids, times, Agent Framework
version, lineage), the OpenAI-format messages, the native `AgentSession` payload and every turn record
(each with its `message_count`). Importing it gives the same transcript.

With PII_REDACTION on, imported messages are masked before they are stored, like a live turn's.

Fork copies turns 1..n of a session into a new session of the same owner, with its lineage
(`{"kind": "fork", "source_session_id", "source_turn"}`) in the snapshot envelope; the source is only read.

The first part of this module is pure (plain values in, plain values out, `now` passed in); the I/O part at
the end (`SessionTransfer`) writes Blob first, the source of truth, then Cosmos, which is derived.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agent_framework import AgentSession, Content, Message

from shared.conversation import SessionView, to_openai
from shared.metadata import MetadataStore, turn_document
from shared.records import Entry, TurnRecord, new_session_id, summarize, utc_iso, validate_id
from shared.redaction import Redactor, redaction_note
from shared.settings import Settings
from shared.snapshots import AGENT_FRAMEWORK_VERSION, SessionConflict, Snapshot, SnapshotStore, new_snapshot

if TYPE_CHECKING:
    from shared.runtime import Services

logger = logging.getLogger(__name__)

FORMATS = ("openai", "agent_session", "agent_thread_legacy", "export")
EXPORT_SCHEMA = "hybrid-llm-router.export"
EXPORT_SCHEMA_VERSION = 1
SUPPORTED_EXPORT_VERSIONS = frozenset({1})
ROLES = ("system", "user", "assistant", "tool")
# Content kinds a conversation's history can carry to a chat model. `usage` (token counts) is metadata, not
# conversation, and is dropped; anything else (images, hosted tools) is refused rather than silently lost.
CONTENT_TYPES = ("text", "text_reasoning", "function_call", "function_result")
_DROPPED_CONTENT_TYPES = frozenset({"usage"})
_LEGACY_CONTENT_ALIASES = {"text_content": "text", "function_call_content": "function_call"}
_LEGACY_CONTENT_ALIASES |= {"function_result_content": "function_result", "usage_content": "usage"}
_METADATA_WRITERS = 8  # concurrent Cosmos upserts while recording an imported session's turns
_SOURCE_ID_MAX = 128


class InvalidImport(ValueError):
    """The import data is not acceptable; `field` says where (`data[3].role`). Nothing was written."""

    status = 422  # read by the audit log's outcome mapping (`rejected`)

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field


class InvalidFork(ValueError):
    """The fork point is outside the session; `field` is the request field (`at_turn`)."""

    status = 422

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field


class SessionExists(RuntimeError):
    """The caller already has a session with the requested id; nothing was written."""

    status = 409

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id} already exists")
        self.session_id = session_id


@dataclass(frozen=True)
class ImportLimits:
    max_messages: int
    max_user_chars: int  # the same bound a live turn puts on a user message


@dataclass(frozen=True)
class ImportPlan:
    """A validated import: the new session's entries, its Agent Framework state and its lineage."""

    entries: tuple[Entry, ...]
    agent_state: Mapping[str, Any]
    lineage: Mapping[str, Any]


# ---- small helpers (pure) ----------------------------------------------------------------------------------------


def _kind(value: object) -> str:
    """A JSON type name for error messages (the value itself is not echoed)."""
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "a list"
        case dict():
            return "an object"
    return type(value).__name__


def _shown(value: object) -> str:
    """A short, safe rendering of a small value the caller sent (a role, a type name)."""
    if isinstance(value, str) and len(value) <= 32 and value.isprintable():
        return repr(value)
    return _kind(value)


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidImport(where, f"must be an object, got {_kind(value)}")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidImport(where, f"must be a list, got {_kind(value)}")
    return value


def _optional_str(container: Mapping[str, Any], key: str, where: str) -> str | None:
    value = container.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidImport(f"{where}.{key}", f"must be a string or null, got {_kind(value)}")
    return value


def _required_str(container: Mapping[str, Any], key: str, where: str) -> str:
    value = container.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidImport(f"{where}.{key}", f"must be a non-empty string, got {_kind(value)}")
    return value


def _text_of(message: Mapping[str, Any]) -> str:
    return "".join(
        str(content.get("text", "")) for content in message.get("contents", ()) if content.get("type") == "text"
    )


def _arguments_text(arguments: object) -> str:
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))


def openai_of(message: Mapping[str, Any]) -> dict[str, Any]:
    """One Agent Framework message dict in OpenAI chat format.

    For text messages this is exactly what a live turn stores (`conversation.to_openai`); tool calls and tool
    results keep their OpenAI fields (`tool_calls`, `tool_call_id`) so an exported transcript is complete.
    """
    result = to_openai(message)
    contents = [content for content in message.get("contents", ()) if isinstance(content, Mapping)]
    calls = [content for content in contents if content.get("type") == "function_call"]
    if calls:
        result["tool_calls"] = [
            {
                "id": str(call.get("call_id", "")),
                "type": "function",
                "function": {"name": str(call.get("name", "")), "arguments": _arguments_text(call.get("arguments"))},
            }
            for call in calls
        ]
    answers = [content for content in contents if content.get("type") == "function_result"]
    if answers:
        result["tool_call_id"] = str(answers[0].get("call_id", ""))
        if not result["content"]:
            answer = answers[0].get("result")
            result["content"] = answer if isinstance(answer, str) else _arguments_text(answer)
    return result


class _ToolCalls:
    """Tool calls and their answers, in order: every result answers an earlier call, every call is answered
    before the conversation moves on (a chat model refuses a history that breaks either rule)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.pending: dict[str, str] = {}

    def call(self, call_id: str, where: str) -> None:
        if call_id in self.seen:
            raise InvalidImport(where, "repeats a tool call id used earlier")
        self.seen.add(call_id)
        self.pending[call_id] = where

    def answer(self, call_id: str, where: str) -> None:
        if call_id not in self.pending:
            reason = "answers a tool call that was already answered" if call_id in self.seen else None
            raise InvalidImport(where, reason or "does not answer any earlier tool call")
        del self.pending[call_id]

    def settle(self) -> None:
        """Called before any message that is not a tool result, and at the end."""
        if self.pending:
            raise InvalidImport(next(iter(self.pending.values())), "has no tool result before the next message")


# ---- OpenAI messages (pure) --------------------------------------------------------------------------------------


def _openai_text(message: Mapping[str, Any], where: str, *, required: bool) -> str | None:
    content = message.get("content")
    if content is None:
        if required:
            raise InvalidImport(f"{where}.content", "is required")
        return None
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidImport(f"{where}.content", f"must be a string or a list of text parts, got {_kind(content)}")
    parts: list[str] = []
    for index, part in enumerate(content):
        part_where = f"{where}.content[{index}]"
        part = _object(part, part_where)
        if part.get("type") != "text":
            raise InvalidImport(
                f"{part_where}.type",
                f"must be 'text' (only text parts can be imported), got {_shown(part.get('type'))}",
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidImport(f"{part_where}.text", f"must be a string, got {_kind(text)}")
        parts.append(text)
    return "".join(parts)


def _openai_to_af(item: object, where: str, calls: _ToolCalls, limits: ImportLimits) -> dict[str, Any]:
    message = _object(item, where)
    role = message.get("role")
    if role not in ROLES:
        raise InvalidImport(f"{where}.role", f"must be one of {', '.join(ROLES)}, got {_shown(role)}")
    if role != "tool":
        calls.settle()
    if message.get("function_call") is not None:
        raise InvalidImport(f"{where}.function_call", "is the deprecated form of tool_calls; send tool_calls")
    name = _optional_str(message, "name", where)
    tool_calls = message.get("tool_calls")
    if tool_calls is not None and role != "assistant":
        raise InvalidImport(f"{where}.tool_calls", "is only allowed on assistant messages")
    text = _openai_text(message, where, required=role != "assistant")
    if text is None and role == "assistant" and isinstance(message.get("refusal"), str):
        text = message["refusal"]
    if role in ("user", "system") and not (text or "").strip():
        raise InvalidImport(f"{where}.content", "must not be empty")
    # System messages are pinned into every later model request (cap_context keeps them), so they are held to
    # the same bound as a user message.
    if role in ("user", "system") and len(text or "") > limits.max_user_chars:
        raise InvalidImport(f"{where}.content", f"is longer than {limits.max_user_chars} characters")
    contents: list[Any] = [Content.from_text(text)] if text else []
    if tool_calls is not None:
        for index, call in enumerate(_list(tool_calls, f"{where}.tool_calls")):
            call_where = f"{where}.tool_calls[{index}]"
            call = _object(call, call_where)
            if call.get("type", "function") != "function":
                raise InvalidImport(f"{call_where}.type", f"must be 'function', got {_shown(call.get('type'))}")
            call_id = _required_str(call, "id", call_where)
            function = _object(call.get("function"), f"{call_where}.function")
            function_name = _required_str(function, "name", f"{call_where}.function")
            arguments = function.get("arguments")
            if arguments is not None and not isinstance(arguments, str | dict):
                raise InvalidImport(f"{call_where}.function.arguments", f"must be a string, got {_kind(arguments)}")
            calls.call(call_id, call_where)
            contents.append(
                Content.from_function_call(call_id=call_id, name=function_name, arguments=_arguments_text(arguments))
            )
    if role == "tool":
        call_id = _required_str(message, "tool_call_id", where)
        calls.answer(call_id, f"{where}.tool_call_id")
        contents = [Content.from_function_result(call_id=call_id, result=text or "")]
    if not contents:
        if text is None:
            raise InvalidImport(f"{where}.content", "is null and the message has no tool_calls")
        contents = [Content.from_text("")]  # an empty reply stays a message, as the model saw it
    return Message(role=role, contents=contents, author_name=name).to_dict()


def openai_messages_to_af(items: object, where: str, limits: ImportLimits) -> list[dict[str, Any]]:
    """Validate a list of OpenAI chat messages and convert each into an Agent Framework message dict."""
    messages = _list(items, where)
    _check_count(messages, where, limits)
    calls = _ToolCalls()
    converted = [_openai_to_af(item, f"{where}[{index}]", calls, limits) for index, item in enumerate(messages)]
    calls.settle()
    return converted


# ---- Agent Framework messages, 1.x and legacy (pure) -------------------------------------------------------------


def _af_content(item: object, where: str, role: str, calls: _ToolCalls, legacy: bool) -> dict[str, Any] | None:
    """One content, rebuilt from the keys we understand (None for a content that is dropped)."""
    content = _object(item, where)
    kind = content.get("type")
    if legacy and isinstance(kind, str):
        kind = _LEGACY_CONTENT_ALIASES.get(kind, kind)
    if kind in _DROPPED_CONTENT_TYPES:
        return None
    if kind not in CONTENT_TYPES:
        raise InvalidImport(f"{where}.type", f"must be one of {', '.join(CONTENT_TYPES)}, got {_shown(kind)}")
    rebuilt: dict[str, Any] = {"type": kind}
    properties = content.get("additional_properties")
    if properties is not None:
        rebuilt["additional_properties"] = dict(_object(properties, f"{where}.additional_properties"))
    if kind in ("text", "text_reasoning"):
        text = content.get("text")
        if not isinstance(text, str) and not (kind == "text_reasoning" and text is None):
            raise InvalidImport(f"{where}.text", f"must be a string, got {_kind(text)}")
        rebuilt["text"] = text
    elif kind == "function_call":
        if role != "assistant":
            raise InvalidImport(f"{where}.type", "function_call is only allowed in assistant messages")
        call_id = _required_str(content, "call_id", where)
        arguments = content.get("arguments")
        if arguments is not None and not isinstance(arguments, str | dict):
            raise InvalidImport(f"{where}.arguments", f"must be a string or an object, got {_kind(arguments)}")
        calls.call(call_id, where)
        rebuilt.update(call_id=call_id, name=_required_str(content, "name", where), arguments=arguments)
    else:  # function_result
        if role != "tool":
            raise InvalidImport(f"{where}.type", "function_result is only allowed in tool messages")
        call_id = _required_str(content, "call_id", where)
        calls.answer(call_id, f"{where}.call_id")
        rebuilt.update(call_id=call_id, result=content.get("result"))
    return rebuilt


def _af_role(message: Mapping[str, Any], where: str) -> str:
    role = message.get("role")
    if isinstance(role, dict):  # pre-1.0 `Role` objects: {"type": "role", "value": "user"}
        role = role.get("value")
    if role not in ROLES:
        raise InvalidImport(f"{where}.role", f"must be one of {', '.join(ROLES)}, got {_shown(role)}")
    return str(role)


def _af_message(item: object, where: str, calls: _ToolCalls, limits: ImportLimits, legacy: bool) -> dict[str, Any]:
    message = _object(item, where)
    accepted = ("chat_message", "message", None) if legacy else ("message", None)
    if message.get("type") not in accepted:
        expected = " or ".join(repr(kind) for kind in accepted if kind)
        raise InvalidImport(f"{where}.type", f"must be {expected}, got {_shown(message.get('type'))}")
    role = _af_role(message, where)
    if role != "tool":
        calls.settle()
    contents = [
        content
        for index, raw in enumerate(_list(message.get("contents"), f"{where}.contents"))
        if (content := _af_content(raw, f"{where}.contents[{index}]", role, calls, legacy)) is not None
    ]
    if not contents:
        raise InvalidImport(f"{where}.contents", "has nothing that can be imported")
    if role == "tool" and not any(content["type"] == "function_result" for content in contents):
        raise InvalidImport(f"{where}.contents", "a tool message must carry a function_result")
    rebuilt: dict[str, Any] = {"type": "message", "role": role, "contents": contents}
    for key in ("author_name", "message_id"):
        if (value := _optional_str(message, key, where)) is not None:
            rebuilt[key] = value
    properties = message.get("additional_properties")
    if properties is not None:
        rebuilt["additional_properties"] = dict(_object(properties, f"{where}.additional_properties"))
    try:
        normalized = Message.from_dict(rebuilt).to_dict()
    except (TypeError, ValueError, KeyError) as exc:
        raise InvalidImport(where, f"is not a valid Agent Framework message ({type(exc).__name__})") from None
    text = _text_of(normalized)
    if role in ("user", "system") and not text.strip():
        raise InvalidImport(f"{where}.contents", f"a {role} message must have text")
    if role in ("user", "system") and len(text) > limits.max_user_chars:
        raise InvalidImport(f"{where}.contents", f"has a text longer than {limits.max_user_chars} characters")
    return normalized


def af_messages(items: object, where: str, limits: ImportLimits, *, legacy: bool = False) -> list[dict[str, Any]]:
    """Validate Agent Framework message dicts (1.x, or pre-1.0 with `legacy`) and return them as 1.x dicts."""
    messages = _list(items, where)
    _check_count(messages, where, limits)
    calls = _ToolCalls()
    converted = [_af_message(item, f"{where}[{index}]", calls, limits, legacy) for index, item in enumerate(messages)]
    calls.settle()
    return converted


def _check_count(messages: Sequence[Any], where: str, limits: ImportLimits) -> None:
    if not messages:
        raise InvalidImport(where, "has no messages")
    if len(messages) > limits.max_messages:
        raise InvalidImport(where, f"has {len(messages)} messages; at most {limits.max_messages} can be imported")


def _restorable(agent_state: Mapping[str, Any], messages: Sequence[Mapping[str, Any]], where: str) -> None:
    """The session the next turn will build from these must restore with today's Agent Framework."""
    payload = {
        "type": "session",
        "session_id": "import-check",
        "service_session_id": None,
        "state": {**agent_state, "in_memory": {"messages": list(messages)}},
    }
    try:
        restored = AgentSession.from_dict(payload)
        history = restored.state["in_memory"]["messages"]
    except Exception as exc:  # noqa: BLE001 - any failure means the payload cannot be continued
        raise InvalidImport(where, f"cannot be restored by Agent Framework ({type(exc).__name__})") from None
    if len(history) != len(messages) or not all(isinstance(item, Message) for item in history):
        raise InvalidImport(where, "cannot be restored by Agent Framework")


# ---- turns and records (pure) ------------------------------------------------------------------------------------


def group_turns(roles: Sequence[str], where: str) -> list[tuple[int, int]]:
    """(start, end) of each turn: a user message and what follows it up to the next user message; anything
    before the first user message (system instructions, a greeting) joins turn 1."""
    starts = [index for index, role in enumerate(roles) if role == "user"]
    if not starts:
        raise InvalidImport(where, "has no user message; a conversation needs at least one")
    starts[0] = 0
    return [(start, end) for start, end in zip(starts, [*starts[1:], len(roles)], strict=True)]


def _original_of(record: TurnRecord) -> dict[str, Any] | None:
    """The routing metadata a carried turn keeps: its first real record, never a record of a record."""
    if record.imported:
        original = record.extra.get("original")
        return dict(original) if isinstance(original, Mapping) else None
    data = record.to_dict()
    data.pop("extra", None)
    return data


def _imported(
    turn: int,
    now: datetime,
    *,
    complexity: float | None,
    reason: str,
    user_chars: int,
    reply_chars: int,
    extra: Mapping[str, Any],
) -> TurnRecord:
    """A turn as stored when it did not run here: imported, no backend, routing, cost or latency of its own."""
    stamp = utc_iso(now)
    return TurnRecord(
        turn=turn, backend=None, model=None, complexity=complexity, reason=reason, router_version=None,
        route_requested="auto", switched_from=None, fallback_chain=(), latency_ms=None, turn_ms=None,
        input_tokens=0, output_tokens=0, cost=0.0, started_at=stamp, completed_at=stamp,
        user_chars=user_chars, reply_chars=reply_chars, imported=True, extra=extra,
    )  # fmt: skip


def carried_record(
    record: TurnRecord, *, turn: int, now: datetime, reason: str, extra: Mapping[str, Any]
) -> TurnRecord:
    """A turn that ran elsewhere (an export, a fork's source), keeping its first real record in `original`."""
    kept = {key: value for key, value in record.extra.items() if key != "original"} if record.imported else {}
    original = _original_of(record)
    return _imported(
        turn, now, complexity=record.complexity, reason=reason, user_chars=record.user_chars,
        reply_chars=record.reply_chars, extra={**kept, **extra, **({"original": original} if original else {})},
    )  # fmt: skip


def imported_record(turn: int, messages: Sequence[Mapping[str, Any]], now: datetime, fmt: str) -> TurnRecord:
    """The record of an imported turn that has no routing metadata (every format but export)."""
    return _imported(
        turn, now, complexity=None, reason=f"imported ({fmt})",
        user_chars=sum(len(_text_of(message)) for message in messages if message.get("role") == "user"),
        reply_chars=sum(len(_text_of(message)) for message in messages if message.get("role") == "assistant"),
        extra={"import_format": fmt},
    )  # fmt: skip


def _entries(
    messages: Sequence[dict[str, Any]], spans: Sequence[tuple[int, int]], now: datetime, fmt: str
) -> tuple[Entry, ...]:
    entries: list[Entry] = []
    for number, (start, end) in enumerate(spans, start=1):
        group = messages[start:end]
        entries.append(Entry(imported_record(number, group, now, fmt), tuple(group), tuple(map(openai_of, group))))
    return tuple(entries)


def _source_id(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= _SOURCE_ID_MAX and value.isprintable() else None


# ---- the four formats (pure) -------------------------------------------------------------------------------------


def _from_openai(data: object, now: datetime, limits: ImportLimits) -> ImportPlan:
    if not isinstance(data, list):
        raise InvalidImport("data", f"must be a list of messages for format openai, got {_kind(data)}")
    messages = openai_messages_to_af(data, "data", limits)
    _restorable({}, messages, "data")
    spans = group_turns([message["role"] for message in messages], "data")
    return ImportPlan(_entries(messages, spans, now, "openai"), {}, {"kind": "import", "format": "openai"})


def _session_state(
    payload: Mapping[str, Any], where: str, limits: ImportLimits
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The state (without history) and the history of an `AgentSession.to_dict()` payload."""
    if payload.get("type") != "session":
        raise InvalidImport(f"{where}.type", f"must be 'session', got {_shown(payload.get('type'))}")
    if payload.get("service_session_id") is not None:
        raise InvalidImport(
            f"{where}.service_session_id", "must be null: history kept by a service is not in the payload"
        )
    state = _object(payload.get("state"), f"{where}.state")
    in_memory = _object(state.get("in_memory"), f"{where}.state.in_memory")
    messages = af_messages(in_memory.get("messages"), f"{where}.state.in_memory.messages", limits)
    agent_state = {key: value for key, value in state.items() if key != "in_memory"}
    _restorable(agent_state, messages, f"{where}.state")
    return agent_state, messages


def _from_agent_session(data: object, now: datetime, limits: ImportLimits) -> ImportPlan:
    payload = _object(data, "data")
    agent_state, messages = _session_state(payload, "data", limits)
    spans = group_turns([message["role"] for message in messages], "data.state.in_memory.messages")
    lineage = {"kind": "import", "format": "agent_session", "source_session_id": _source_id(payload.get("session_id"))}
    return ImportPlan(_entries(messages, spans, now, "agent_session"), agent_state, lineage)


def _from_legacy_thread(data: object, now: datetime, limits: ImportLimits) -> ImportPlan:
    payload = _object(data, "data")
    if payload.get("type") not in ("agent_thread_state", None):
        raise InvalidImport("data.type", f"must be 'agent_thread_state', got {_shown(payload.get('type'))}")
    if payload.get("service_thread_id") is not None:
        raise InvalidImport("data.service_thread_id", "must be null: history kept by a service is not in the payload")
    store = _object(payload.get("chat_message_store_state"), "data.chat_message_store_state")
    where = "data.chat_message_store_state.messages"
    messages = af_messages(store.get("messages"), where, limits, legacy=True)
    _restorable({}, messages, "data.chat_message_store_state")
    spans = group_turns([message["role"] for message in messages], where)
    return ImportPlan(
        _entries(messages, spans, now, "agent_thread_legacy"), {}, {"kind": "import", "format": "agent_thread_legacy"}
    )


def _from_export(data: object, now: datetime, limits: ImportLimits) -> ImportPlan:
    document = _object(data, "data")
    if document.get("schema") != EXPORT_SCHEMA:
        raise InvalidImport("data.schema", f"must be {EXPORT_SCHEMA!r}, got {_shown(document.get('schema'))}")
    version = document.get("schema_version")
    if version not in SUPPORTED_EXPORT_VERSIONS or isinstance(version, bool):
        raise InvalidImport("data.schema_version", f"must be one of {sorted(SUPPORTED_EXPORT_VERSIONS)}")
    envelope = _object(document.get("session", {}), "data.session")
    agent_state, af = _session_state(
        _object(document.get("agent_session"), "data.agent_session"), "data.agent_session", limits
    )
    # The OpenAI form must be the same conversation: checked message by message against the native one.
    openai = openai_messages_to_af(document.get("messages"), "data.messages", limits)
    if len(openai) != len(af):
        raise InvalidImport("data.messages", f"has {len(openai)} messages but data.agent_session has {len(af)}")
    for index, (ours, theirs) in enumerate(zip(af, openai, strict=True)):
        if openai_of(ours) != openai_of(theirs):
            raise InvalidImport(f"data.messages[{index}]", "differs from the same message in data.agent_session")
    turns = _list(document.get("turns"), "data.turns")
    records: list[TurnRecord] = []
    spans: list[tuple[int, int]] = []
    start = 0
    for index, raw in enumerate(turns):
        where = f"data.turns[{index}]"
        item = _object(raw, where)
        for key in ("turn", "started_at", "completed_at"):
            if key not in item:
                raise InvalidImport(f"{where}.{key}", "is required")
        try:
            record = TurnRecord.from_dict(item)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidImport(where, f"is not a valid turn record ({type(exc).__name__})") from None
        if record.turn != index + 1:
            raise InvalidImport(f"{where}.turn", f"must be {index + 1}, got {record.turn}")
        count = item.get("message_count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InvalidImport(f"{where}.message_count", f"must be a positive integer, got {_kind(count)}")
        if start + count > len(af):
            raise InvalidImport(f"{where}.message_count", f"runs past the last of the {len(af)} messages")
        records.append(record)
        spans.append((start, start + count))
        start += count
    if not records:
        raise InvalidImport("data.turns", "has no turns")
    if start != len(af):
        raise InvalidImport("data.turns", f"account for {start} of the {len(af)} messages")
    source = _source_id(envelope.get("session_id"))
    extra = {"import_format": "export", **({"source_session_id": source} if source else {})}
    entries = tuple(
        Entry(
            carried_record(record, turn=record.turn, now=now, reason="imported (export)", extra=extra),
            tuple(af[begin:end]),
            tuple(map(openai_of, af[begin:end])),
        )
        for record, (begin, end) in zip(records, spans, strict=True)
    )
    return ImportPlan(entries, agent_state, {"kind": "import", "format": "export", "source_session_id": source})


_PARSERS: Mapping[str, Callable[[object, datetime, ImportLimits], ImportPlan]] = {
    "openai": _from_openai,
    "agent_session": _from_agent_session,
    "agent_thread_legacy": _from_legacy_thread,
    "export": _from_export,
}


def plan_import(fmt: str, data: object, *, limits: ImportLimits, now: datetime) -> ImportPlan:
    """Validate `data` in format `fmt` and return what the new session will hold. Raises InvalidImport."""
    parser = _PARSERS.get(fmt)
    if parser is None:
        raise InvalidImport("format", f"must be one of {', '.join(FORMATS)}, got {_shown(fmt)}")
    return parser(data, now, limits)


def redacted(plan: ImportPlan, redactor: Redactor) -> ImportPlan:
    """The plan with personal data masked, as a live turn stores its messages when PII_REDACTION is on: an
    import must not be a way around it. Each record notes the kinds found (never the values)."""
    entries: list[Entry] = []
    for entry in plan.entries:
        messages, kinds = redactor.redact_messages(entry.af_messages)
        record = replace(entry.record, extra={**entry.record.extra, "redaction": redaction_note(kinds)})
        entries.append(Entry(record, tuple(messages), tuple(map(openai_of, messages))))
    return replace(plan, entries=tuple(entries))


def imported_snapshot(plan: ImportPlan, session_id: str, owner: str, now: datetime) -> Snapshot:
    snapshot = new_snapshot(session_id, owner, now, lineage=dict(plan.lineage))
    return replace(snapshot, entries=plan.entries, agent_state=dict(plan.agent_state))


# ---- export and fork (pure) --------------------------------------------------------------------------------------


def export_document(snapshot: Snapshot, now: datetime) -> dict[str, Any]:
    """The whole session as one versioned JSON document (see the module docstring)."""
    return {
        "schema": EXPORT_SCHEMA,
        "schema_version": EXPORT_SCHEMA_VERSION,
        "exported_at": utc_iso(now),
        "session": {
            "session_id": snapshot.session_id,
            "created_at": snapshot.created_at,
            "updated_at": snapshot.updated_at,
            "agent_framework_version": AGENT_FRAMEWORK_VERSION,
            "lineage": dict(snapshot.lineage) if snapshot.lineage else None,
            "turns": snapshot.turns,
        },
        "messages": snapshot.openai_messages(),
        "agent_session": snapshot.agent_session_payload(),
        "turns": [{**entry.record.to_dict(), "message_count": len(entry.af_messages)} for entry in snapshot.entries],
    }


def fork_snapshot(source: Snapshot, at_turn: int, session_id: str, now: datetime) -> Snapshot:
    """Turns 1..at_turn of `source` as a new session of the same owner, its lineage pointing back."""
    if isinstance(at_turn, bool) or not isinstance(at_turn, int) or not 1 <= at_turn <= source.turns:
        raise InvalidFork("at_turn", f"must be between 1 and {source.turns}, the session's turns")
    extra = {"forked_from": source.session_id}
    entries = tuple(
        replace(
            entry,
            record=carried_record(
                entry.record, turn=entry.turn, now=now, reason=f"forked from turn {entry.turn}", extra=extra
            ),
        )
        for entry in source.entries[:at_turn]
    )
    lineage = {"kind": "fork", "source_session_id": source.session_id, "source_turn": at_turn}
    # The Agent Framework state besides history is only kept as of the latest turn; our agents keep none.
    return replace(
        new_snapshot(session_id, source.owner, now, lineage=lineage),
        entries=entries,
        agent_state=dict(source.agent_state),
    )


# ---- storage (I/O) -----------------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


class SessionTransfer:
    """Import, export and fork over the two stores: the whole new session is written to Blob in one create
    (the source of truth; nothing is written before every check passed), then its records go to Cosmos."""

    def __init__(
        self,
        settings: Settings,
        snapshots: SnapshotStore,
        metadata: MetadataStore,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._settings = settings
        self._snapshots = snapshots
        self._metadata = metadata
        self._clock = clock

    @property
    def limits(self) -> ImportLimits:
        return ImportLimits(self._settings.import_max_messages, self._settings.message_max_chars)

    async def import_session(self, owner: str, fmt: str, data: object, session_id: str | None = None) -> SessionView:
        validate_id(owner, "owner")
        if session_id is not None:
            validate_id(session_id)
        now = self._clock()
        plan = plan_import(fmt, data, limits=self.limits, now=now)
        if self._settings.pii_redaction:
            plan = redacted(plan, Redactor(self._settings.pii_extra_patterns))
        if session_id is not None and await self._snapshots.exists(owner, session_id):
            raise SessionExists(session_id)
        snapshot = imported_snapshot(plan, session_id or new_session_id(), owner, now)
        try:
            saved = await self._snapshots.create(snapshot)
        except SessionConflict:
            if session_id is None:
                raise
            raise SessionExists(session_id) from None
        logger.info("imported session %s (%s, %d turns)", saved.session_id, fmt, saved.turns)
        return await self._record_metadata(saved)

    async def export_session(self, owner: str, session_id: str) -> dict[str, Any]:
        validate_id(owner, "owner")
        validate_id(session_id)
        snapshot = await self._snapshots.load(owner, session_id)
        return export_document(snapshot, self._clock())

    async def fork_session(self, owner: str, session_id: str, at_turn: int) -> SessionView:
        validate_id(owner, "owner")
        validate_id(session_id)
        # A plain read: the source is never leased or written, so a turn running on it is not disturbed.
        source = await self._snapshots.load(owner, session_id)
        forked = fork_snapshot(source, at_turn, new_session_id(), self._clock())
        saved = await self._snapshots.create(forked)
        logger.info("forked session %s at turn %d into %s", session_id, at_turn, saved.session_id)
        return await self._record_metadata(saved)

    async def _record_metadata(self, snapshot: Snapshot) -> SessionView:
        """Every turn record and the summary. Cosmos is derived data: a failure is logged, not raised (the
        session is durable in Blob already; reconcile repairs Cosmos)."""
        summary = summarize(snapshot.session_id, snapshot.owner, snapshot.created_at, snapshot.records)
        gate = asyncio.Semaphore(_METADATA_WRITERS)

        async def write(record: TurnRecord) -> None:
            async with gate:
                await self._metadata.turns.upsert_item(turn_document(snapshot.owner, snapshot.session_id, record))

        try:
            await asyncio.gather(*(write(record) for record in snapshot.records))
            await self._metadata.put_summary(summary)
        except Exception:  # noqa: BLE001 - logged; the session is durable in Blob
            logger.exception("session %s saved, but its metadata write failed", snapshot.session_id)
        return SessionView(snapshot, summary)


def transfer_of(services: Services) -> SessionTransfer:
    """The transfer service over the process's stores (a thin object: the clients are the ones `Services` holds)."""
    return SessionTransfer(services.settings, services.snapshots, services.metadata)
