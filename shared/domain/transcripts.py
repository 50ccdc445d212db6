"""Transcripts compared the way OpenAI clients send them: whole, on every call.

A client of the OpenAI-compatible route sends the conversation so far (P) and a new user message (u). Whether
P is the stored transcript (S), an edit of it, or a retry of the last turn is decided here, on messages reduced
to (role, text): equal means role and text content equal, message by message (`developer` counts as `system`;
text parts are joined). A hash chain over those pairs lets a stateless client's conversation be found among the
caller's sessions by one indexed lookup instead of scanning transcripts. Pure: plain values in and out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Said = tuple[str, str]  # (role, text)


def said(message: Mapping[str, Any]) -> Said:
    """A message as compared: its role (developer is system) and its text (parts joined)."""
    role = str(message.get("role", ""))
    content = message.get("content")
    if isinstance(content, list):
        text = "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    else:
        text = "" if content is None else str(content)
    return ("system" if role == "developer" else role), text


def chain(messages: Iterable[Said], start: str = "") -> str:
    """A hash of the messages in order, extendable one message at a time (chain(a + b) == chain(b, chain(a)))."""
    digest = start
    for role, text in messages:
        digest = hashlib.sha256(f"{digest}\x1e{role}\x1f{text}".encode()).hexdigest()
    return digest


@dataclass(frozen=True)
class TranscriptKeys:
    """What a session's summary keeps so that a client's request can be matched to it."""

    transcript: str  # chain of the whole stored transcript: a request whose P hashes to it continues the session
    replay: str | None  # chain up to and including the last turn's user message: P + u of that turn, again


def keys_of(turns: Sequence[Sequence[Said]]) -> TranscriptKeys:
    """The keys of a transcript given turn by turn (each turn's messages in order)."""
    before_last = chain(message for turn in turns[:-1] for message in turn)
    if not turns:
        return TranscriptKeys(before_last, None)
    return extended(before_last, turns[-1])


def extended(transcript: str, turn: Sequence[Said]) -> TranscriptKeys:
    """The keys after one more turn, from the transcript's chain before it (no need to hash the rest again)."""
    user = next((index for index, (role, _) in enumerate(turn) if role == "user"), None)
    replay = None if user is None else chain(turn[: user + 1], transcript)
    return TranscriptKeys(chain(turn, transcript), replay)


def flat(turns: Sequence[Sequence[Said]]) -> list[Said]:
    return [message for turn in turns for message in turn]


def common_turns(turns: Sequence[Sequence[Said]], prior: Sequence[Said]) -> tuple[int, int]:
    """How many whole stored turns `prior` starts with, and how many of its messages they take."""
    count = offset = 0
    for turn in turns:
        if list(prior[offset : offset + len(turn)]) != list(turn):
            break
        count, offset = count + 1, offset + len(turn)
    return count, offset


def repeats_last_turn(turns: Sequence[Sequence[Said]], prior: Sequence[Said], message: Said) -> bool:
    """True when `prior` plus `message` is the stored transcript up to and including the last turn's user message:
    the same request as the one that made the last turn (a retry, or a regenerate)."""
    if not turns:
        return False
    last = turns[-1]
    user = next((index for index, (role, _) in enumerate(last) if role == "user"), None)
    if user is None:
        return False
    return [*prior, message] == [*flat(turns[:-1]), *last[: user + 1]]
