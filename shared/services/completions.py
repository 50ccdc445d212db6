"""Chat Completions as OpenAI clients send them: the whole conversation on every call, stored once.

A request holds the conversation so far (P) and a new user message (u). With an `X-Session-Id` the session it
names is opened under its lease and its transcript (S) read once:

- P equals S: one new turn on the session.
- P plus u repeats S's last turn, and the client says it is retrying (an `Idempotency-Key` equal to the one the
  turn was made with, or `X-Stainless-Retry-Count` of 1 or more, as the OpenAI SDKs send): the stored answer is
  given again, with no model call and no new turn.
- Otherwise P diverged (an edit, or a regenerate: the same request sent again on purpose): the session is forked
  at the longest common prefix of whole turns, the rest of P is imported into the fork, and the turn runs there.

Without a session id, a P that holds no assistant message starts a new session (P's messages are kept as its
instructions); otherwise the caller's session whose transcript hash is P's (or whose last turn P plus u repeats)
is found by one query of the summaries and handled as above, and a P that matches none is imported as a new
session. With PII_REDACTION on, P is masked before it is compared, as S was before it was stored.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.agents.formats import ImportLimits, check_openai_messages, openai_messages_to_af
from shared.config import Settings
from shared.domain.clock import utc_now
from shared.domain.errors import InvalidRequest, UnknownModel
from shared.domain.ids import new_session_id
from shared.domain.sessions import Snapshot, said_turns
from shared.domain.transcripts import Said, chain, common_turns, flat, repeats_last_turn, said
from shared.services.conversations import Conversations
from shared.services.events import Replayed, TurnEvent
from shared.services.import_plan import fork_with
from shared.services.transfer import SessionTransfer
from shared.services.turn import TurnRequest
from shared.storage.lease import SessionLock
from shared.storage.metadata import MetadataStore

Event = TurnEvent | Replayed


@dataclass(frozen=True)
class Completion:
    """One Chat Completions request, as the service needs it."""

    model: str  # "auto" or a backend name
    messages: Sequence[Mapping[str, Any]]  # as the client sent them; the last is the new user message
    stream: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    session_id: str | None = None  # X-Session-Id
    idempotency_key: str | None = None
    retry: bool = False  # the client says this is a retry of an earlier request


@dataclass
class ChatCompletions:
    settings: Settings
    conversations: Conversations
    transfer: SessionTransfer
    metadata: MetadataStore
    clock: Callable[[], datetime] = utc_now

    def __post_init__(self) -> None:
        self._limits = ImportLimits.of(self.settings)
        self._redactor = self.settings.redactor

    @property
    def models(self) -> tuple[str, ...]:
        """What `GET /v1/models` lists: `auto` and each configured backend."""
        return ("auto", *self.conversations.configured)

    async def complete(
        self, owner: str, completion: Completion, on_saved: Callable[[str, int], Awaitable[object]] | None = None
    ) -> AsyncGenerator[Event, None]:
        """The turn's events (or one `Replayed`); raises before the first when the request is refused.
        `on_saved` runs once the turn is saved, beside its metadata writes (see `TurnRequest`)."""
        completion = replace(completion, messages=_developer_as_system(completion.messages))
        prior, message, text = self._checked(completion)
        request = replace(self._turn_request(completion), on_saved=on_saved)
        if completion.session_id is not None:
            source = completion.session_id
        elif not any(role == "assistant" for role, _ in prior) or not any(role == "user" for role, _ in prior):
            earlier = list(completion.messages[:-1])
            preamble = tuple(openai_messages_to_af(earlier, "messages", self._limits)) if earlier else ()
            async for started in self.conversations.start(owner, text, replace(request, preamble=preamble)):
                yield started
            return
        else:
            continued = chain(prior)  # the hash chain extends: P's key is where P plus u starts
            found = await self.metadata.sessions.matching(owner, continued, chain([message], continued))
            if found is None:
                async for event in self._imported(owner, completion, text, request):
                    yield event
                return
            source = found
        async for on_session in self._on_session(owner, source, completion, prior, message, text, request):
            yield on_session

    def _checked(self, completion: Completion) -> tuple[list[Said], Said, str]:
        """The model checked, every message validated (an import's rules, naming `messages[i]...`), and the
        conversation reduced to what is compared: P, u and u's text."""
        if completion.model not in self.models:
            raise UnknownModel(completion.model, self.models)
        messages = list(completion.messages)
        if not messages:
            raise InvalidRequest("messages must hold at least one message", "messages")
        check_openai_messages(messages, "messages", self._limits)
        if said(messages[-1])[0] != "user":
            raise InvalidRequest("the last message must be a user message", "messages")
        compared = [self._masked(said(item)) for item in messages]
        return compared[:-1], compared[-1], said(messages[-1])[1]

    def _masked(self, message: Said) -> Said:
        if self._redactor is None:
            return message
        return message[0], self._redactor.redact(message[1])[0]

    def _turn_request(self, completion: Completion) -> TurnRequest:
        extra = {
            "entry": "openai",
            **({"idempotency_key": completion.idempotency_key} if completion.idempotency_key else {}),
        }
        return TurnRequest(
            route=completion.model, stream=completion.stream, options=dict(completion.options), extra=extra
        )

    async def _on_session(
        self,
        owner: str,
        session_id: str,
        completion: Completion,
        prior: list[Said],
        message: Said,
        text: str,
        request: TurnRequest,
    ) -> AsyncGenerator[Event, None]:
        async with self.conversations.opened(owner, session_id) as (lock, snapshot):
            turns = said_turns(snapshot)
            if prior == flat(turns):
                async for continued in self.conversations.continue_on(lock, snapshot, text, request):
                    yield continued
                return
            if repeats_last_turn(turns, prior, message):
                if self._is_retry(completion, snapshot):
                    yield _replayed(snapshot)
                    return
                at_turn, offset = len(turns) - 1, len(flat(turns[:-1]))  # a regenerate: again, on purpose
            else:
                at_turn, offset = common_turns(turns, prior)
        rest = list(completion.messages[offset:-1])
        async for event in self._forked(snapshot, at_turn, rest, text, request):
            yield event

    @staticmethod
    def _is_retry(completion: Completion, snapshot: Snapshot) -> bool:
        stored = snapshot.records[-1].extra.get("idempotency_key") if snapshot.records else None
        if completion.idempotency_key is not None:
            return completion.idempotency_key == stored
        return completion.retry

    async def _forked(
        self, source: Snapshot, at_turn: int, rest: list[Mapping[str, Any]], text: str, request: TurnRequest
    ) -> AsyncGenerator[Event, None]:
        now = self.clock()
        then = self.transfer.plan_messages(rest, now) if rest else None
        view = await self.transfer.save_new(fork_with(source, at_turn, then, new_session_id(), now))
        async for event in self._run_on_new(view.snapshot, text, request):
            yield event

    async def _imported(
        self, owner: str, completion: Completion, text: str, request: TurnRequest
    ) -> AsyncGenerator[Event, None]:
        view = await self.transfer.import_session(owner, "openai", list(completion.messages[:-1]))
        async for event in self._run_on_new(view.snapshot, text, request):
            yield event

    async def _run_on_new(self, snapshot: Snapshot, text: str, request: TurnRequest) -> AsyncGenerator[Event, None]:
        """The turn on a session this request just created (nobody else knows it yet; taken under its lease)."""
        lock: SessionLock
        async with self.conversations.snapshots.locked(snapshot.owner, snapshot.session_id) as lock:
            async for event in self.conversations.continue_on(lock, snapshot, text, request):
                yield event


def _developer_as_system(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """OpenAI's `developer` messages (its newer name for instructions) as the system messages they are stored as,
    before anything is compared, stored or imported; anything not an object is left for validation to name."""
    return [
        {**item, "role": "system"} if isinstance(item, Mapping) and item.get("role") == "developer" else item
        for item in messages
    ]


def _replayed(snapshot: Snapshot) -> Replayed:
    entry = snapshot.entries[-1]
    reply = next((m.get("content", "") for m in reversed(entry.openai_messages) if m.get("role") == "assistant"), "")
    return Replayed(snapshot.session_id, entry.turn, str(reply), entry.record)
