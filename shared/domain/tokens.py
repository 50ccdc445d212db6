"""Token estimates for what a model is sent, calibrated by the counts models report.

No tokenizer ships here. The exact ones need either a vocabulary file fetched at run time (tiktoken downloads
its encodings on first use; a worker without internet cannot), or a model-specific vocabulary we do not have
(a local model behind Ollama or vLLM tokenizes with its own). So a request is estimated from its text:

- `raw_tokens`: characters / 4 for ASCII (English prose and code run at 3.5-4.5 characters a token in the
  common BPE vocabularies) and one token per other character (CJK and most non-Latin scripts cost about one
  token a character; accented Latin costs less, so this errs high), plus a few tokens per message for the
  role and separators, and a few per request for the reply's priming.
- `TokenRatio`: every model reply reports the real input tokens. A turn records its raw estimate beside them,
  so the ratio of truth to estimate is known per backend, per session; the next estimate is the raw one times
  that ratio (the median of the recent ones). Without any observation a conservative default applies.

What is fitted to a window also gets a safety margin (`FIT_MARGIN`), so an estimate a little low never
overflows it; the margin is not part of the recorded estimate, whose error is measured against the truth.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MESSAGE_OVERHEAD = 4  # role and separators of one chat message
REQUEST_OVERHEAD = 3  # the reply's priming
DEFAULT_RATIO = 1.25  # unobserved backends: assume 3.2 ASCII characters a token, not 4
FIT_MARGIN = 1.05  # what is fitted to a window is estimated 5 % high
RATIO_BOUNDS = (0.5, 4.0)  # a reported count outside these is a model that counts oddly, not a tokenizer
RECENT = 8  # observations a ratio is taken from


def text_tokens(text: str) -> float:
    """Raw tokens of a text: ASCII characters / 4, every other character one token."""
    if text.isascii():
        return len(text) / 4
    ascii_chars = len(text.encode("ascii", "ignore"))
    return ascii_chars / 4 + (len(text) - ascii_chars)


def _content_text(content: Mapping[str, Any]) -> str:
    kind = content.get("type")
    if kind in ("text", "text_reasoning"):
        return str(content.get("text", ""))
    if kind == "function_call":
        return f"{content.get('name', '')}{content.get('arguments', '')}{content.get('call_id', '')}"
    if kind == "function_result":
        return f"{content.get('result', '')}{content.get('call_id', '')}"
    return str(content.get("text", ""))


def message_tokens(message: Mapping[str, Any]) -> float:
    """Raw tokens of one stored (Agent Framework) message, its overhead included."""
    contents = message.get("contents", ())
    return MESSAGE_OVERHEAD + sum(text_tokens(_content_text(content)) for content in contents)


def messages_tokens(messages: Iterable[Mapping[str, Any]]) -> float:
    return sum(message_tokens(message) for message in messages)


def plain_tokens(role_texts: Iterable[str]) -> float:
    """Raw tokens of plain text messages (instructions, the new user message, a summary)."""
    return sum(MESSAGE_OVERHEAD + text_tokens(text) for text in role_texts)


@dataclass(frozen=True)
class Observation:
    """One model call's raw estimate beside the input tokens the model reported for it."""

    raw: float
    reported: int

    @property
    def ratio(self) -> float | None:
        if self.raw <= 0 or self.reported <= 0:
            return None
        ratio = self.reported / self.raw
        low, high = RATIO_BOUNDS
        return ratio if low <= ratio <= high else None


@dataclass(frozen=True)
class TokenRatio:
    """Reported tokens per raw estimated token, and where the figure came from."""

    value: float
    basis: str  # "session" (this conversation on this backend), "backend" (this worker's), or "default"

    def estimate(self, raw: float) -> int:
        return round(raw * self.value)

    def fitted(self, raw: float) -> int:
        """The estimate with the safety margin: what is held to a window."""
        return round(raw * self.value * FIT_MARGIN)


def ratio_of(observations: Iterable[Observation]) -> float | None:
    """The median ratio of the recent usable observations, or None without any."""
    ratios = [ratio for ratio in (item.ratio for item in observations) if ratio is not None][-RECENT:]
    return statistics.median(ratios) if ratios else None


def choose_ratio(session: Iterable[Observation], backend: float | None) -> TokenRatio:
    """This session's ratio on the backend if observed, else the worker's for the backend, else the default."""
    observed = ratio_of(session)
    if observed is not None:
        return TokenRatio(round(observed, 4), "session")
    if backend is not None:
        return TokenRatio(round(backend, 4), "backend")
    return TokenRatio(DEFAULT_RATIO, "default")
