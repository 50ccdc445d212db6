"""Per-owner spend for budgets, kept per instance: what Cosmos says, this instance's own turns, its calls in flight.

The spend is the owner's summed turn cost in the current UTC month (and day), read from the turn records in Cosmos
(`TurnStore.charges_since`: one cross-partition query) at most every `CACHE_SECONDS` per owner and instance. Each
turn this instance completes is added at once, keyed by its turn document id, so a read that already holds it
does not count it twice, and a read that does not yet hold it does not lose it. Paid calls in flight are counted
too (`check(..., reserve=True)` until `release`), so two concurrent turns at the edge of the budget overshoot it
by at most one turn. Instances do not share any of this: N instances may overshoot by up to N turns, plus what
the others spent in the last few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.domain.budget import BudgetPolicy, Charge, Exhausted, Limits, Spend, exhausted, period_start, spend_of
from shared.domain.budget import usage_report as report_of
from shared.domain.clock import utc_iso, utc_now
from shared.observability.spans import tracer
from shared.storage.turns import TurnStore

logger = logging.getLogger(__name__)

CACHE_SECONDS = 5.0  # the longest an instance goes without reading an owner's spend again
_MAX_ACCOUNTS = 10_000  # owners remembered per instance before idle ones are forgotten


@dataclass
class _Account:
    month: str = ""  # utc_iso of the month start the read covers
    read: dict[str, Charge] = field(default_factory=dict)  # from Cosmos, by turn document id
    read_at: float | None = None  # monotonic
    own: dict[str, Charge] = field(default_factory=dict)  # completed here and not yet seen in a read
    in_flight: int = 0  # paid calls of this owner under way in this instance
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one read at a time

    def charges(self) -> list[Charge]:
        return [*self.read.values(), *(charge for key, charge in self.own.items() if key not in self.read)]


class SpendLedger:
    def __init__(
        self,
        turns: TurnStore,
        policy: BudgetPolicy,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self._turns = turns
        self.policy = policy
        self._clock = clock
        self._monotonic = monotonic
        self._cache_seconds = cache_seconds
        self._accounts: dict[str, _Account] = {}
        self.reads = 0  # Cosmos reads so far, and their request charge: what budgets cost in RU
        self.read_ru = 0.0

    def limits_for(self, owner: str) -> Limits:
        return self.policy.limits_for(owner)

    async def check(self, owner: str, *, reserve: bool = False) -> Exhausted | None:
        """Whether the owner's budget leaves room for another paid call (None: it does). With `reserve`, a call
        that fits is counted as in flight until `release`: nothing can slip in between the check and that."""
        limits = self.limits_for(owner)
        if not limits.any:
            return None
        spend = await self.spend(owner)
        account = self._account(owner)
        verdict = exhausted(limits, spend, self._clock(), account.in_flight)
        if verdict is None and reserve:
            account.in_flight += 1
        return verdict

    def release(self, owner: str) -> None:
        account = self._accounts.get(owner)
        if account is not None and account.in_flight > 0:
            account.in_flight -= 1

    def charge(self, owner: str, key: str, charge: Charge) -> None:
        """Count a call of a turn this instance ran (`key`: the turn document id) before any read shows it; a
        turn's calls (its summary calls and its answer) add up under its key, as its document sums them."""
        if self.limits_for(owner).any:
            own = self._account(owner).own
            earlier = own.get(key)
            if earlier is not None:
                total = round(earlier.cost + charge.cost, 8)
                charge = Charge(charge.completed_at, total, earlier.tokens + charge.tokens)
            own[key] = charge

    async def spend(self, owner: str, *, fresh: bool = False) -> Spend:
        """The owner's spend in the current day and month; read again when older than the cache allows."""
        account = self._account(owner)
        month = utc_iso(period_start(self._clock(), "monthly"))
        if fresh or self._stale(account, month):
            async with account.lock:
                if fresh or self._stale(account, month):
                    await self._read(owner, account, month)
        return spend_of(account.charges(), self._clock())

    async def usage(self, owner: str) -> dict[str, Any]:
        """`GET /users/me/usage`: read fresh, so it equals the turn records."""
        return report_of(self.limits_for(owner), await self.spend(owner, fresh=True))

    def _stale(self, account: _Account, month: str) -> bool:
        return (
            account.read_at is None
            or account.month != month
            or self._monotonic() - account.read_at >= self._cache_seconds
        )

    async def _read(self, owner: str, account: _Account, month: str) -> None:
        started = self._monotonic()
        with tracer.start_as_current_span("llmrouter.budget.read") as span:
            read, request_charge = await self._turns.charges_since(owner, month)
            span.set_attribute("llmrouter.budget.turns_read", len(read))
            span.set_attribute("db.cosmosdb.request_charge", request_charge)
        self.reads += 1
        self.read_ru += request_charge
        account.month, account.read, account.read_at = month, read, started
        # What the read holds is counted from it now; what it does not hold yet stays counted from here.
        account.own = {
            key: charge for key, charge in account.own.items() if key not in read and charge.completed_at >= month
        }

    def _account(self, owner: str) -> _Account:
        account = self._accounts.get(owner)
        if account is None:
            if len(self._accounts) >= _MAX_ACCOUNTS:
                self._forget_idle()
            account = self._accounts[owner] = _Account()
        return account

    def _forget_idle(self) -> None:
        for owner, account in list(self._accounts.items()):
            if not account.in_flight and not account.own and not account.lock.locked():
                del self._accounts[owner]
