"""The stored message format, read as plain dicts.

A snapshot stores each message twice: as Agent Framework's `Message.to_dict()` (role, `contents` with typed
items) and in OpenAI chat form (role, content, tool fields). These helpers read the first and derive the
second without importing Agent Framework, so pure code (context capping, analytics, import planning) can
work on stored messages directly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def text_of(message: Mapping[str, Any]) -> str:
    """The text of a stored message: its text contents, joined."""
    return "".join(
        str(content.get("text", "")) for content in message.get("contents", ()) if content.get("type") == "text"
    )


def to_openai(message: Mapping[str, Any]) -> dict[str, Any]:
    """One stored message in plain OpenAI chat form: its role and its text (what a live turn stores)."""
    return {"role": str(message.get("role", "user")), "content": text_of(message)}


def arguments_text(arguments: object) -> str:
    """A tool call's arguments as the JSON text OpenAI carries."""
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))


def openai_of(message: Mapping[str, Any]) -> dict[str, Any]:
    """One stored message in OpenAI chat form, tool calls and results included.

    For text messages this is exactly `to_openai`; tool calls and tool results keep their OpenAI fields
    (`tool_calls`, `tool_call_id`) so an exported transcript is complete.
    """
    result = to_openai(message)
    contents = [content for content in message.get("contents", ()) if isinstance(content, Mapping)]
    calls = [content for content in contents if content.get("type") == "function_call"]
    if calls:
        result["tool_calls"] = [
            {
                "id": str(call.get("call_id", "")),
                "type": "function",
                "function": {"name": str(call.get("name", "")), "arguments": arguments_text(call.get("arguments"))},
            }
            for call in calls
        ]
    answers = [content for content in contents if content.get("type") == "function_result"]
    if answers:
        result["tool_call_id"] = str(answers[0].get("call_id", ""))
        if not result["content"]:
            answer = answers[0].get("result")
            result["content"] = answer if isinstance(answer, str) else arguments_text(answer)
    return result
