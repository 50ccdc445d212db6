"""Per-owner budgets (pure): limits, UTC calendar periods, an owner's spend in them, and whether a paid call fits.

An owner's budget is `BUDGET_DAILY_USD` and `BUDGET_MONTHLY_USD`, or the owner's entry of `BUDGET_OVERRIDES`
(a field it leaves out keeps the default; `null` means no limit). Periods are UTC calendar days and months. The
spend is the owner's summed turn cost. A paid call is allowed while, in every limited period, the spend plus
what this instance's paid calls in flight may cost stays below the limit; a call in flight is assumed to cost
as much as the owner's largest turn of the month (or, before one is known, the whole remaining budget), so
that one instance overshoots a limit by at most one turn. Everything here takes `now` as an argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.domain.clock import utc_iso
from shared.domain.shapes import json_value

Period = Literal["daily", "monthly"]
PERIODS: tuple[Period, ...] = ("daily", "monthly")


@dataclass(frozen=True)
class Limits:
    """USD per UTC day and per UTC month; None is no limit."""

    daily: float | None = None
    monthly: float | None = None

    @property
    def any(self) -> bool:
        return self.daily is not None or self.monthly is not None

    def of(self, period: Period) -> float | None:
        return self.daily if period == "daily" else self.monthly


@dataclass(frozen=True)
class BudgetPolicy:
    """The default limits and the named owners' own (keyed by owner key)."""

    default: Limits = Limits()
    overrides: Mapping[str, Limits] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.default.any or any(limits.any for limits in self.overrides.values())

    def limits_for(self, owner: str) -> Limits:
        return self.overrides.get(owner, self.default)


def parse_overrides(text: str, default: Limits, key: Callable[[str], str]) -> dict[str, Limits]:
    """`BUDGET_OVERRIDES`: {"<principal id>": {"daily": 5, "monthly": null}, ...} by owner key (`key`).

    Raises ValueError naming what is wrong; the settings loader adds the variable's name."""
    table = json_value(text)
    if not isinstance(table, dict):
        raise ValueError("must be a JSON object of principal ids")
    overrides: dict[str, Limits] = {}
    for principal, entry in table.items():
        if not principal or not isinstance(entry, dict) or not set(entry) <= {"daily", "monthly"}:
            raise ValueError(f"[{principal!r}] must be an object with 'daily' and/or 'monthly'")
        values = {period: entry.get(period, default.of(period)) for period in PERIODS}
        overrides[key(principal)] = Limits(
            **{period: _limit(value, f"[{principal!r}].{period}") for period, value in values.items()}
        )
    return overrides


def _limit(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where} must be a number of USD >= 0 or null, got {value!r}")
    return float(value)


# ---- periods -------------------------------------------------------------------------------------------------


def period_start(now: datetime, period: Period) -> datetime:
    """The start (UTC) of the day or month `now` falls in."""
    moment = now.astimezone(UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if period == "daily" else day.replace(day=1)


def period_end(now: datetime, period: Period) -> datetime:
    """The start (UTC) of the next day or month: when the period's spend resets."""
    start = period_start(now, period)
    if period == "daily":
        return start + timedelta(days=1)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def seconds_to_reset(now: datetime, period: Period) -> int:
    """Whole seconds until the period resets (at least 1)."""
    return max(1, math.ceil((period_end(now, period) - now.astimezone(UTC)).total_seconds()))


# ---- spend ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Charge:
    """One turn as a budget counts it."""

    completed_at: str  # utc_iso
    cost: float
    tokens: int


@dataclass(frozen=True)
class Totals:
    cost: float = 0.0
    turns: int = 0
    tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"cost": self.cost, "turns": self.turns, "tokens": self.tokens}


@dataclass(frozen=True)
class Spend:
    """An owner's spend in the day and the month of `now`, and the largest single turn cost of the month."""

    day: Totals
    month: Totals
    largest: float

    def of(self, period: Period) -> float:
        return self.day.cost if period == "daily" else self.month.cost


def spend_of(charges: Iterable[Charge], now: datetime) -> Spend:
    """Sum the charges of the month of `now` (and of its day); older ones are ignored."""
    day_start, month_start = (utc_iso(period_start(now, period)) for period in ("daily", "monthly"))
    day, month, largest = [0.0, 0, 0], [0.0, 0, 0], 0.0
    for charge in charges:
        if charge.completed_at < month_start:
            continue
        for bucket, since in ((month, month_start), (day, day_start)):
            if charge.completed_at >= since:
                bucket[0] += charge.cost
                bucket[1] += 1
                bucket[2] += charge.tokens
        largest = max(largest, charge.cost)
    totals = [Totals(round(float(cost), 8), int(turns), int(tokens)) for cost, turns, tokens in (day, month)]
    return Spend(totals[0], totals[1], largest)


def usage_report(limits: Limits, spend: Spend) -> dict[str, Any]:
    """`GET /users/me/usage`: the day's and the month's totals, the limits and what remains of them."""

    def remaining(period: Period) -> float | None:
        limit = limits.of(period)
        return None if limit is None else round(max(0.0, limit - spend.of(period)), 8)

    return {
        "day": spend.day.to_dict(),
        "month": spend.month.to_dict(),
        "budget": {
            "daily": limits.daily,
            "monthly": limits.monthly,
            "remaining_daily": remaining("daily"),
            "remaining_monthly": remaining("monthly"),
        },
    }


# ---- the check -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exhausted:
    """Why a paid call does not fit: the period, its limit, the spend and what the calls in flight may add."""

    period: Period
    limit: float
    spent: float
    in_flight: int
    resets_in: int  # seconds until the period resets

    def describe(self) -> str:
        flight = f" and {self.in_flight} paid turn(s) in flight" if self.in_flight else ""
        return (
            f"{self.period} budget of {self.limit:g} USD used up ({self.spent:g} USD spent{flight}; "
            f"resets in {self.resets_in} s)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"period": self.period, "limit": self.limit, "spent": self.spent, "resets_in": self.resets_in}


def exhausted(limits: Limits, spend: Spend, now: datetime, in_flight: int = 0) -> Exhausted | None:
    """The period whose limit leaves no room for another paid call, or None.

    Room means spend + in_flight * (the month's largest turn, or all that remains before one is known) < limit.
    When both periods are used up the month is named: waiting for the next day would not help.
    """
    found: Exhausted | None = None
    for period in PERIODS:
        limit = limits.of(period)
        if limit is None:
            continue
        spent = spend.of(period)
        estimate = spend.largest if spend.largest > 0 else math.inf
        reserved = in_flight * estimate if in_flight else 0.0
        if spent + reserved >= limit:
            found = Exhausted(period, limit, spent, in_flight, seconds_to_reset(now, period))
    return found
