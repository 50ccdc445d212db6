"""The pure rules of spend control: UTC budget periods and their resets, an owner's spend, when a paid call no longer
fits (calls in flight included), the budget settings, and one backend's circuit breaker on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.config import Settings, SettingsError
from shared.domain.budget import (
    BudgetPolicy,
    Charge,
    Limits,
    exhausted,
    parse_overrides,
    period_end,
    period_start,
    seconds_to_reset,
    spend_of,
    usage_report,
)
from shared.domain.circuit import Breaker, BreakerPolicy
from shared.domain.ids import owner_key

MINIMAL = {"STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true", "COSMOS_ENDPOINT": "https://127.0.0.1:8081/"}
NOW = datetime(2026, 3, 31, 23, 59, 30, tzinfo=UTC)


# ---- periods -------------------------------------------------------------------------------------------------


def test_periods_are_utc_calendar_days_and_months_and_reset_at_their_end() -> None:
    assert period_start(NOW, "daily") == datetime(2026, 3, 31, tzinfo=UTC)
    assert period_start(NOW, "monthly") == datetime(2026, 3, 1, tzinfo=UTC)
    assert period_end(NOW, "daily") == period_end(NOW, "monthly") == datetime(2026, 4, 1, tzinfo=UTC)
    assert seconds_to_reset(NOW, "daily") == seconds_to_reset(NOW, "monthly") == 30
    december = datetime(2026, 12, 15, 12, tzinfo=UTC)
    assert period_end(december, "monthly") == datetime(2027, 1, 1, tzinfo=UTC)
    assert seconds_to_reset(december, "daily") == 12 * 3600
    # A clock in another zone means the same instant: still the UTC day (02:30 in UTC+3 is 23:30 the day before).
    local = datetime(2026, 4, 1, 2, 30, tzinfo=timezone(timedelta(hours=3)))
    assert period_start(local, "daily") == datetime(2026, 3, 31, tzinfo=UTC)
    assert seconds_to_reset(datetime(2026, 4, 1, tzinfo=UTC) - timedelta(microseconds=1), "daily") == 1


def test_spend_counts_the_day_and_the_month_of_now_and_ignores_older_turns() -> None:
    charges = [
        Charge("2026-02-28T23:59:59.999999Z", 9.0, 900),  # last month
        Charge("2026-03-01T00:00:00.000000Z", 0.25, 100),
        Charge("2026-03-31T00:00:00.000000Z", 0.5, 30),
        Charge("2026-03-31T23:00:00.000000Z", 0.125, 20),
    ]
    spend = spend_of(charges, NOW)
    assert (spend.day.cost, spend.day.turns, spend.day.tokens) == (0.625, 2, 50)
    assert (spend.month.cost, spend.month.turns, spend.month.tokens) == (0.875, 3, 150)
    assert spend.largest == 0.5
    report = usage_report(Limits(daily=1.0), spend)
    assert report["day"] == {"cost": 0.625, "turns": 2, "tokens": 50}
    assert report["budget"] == {"daily": 1.0, "monthly": None, "remaining_daily": 0.375, "remaining_monthly": None}


# ---- the check -----------------------------------------------------------------------------------------------


def test_a_paid_call_fits_while_the_spend_is_below_every_limit() -> None:
    limits = Limits(daily=1.0, monthly=10.0)
    assert exhausted(limits, spend_of([Charge("2026-03-31T01:00:00.000000Z", 0.99, 1)], NOW), NOW) is None
    used = exhausted(limits, spend_of([Charge("2026-03-31T01:00:00.000000Z", 1.0, 1)], NOW), NOW)
    assert used is not None and (used.period, used.limit, used.spent, used.resets_in) == ("daily", 1.0, 1.0, 30)
    assert used.describe() == "daily budget of 1 USD used up (1 USD spent; resets in 30 s)"
    assert exhausted(Limits(), spend_of([Charge("2026-03-31T01:00:00.000000Z", 99.0, 1)], NOW), NOW) is None


def test_when_both_periods_are_used_up_the_month_is_named() -> None:
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    used = exhausted(Limits(1.0, 1.0), spend_of([Charge("2026-03-10T01:00:00.000000Z", 2.0, 1)], now), now)
    assert used is not None and used.period == "monthly" and used.resets_in == 21 * 86400 + 12 * 3600


def test_calls_in_flight_count_as_the_largest_turn_of_the_month_or_all_that_remains() -> None:
    limits = Limits(daily=1.0)
    charges = [Charge("2026-03-31T01:00:00.000000Z", 0.4, 1), Charge("2026-03-31T02:00:00.000000Z", 0.3, 1)]
    current = spend_of(charges, NOW)  # 0.7 spent; the largest turn cost 0.4
    assert exhausted(limits, current, NOW, in_flight=0) is None
    used = exhausted(limits, current, NOW, in_flight=1)  # 0.7 + 0.4 >= 1: a second concurrent turn does not fit
    assert used is not None and used.in_flight == 1 and "1 paid turn(s) in flight" in used.describe()
    assert exhausted(Limits(daily=2.0), current, NOW, in_flight=2) is None  # 0.7 + 2 * 0.4 < 2
    # Before any turn of the month is known, a call in flight may cost what remains: nothing else fits.
    assert exhausted(Limits(daily=100.0), spend_of([], NOW), NOW, in_flight=1) is not None
    assert exhausted(Limits(daily=100.0), spend_of([], NOW), NOW, in_flight=0) is None


def test_a_zero_limit_allows_no_paid_call() -> None:
    assert exhausted(Limits(daily=0.0), spend_of([], NOW), NOW) is not None


# ---- settings ------------------------------------------------------------------------------------------------


def test_budget_settings_default_to_no_limit_and_overrides_are_keyed_by_owner_key() -> None:
    assert Settings.from_env(MINIMAL).budget == BudgetPolicy(Limits(), {})
    assert not Settings.from_env(MINIMAL).budget.enabled
    settings = Settings.from_env(
        {
            **MINIMAL,
            "BUDGET_DAILY_USD": "2",
            "BUDGET_MONTHLY_USD": "20",
            "BUDGET_OVERRIDES": '{"alice": {"daily": 10}, "bob@contoso.com": {"monthly": null}}',
        }
    )
    policy = settings.budget
    assert policy.limits_for("alice") == Limits(10.0, 20.0)  # a field left out keeps the default
    assert policy.limits_for(owner_key("bob@contoso.com")) == Limits(2.0, None)  # null: no limit
    assert policy.limits_for("carol") == Limits(2.0, 20.0)
    assert (settings.cooldown.failures, settings.cooldown.cooldown_seconds) == (3, 30.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BUDGET_DAILY_USD", "-1"),
        ("BUDGET_MONTHLY_USD", "lots"),
        ("BUDGET_OVERRIDES", "{not json"),
        ("BUDGET_OVERRIDES", '["alice"]'),
        ("BUDGET_OVERRIDES", '{"alice": {"weekly": 1}}'),
        ("BUDGET_OVERRIDES", '{"alice": {"daily": "5"}}'),
        ("BUDGET_OVERRIDES", '{"alice": {"daily": -5}}'),
        ("BACKEND_COOLDOWN_FAILURES", "0"),
        ("BACKEND_COOLDOWN_SECONDS", "0"),
    ],
)
def test_malformed_spend_settings_fail_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({**MINIMAL, name: value})


def test_overrides_parse_without_settings() -> None:
    assert parse_overrides("{}", Limits(1.0), str) == {}
    with pytest.raises(ValueError, match=r"\['alice'\]\.daily"):
        parse_overrides('{"alice": {"daily": true}}', Limits(), str)


# ---- the circuit breaker -------------------------------------------------------------------------------------


def test_consecutive_failures_open_the_circuit_for_the_cooldown_then_one_trial_decides() -> None:
    breaker = Breaker(BreakerPolicy(failures=3, cooldown_seconds=30))
    for now in (1.0, 2.0):
        assert breaker.allow(now)
        breaker.failed(now)
    assert breaker.view(2.0).state == "ok" and breaker.view(2.0).failures == 2
    breaker.failed(3.0)
    assert breaker.open_until == 33.0
    assert breaker.view(10.0).to_dict() == {
        "state": "cooling_down",
        "cooldown_seconds_left": 23.0,
        "consecutive_failures": 3,
    }
    assert not breaker.allow(32.9) and breaker.blocked_for(32.9) == pytest.approx(0.1)
    assert breaker.view(33.0).state == "trial"
    assert breaker.allow(33.0)  # the trial
    assert not breaker.allow(33.5) and breaker.blocked_for(33.5) == 0.0  # one trial at a time
    breaker.failed(34.0)  # the trial failed: open again at once, for the whole cooldown
    assert breaker.open_until == 64.0 and not breaker.allow(40.0)
    assert breaker.allow(64.0)
    breaker.succeeded()  # the trial worked: closed
    assert breaker.view(64.0).to_dict() == {"state": "ok", "cooldown_seconds_left": None, "consecutive_failures": 0}
    assert breaker.allow(64.1) and breaker.allow(64.2)


def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    breaker = Breaker(BreakerPolicy(failures=3))
    for _ in range(5):
        breaker.failed(1.0)
        breaker.failed(1.0)
        breaker.succeeded()
    assert breaker.view(1.0).state == "ok" and breaker.allow(1.0)


def test_a_retry_after_cools_the_backend_for_that_long_at_once_up_to_the_cap() -> None:
    breaker = Breaker(BreakerPolicy(failures=3, cooldown_seconds=30, max_retry_after=3600))
    breaker.failed(100.0, retry_after=5)
    assert breaker.open_until == 105.0 and breaker.view(101.0).seconds_left == 4.0
    assert breaker.view(105.0).state == "trial"
    breaker.failed(105.0, retry_after=10**9)
    assert breaker.open_until == 105.0 + 3600


def test_a_trial_without_a_verdict_leaves_the_next_call_to_be_the_trial() -> None:
    breaker = Breaker(BreakerPolicy(failures=1, cooldown_seconds=5))
    breaker.failed(0.0)
    assert breaker.allow(5.0)
    breaker.abandoned()  # the caller went away (or the request was refused with a 400)
    assert breaker.view(6.0).state == "trial" and breaker.allow(6.0) and not breaker.allow(6.0)
