"""The context a turn sends to each backend it tries: fitted to that backend's window, with a stored summary
standing in for older turns, made here (by CONTEXT_SUMMARY_BACKEND, falling back) when a new one is needed.

The rules are `shared.domain.context`'s; this module supplies the numbers (windows, calibrated token ratios)
and the summary calls. `TurnContext` lives for one turn: a summary made for a backend that then fails is kept
for the next one (it was paid for), and every summary call of the turn is recorded in its record's
`extra["context"]`, with the estimate of what was sent beside the tokens the model reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.agents.backends import Backend
from shared.agents.summarizer import SummaryReply, write_summary
from shared.config import Settings
from shared.domain.clock import utc_iso
from shared.domain.context import (
    ContextPlan,
    Size,
    TurnMessages,
    Window,
    assemble,
    keep_beside,
    message_chars,
    output_reserve,
    plan_context,
    turns_of,
)
from shared.domain.context_summary import ContextSummary, chunks, prompt
from shared.domain.errors import REFUSALS, ModelCallError
from shared.domain.pricing import cost_of
from shared.domain.routing import fallback_chain
from shared.domain.sessions import Snapshot
from shared.domain.tokens import (
    REQUEST_OVERHEAD,
    Observation,
    TokenRatio,
    choose_ratio,
    messages_tokens,
    plain_tokens,
    text_tokens,
)
from shared.services.guard import TurnCalls

logger = logging.getLogger(__name__)

UNKNOWN_WINDOW_CHUNK = 32_000  # tokens per summary call to a backend whose window is not configured
_SMOOTHING = 0.3  # weight of a new observation in a backend's running ratio


@dataclass(frozen=True)
class Fitted:
    """What one backend is sent before the new message, and the record of how it was chosen."""

    history: list[Mapping[str, Any]]
    note: dict[str, Any]


@dataclass
class ContextFitter:
    """Windows, token ratios and summary calls for every turn of this worker."""

    settings: Settings
    backends: Mapping[str, Backend]
    clock: Callable[[], datetime]
    # Reported/estimated input tokens per backend, over this worker's calls (the fallback when a session has
    # no observation of its own on a backend yet).
    ratios: dict[str, float] = field(default_factory=dict)

    def observe(self, backend: str, raw: float, reported: int) -> None:
        ratio = Observation(raw, reported).ratio
        if ratio is None:
            return
        known = self.ratios.get(backend)
        self.ratios[backend] = ratio if known is None else known + _SMOOTHING * (ratio - known)

    def penalize(self, backend: str) -> None:
        """The backend refused a request as too long: its tokens run higher than estimated."""
        self.ratios[backend] = max(self.ratios.get(backend, 1.0), 1.0) * 1.25

    def ratio(self, backend: str, snapshot: Snapshot) -> TokenRatio:
        observed = [
            Observation(float(note["raw_tokens"]), record.input_tokens)
            for record in snapshot.records[-32:]
            if record.backend == backend
            and isinstance(note := record.extra.get("context"), Mapping)
            and isinstance(note.get("raw_tokens"), int | float)
            and note.get("backend", backend) == backend
        ]
        return choose_ratio(observed, self.ratios.get(backend))

    def window(self, backend: str, options: Mapping[str, Any]) -> Window:
        tokens = self.settings.backends[backend].context_tokens
        requested = options.get("max_tokens")
        cap = self.settings.model_max_output_tokens
        limit = min(int(requested), cap) if requested is not None and cap is not None else requested or cap
        reserve = 0 if tokens is None else output_reserve(tokens, None if limit is None else int(limit))
        return Window(tokens, reserve, self.settings.context_max_messages, self.settings.context_max_chars)

    def for_turn(
        self, snapshot: Snapshot, message: str, preamble: Sequence[Mapping[str, Any]], calls: TurnCalls
    ) -> TurnContext:
        return TurnContext(self, snapshot, message, tuple(preamble), calls)


class TurnContext:
    """One turn's fitting: per backend tried, and the summary (if any) it made."""

    def __init__(
        self,
        fitter: ContextFitter,
        snapshot: Snapshot,
        message: str,
        preamble: tuple[Mapping[str, Any], ...],
        calls: TurnCalls,
    ) -> None:
        self._fitter = fitter
        self._calls = calls  # summary calls are held to the owner's budget and the backends' cooldowns too
        self._snapshot = snapshot
        self._message = message
        self._preamble = preamble
        self._pinned, self._turns = turns_of([(entry.turn, entry.af_messages) for entry in snapshot.entries])
        self.created: ContextSummary | None = None
        self.calls: list[dict[str, Any]] = []
        # Raw tokens of a request before its history (its overhead, the instructions, the new message), and of
        # what is always sent besides: the same for every backend tried, so measured once.
        self._request_raw = REQUEST_OVERHEAD + plain_tokens([fitter.settings.system_prompt, message])
        pinned = [*(pinned_message for _, pinned_message in self._pinned), *preamble]
        self._pinned_raw = self._request_raw + messages_tokens(pinned)
        self._pinned_count, self._pinned_chars = len(pinned), sum(message_chars(item) for item in pinned)

    def _fixed(self, ratio: TokenRatio) -> Size:
        """The size, as fitted, of what is always sent (caps count pinned messages only)."""
        return Size(ratio.fitted(self._pinned_raw), self._pinned_count, self._pinned_chars)

    def check(self, backend: str, options: Mapping[str, Any]) -> None:
        """Raises ContextTooLarge if what is always sent does not fit the backend's window."""
        ratio = self._fitter.ratio(backend, self._snapshot)
        fixed = self._fixed(ratio)
        window = self._fitter.window(backend, options)
        plan_context((), fixed, (), window, ratio, summarize=False, backend=backend)

    async def fit(self, backend: str, options: Mapping[str, Any], tighter: float = 1.0) -> Fitted:
        """The history sent to `backend`; `tighter` < 1 shrinks its window (after the model refused the last fit)."""
        fitter = self._fitter
        ratio = fitter.ratio(backend, self._snapshot)
        if tighter != 1.0:
            ratio = TokenRatio(ratio.value / tighter, ratio.basis)
        fixed = self._fixed(ratio)
        window = fitter.window(backend, options)
        summaries = (*self._snapshot.summaries, *([self.created] if self.created else []))
        plan = plan_context(
            self._turns, fixed, summaries, window, ratio, summarize=fitter.settings.context_summary, backend=backend
        )
        keep_from, summary, mode = plan.keep_from, plan.summary, plan.mode
        if plan.fold is not None:
            summary = await self._summarize(plan, summaries[-1] if summaries else None, backend)
            if summary is None:
                keep_from, mode = plan.truncate_from, "truncated"
            else:
                keep_from = keep_beside(summary, self._turns, fixed, window, ratio, plan.keep_from)
                mode = "summary"
        history = [*assemble(self._pinned, self._turns, keep_from, summary), *self._preamble]
        raw = self._request_raw + messages_tokens(history)
        return Fitted(history, self._note(backend, window, ratio, raw, keep_from, summary, mode, plan))

    def _note(
        self,
        backend: str,
        window: Window,
        ratio: TokenRatio,
        raw: float,
        keep_from: int,
        summary: ContextSummary | None,
        mode: str,
        plan: ContextPlan,
    ) -> dict[str, Any]:
        sent = self._turns[keep_from:]
        dropped = len(self._turns) - len(sent)
        covered = 0 if summary is None else sum(1 for turn in self._turns if turn.turn <= summary.through_turn)
        note: dict[str, Any] = {
            "backend": backend,
            "mode": mode,  # full, summary or truncated
            "window": window.tokens,
            "reserve": window.reserve,
            "estimated_tokens": ratio.estimate(raw),
            "raw_tokens": round(raw, 1),
            "ratio": ratio.value,
            "ratio_basis": ratio.basis,
            "turns_sent": [sent[0].turn, sent[-1].turn] if sent else None,
            "turns_dropped": dropped,
            "turns_summarized": covered,
        }
        if summary is not None:
            note["summary"] = {
                "first_turn": summary.first_turn,
                "through_turn": summary.through_turn,
                "created": summary is self.created,
            }
        if plan.fold is not None and summary is None:
            note["summary_failed"] = True
        return note

    async def _summarize(
        self, plan: ContextPlan, previous: ContextSummary | None, for_backend: str
    ) -> ContextSummary | None:
        """A summary of the previous one and the turns the plan folds, from the first summary backend that
        writes one; None if none could."""
        assert plan.fold is not None
        begin, end = plan.fold
        folded = self._turns[begin:end]
        if previous is not None and previous.through_turn >= folded[0].turn:
            previous = None  # never extend a summary over turns it already covers
        settings = self._fitter.settings
        configured = tuple(self._fitter.backends)
        first = settings.context_summary_backend
        order = [name for name in (first, *fallback_chain(first, configured, settings.router)) if name in configured]
        for name in order:
            try:
                summary = await self._summary_from(name, previous, folded, plan.summary_tokens)
            except ModelCallError as error:
                logger.warning("summary call to %s failed (%s); trying the next backend", name, error.kind)
                continue
            self.created = summary
            return summary
        logger.warning("no backend wrote a summary for a request to %s; older turns are dropped", for_backend)
        return None

    async def _summary_from(
        self, name: str, previous: ContextSummary | None, folded: Sequence[TurnMessages], max_tokens: int
    ) -> ContextSummary:
        """Fold `folded` into `previous` on backend `name`, one call per chunk that fits its window."""
        fitter, backend = self._fitter, self._fitter.backends[name]
        ratio = fitter.ratio(name, self._snapshot)
        window = backend.config.context_tokens
        words = max(30, int(max_tokens * 0.6))
        instructions, _ = prompt(None, 1, 1, "", words)
        overhead = ratio.fitted(plain_tokens([instructions]) + REQUEST_OVERHEAD) + max_tokens
        current = previous
        turns = [(turn.turn, turn.messages) for turn in folded]
        for first, last, text in self._chunked(turns, window, overhead, previous, ratio):
            system, user = prompt(current, first, last, text, words)
            reply = await self._call(name, system, user, max_tokens)
            fitter.observe(name, plain_tokens([system, user]) + REQUEST_OVERHEAD, reply.input_tokens)
            start = current.first_turn if current is not None else first
            current = ContextSummary(
                start, last, reply.text, name, backend.model, utc_iso(fitter.clock()), self._snapshot.turns + 1
            )
        assert current is not None
        return current

    async def _call(self, name: str, system: str, user: str, max_tokens: int) -> SummaryReply:
        """One summary call, unless the backend is cooling down or over the owner's budget (a `ModelCallError`
        either way, so the next backend is tried); counted in the turn's record and charged to the owner."""
        backend = self._fitter.backends[name]
        ticket = self._calls.ticket(backend)
        call = self._call_note(name, backend.model)
        started = time.perf_counter()
        try:
            await ticket.enter()
            call["calls"] += 1
            reply = await write_summary(backend, system, user, max_tokens)
            ticket.answered(reply)
            self._count(call, reply.input_tokens, reply.output_tokens)
            if not reply.text:
                raise ModelCallError(name, "empty")
            return reply
        except ModelCallError as error:
            ticket.failed(error)
            call["failed"] += 1 if error.kind not in REFUSALS else 0
            call["last_error"] = error.kind
            raise
        finally:
            ticket.close()
            call["latency_ms"] = round(call["latency_ms"] + (time.perf_counter() - started) * 1000, 3)

    @staticmethod
    def _chunked(
        turns: Sequence[tuple[int, Sequence[Mapping[str, Any]]]],
        window: int | None,
        overhead: int,
        previous: ContextSummary | None,
        ratio: TokenRatio,
    ) -> list[tuple[int, int, str]]:
        previous_tokens = 0 if previous is None else ratio.fitted(text_tokens(previous.text) + 16)
        room = UNKNOWN_WINDOW_CHUNK if window is None else window - overhead - previous_tokens
        return chunks(turns, max(room, 256), ratio)

    def _call_note(self, name: str, model: str) -> dict[str, Any]:
        """The running record of this turn's summary calls to one backend."""
        for call in self.calls:
            if call["backend"] == name:
                return call
        call = {
            "backend": name,
            "model": model,
            "calls": 0,
            "failed": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "latency_ms": 0.0,
            "cost": 0.0,
        }
        self.calls.append(call)
        return call

    def _count(self, call: dict[str, Any], input_tokens: int, output_tokens: int) -> None:
        call["input_tokens"] += input_tokens
        call["output_tokens"] += output_tokens
        call["cost"] = cost_of(self._fitter.settings, call["backend"], call["model"], *_tokens(call))


def _tokens(call: Mapping[str, Any]) -> tuple[int, int]:
    return int(call["input_tokens"]), int(call["output_tokens"])
