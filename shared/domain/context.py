"""What a model is sent of a conversation: fitted to the routed backend's window (the stored history is never cut).

The rules, in order:

1. System messages (the conversation's own instructions, stored by an import or a client's first request) are
   always sent, in place; so are the agent's instructions and the new user message. If those alone exceed the
   window the turn is refused (`ContextTooLarge`) before any model call.
2. The most recent turns are sent whole, as many as fit. A turn is the unit, so a tool call is never separated
   from its result.
3. What does not fit is represented by a summary (`ContextSummary`), sent as a system message saying which
   turns it covers. A stored summary is reused while it and the turns after it fit; when they no longer do, a
   new one is made of the previous summary and the turns that now drop out. It is made with room to spare (the
   turns kept then fill at most half of what is left, though the latest turn stays whole whenever it fits), so
   a new summary is needed every several turns, not on every turn.
4. Without summaries (`CONTEXT_SUMMARY=false`, or every summary call failed) the oldest turns are dropped.

`CONTEXT_MAX_MESSAGES` and `CONTEXT_MAX_CHARS` stay upper bounds on the history sent, window or not. Sizes
are the calibrated estimates of `shared.domain.tokens`, with its safety margin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.domain.context_summary import ContextSummary
from shared.domain.errors import ContextTooLarge
from shared.domain.tokens import TokenRatio, messages_tokens

DEFAULT_OUTPUT_RESERVE = 1024  # tokens kept free for the answer when MODEL_MAX_OUTPUT_TOKENS is not set
SUMMARY_MAX_TOKENS = 800  # the most a summary may take of a request


def output_reserve(window: int, max_output_tokens: int | None) -> int:
    """Tokens kept free for the answer: the output cap when one is set, else 1024 or a quarter of the window."""
    if max_output_tokens is not None:
        return max_output_tokens
    return min(DEFAULT_OUTPUT_RESERVE, window // 4)


@dataclass(frozen=True)
class Window:
    """What one backend's request must fit: its context window less the answer's reserve, and the caps."""

    tokens: int | None  # {BACKEND}_MODEL_CONTEXT_TOKENS; None: unknown, only the caps apply
    reserve: int
    max_messages: int
    max_chars: int

    @property
    def budget(self) -> int | None:
        return None if self.tokens is None else self.tokens - self.reserve


@dataclass(frozen=True)
class TurnMessages:
    """One stored turn: its messages besides system messages (what it costs beyond the pinned ones), and all
    of them in order (what is sent when the turn goes whole: its system messages stay in place)."""

    turn: int
    messages: tuple[Mapping[str, Any], ...]
    layout: tuple[Mapping[str, Any], ...] = ()

    @property
    def sent(self) -> tuple[Mapping[str, Any], ...]:
        return self.layout or self.messages


@dataclass(frozen=True)
class Size:
    tokens: float
    messages: int
    chars: int

    def __add__(self, other: Size) -> Size:
        return Size(self.tokens + other.tokens, self.messages + other.messages, self.chars + other.chars)

    def __sub__(self, other: Size) -> Size:
        return Size(self.tokens - other.tokens, self.messages - other.messages, self.chars - other.chars)

    def within(self, room: Size) -> bool:
        return self.tokens <= room.tokens and self.messages <= room.messages and self.chars <= room.chars

    def halved(self) -> Size:
        return Size(self.tokens / 2, self.messages // 2, self.chars // 2)


def message_chars(message: Mapping[str, Any]) -> int:
    """The characters of a stored message's texts (what `CONTEXT_MAX_CHARS` counts)."""
    return sum(len(str(content.get("text", ""))) for content in message.get("contents", ()))


def size_of(messages: Sequence[Mapping[str, Any]], ratio: TokenRatio) -> Size:
    chars = sum(message_chars(message) for message in messages)
    return Size(ratio.fitted(messages_tokens(messages)), len(messages), chars)


@dataclass(frozen=True)
class ContextPlan:
    """Which turns go whole, and what stands for the older ones."""

    keep_from: int  # index (into the turns) of the first turn sent whole
    summary: ContextSummary | None = None  # a stored summary to send
    fold: tuple[int, int] | None = None  # (first index, end index) of turns a new summary must add
    truncate_from: int = 0  # the first turn sent whole if the new summary cannot be had
    summary_tokens: int = 0  # the most a new summary may take

    @property
    def mode(self) -> str:
        if self.fold is not None:
            return "summary_needed"
        if self.summary is not None:
            return "summary"
        return "full" if self.keep_from == 0 else "truncated"


def turns_of(
    entries: Sequence[tuple[int, Sequence[Mapping[str, Any]]]],
) -> tuple[list[tuple[int, Mapping[str, Any]]], list[TurnMessages]]:
    """A stored history as its pinned system messages (with their turn numbers) and its turns."""
    pinned: list[tuple[int, Mapping[str, Any]]] = []
    turns: list[TurnMessages] = []
    for number, messages in entries:
        pinned += [(number, message) for message in messages if message.get("role") == "system"]
        rest = tuple(message for message in messages if message.get("role") != "system")
        if rest:
            turns.append(TurnMessages(number, rest, tuple(messages)))
    return pinned, turns


