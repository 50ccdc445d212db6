"""Calibrating the router from its users' feedback: which threshold would have agreed with them most.

Each rated turn implies the tier it should have had: the tier of the backend the user preferred, if they named
one; else the tier that answered when they rated it up, and the other tier when they rated it down. Over those
turns, every threshold (each observed complexity, and 0 and 1) is scored by how often ``complexity >=
threshold`` matches "should have been strong"; the best one wins (ties: the one nearest the current threshold).
Its target share is the share of all routed turns at or above it. Pure: the tool that reads a deployment's
turns is ``tools/calibrate_router.py``, and it only reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.domain.backends import STRONG_BACKENDS


@dataclass(frozen=True)
class RatedTurn:
    complexity: float
    backend: str
    rating: str  # "up" or "down"
    preferred_backend: str | None = None


def should_be_strong(turn: RatedTurn) -> bool:
    """The tier the user's feedback says the turn needed."""
    if turn.preferred_backend is not None:
        return turn.preferred_backend in STRONG_BACKENDS
    answered_strong = turn.backend in STRONG_BACKENDS
    return answered_strong if turn.rating == "up" else not answered_strong


def agreement(rated: Sequence[RatedTurn], threshold: float) -> float:
    """Share of rated turns whose tier at `threshold` is the one their feedback implies."""
    if not rated:
        return 0.0
    hits = sum(1 for turn in rated if (turn.complexity >= threshold) == should_be_strong(turn))
    return hits / len(rated)


def share_at(complexities: Sequence[float], threshold: float) -> float:
    return sum(1 for value in complexities if value >= threshold) / len(complexities) if complexities else 0.0


def propose(rated: Sequence[RatedTurn], complexities: Sequence[float], current: float) -> dict[str, Any]:
    """The threshold (and target share) that agrees best with the feedback, and the evidence for it.

    `complexities` are those of every routed turn (rated or not), for the share; `current` the threshold in use.
    """
    candidates = sorted({0.0, 1.0, current, *(turn.complexity for turn in rated)})
    scored = [(agreement(rated, t), -abs(t - current), t) for t in candidates]
    best_agreement, _, best = max(scored)
    strong = sum(1 for turn in rated if should_be_strong(turn))
    return {
        "rated_turns": len(rated),
        "routed_turns": len(complexities),
        "feedback": {
            "up": sum(1 for turn in rated if turn.rating == "up"),
            "down": sum(1 for turn in rated if turn.rating == "down"),
            "should_be_strong": strong,
            "should_be_local": len(rated) - strong,
        },
        "current": {
            "threshold": current,
            "agreement": round(agreement(rated, current), 4),
            "cloud_share": round(share_at(complexities, current), 4),
        },
        "proposed": {
            "threshold": round(best, 4),
            "agreement": round(best_agreement, 4),
            "target_cloud_share": round(share_at(complexities, best), 4),
        },
        "curve": [
            {"threshold": round(t, 4), "agreement": round(a, 4), "cloud_share": round(share_at(complexities, t), 4)}
            for a, _, t in sorted(scored, key=lambda item: item[2])
        ],
    }
