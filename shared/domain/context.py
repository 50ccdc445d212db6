"""What a model is sent of a conversation's history (the stored history itself is never cut)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _chars(message: Mapping[str, Any]) -> int:
    """Characters a message costs: the text of every content (reasoning included)."""
    return sum(len(str(content.get("text", ""))) for content in message.get("contents", ()))


def cap_context(messages: Sequence[Mapping[str, Any]], max_messages: int, max_chars: int) -> list[Mapping[str, Any]]:
    """The most recent messages that fit both caps, starting at a user message when possible.

    Only what is sent to the model is capped; the stored history keeps everything. System messages (only an
    import stores them: the conversation's own instructions) are always sent, in place, and count first.
    """
    pinned = [index for index, message in enumerate(messages) if message.get("role") == "system"]
    count, chars = len(pinned), sum(_chars(messages[index]) for index in pinned)
    kept: list[int] = []
    for index in reversed(range(len(messages))):
        if messages[index].get("role") == "system":
            continue
        size = _chars(messages[index])
        if count >= max_messages or chars + size > max_chars:
            break
        kept.append(index)
        count, chars = count + 1, chars + size
    kept.reverse()
    while len(kept) > 1 and messages[kept[0]].get("role") != "user":
        kept.pop(0)
    return [messages[index] for index in sorted({*pinned, *kept})]
