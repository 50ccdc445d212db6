"""One conversation step, start to end: load, route, run the agent (with fallback), record, save.

Everything the HTTP layer needs about conversations goes through `Conversations`; it knows nothing of
HTTP. A turn is an async stream of events (`RouteChosen`, `Delta`, `FallbackTaken`, `TurnCompleted`)
so the same code serves a JSON answer and a Server-Sent Events stream. A turn that fails stores nothing.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent_framework import AgentSession, Message

from shared import telemetry
from shared.backends import Backend, ModelCallError, classify
from shared.metadata import MetadataStore
from shared.records import (
    Attempt,
    Entry,
    SessionSummary,
    TurnRecord,
    analytics,
    new_session_id,
    summarize,
    utc_iso,
    validate_id,
)
from shared.redaction import Redactor, redaction_note
from shared.routing import ROUTES, Decision, PriorTurn, UnknownRoute, decide, fallback_chain
from shared.settings import Price, Settings
from shared.snapshots import SessionNotFound, Snapshot, SnapshotStore, new_snapshot

logger = logging.getLogger(__name__)

ROUTER_HISTORY = 6  # recent turn records the router looks at


class InvalidMessage(ValueError):
    def __init__(self, reason: str, field_name: str = "message") -> None:
        super().__init__(reason)
        self.field = field_name


class AllBackendsFailed(RuntimeError):
    """Every backend in the chain failed; carries the last error (for 502/504 and Retry-After)."""

    def __init__(self, attempts: Sequence[Attempt], last: ModelCallError) -> None:
        super().__init__(f"every backend failed: {', '.join(a.backend + '=' + a.error for a in attempts)}")
        self.attempts = tuple(attempts)
        self.last = last


class StreamBroken(RuntimeError):
    """The model failed after part of the answer was sent; nothing was stored."""

    def __init__(self, error: ModelCallError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class RouteChosen:
    session_id: str
    turn: int
    decision: Decision
    model: str


@dataclass(frozen=True)
class FallbackTaken:
    failed: Attempt
    next_backend: str


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class TurnResult:
    session_id: str
    turn: int
    reply: str
    record: TurnRecord
    created: bool
    metadata_saved: bool


@dataclass(frozen=True)
class TurnCompleted:
    result: TurnResult


TurnEvent = RouteChosen | FallbackTaken | Delta | TurnCompleted


@dataclass(frozen=True)
class SessionView:
    snapshot: Snapshot
    summary: SessionSummary


def _now() -> datetime:
    return datetime.now(UTC)


def cap_context(messages: Sequence[Mapping[str, Any]], max_messages: int, max_chars: int) -> list[Mapping[str, Any]]:
    """The most recent messages that fit both caps, starting at a user message when possible.

    Only what is sent to the model is capped; the stored history keeps everything. System messages (only an
    import stores them: the conversation's own instructions) are always sent, in place, and count first.
    """

    def size(message: Mapping[str, Any]) -> int:
        return sum(len(str(content.get("text", ""))) for content in message.get("contents", ()))

    pinned = [index for index, message in enumerate(messages) if message.get("role") == "system"]
    count, chars = len(pinned), sum(size(messages[index]) for index in pinned)
    kept: list[int] = []
    for index in reversed(range(len(messages))):
        if messages[index].get("role") == "system":
            continue
        if count >= max_messages or chars + size(messages[index]) > max_chars:
            break
        kept.append(index)
        count, chars = count + 1, chars + size(messages[index])
    kept.reverse()
    while len(kept) > 1 and messages[kept[0]].get("role") != "user":
        kept.pop(0)
    return [messages[index] for index in sorted({*pinned, *kept})]


def to_openai(message: Mapping[str, Any]) -> dict[str, Any]:
    """One Agent Framework message dict in plain OpenAI chat format (text contents joined)."""
    text = "".join(
        str(content.get("text", "")) for content in message.get("contents", ()) if content.get("type") == "text"
    )
    return {"role": str(message.get("role", "user")), "content": text}


def cost_of(settings: Settings, backend: str, model: str, input_tokens: int, output_tokens: int) -> float:
    price = settings.price(backend, model)
    if price is None:
        return 0.0
    total = input_tokens * price.input_per_million + output_tokens * price.output_per_million
    return round(total / 1_000_000, 8)


class Conversations:
    def __init__(
        self,
        settings: Settings,
        snapshots: SnapshotStore,
        metadata: MetadataStore,
        backends: Mapping[str, Backend],
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._settings = settings
        self._snapshots = snapshots
        self._metadata = metadata
        self._backends = backends
        self._clock = clock
        # Built once (patterns compiled once); None when redaction is off, so a turn pays one `is None` check.
        self._redactor = Redactor(settings.pii_extra_patterns) if settings.pii_redaction else None

    @property
    def configured(self) -> tuple[str, ...]:
        return tuple(self._backends)

    # ---- validation (before any storage call) ------------------------------------------------------------------

    def _check_message(self, message: object) -> str:
        if not isinstance(message, str):
            raise InvalidMessage("message must be a string")
        if not message.strip():
            raise InvalidMessage("message must not be empty")
        if len(message) > self._settings.message_max_chars:
            raise InvalidMessage(f"message is longer than {self._settings.message_max_chars} characters")
        return message

    # ---- a turn ------------------------------------------------------------------------------------------------

    async def turn(
        self, owner: str, message: str, session_id: str | None = None, route: str = "auto", *, stream: bool = True
    ) -> AsyncGenerator[TurnEvent, None]:
        """Run one turn; yields events. Raises before the first event when the request is refused.

        With `stream=False` the model answers in one piece (no `Delta` events): cheaper when nobody watches.
        """
        validate_id(owner, "owner")
        message = self._check_message(message)
        if route not in ROUTES:
            raise UnknownRoute(route)
        if session_id is None:
            snapshot = new_snapshot(new_session_id(), owner, self._clock())
            async for event in self._run(snapshot, message, route, None, stream):
                yield event
            return
        validate_id(session_id)
        async with self._snapshots.locked(owner, session_id) as lock:
            with telemetry.tracer.start_as_current_span("llmrouter.snapshot.load"):
                snapshot = await self._snapshots.load(owner, session_id)
            async for event in self._run(snapshot, message, route, lock, stream):
                yield event

    async def chat(self, owner: str, message: str, session_id: str | None = None, route: str = "auto") -> TurnResult:
        result: TurnResult | None = None
        async for event in self.turn(owner, message, session_id, route, stream=False):
            if isinstance(event, TurnCompleted):
                result = event.result
        if result is None:  # pragma: no cover - the stream always ends with TurnCompleted or raises
            raise RuntimeError("turn ended without a result")
        return result

    async def _run(
        self, before: Snapshot, message: str, route: str, lock: Any, stream: bool
    ) -> AsyncIterator[TurnEvent]:
        started = self._clock()
        started_clock = time.perf_counter()
        prior = [
            PriorTurn(backend=record.backend, complexity=record.complexity, user_chars=record.user_chars)
            for record in before.records[-ROUTER_HISTORY:]
        ]
        with telemetry.tracer.start_as_current_span("llmrouter.route") as span:
            decision = decide(message, prior, self.configured, self._settings.router, route)
            telemetry.describe_decision(span, decision, route)
        turn_number = before.turns + 1
        yield RouteChosen(before.session_id, turn_number, decision, self._backends[decision.backend].model)

        chain = (decision.backend, *fallback_chain(decision.backend, self.configured, self._settings.router))
        history = cap_context(
            before.af_messages(), self._settings.context_max_messages, self._settings.context_max_chars
        )
        attempts: list[Attempt] = []
        last_error: ModelCallError | None = None
        for backend_name in chain:
            backend = self._backends[backend_name]
            sent, sent_history, sent_kinds = self._for_model(backend_name, message, history)
            session = AgentSession.from_dict(
                {
                    "type": "session",
                    "session_id": before.session_id,
                    "service_session_id": None,
                    "state": {**copy.deepcopy(dict(before.agent_state)), "in_memory": {"messages": sent_history}},
                }
            )
            call_started = time.perf_counter()
            call = telemetry.ModelCall(backend_name, backend.model, self._settings.backends.get(backend_name))
            reply_parts: list[str] = []
            try:
                if stream:
                    with call.current():
                        updates = backend.agent.run(sent, session=session, stream=True)
                    async for update in call.stream(updates):
                        text = update.text
                        if text:
                            reply_parts.append(text)
                            yield Delta(text)
                    response = await call.wait(updates.get_final_response())
                else:
                    # A JSON answer needs no deltas: one response to parse instead of one per streamed chunk.
                    with call.current():
                        pending = backend.agent.run(sent, session=session)
                    response = await call.wait(pending)
            except Exception as exc:  # noqa: BLE001 - every SDK failure is classified below
                error = classify(backend_name, exc)
                call.failed(error.kind)
                elapsed = round((time.perf_counter() - call_started) * 1000, 3)
                logger.warning("backend %s failed for a turn: %s", backend_name, error.kind)
                if reply_parts:
                    raise StreamBroken(error) from None
                if not error.retryable:
                    raise error from None
                failed = Attempt(backend_name, backend.model, error.kind, elapsed)
                attempts.append(failed)
                last_error = error
                remaining = chain[chain.index(backend_name) + 1 :]
                if remaining:
                    telemetry.fallback_taken(backend_name, error.kind, remaining[0])
                    yield FallbackTaken(failed, remaining[0])
                continue
            usage = response.usage_details or {}
            input_tokens = int(usage.get("input_token_count") or 0)
            output_tokens = int(usage.get("output_token_count") or 0)
            call.succeeded(input_tokens, output_tokens)
            if session.service_session_id:
                # History must live in our snapshot; a service-side id would mean it silently did not.
                raise RuntimeError(f"backend {backend_name} stored history on the service; refusing to continue")
            model_ms = round((time.perf_counter() - call_started) * 1000, 3)
            reply = response.text or "".join(reply_parts)
            all_messages = session.state.get("in_memory", {}).get("messages", [])
            new_messages = [
                item.to_dict() if isinstance(item, Message) else dict(item) for item in all_messages[len(history) :]
            ]
            extra: dict[str, Any] = {}
            if self._redactor is not None:
                # Stored masked; the client still gets `reply` as the model wrote it.
                new_messages, found = self._redactor.redact_messages(new_messages)
                extra["redaction"] = redaction_note(found | sent_kinds)
            agent_state = {key: value for key, value in session.to_dict()["state"].items() if key != "in_memory"}
            completed = self._clock()
            record = TurnRecord(
                turn=turn_number,
                backend=backend_name,
                model=backend.model,
                complexity=decision.complexity,
                reason=decision.reason if not attempts else f"{decision.reason}; fell back to {backend_name}",
                router_version=decision.router_version,
                route_requested=route,
                switched_from=_switched_from(before, backend_name),
                fallback_chain=tuple(attempts),
                latency_ms=model_ms,
                turn_ms=round((time.perf_counter() - started_clock) * 1000, 3),
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost=cost_of(self._settings, backend_name, backend.model, input_tokens, output_tokens),
                started_at=utc_iso(started),
                completed_at=utc_iso(completed),
                user_chars=len(message),
                reply_chars=len(reply),
                signals=tuple(decision.signals),
                follow_up=decision.follow_up,
                extra=extra,
            )
            entry = Entry(record, tuple(new_messages), tuple(to_openai(item) for item in new_messages))
            after = before.with_entry(entry, utc_iso(completed), agent_state)
            with telemetry.tracer.start_as_current_span("llmrouter.snapshot.save") as span:
                span.set_attribute("llmrouter.snapshot.mode", "create" if lock is None else "append")
                if lock is None:
                    saved = await self._snapshots.create(after)
                else:
                    saved = await self._snapshots.append(lock, before, after)
            with telemetry.tracer.start_as_current_span("llmrouter.metadata.write") as span:
                metadata_saved = await self._record_metadata(saved, record)
                span.set_attribute("llmrouter.metadata.saved", metadata_saved)
            telemetry.turn_completed(record)
            yield TurnCompleted(TurnResult(saved.session_id, turn_number, reply, record, lock is None, metadata_saved))
            return
        assert last_error is not None
        raise AllBackendsFailed(attempts, last_error)

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

    async def _record_metadata(self, snapshot: Snapshot, record: TurnRecord) -> bool:
        """Cosmos is derived data: a failure here does not undo a saved turn; reconcile repairs it later."""
        summary = summarize(snapshot.session_id, snapshot.owner, snapshot.created_at, snapshot.records)
        try:
            await self._metadata.record_turn(summary, record)
        except Exception:  # noqa: BLE001 - logged; the turn is durable in Blob already
            logger.exception(
                "turn %d of session %s saved, but its metadata write failed", record.turn, snapshot.session_id
            )
            return False
        return True

    # ---- reading, listing, deleting -----------------------------------------------------------------------------

    async def get(self, owner: str, session_id: str) -> SessionView:
        validate_id(owner, "owner")
        validate_id(session_id)
        snapshot = await self._snapshots.load(owner, session_id)
        return SessionView(snapshot, summarize(session_id, owner, snapshot.created_at, snapshot.records))

    async def list_sessions(
        self, owner: str, limit: int, cursor: str | None = None
    ) -> tuple[list[SessionSummary], str | None]:
        validate_id(owner, "owner")
        return await self._metadata.list_sessions(owner, limit, cursor)

    async def delete(self, owner: str, session_id: str) -> bool:
        """Erase the snapshot and every Cosmos record; True if anything existed."""
        validate_id(owner, "owner")
        validate_id(session_id)
        try:
            # Under the session's lease: a running turn makes this SessionBusy before anything is touched.
            async with self._snapshots.locked(owner, session_id) as lock:
                had_blobs = await self._snapshots.delete(owner, session_id, lock=lock)
        except SessionNotFound:
            # No snapshot: clear what a half-finished earlier delete may have left (journals, records).
            had_blobs = await self._snapshots.delete(owner, session_id)
        removed = await self._metadata.delete_session(owner, session_id)
        return had_blobs or removed > 0

    async def session_analytics(self, owner: str, session_id: str) -> dict[str, Any]:
        validate_id(owner, "owner")
        validate_id(session_id)
        records = await self._metadata.session_turns(owner, session_id)
        summary = await self._metadata.summary(owner, session_id) if records else None
        if not records or summary is None or len(records) < summary.turns:
            # Blob is the source of truth. Cosmos can lack turns: a failed metadata write not yet reconciled,
            # an emulator restarted empty, or (in Azure) container TTL expiring the oldest turn records of a
            # conversation that stayed active for longer than the retention window.
            records = (await self._snapshots.load(owner, session_id)).records
        return {"session_id": session_id, **analytics(records, *self._all_cloud_reference())}

    async def owner_analytics(self, owner: str) -> dict[str, Any]:
        validate_id(owner, "owner")
        return analytics(await self._metadata.owner_turns(owner), *self._all_cloud_reference())

    def _all_cloud_reference(self) -> tuple[Price | None, str]:
        """The cloud backend's price for "saved versus all-cloud", or None and why there is none."""
        cloud = self._settings.backends.get("cloud")
        if cloud is None:
            return None, "no cloud backend is configured, so there is no all-cloud price to compare with"
        price = self._settings.price("cloud", cloud.model)
        if price is None:
            return None, f"PRICE_TABLE has no price for cloud:{cloud.model} or cloud"
        return price, (
            f"every token at the cloud backend's price for {cloud.model}: {price.input_per_million:g} USD input "
            f"and {price.output_per_million:g} USD output per million tokens"
        )

    async def health(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        try:
            await self._snapshots.ping()
            checks["storage"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["storage"] = f"unavailable ({type(exc).__name__})"
        try:
            await self._metadata.ping()
            checks["cosmos"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["cosmos"] = f"unavailable ({type(exc).__name__})"
        return checks


def _switched_from(before: Snapshot, backend: str) -> str | None:
    for record in reversed(before.records):
        if record.backend:
            return record.backend if record.backend != backend else None
    return None
