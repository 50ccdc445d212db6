"""One summary call: a backend's chat client asked to condense older turns (the prompt is `shared.domain`'s).

It goes through the backend's `OpenAIChatCompletionClient` directly, not its agent: a summary is not a turn of
the conversation, so no session is built and nothing is added to any history.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_framework import Message

from shared.agents.backends import Backend
from shared.agents.errors import classify
from shared.observability.spans import ModelCall


@dataclass(frozen=True)
class SummaryReply:
    text: str
    input_tokens: int
    output_tokens: int


async def write_summary(backend: Backend, instructions: str, text: str, max_tokens: int) -> SummaryReply:
    """The backend's summary of `text`; a failure raises the classified `ModelCallError`."""
    call = ModelCall(backend.name, backend.model, backend.config, purpose="summary")
    messages = [Message(role="system", contents=[instructions]), Message(role="user", contents=[text])]
    try:
        with call.current():
            pending = backend.agent.client.get_response(messages, options={"max_tokens": max_tokens})
        response = await call.wait(pending)
    except Exception as exc:  # noqa: BLE001 - every SDK failure is classified
        error = classify(backend.name, exc)
        call.failed(error.kind)
        raise error from None
    usage = response.usage_details or {}
    input_tokens = int(usage.get("input_token_count") or 0)
    output_tokens = int(usage.get("output_token_count") or 0)
    call.succeeded(input_tokens, output_tokens)
    return SummaryReply((response.text or "").strip(), input_tokens, output_tokens)
