"""What the turn pipeline asks before and after it calls a backend: the owner's budget and the backend's cooldown.

`TurnGuard.admit` checks the routing decision against the owner's budget: an `auto` turn bound for a paid backend
goes to the local one instead once a budget is used up (an explicit route, or a deployment without a free local
backend, gets `BudgetExceeded`). Then every backend the turn actually calls, fallbacks included, goes through a
`Ticket`: skipped while its circuit is open (`cooldown`) or while the budget has no room for a paid call
(`budget`), else counted in flight until it answers, with its cost added to the owner's spend at once and its
success or failure fed to its circuit breaker. Breakers and spend are per instance (see `spend.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from shared.agents.backends import Backend
from shared.config import Settings
from shared.domain.budget import Charge, Exhausted
from shared.domain.circuit import Breaker, BreakerPolicy
from shared.domain.clock import utc_iso
from shared.domain.errors import AllBackendsFailed, BudgetExceeded, ModelCallError, ServiceError
from shared.domain.pricing import cost_of
from shared.domain.records import Attempt, TurnRecord
from shared.domain.routing import Decision, redirected
from shared.services.spend import SpendLedger
from shared.storage.documents import turn_document_id


class Usage(Protocol):
    """The tokens a call used (a turn's `AgentReply`, a summary's `SummaryReply`)."""

    @property
    def input_tokens(self) -> int: ...

    @property
    def output_tokens(self) -> int: ...


class Breakers:
    """One circuit breaker per configured backend, for this instance."""

    def __init__(self, names: Sequence[str], policy: BreakerPolicy, monotonic: Callable[[], float]) -> None:
        self._breakers = {name: Breaker(policy) for name in names}
        self.monotonic = monotonic

    def __getitem__(self, name: str) -> Breaker:
        return self._breakers[name]

    def states(self) -> dict[str, dict[str, Any]]:
        now = self.monotonic()
        return {name: breaker.view(now).to_dict() for name, breaker in self._breakers.items()}


class TurnGuard:
    def __init__(
        self,
        settings: Settings,
        backends: Mapping[str, Backend],
        ledger: SpendLedger,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._backends = backends
        self.ledger = ledger
        self._clock = clock
        self.breakers = Breakers(tuple(backends), settings.cooldown, monotonic)

    def paid(self, owner: str, backend: Backend) -> bool:
        """Is a call to `backend` held to the owner's budget (a budget applies and the backend is not free)?"""
        return self.ledger.limits_for(owner).any and self._settings.price_quote(backend.name, backend.model).paid

    async def admit(self, owner: str, route: str, decision: Decision, before: Sequence[TurnRecord]) -> Decision:
        """The decision, or for a used-up budget an `auto` turn's redirection to the free local backend; raises
        `BudgetExceeded` when the turn cannot be served without spending."""
        if not self.paid(owner, self._backends[decision.backend]):
            return decision
        verdict = await self.ledger.check(owner)
        if verdict is None:
            return decision
        local = self._backends.get("local")
        if route != "auto" or local is None or self.paid(owner, local):
            raise BudgetExceeded(decision.backend, verdict)
        previous = next((record.backend for record in reversed(before) if record.backend), None)
        why = f"budget: {verdict.describe()}, so local instead of {decision.backend}"
        return redirected(decision, "local", why, previous)

    def turn(self, owner: str, session_id: str, number: int) -> TurnCalls:
        return TurnCalls(self, owner, turn_document_id(owner, session_id, number))

    def charge(self, owner: str, key: str, backend: Backend, usage: Usage) -> None:
        settings, name, model = self._settings, backend.name, backend.model
        cost = cost_of(settings, name, model, usage.input_tokens, usage.output_tokens)
        charge = Charge(utc_iso(self._clock()), cost, usage.input_tokens + usage.output_tokens)
        self.ledger.charge(owner, key, charge)


class TurnCalls:
    """The backend calls of one turn: a `Ticket` per backend, and the error when none of them answered."""

    def __init__(self, guard: TurnGuard, owner: str, key: str) -> None:
        self.guard = guard
        self.owner = owner
        self.key = key  # the turn document id: the turn's cost is counted under it
        self.notes: list[str] = []  # why backends were skipped, for the record's reason
        self.exhausted: tuple[str, Exhausted] | None = None  # the backend the budget refused, and why
        self.cooling: list[ModelCallError] = []  # the backends skipped while cooling down
        self.last_failure: ModelCallError | None = None

    def ticket(self, backend: Backend) -> Ticket:
        return Ticket(self, backend)

    def not_called(self, error: ModelCallError) -> ModelCallError:
        """A backend the turn could not use for its own sake (its window cannot hold the message)."""
        self.last_failure = self.last_failure or error
        return error

    def failure(self, attempts: Sequence[Attempt]) -> ServiceError:
        """What the turn raises when no backend answered: the budget's refusal when no backend was called but the
        budget stood in the way; else every backend failed, decided by the last real failure, or when every one
        was cooling down, by the cooldown that ends first."""
        if self.last_failure is None and self.exhausted is not None:
            return BudgetExceeded(*self.exhausted)
        decisive = self.last_failure or min(self.cooling, key=lambda error: error.retry_after or 0.0)
        return AllBackendsFailed(attempts, decisive, self.notes)


class Ticket:
    """One backend call of a turn: `enter` (raises a refusal), then `answered` or `failed`, and always `close`."""

    def __init__(self, calls: TurnCalls, backend: Backend) -> None:
        self._calls = calls
        self._backend = backend
        self._breaker = calls.guard.breakers[backend.name]
        self._reserved = False
        self._trial = False
        self._verdict = False

    async def enter(self) -> None:
        """Raise `ModelCallError` of kind `cooldown` or `budget` when the backend may not be called now."""
        guard, name = self._calls.guard, self._backend.name
        blocked = self._breaker.blocked_for(guard.breakers.monotonic())
        if blocked is None and guard.paid(self._calls.owner, self._backend):
            verdict = await guard.ledger.check(self._calls.owner, reserve=True)
            if verdict is not None:
                self._calls.exhausted = (name, verdict)
                self._calls.notes.append(f"{name} not called: {verdict.describe()}")
                raise ModelCallError(name, "budget", retry_after=verdict.resets_in)
            self._reserved = True
        now = guard.breakers.monotonic()
        self._trial = self._breaker.open_until is not None
        if blocked is None and self._breaker.allow(now):
            return
        self._trial = False
        left = self._breaker.blocked_for(now) or 0.0
        self._calls.notes.append(
            f"{name} not called: cooling down after failures ({left:.0f} s left)" if left else
            f"{name} not called: its trial call after a cooldown is under way"
        )  # fmt: skip
        self._calls.cooling.append(ModelCallError(name, "cooldown", retry_after=left))
        raise self._calls.cooling[-1]

    def answered(self, usage: Usage | None) -> None:
        """The call answered (a turn's reply or a summary): the backend is healthy, the call is charged."""
        self._verdict = True
        self._breaker.succeeded()
        if usage is not None:
            self._calls.guard.charge(self._calls.owner, self._calls.key, self._backend, usage)

    def failed(self, error: ModelCallError) -> None:
        if not error.about_backend:
            return  # not called, or refused for the request's sake: nothing learnt about the backend
        self._verdict = True
        self._calls.last_failure = error
        retry_after = error.retry_after if error.kind == "rate_limited" else None
        self._breaker.failed(self._calls.guard.breakers.monotonic(), retry_after)

    def close(self) -> None:
        if self._reserved:
            self._calls.guard.ledger.release(self._calls.owner)
            self._reserved = False
        if self._trial and not self._verdict:
            self._breaker.abandoned()
