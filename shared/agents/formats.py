"""Imported messages, validated and rewritten as Agent Framework 1.x message dicts.

Three inputs: OpenAI chat messages (`role`, `content` as a string or text parts, `tool_calls`,
`tool_call_id`), Agent Framework 1.x message dicts, and pre-1.0 `AgentThread` message dicts (`chat_message`,
`Role` objects, `*_content` types), which today's Agent Framework cannot read. Every message is checked
before anything is stored, and a refusal names the exact place (`data[3].role`,
`data.state.in_memory.messages[2].contents[0].text`). Tool calls must be answered, in order, before the
conversation moves on, as a chat model requires of a history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent_framework import Content, Message

from shared.config.settings import Settings
from shared.domain.errors import InvalidImport
from shared.domain.messages import arguments_text, text_of
from shared.domain.shapes import as_list, as_object, kind_of, optional_str, required_str, shown

ROLES = ("system", "user", "assistant", "tool")
# Content kinds a conversation's history can carry to a chat model. `usage` (token counts) is metadata, not
# conversation, and is dropped; anything else (images, hosted tools) is refused rather than silently lost.
CONTENT_TYPES = ("text", "text_reasoning", "function_call", "function_result")
_DROPPED_CONTENT_TYPES = frozenset({"usage"})
_LEGACY_CONTENT_ALIASES = {"text_content": "text", "function_call_content": "function_call"}
_LEGACY_CONTENT_ALIASES |= {"function_result_content": "function_result", "usage_content": "usage"}


@dataclass(frozen=True)
class ImportLimits:
    max_messages: int
    max_user_chars: int  # the same bound a live turn puts on a user message

    @classmethod
    def of(cls, settings: Settings) -> ImportLimits:
        return cls(settings.import_max_messages, settings.message_max_chars)


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


def _openai_text(message: Mapping[str, Any], where: str, *, required: bool) -> str | None:
    content = message.get("content")
    if content is None:
        if required:
            raise InvalidImport(f"{where}.content", "is required")
        return None
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidImport(f"{where}.content", f"must be a string or a list of text parts, got {kind_of(content)}")
    parts: list[str] = []
    for index, part in enumerate(content):
        part_where = f"{where}.content[{index}]"
        part = as_object(part, part_where)
        if part.get("type") != "text":
            raise InvalidImport(
                f"{part_where}.type",
                f"must be 'text' (only text parts can be imported), got {shown(part.get('type'))}",
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidImport(f"{part_where}.text", f"must be a string, got {kind_of(text)}")
        parts.append(text)
    return "".join(parts)


@dataclass(frozen=True)
class _OpenAIMessage:
    """One OpenAI chat message, validated: what an Agent Framework message is built from."""

    role: str
    text: str | None
    name: str | None
    tool_calls: tuple[tuple[str, str, str | None], ...]  # (id, function name, arguments as text)
    tool_call_id: str | None


def _openai_checked(item: object, where: str, calls: _ToolCalls, limits: ImportLimits) -> _OpenAIMessage:
    message = as_object(item, where)
    role = message.get("role")
    if role not in ROLES:
        raise InvalidImport(f"{where}.role", f"must be one of {', '.join(ROLES)}, got {shown(role)}")
    if role != "tool":
        calls.settle()
    if message.get("function_call") is not None:
        raise InvalidImport(f"{where}.function_call", "is the deprecated form of tool_calls; send tool_calls")
    name = optional_str(message, "name", where)
    tool_calls = message.get("tool_calls")
    if tool_calls is not None and role != "assistant":
        raise InvalidImport(f"{where}.tool_calls", "is only allowed on assistant messages")
    text = _openai_text(message, where, required=role != "assistant")
    if text is None and role == "assistant" and isinstance(message.get("refusal"), str):
        text = message["refusal"]
    if role in ("user", "system") and not (text or "").strip():
        raise InvalidImport(f"{where}.content", "must not be empty")
    # System messages are pinned into every later model request (shared.domain.context pins them), so they are held to
    # the same bound as a user message.
    if role in ("user", "system") and len(text or "") > limits.max_user_chars:
        raise InvalidImport(f"{where}.content", f"is longer than {limits.max_user_chars} characters")
    checked_calls: list[tuple[str, str, str | None]] = []
    for index, call in enumerate(as_list(tool_calls, f"{where}.tool_calls") if tool_calls is not None else ()):
        call_where = f"{where}.tool_calls[{index}]"
        call = as_object(call, call_where)
        if call.get("type", "function") != "function":
            raise InvalidImport(f"{call_where}.type", f"must be 'function', got {shown(call.get('type'))}")
        call_id = required_str(call, "id", call_where)
        function = as_object(call.get("function"), f"{call_where}.function")
        function_name = required_str(function, "name", f"{call_where}.function")
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str | dict):
            raise InvalidImport(f"{call_where}.function.arguments", f"must be a string, got {kind_of(arguments)}")
        calls.call(call_id, call_where)
        checked_calls.append((call_id, function_name, arguments_text(arguments)))
    tool_call_id = None
    if role == "tool":
        tool_call_id = required_str(message, "tool_call_id", where)
        calls.answer(tool_call_id, f"{where}.tool_call_id")
    elif text is None and not checked_calls:
        raise InvalidImport(f"{where}.content", "is null and the message has no tool_calls")
    return _OpenAIMessage(role, text, name, tuple(checked_calls), tool_call_id)


def _openai_to_af(message: _OpenAIMessage) -> dict[str, Any]:
    if message.tool_call_id is not None:
        contents = [Content.from_function_result(call_id=message.tool_call_id, result=message.text or "")]
    else:
        contents = [Content.from_text(message.text)] if message.text else []
        contents += [
            Content.from_function_call(call_id=call_id, name=name, arguments=arguments)
            for call_id, name, arguments in message.tool_calls
        ]
        if not contents:
            contents = [Content.from_text("")]  # an empty reply stays a message, as the model saw it
    return Message(role=message.role, contents=contents, author_name=message.name).to_dict()


def _openai_all_checked(items: object, where: str, limits: ImportLimits) -> list[_OpenAIMessage]:
    messages = as_list(items, where)
    _check_count(messages, where, limits)
    calls = _ToolCalls()
    checked = [_openai_checked(item, f"{where}[{index}]", calls, limits) for index, item in enumerate(messages)]
    calls.settle()
    return checked


def check_openai_messages(items: object, where: str, limits: ImportLimits) -> None:
    """Validate a list of OpenAI chat messages by the rules `openai_messages_to_af` applies, building nothing (a
    conversation a client resends is checked whole on every call, and mostly only compared)."""
    _openai_all_checked(items, where, limits)


def openai_messages_to_af(items: object, where: str, limits: ImportLimits) -> list[dict[str, Any]]:
    """Validate a list of OpenAI chat messages and convert each into an Agent Framework message dict."""
    return [_openai_to_af(message) for message in _openai_all_checked(items, where, limits)]


# ---- Agent Framework messages, 1.x and legacy (pure) -------------------------------------------------------------


def _af_content(item: object, where: str, role: str, calls: _ToolCalls, legacy: bool) -> dict[str, Any] | None:
    """One content, rebuilt from the keys we understand (None for a content that is dropped)."""
    content = as_object(item, where)
    kind = content.get("type")
    if legacy and isinstance(kind, str):
        kind = _LEGACY_CONTENT_ALIASES.get(kind, kind)
    if kind in _DROPPED_CONTENT_TYPES:
        return None
    if kind not in CONTENT_TYPES:
        raise InvalidImport(f"{where}.type", f"must be one of {', '.join(CONTENT_TYPES)}, got {shown(kind)}")
    rebuilt: dict[str, Any] = {"type": kind}
    properties = content.get("additional_properties")
    if properties is not None:
        rebuilt["additional_properties"] = dict(as_object(properties, f"{where}.additional_properties"))
    if kind in ("text", "text_reasoning"):
        text = content.get("text")
        if not isinstance(text, str) and not (kind == "text_reasoning" and text is None):
            raise InvalidImport(f"{where}.text", f"must be a string, got {kind_of(text)}")
        rebuilt["text"] = text
    elif kind == "function_call":
        if role != "assistant":
            raise InvalidImport(f"{where}.type", "function_call is only allowed in assistant messages")
        call_id = required_str(content, "call_id", where)
        arguments = content.get("arguments")
        if arguments is not None and not isinstance(arguments, str | dict):
            raise InvalidImport(f"{where}.arguments", f"must be a string or an object, got {kind_of(arguments)}")
        calls.call(call_id, where)
        rebuilt.update(call_id=call_id, name=required_str(content, "name", where), arguments=arguments)
    else:  # function_result
        if role != "tool":
            raise InvalidImport(f"{where}.type", "function_result is only allowed in tool messages")
        call_id = required_str(content, "call_id", where)
        calls.answer(call_id, f"{where}.call_id")
        rebuilt.update(call_id=call_id, result=content.get("result"))
    return rebuilt


def _af_role(message: Mapping[str, Any], where: str) -> str:
    role = message.get("role")
    if isinstance(role, dict):  # pre-1.0 `Role` objects: {"type": "role", "value": "user"}
        role = role.get("value")
    if role not in ROLES:
        raise InvalidImport(f"{where}.role", f"must be one of {', '.join(ROLES)}, got {shown(role)}")
    return str(role)


def _af_message(item: object, where: str, calls: _ToolCalls, limits: ImportLimits, legacy: bool) -> dict[str, Any]:
    message = as_object(item, where)
    accepted = ("chat_message", "message", None) if legacy else ("message", None)
    if message.get("type") not in accepted:
        expected = " or ".join(repr(kind) for kind in accepted if kind)
        raise InvalidImport(f"{where}.type", f"must be {expected}, got {shown(message.get('type'))}")
    role = _af_role(message, where)
    if role != "tool":
        calls.settle()
    contents = [
        content
        for index, raw in enumerate(as_list(message.get("contents"), f"{where}.contents"))
        if (content := _af_content(raw, f"{where}.contents[{index}]", role, calls, legacy)) is not None
    ]
    if not contents:
        raise InvalidImport(f"{where}.contents", "has nothing that can be imported")
    if role == "tool" and not any(content["type"] == "function_result" for content in contents):
        raise InvalidImport(f"{where}.contents", "a tool message must carry a function_result")
    rebuilt: dict[str, Any] = {"type": "message", "role": role, "contents": contents}
    for key in ("author_name", "message_id"):
        if (value := optional_str(message, key, where)) is not None:
            rebuilt[key] = value
    properties = message.get("additional_properties")
    if properties is not None:
        rebuilt["additional_properties"] = dict(as_object(properties, f"{where}.additional_properties"))
    try:
        normalized = Message.from_dict(rebuilt).to_dict()
    except (TypeError, ValueError, KeyError) as exc:
        raise InvalidImport(where, f"is not a valid Agent Framework message ({type(exc).__name__})") from None
    text = text_of(normalized)
    if role in ("user", "system") and not text.strip():
        raise InvalidImport(f"{where}.contents", f"a {role} message must have text")
    if role in ("user", "system") and len(text) > limits.max_user_chars:
        raise InvalidImport(f"{where}.contents", f"has a text longer than {limits.max_user_chars} characters")
    return normalized


def af_messages(items: object, where: str, limits: ImportLimits, *, legacy: bool = False) -> list[dict[str, Any]]:
    """Validate Agent Framework message dicts (1.x, or pre-1.0 with `legacy`) and return them as 1.x dicts."""
    messages = as_list(items, where)
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
