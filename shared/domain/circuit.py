"""Backend cooldowns (pure): one backend's circuit breaker, with the time passed in by the caller.

Closed (`ok`): calls go through; consecutive retryable failures are counted, and a success resets the count.
After `failures` of them in a row the circuit opens (`cooling_down`) for `cooldown_seconds`; a 429 with a
Retry-After opens it for that long at once (at most `max_retry_after`). While open the backend is not called.
When the time is up the next call is a single trial (`trial`; other calls still skip the backend): success
closes the circuit, failure opens it again. A trial that ends without a verdict (the caller went away, a 400)
leaves the next call to be the trial. Time is a monotonic clock in seconds, given to every method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

State = Literal["ok", "cooling_down", "trial"]


@dataclass(frozen=True)
class BreakerPolicy:
    failures: int = 3  # consecutive retryable failures that open the circuit
    cooldown_seconds: float = 30.0
    max_retry_after: float = 3600.0  # a backend's Retry-After is honoured up to this


@dataclass(frozen=True)
class BreakerView:
    """What health shows of one backend's circuit."""

    state: State
    seconds_left: float | None  # while cooling down
    failures: int  # consecutive failures so far

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "cooldown_seconds_left": self.seconds_left, "consecutive_failures": self.failures}


class Breaker:
    """One backend's circuit in one instance."""

    def __init__(self, policy: BreakerPolicy) -> None:
        self._policy = policy
        self._failures = 0
        self._open_until: float | None = None  # a deadline on the caller's monotonic clock
        self._trial = False  # the one trial call after a cooldown is under way

    @property
    def open_until(self) -> float | None:
        return self._open_until

    def view(self, now: float) -> BreakerView:
        if self._open_until is None:
            return BreakerView("ok", None, self._failures)
        if now < self._open_until:
            return BreakerView("cooling_down", round(self._open_until - now, 3), self._failures)
        return BreakerView("trial", None, self._failures)

    def blocked_for(self, now: float) -> float | None:
        """Seconds the backend stays skipped (0 while another call is the trial), or None when it may be called.
        Changes nothing: `allow` claims the call."""
        if self._open_until is None:
            return None
        if now < self._open_until:
            return self._open_until - now
        return 0.0 if self._trial else None

    def allow(self, now: float) -> bool:
        """May the backend be called now? After a cooldown this claims the one trial call."""
        if self.blocked_for(now) is not None:
            return False
        if self._open_until is not None:
            self._trial = True
        return True

    def succeeded(self) -> None:
        self._failures, self._open_until, self._trial = 0, None, False

    def failed(self, now: float, retry_after: float | None = None) -> None:
        """A retryable failure; `retry_after` is a 429's Retry-After, which opens the circuit for that long."""
        self._failures += 1
        if retry_after is not None:
            self._open_until = now + min(max(retry_after, 0.0), self._policy.max_retry_after)
        elif self._trial or self._failures >= self._policy.failures:
            self._open_until = now + self._policy.cooldown_seconds
        self._trial = False

    def abandoned(self) -> None:
        """The call ended without a verdict on the backend: the next call is the trial, if one was due."""
        self._trial = False