def _room(fixed: Size, window: Window) -> Size:
    """What the history may take. `fixed.messages` and `.chars` count the pinned system messages only: the
    caps bound the history, not the new message."""
    budget = window.budget
    tokens = math.inf if budget is None else budget - fixed.tokens
    return Size(tokens, window.max_messages - fixed.messages, window.max_chars - fixed.chars)


class _Sizes:
    """Each turn's size, computed when first asked for: fitting walks back from the newest turn and stops at
    the first that does not fit, so a long conversation's old turns are never measured."""

    def __init__(self, turns: Sequence[TurnMessages], ratio: TokenRatio) -> None:
        self._turns, self._ratio = turns, ratio
        self._known: dict[int, Size] = {}

    def __len__(self) -> int:
        return len(self._turns)

    def __getitem__(self, index: int) -> Size:
        size = self._known.get(index)
        if size is None:
            size = self._known[index] = size_of(self._turns[index].messages, self._ratio)
        return size


def _first_fitting(sizes: _Sizes, room: Size) -> int:
    """The index of the oldest turn such that it and every later turn fit in `room` (len(sizes) if none)."""
    total = Size(0, 0, 0)
    for index in range(len(sizes) - 1, -1, -1):
        total = total + sizes[index]
        if not total.within(room):
            return index + 1
    return 0


def plan_context(
    turns: Sequence[TurnMessages],
    fixed: Size,
    summaries: Sequence[ContextSummary],
    window: Window,
    ratio: TokenRatio,
    *,
    summarize: bool,
    backend: str,
) -> ContextPlan:
    """Which turns a request to `backend` sends whole, and whether a stored or a new summary stands for the rest.

    `fixed` is what is always sent (instructions, pinned system messages, the new message); more than the
    window holds raises `ContextTooLarge`.
    """
    budget = window.budget
    if budget is not None and fixed.tokens > budget:
        raise ContextTooLarge(backend, window.tokens or 0, window.reserve, math.ceil(fixed.tokens))
    room = _room(fixed, window)
    sizes = _Sizes(turns, ratio)
    keep = _first_fitting(sizes, room)
    if keep == 0 or not summarize:
        return ContextPlan(keep_from=keep, truncate_from=keep)
    stored = summaries[-1] if summaries else None
    if stored is not None:
        after = next((index for index, turn in enumerate(turns) if turn.turn > stored.through_turn), len(turns))
        beside = room - stored_size(stored, ratio)
        if beside.tokens >= 0 and beside.messages >= 0 and beside.chars >= 0 and _first_fitting(sizes, beside) <= after:
            return ContextPlan(keep_from=after, summary=stored, truncate_from=keep)
        if after >= len(turns):  # the summary covers every turn but does not fit itself: plain truncation
            return ContextPlan(keep_from=keep, truncate_from=keep)
    else:
        after = 0
    allowance = _summary_allowance(room)
    # Hysteresis: after a new summary the turns kept fill at most half of the room left, so the next several
    # turns fit beside the same summary.
    kept = _first_fitting(sizes, (room - allowance).halved())
    if kept == len(turns) and sizes[-1].within(room - allowance):
        kept -= 1  # the latest exchange stays whole whenever it fits beside the summary
    kept = max(kept, after + 1)
    return ContextPlan(
        keep_from=kept,
        fold=(after, kept),
        truncate_from=keep,
        summary_tokens=math.floor(allowance.tokens) if budget is not None else SUMMARY_MAX_TOKENS,
    )


def keep_beside(
    summary: ContextSummary,
    turns: Sequence[TurnMessages],
    fixed: Size,
    window: Window,
    ratio: TokenRatio,
    at_least: int,
) -> int:
    """The first turn sent whole beside a new summary: `at_least` (the plan's), or later if the summary came out
    longer than its allowance (the turns in between then go unsummarized, and the record says how many)."""
    room = _room(fixed, window)
    return max(at_least, _first_fitting(_Sizes(turns, ratio), room - stored_size(summary, ratio)))


def _summary_allowance(room: Size) -> Size:
    tokens = min(SUMMARY_MAX_TOKENS, room.tokens / 4)
    return Size(tokens, 1, min(SUMMARY_MAX_TOKENS * 4, room.chars // 4))


def stored_size(summary: ContextSummary, ratio: TokenRatio) -> Size:
    return size_of([summary.message()], ratio)


def assemble(
    pinned: Sequence[tuple[int, Mapping[str, Any]]],
    turns: Sequence[TurnMessages],
    keep_from: int,
    summary: ContextSummary | None,
) -> list[Mapping[str, Any]]:
    """The history sent: the system messages of the turns not sent whole, the summary (if any), then the turns
    kept whole, their own system messages in place."""
    first = turns[keep_from].turn if keep_from < len(turns) else math.inf
    sent: list[Mapping[str, Any]] = [message for turn, message in pinned if turn < first]
    if summary is not None:
        sent.append(summary.message())
    kept = {turn.turn: turn.sent for turn in turns[keep_from:]}
    alone: dict[int, list[Mapping[str, Any]]] = {}  # later turns of system messages only
    for turn, message in pinned:
        if turn >= first and turn not in kept:
            alone.setdefault(turn, []).append(message)
    for number in sorted({*kept, *alone}):
        sent += kept.get(number) or alone[number]
    return sent
