"""One summary call: a backend's chat client asked to condense older turns (the prompt is `shared.domain`'s).

It goes through the backend's `OpenAIChatCompletionClient` directly, not its agent: a summary is not a turn of
the conversation, so no session is built and nothing is added to any history.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_framework import Message

from shared.agents.backends import Backend
from shared.agents.session import failed_call, succeeded_call
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
        raise failed_call(backend.name, call, exc) from None
    input_tokens, output_tokens = succeeded_call(response, call)
    return SummaryReply((response.text or "").strip(), input_tokens, output_tokens)
