"""rules-v1 as a router version: the hand-written complexity score (`rules.py`) and follow-up cues
(`followups.py`), behind the interface every version shares (`assess`, its threshold, its calibration).

A follow-up inherits ``max(own complexity, previous complexity * follow_up_decay)``; the decay lets a long chain
of trivial follow-ups drift back to the cheap tier. Small talk is routed on its own merits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from shared.domain.routing import vocabulary
from shared.domain.routing.followups import follow_up_cue, is_small_talk, opening_words
from shared.domain.routing.rules import ROUTER_VERSION, analyze, length_contribution
from shared.domain.routing.types import Assessment, PriorTurn, quantile_threshold

VERSION = ROUTER_VERSION
DEFAULT_THRESHOLD = 0.45
_QUANTILES: tuple[float, ...] = tuple(float(q) for q in vocabulary.CALIBRATION["quantiles"])


def fmt(value: float) -> str:
    """0.72 -> "0.72", 0.7 -> "0.7", 0.449 -> "0.449": short, and exact for values already rounded to 3 places."""
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def threshold_for_share(target_share: float) -> float:
    return quantile_threshold(_QUANTILES, target_share)


def _prior_complexity(turn: PriorTurn) -> float:
    """The previous turn's complexity; for an imported turn the length signal of its message as a lower bound."""
    value = turn.complexity
    if value is not None and not math.isnan(value):
        return min(1.0, max(0.0, value))
    return length_contribution(0, max(0, turn.user_chars))


def assess(prompt: str, history: Sequence[PriorTurn], threshold: float, decay: float) -> Assessment:
    """The turn's complexity: its own score, or a follow-up's inherited one (see the module docstring)."""
    analysis = analyze(prompt)
    own = analysis.complexity
    previous = history[-1] if history else None
    opening = opening_words(prompt)
    cue = follow_up_cue(opening) if previous is not None else None
    if previous is not None and cue is not None:
        prior = _prior_complexity(previous)
        complexity = max(own, round(prior * decay, 3))
        source = f"a turn on {previous.backend}" if previous.backend is not None else "an imported turn"
        basis = (
            f"follow-up to {source} ({cue}): complexity {fmt(complexity)} = max(own {fmt(own)} "
            f"({analysis.details()}), previous {fmt(prior)} * {fmt(decay)})"
        )
        return Assessment(complexity, basis, "", True, (*analysis.signals, "follow_up"))
    context = ""
    if previous is not None and own < threshold:
        # Only where inheriting would have mattered: it explains leaving a strong backend after a hard turn.
        context = "; small talk needs no context" if is_small_talk(opening) else "; not a follow-up"
    return Assessment(own, f"complexity {fmt(own)} ({analysis.details()})", context, False, analysis.signals)
