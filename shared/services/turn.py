"""One turn, as named steps: route, call with fallback, build the record, persist.

`TurnRunner.run` reads like its docstring: the router picks a backend (`_route`); the backends of the chain
are called until one answers (`_call_with_fallback`); the answer becomes an entry with its turn record
(`_entry`); the entry is saved to Blob, then its metadata to Cosmos (`_persist`). A turn that fails stores
nothing; Cosmos is derived data, so a failed metadata write does not undo a saved turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.agents.backends import Backend
from shared.agents.session import AgentReply, run_agent
from shared.config import Settings
from shared.domain.clock import utc_iso
from shared.domain.context_summary import ContextSummary
from shared.domain.errors import ContextTooLarge, ModelCallError, StreamBroken
from shared.domain.messages import to_openai
from shared.domain.pricing import cost_of
from shared.domain.records import Attempt, Entry, TurnRecord
from shared.domain.redaction import redaction_note
from shared.domain.routing import Decision, PriorTurn, decide, fallback_chain, shadow_decision
from shared.domain.sessions import Snapshot, summary_of
from shared.observability import metrics
from shared.observability.spans import describe_decision, tracer
from shared.services.context import ContextFitter, TurnContext
from shared.services.events import Delta, FallbackTaken, RouteChosen, TurnCompleted, TurnEvent, TurnResult
from shared.services.guard import TurnCalls, TurnGuard
from shared.storage.lease import SessionLock
from shared.storage.metadata import MetadataStore
from shared.storage.snapshots import SnapshotStore

if TYPE_CHECKING:
    from shared.services.conversations import Conversations

logger = logging.getLogger(__name__)

ROUTER_HISTORY = 6  # recent turn records the router looks at
TIGHTER_FIT = 0.75  # the share of its window a backend is fitted to after it refused a request as too long


@dataclass(frozen=True)
class TurnRequest:
    """What a caller asks of a turn besides its message."""

    route: str = "auto"  # a backend name forces it
    stream: bool = True  # text deltas as they come; False: the answer in one piece (cheaper when nobody watches)
    options: Mapping[str, Any] = field(default_factory=dict)  # temperature, top_p, max_tokens, stop, seed
    # Messages sent before this one and stored at the start of the turn (a new session's own instructions).
    preamble: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # kept in the turn record's `extra`
    # Called with (session id, turn number) once the turn is saved, beside its metadata writes (the audit event:
    # one storage step for both, not one after the other).
    on_saved: Callable[[str, int], Awaitable[object]] | None = None


@dataclass(frozen=True)
class Turn:
    """A turn about to run: the session as loaded (empty for a new one) and the lease held on it."""

    before: Snapshot
    message: str
    request: TurnRequest
    lock: SessionLock | None  # None only for a new session, which nobody else can see yet
    started: datetime
    started_clock: float = field(default_factory=time.perf_counter)

    @property
    def route(self) -> str:
        return self.request.route

    @property
    def is_new(self) -> bool:
        return self.lock is None

    @property
    def number(self) -> int:
        return self.before.turns + 1


@dataclass(frozen=True)
class _Answered:
    """The backend that answered, its reply, and the failed attempts before it."""

    backend: Backend
    reply: AgentReply
    latency_ms: float
    attempts: tuple[Attempt, ...]
    redacted_kinds: frozenset[str]  # what was masked in what the backend was sent
    context: Mapping[str, Any]  # how its context was fitted (shared.services.context)
    notes: tuple[str, ...] = ()  # why backends of the chain were not called (cooldown, budget)


@dataclass(frozen=True)
class _Failed:
    """A backend that failed in a way another backend may not."""

    attempt: Attempt
    error: ModelCallError


class TurnRunner:
    """The turn's steps, over the stores, backends, settings and clock of the `Conversations` that owns it."""

    def __init__(self, owner: Conversations) -> None:
        self._settings: Settings = owner.settings
        self._snapshots: SnapshotStore = owner.snapshots
        self._metadata: MetadataStore = owner.metadata
        self._backends: Mapping[str, Backend] = owner.backends
        self._clock: Callable[[], datetime] = owner.clock
        self._context: ContextFitter = owner.context
        self._guard: TurnGuard = owner.guard  # budgets and cooldowns, per instance
        # Built once (patterns compiled once); None when redaction is off, so a turn pays one `is None` check.
        self._redactor = self._settings.redactor

    async def run(self, turn: Turn) -> AsyncIterator[TurnEvent]:
        """Route the turn, call the chosen backend (falling back on failure), record the answer and save it."""
        calls = self._guard.turn(turn.before.owner, turn.before.session_id, turn.number)
        context = self._context.for_turn(turn.before, turn.message, turn.request.preamble, calls)
        decision, shadow = self._route(turn)
        decision = await self._guard.admit(turn.before.owner, turn.route, decision, turn.before.records)
        decision = self._fitting(turn, decision, context)
        yield RouteChosen(turn.before.session_id, turn.number, decision, self._backends[decision.backend].model)
        answered: _Answered | None = None
        async for event in self._call_with_fallback(turn, decision, context, calls):
            if isinstance(event, _Answered):
                answered = event
            else:
                yield event
        assert answered is not None  # the call either answered or raised
        entry = self._entry(turn, decision, answered, shadow, context)
        result = await self._persist(turn, entry, answered.reply, context.created)
        metrics.turn_completed(entry.record)
        yield TurnCompleted(result)

    def _route(self, turn: Turn) -> tuple[Decision, dict[str, Any] | None]:
        """The router's decision, and what the shadow router (ROUTER_SHADOW) would have chosen, for the record."""
        prior = [
            PriorTurn(backend=record.backend, complexity=record.complexity, user_chars=record.user_chars)
            for record in turn.before.records[-ROUTER_HISTORY:]
        ]
        configured, config = tuple(self._backends), self._settings.router
        with tracer.start_as_current_span("llmrouter.route") as span:
            decision = decide(turn.message, prior, configured, config, turn.route)
            describe_decision(span, decision, turn.route)
            shadow = shadow_decision(turn.message, prior, configured, config)
        if shadow is None:
            return decision, None
        return decision, {
            "router_version": shadow.router_version,
            "backend": shadow.backend,
            "complexity": shadow.complexity,
            "primary": decision.auto_backend,
        }

    def _fitting(self, turn: Turn, decision: Decision, context: TurnContext) -> Decision:
        """The decision, moved to a backend whose window holds the message when the router's choice cannot (auto
        routes only). Raises ContextTooLarge, before any model call, when no backend may take it."""
        options = self._options(turn.request.options)
        try:
            context.check(decision.backend, options)
            return decision
        except ContextTooLarge as refused:
            if turn.route != "auto":
                raise
            for name in fallback_chain(decision.backend, tuple(self._backends), self._settings.router):
                with contextlib.suppress(ContextTooLarge):
                    context.check(name, options)
                    reason = f"{decision.reason}; the message needs more than {decision.backend}'s window of "
                    return replace(decision, backend=name, reason=f"{reason}{refused.window} tokens")
            raise

    async def _call_with_fallback(
        self, turn: Turn, decision: Decision, context: TurnContext, calls: TurnCalls
    ) -> AsyncIterator[Delta | FallbackTaken | _Answered]:
        """Each backend of the chain in turn until one answers; the failed ones (and those not called: cooling
        down, over budget) go into the record's chain."""
        chain = (decision.backend, *fallback_chain(decision.backend, tuple(self._backends), self._settings.router))
        attempts: list[Attempt] = []
        for position, name in enumerate(chain):
            async for event in self._call_backend(turn, name, context, calls):
                if isinstance(event, _Failed):
                    attempts.append(event.attempt)
                    if position + 1 < len(chain):
                        metrics.fallback_taken(name, event.error.kind, chain[position + 1])
                        yield FallbackTaken(event.attempt, chain[position + 1])
                elif isinstance(event, _Answered):
                    yield replace(event, attempts=tuple(attempts), notes=tuple(calls.notes))
                    return
                else:
                    yield event
        raise calls.failure(attempts)

    async def _call_backend(
        self, turn: Turn, name: str, context: TurnContext, calls: TurnCalls
    ) -> AsyncIterator[Delta | _Answered | _Failed]:
        """One backend: skipped while cooling down or over budget; else its fitted context, then the call (once
        more, fitted tighter, if the model says the request is too long). Yields the deltas and the answer, or
        `_Failed` when another backend may try."""
        backend, options = self._backends[name], self._options(turn.request.options)
        tighter, started = 1.0, time.perf_counter()
        while True:
            ticket = calls.ticket(backend)  # counted in flight until it answers or fails
            streamed, reply = False, None
            try:
                await ticket.enter()
                fitted = await context.fit(name, options, tighter)
                message, sent_history, kinds = self._for_model(name, turn.message, fitted.history)
                started = time.perf_counter()
                async for item in run_agent(
                    backend,
                    session_id=turn.before.session_id,
                    agent_state=turn.before.agent_state,
                    history=sent_history,
                    message=message,
                    stream=turn.request.stream,
                    options=options,
                ):
                    streamed = streamed or isinstance(item, str)
                    if isinstance(item, str):
                        yield Delta(item)
                    else:
                        reply = item
                ticket.answered(reply)
            except ContextTooLarge:  # a fallback backend whose window cannot hold the message
                error = calls.not_called(ModelCallError(name, "context_length"))
                yield _Failed(Attempt(name, backend.model, error.kind, _ms_since(started)), error)
                return
            except ModelCallError as error:
                ticket.failed(error)
                logger.warning("backend %s failed for a turn: %s", name, error.kind)
                if streamed:  # part of this backend's answer is out: another backend cannot take over
                    raise StreamBroken(error) from None
                if error.kind == "context_length" and tighter == 1.0:
                    self._context.penalize(name)
                    tighter = TIGHTER_FIT
                    continue
                if not error.retryable:
                    raise
                yield _Failed(Attempt(name, backend.model, error.kind, _ms_since(started)), error)
                return
            finally:
                ticket.close()
            assert reply is not None
            self._context.observe(name, fitted.note["raw_tokens"], reply.input_tokens)
            yield _Answered(backend, reply, _ms_since(started), (), kinds, fitted.note)
            return

    def _options(self, requested: Mapping[str, Any]) -> dict[str, Any]:
        """The caller's generation options, with its token limit held to MODEL_MAX_OUTPUT_TOKENS."""
        options = dict(requested)
        cap = self._settings.model_max_output_tokens
        if cap is not None and "max_tokens" in options:
            options["max_tokens"] = min(int(options["max_tokens"]), cap)
        return options

    def _for_model(
        self, backend: str, message: str, history: Sequence[Mapping[str, Any]]
    ) -> tuple[str, list[Mapping[str, Any]], frozenset[str]]:
        """What one backend is sent: masked for non-local backends with PII_REDACT_BEFORE_MODEL, else the original.

        The history is masked too: it is stored masked already, but turns stored before redaction was turned on
        are not. The local backend runs on our side of the boundary and sees the user's own words.
        """
        if self._redactor is None or not self._settings.pii_redact_before_model or backend == "local":
            return message, list(history), frozenset()
        masked, kinds = self._redactor.redact(message)
        masked_history, _ = self._redactor.redact_messages(history)
        return masked, list(masked_history), kinds

    def _entry(
        self,
        turn: Turn,
        decision: Decision,
        answered: _Answered,
        shadow: dict[str, Any] | None,
        context: TurnContext,
    ) -> Entry:
        """The stored exchange: the new messages (masked when PII_REDACTION is on) and the turn record."""
        backend, reply = answered.backend, answered.reply
        messages: Sequence[Mapping[str, Any]] = [*turn.request.preamble, *reply.messages]
        extra: dict[str, Any] = {**turn.request.extra, **({} if shadow is None else {"shadow": shadow})}
        extra["context"] = {**answered.context, **({"summary_calls": context.calls} if context.calls else {})}
        if reply.finish_reason not in (None, "stop"):
            extra["finish_reason"] = reply.finish_reason
        if self._redactor is not None:
            # Stored masked; the client still gets the reply as the model wrote it.
            messages, found = self._redactor.redact_messages(messages)
            extra["redaction"] = redaction_note(found | answered.redacted_kinds)
        fell_back = _fallback_note(backend.name, answered) if answered.attempts else ""
        record = TurnRecord(
            turn=turn.number,
            backend=backend.name,
            model=backend.model,
            complexity=decision.complexity,
            reason=decision.reason + fell_back,
            router_version=decision.router_version,
            route_requested=turn.route,
            switched_from=_switched_from(turn.before, backend.name),
            fallback_chain=answered.attempts,
            latency_ms=answered.latency_ms,
            turn_ms=_ms_since(turn.started_clock),
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            cost=cost_of(self._settings, backend.name, backend.model, reply.input_tokens, reply.output_tokens),
            started_at=utc_iso(turn.started),
            completed_at=utc_iso(self._clock()),
            user_chars=len(turn.message),
            reply_chars=len(reply.text),
            signals=tuple(decision.signals),
            follow_up=decision.follow_up,
            extra=extra,
        )
        return Entry(record, tuple(messages), tuple(to_openai(item) for item in messages))

    async def _persist(self, turn: Turn, entry: Entry, reply: AgentReply, summary: ContextSummary | None) -> TurnResult:
        """Blob first (the source of truth: a new session only if absent, else appended under the lease), then
        Cosmos, which reconcile can rebuild. A summary the turn made is saved with it."""
        after = turn.before.with_entry(entry, entry.record.completed_at, reply.agent_state, summary)
        with tracer.start_as_current_span("llmrouter.snapshot.save") as span:
            span.set_attribute("llmrouter.snapshot.mode", "create" if turn.lock is None else "append")
            if turn.lock is None:
                saved = await self._snapshots.create_snapshot(after)
            else:
                saved = await self._snapshots.append(turn.lock, turn.before, after)
        with tracer.start_as_current_span("llmrouter.metadata.write") as span:
            # The entry is durable: the lease goes back, and the audit event is written, while the metadata is
            # written (one step, not three).
            also: list[Awaitable[object]] = [self._journal_of(saved) if turn.lock is None else turn.lock.release()]
            if turn.request.on_saved is not None:
                also.append(turn.request.on_saved(saved.session_id, entry.turn))
            written = await asyncio.gather(self._record_metadata(saved, entry.record), *also)
            metadata_saved = written[0] is True
            span.set_attribute("llmrouter.metadata.saved", metadata_saved)
        return TurnResult(saved.session_id, entry.turn, reply.text, entry.record, turn.is_new, metadata_saved)

    async def _journal_of(self, snapshot: Snapshot) -> None:
        """A new session's journal, written beside its metadata; if it fails, the session's first append writes it."""
        try:
            await self._snapshots.create_journal(snapshot)
        except Exception:  # noqa: BLE001 - the turn is durable already; logged
            logger.warning(
                "the journal of new session %s was not created; its next turn creates it", snapshot.session_id
            )

    async def _record_metadata(self, snapshot: Snapshot, record: TurnRecord) -> bool:
        """Cosmos is derived data: a failure here does not undo a saved turn; reconcile repairs it later."""
        try:
            await self._metadata.record_turn(summary_of(snapshot), record)
        except Exception:  # noqa: BLE001 - logged; the turn is durable in Blob already
            logger.exception(
                "turn %d of session %s saved, but its metadata write failed", record.turn, snapshot.session_id
            )
            return False
        return True


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _fallback_note(backend: str, answered: _Answered) -> str:
    """`; fell back to local after cloud (cooldown)`, and why skipped backends were not called."""
    tried = ", ".join(f"{attempt.backend} ({attempt.error})" for attempt in answered.attempts)
    return f"; fell back to {backend} after {tried}" + "".join(f"; {note}" for note in answered.notes)


def _switched_from(before: Snapshot, backend: str) -> str | None:
    for record in reversed(before.records):
        if record.backend:
            return record.backend if record.backend != backend else None
    return None
