"""What every router version shares: the earlier turns it may look at, and what it says about a turn."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PriorTurn:
    """What the router needs from one earlier turn record of the session (history is ordered newest last)."""

    backend: str | None  # None for turns imported from elsewhere: nobody routed them
    complexity: float | None  # None when unknown (imported turns)
    user_chars: int = 0  # length of that turn's user message; a lower bound for an unknown complexity


@dataclass(frozen=True)
class Assessment:
    """One router version's view of a turn: how demanding it is, and why (before tiers and overrides)."""

    complexity: float  # in [0, 1]: the turn's own, or inherited from the conversation
    basis: str  # why, for the reason: "complexity 0.72 (code block, ...)" or the follow-up's arithmetic
    context: str  # said after the tier when it explains a choice ("; not a follow-up"), else ""
    follow_up: bool  # builds on earlier turns (and so may stay on the previous backend)
    signals: tuple[str, ...]  # short names of what weighed, for analytics and spans


def quantile_threshold(quantiles: tuple[float, ...], target_share: float) -> float:
    """The threshold that sends `target_share` of a calibration sample to the strong tier, from the sample's
    score percentiles (0%, 1%, ..., 100%), interpolated linearly. 0 is above every score (even 1, the highest a
    complexity can be); 1 is 0."""
    if not 0.0 <= target_share <= 1.0 or target_share != target_share:
        raise ValueError(f"target_share must be within [0, 1], got {target_share!r}")
    if target_share == 0.0:
        return quantiles[-1] + 1e-9
    position = (1.0 - target_share) * (len(quantiles) - 1)
    low = int(position)
    high = min(low + 1, len(quantiles) - 1)
    return quantiles[low] + (quantiles[high] - quantiles[low]) * (position - low)
