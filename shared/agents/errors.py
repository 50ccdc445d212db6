"""Classification of model-call failures: whatever the SDK stack raised, as one of our `ModelCallError` kinds.

The kinds decide what a turn does next: connection, timeout, rate_limited, server and auth are worth trying
another backend (`ModelCallError.retryable`), and so is context_length (a 400 saying the request exceeds the
model's window: another backend may have a larger one); rejected (another 400) would fail anywhere.
"""

from __future__ import annotations

from typing import Any

import openai

from shared.domain.errors import ModelCallError


def classify(backend: str, exc: BaseException) -> ModelCallError:
    """Map whatever the SDK stack raised (Agent Framework wraps the openai error) to one of our kinds."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, openai.APITimeoutError | TimeoutError):
            return ModelCallError(backend, "connection" if _dropped(current) else "timeout")
        if isinstance(current, openai.APIConnectionError | ConnectionError):
            return ModelCallError(backend, "connection")
        if isinstance(current, openai.APIStatusError):
            status = current.status_code
            if status == 429:
                return ModelCallError(backend, "rate_limited", status, _retry_after(current.response))
            if status >= 500:
                return ModelCallError(backend, "server", status, _retry_after(current.response))
            if status in (401, 403):
                return ModelCallError(backend, "auth", status)
            if _too_long(current):
                return ModelCallError(backend, "context_length", status)
            return ModelCallError(backend, "rejected", status)
        inner = getattr(current, "inner_exception", None)
        current = inner if isinstance(inner, BaseException) else (current.__cause__ or current.__context__)
    return ModelCallError(backend, "error")


def _dropped(exc: BaseException) -> bool:
    """A "timeout" that was really a dropped connection: the openai SDK's aiohttp transport reports aiohttp's
    ClientConnectionError (a reset, a server that hung up) as httpx's ConnectTimeout; the original is its cause."""
    cause = exc.__cause__ or exc.__context__
    seen = 0
    while cause is not None and seen < 8:
        name = type(cause).__name__
        if isinstance(cause, ConnectionError) or (
            type(cause).__module__.startswith("aiohttp") and "Timeout" not in name
        ):
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


def _too_long(error: openai.APIStatusError) -> bool:
    """The model refused the request as longer than its context window (OpenAI's code; vLLM's and Ollama's
    messages)."""
    if getattr(error, "code", None) == "context_length_exceeded":
        return True
    message = str(getattr(error, "message", "") or "").lower()
    return "context length" in message or "context window" in message or "too many tokens" in message


def _retry_after(response: Any) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
