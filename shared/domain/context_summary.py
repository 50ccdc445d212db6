"""Summaries of the turns a model is no longer sent: the stored value, the message that carries it, and the prompt
that asks a model to write (or extend) one.

A summary covers turns `first_turn`..`through_turn` and is stored with the session (the snapshot envelope), with
the backend and model that wrote it, so it is made once and reused. The next one extends it: its input is the
previous summary plus the turns that have since dropped out, so it always covers the conversation from its start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from shared.domain.messages import arguments_text
from shared.domain.tokens import TokenRatio, text_tokens

MAX_SUMMARY_CALLS = 4  # the most calls one turn makes to fold turns into a summary
_MIN_CLIPPED_CHARS = 40


@dataclass(frozen=True)
class ContextSummary:
    first_turn: int
    through_turn: int
    text: str
    backend: str
    model: str
    created_at: str
    made_in_turn: int  # the turn whose request needed it

    def message(self) -> dict[str, Any]:
        """The system message (Agent Framework form) that stands for the summarized turns."""
        head = f"Summary of turns {self.first_turn}-{self.through_turn} of this conversation, which are not shown:"
        return {"type": "message", "role": "system", "contents": [{"type": "text", "text": f"{head}\n{self.text}"}]}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContextSummary:
        """Raises KeyError, TypeError or ValueError on a malformed value (the caller says where)."""
        first, through, made = (_positive(data[key]) for key in ("first_turn", "through_turn", "made_in_turn"))
        if through < first or made <= through:
            raise ValueError("turn range out of order")
        text, backend, model, created_at = (data[key] for key in ("text", "backend", "model", "created_at"))
        if not all(isinstance(value, str) for value in (text, backend, model, created_at)) or not text.strip():
            raise TypeError("text, backend, model and created_at must be strings, the text not empty")
        return cls(first, through, text, backend, model, created_at, made)


def _positive(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("turn numbers must be positive integers")
    return value


def covering(summaries: Sequence[ContextSummary], through_turn: int) -> tuple[ContextSummary, ...]:
    """The summaries that cover nothing after `through_turn` (what a fork at that turn keeps)."""
    return tuple(summary for summary in summaries if summary.through_turn <= through_turn)


# ---- the prompt ---------------------------------------------------------------------------------------------------


def _content_line(role: str, content: Mapping[str, Any]) -> str:
    kind = content.get("type")
    if kind == "function_call":
        return f"{role} called {content.get('name', 'a tool')}({arguments_text(content.get('arguments'))})"
    if kind == "function_result":
        result = content.get("result")
        return f"Tool result: {result if isinstance(result, str) else arguments_text(result)}"
    if kind == "text":
        return f"{role}: {content.get('text', '')}"
    return ""


def _clipped(text: str, keep: float) -> str:
    limit = max(_MIN_CLIPPED_CHARS, int(len(text) * keep))
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]} [...] {text[-half:]}"


def turn_text(number: int, messages: Sequence[Mapping[str, Any]], keep: float = 1.0) -> str:
    """One turn as the summarizer reads it; with `keep` < 1 each line is clipped to that share (head and tail)."""
    lines = [f"Turn {number}"]
    for message in messages:
        role = "User" if message.get("role") == "user" else "Assistant"
        for content in message.get("contents", ()):
            line = _content_line(role, content)
            if line:
                lines.append(_clipped(line, keep) if keep < 1 else line)
    return "\n".join(lines)


def chunks(
    turns: Sequence[tuple[int, Sequence[Mapping[str, Any]]]], room: float, ratio: TokenRatio
) -> list[tuple[int, int, str]]:
    """The turns as texts of at most `room` tokens each, one per summary call: (first turn, last turn, text).

    Turns are never split between texts and none is left out. When they do not fit in `MAX_SUMMARY_CALLS`
    texts, every line is clipped by the same share (its head and tail kept) until they do, so old turns are
    summarized thinner rather than lost; only a history too long even at 40 characters a line takes more calls.
    """
    keep = 1.0
    while True:
        texts = [(number, turn_text(number, messages, keep)) for number, messages in turns]
        packed = _pack(texts, room, ratio)
        if len(packed) <= MAX_SUMMARY_CALLS or keep <= 0.01:
            return packed
        total = sum(ratio.fitted(text_tokens(text)) for _, text in texts)
        keep *= min(0.7, room * MAX_SUMMARY_CALLS * 0.85 / max(total, 1))


def _pack(texts: Sequence[tuple[int, str]], room: float, ratio: TokenRatio) -> list[tuple[int, int, str]]:
    """Consecutive turns into texts of at most `room` tokens (a turn longer than that is clipped to it)."""
    out: list[tuple[int, int, str]] = []
    current: list[tuple[int, str]] = []
    used = 0.0  # raw tokens of the current text, its separators included
    for number, text in texts:
        raw = text_tokens(text) + 0.5  # and the blank line before the next turn
        if ratio.fitted(raw) > room:
            text = _clipped(text, room / ratio.fitted(raw) * 0.9)
            raw = text_tokens(text) + 0.5
        if current and ratio.fitted(used + raw) > room:
            out.append((current[0][0], current[-1][0], "\n\n".join(part for _, part in current)))
            current, used = [], 0.0
        current.append((number, text))
        used += raw
    if current:
        out.append((current[0][0], current[-1][0], "\n\n".join(part for _, part in current)))
    return out


def prompt(previous: ContextSummary | None, first: int, last: int, text: str, max_words: int) -> tuple[str, str]:
    """The summarizer's instructions and input: the summary so far (if any) and turns `first`..`last`."""
    instructions = (
        "You keep the memory of a conversation for an assistant that will continue it without seeing the older "
        f"messages. Write a summary of at most {max_words} words of everything below. Keep what is needed to go on: "
        "the user's goals and preferences, facts and numbers given, names, decisions, answers already given, code "
        "identifiers, and open questions. Write plain prose in the conversation's language and add nothing that "
        "was not said."
    )
    parts = []
    if previous is not None:
        parts.append(f"Summary so far (turns {previous.first_turn}-{previous.through_turn}):\n{previous.text}")
    parts.append(f"Turns {first}-{last}:\n\n{text}")
    return instructions, "\n\n".join(parts)
