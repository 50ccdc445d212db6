"""The one adapter that knows `AgentSession`'s dict layout, and runs a backend's agent on one turn.

Agent Framework keeps a conversation in an `AgentSession` whose `to_dict()` holds the history under
`state["in_memory"]["messages"]`. This service keeps the history itself (the snapshot's entries) and the
rest of the state beside it, so a session is assembled here for each model call and taken apart again
afterwards; nothing else in the package knows that layout. `service_session_id` is always empty: history
kept by a service would silently lose the thread when a conversation moves between backends.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent_framework import AgentSession, Message

from shared.agents.backends import Backend
from shared.agents.errors import classify
from shared.agents.formats import ImportLimits, af_messages
from shared.domain.errors import InvalidImport, ModelCallError
from shared.domain.sessions import Snapshot
from shared.domain.shapes import as_object, shown
from shared.observability.spans import ModelCall

_HISTORY_KEY = "in_memory"


def session_payload(session_id: str, state: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The `AgentSession.to_dict()` payload of a conversation: its state besides history, and its history."""
    full = {key: value for key, value in state.items() if key != _HISTORY_KEY}
    full[_HISTORY_KEY] = {"messages": list(messages)}
    return {"type": "session", "session_id": session_id, "service_session_id": None, "state": full}


def payload_of(snapshot: Snapshot) -> dict[str, Any]:
    """The `AgentSession.to_dict()` payload of a whole stored conversation."""
    return session_payload(snapshot.session_id, snapshot.agent_state, snapshot.af_messages())


def state_without_history(state: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in state.items() if key != _HISTORY_KEY}


def history_path(where: str) -> str:
    """Where a payload at `where` keeps its history, for error messages and turn grouping."""
    return f"{where}.state.{_HISTORY_KEY}.messages"


def parse_payload(
    payload: Mapping[str, Any], where: str, limits: ImportLimits
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The state (without history) and the validated history of an `AgentSession.to_dict()` payload."""
    if payload.get("type") != "session":
        raise InvalidImport(f"{where}.type", f"must be 'session', got {shown(payload.get('type'))}")
    if payload.get("service_session_id") is not None:
        raise InvalidImport(
            f"{where}.service_session_id", "must be null: history kept by a service is not in the payload"
        )
    state = as_object(payload.get("state"), f"{where}.state")
    in_memory = as_object(state.get(_HISTORY_KEY), f"{where}.state.{_HISTORY_KEY}")
    messages = af_messages(in_memory.get("messages"), history_path(where), limits)
    agent_state = state_without_history(state)
    check_restorable(agent_state, messages, f"{where}.state")
    return agent_state, messages


def check_restorable(agent_state: Mapping[str, Any], messages: Sequence[Mapping[str, Any]], where: str) -> None:
    """The session the next turn will build from these must restore with today's Agent Framework."""
    try:
        restored = AgentSession.from_dict(session_payload("import-check", agent_state, messages))
        history = restored.state[_HISTORY_KEY]["messages"]
    except Exception as exc:  # noqa: BLE001 - any failure means the payload cannot be continued
        raise InvalidImport(where, f"cannot be restored by Agent Framework ({type(exc).__name__})") from None
    if len(history) != len(messages) or not all(isinstance(item, Message) for item in history):
        raise InvalidImport(where, "cannot be restored by Agent Framework")


@dataclass(frozen=True)
class AgentReply:
    """What one successful model call produced: the reply, the turn's new messages, the state after it."""

    text: str
    messages: tuple[dict[str, Any], ...]  # Agent Framework message dicts, in order (user message first)
    agent_state: dict[str, Any]  # the session state besides history
    input_tokens: int
    output_tokens: int
    finish_reason: str | None = None  # "length" when the token limit cut the answer; None or "stop" otherwise


async def run_agent(
    backend: Backend,
    *,
    session_id: str,
    agent_state: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    message: str,
    stream: bool,
    options: Mapping[str, Any] | None = None,
) -> AsyncGenerator[str | AgentReply, None]:
    """Call the backend's agent on `message` after `history`: yields text deltas (when streaming), then the reply.

    A failure raises the classified `ModelCallError`; the model-call span and latency sample are recorded here.
    With `stream=False` the model answers in one piece: cheaper when nobody watches.
    """
    call = ModelCall(backend.name, backend.model, backend.config)
    # A deep copy: Agent Framework may change the state it is given, and the snapshot's must stay as loaded.
    session = AgentSession.from_dict(session_payload(session_id, copy.deepcopy(dict(agent_state)), history))
    parts: list[str] = []
    try:
        if stream:
            with call.current():
                updates = backend.agent.run(message, session=session, stream=True, options=_chat_options(options))
            async for update in call.stream(updates):
                if update.text:
                    parts.append(update.text)
                    yield update.text
            response = await call.wait(updates.get_final_response())
        else:
            with call.current():
                pending = backend.agent.run(message, session=session, options=_chat_options(options))
            response = await call.wait(pending)
    except Exception as exc:  # noqa: BLE001 - every SDK failure is classified
        raise failed_call(backend.name, call, exc) from None
    yield _reply(backend, session, response, len(history), "".join(parts), call)


def failed_call(backend: str, call: ModelCall, exc: BaseException) -> ModelCallError:
    """The SDK failure of a model call, classified for fallback, and recorded on the call's span and metrics."""
    error = classify(backend, exc)
    call.failed(error.kind)
    return error


def succeeded_call(response: Any, call: ModelCall) -> tuple[int, int]:
    """The input and output tokens the model reported for a call, recorded on its span and metrics."""
    usage = response.usage_details or {}
    tokens = int(usage.get("input_token_count") or 0), int(usage.get("output_token_count") or 0)
    call.succeeded(*tokens)
    return tokens


def _chat_options(options: Mapping[str, Any] | None) -> Any:
    """Per-call generation options (temperature, top_p, max_tokens, stop, seed) as Agent Framework takes them;
    None leaves the agent's defaults."""
    return dict(options) if options else None


def _reply(
    backend: Backend, session: AgentSession, response: Any, sent: int, streamed: str, call: ModelCall
) -> AgentReply:
    input_tokens, output_tokens = succeeded_call(response, call)
    if session.service_session_id:
        # History must live in our snapshot; a service-side id would mean it silently did not.
        raise RuntimeError(f"backend {backend.name} stored history on the service; refusing to continue")
    all_messages = session.state.get(_HISTORY_KEY, {}).get("messages", [])
    new_messages = tuple(item.to_dict() if isinstance(item, Message) else dict(item) for item in all_messages[sent:])
    return AgentReply(
        text=response.text or streamed,
        messages=new_messages,
        agent_state=state_without_history(session.to_dict()["state"]),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        finish_reason=_finish_reason(response),
    )


def _finish_reason(response: Any) -> str | None:
    reason = getattr(response, "finish_reason", None)
    return None if reason is None else str(getattr(reason, "value", reason))
