"""learned-v1: a small logistic-regression router, trained offline (``python -m tools.train_router``).

Why a learned scorer next to the hand-written rules (``rules-v1``): on an independent held-out set the rules
agreed with the labelling policy on 0.735 of single turns (a "longer than 200 characters" baseline: 0.778) and
missed whole families of hard prompts (multi-step word problems, open-ended technical requests, logic
puzzles). A linear model over readable features, fitted to a labelled corpus (``tools/router_corpus/``), keeps
what made the rules acceptable in production: it is pure Python, deterministic, sub-millisecond and explainable
(every feature is a readable string with a weight), and the weights ship as one JSON file whose sha256 is
recorded inside it (``learned_model.py``).

Single turn
-----------
``features(text)`` turns a message into a set of feature names (``learned_features.py``). ``probability(text)``
is ``sigmoid(bias + sum(weights[f]))``: the probability that the turn needs the strong model.

Labelling policy (what the corpus teaches): local for greetings, factoids, simple rewrite / classify / extract /
short creative tasks, single-step arithmetic, short obvious code, short translation, and follow-ups that only
reformat, shorten or translate; cloud for multi-step word problems, competition or proof math, non-trivial code
generation or debugging, logic puzzles, long analytical, legal, technical or design tasks with several
constraints, open-ended expert requests, and follow-ups that build on a hard turn.

Conversations
-------------
``route(text, history)`` decides a turn of a conversation from the new message and, for each earlier turn, only
what the service stores anyway: its complexity (the probability this module gave it), its backend and its
length (``PriorTurn``; the earlier texts are not needed). ``follow_up_kind`` (``learned_followups.py``) says
whether the message builds on earlier turns (``reference``): then it inherits the conversation's difficulty,
``max(own, decay * conversation)``, where the conversation's difficulty is the largest recent complexity,
discounted by ``decay`` per turn back (so a hard question followed by a reformat still counts two turns later).
A ``social`` or ``reformat`` follow-up is a cheap-model task: its own complexity is multiplied by
``rewrite_discount``. ``new_topic`` and ``none`` are routed on their own merits. Both factors are tuned on the
training conversations.

Everything here is pure: the weights file is read once, on first use; no clock, no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from shared.domain.routing.learned_model import (
    MODEL_VERSION,
    WEIGHTS_PATH,
    Model,
    canonical_payload,
    read,
    verify_checksum,
)
from shared.domain.routing.types import Assessment, PriorTurn, quantile_threshold

__all__ = [
    "MODEL_VERSION",
    "WEIGHTS_PATH",
    "PriorTurn",
    "Routed",
    "Scored",
    "assess",
    "canonical_payload",
    "conversation_difficulty",
    "default_threshold",
    "features",
    "follow_up_kind",
    "model_info",
    "probability",
    "route",
    "route_conversation",
    "score",
    "threshold_for_share",
    "verify_checksum",
]

_MODEL: Model | None = None


def _model() -> Model:
    global _MODEL
    if _MODEL is None:
        _MODEL = read(WEIGHTS_PATH)
    return _MODEL


def reload() -> None:
    """Forget the loaded weights (the trainer calls this after writing a new file)."""
    global _MODEL
    _MODEL = None


def model_info() -> dict[str, Any]:
    """Version, checksum and recorded dev scores of the shipped weights (for the turn record and analytics)."""
    return dict(_model().info)


def features(text: str) -> frozenset[str]:
    """The feature names present in ``text``."""
    return _model().spec.features(text)


def follow_up_kind(text: str) -> str:
    """``social``, ``reformat``, ``new_topic``, ``reference`` or ``none`` (see ``learned_followups``)."""
    return _model().cues.kind(text)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _logit(p: float) -> float:
    p = min(1.0 - 1e-9, max(1e-9, p))
    return math.log(p / (1.0 - p))


class Scored(NamedTuple):
    probability: float
    top: tuple[tuple[str, float], ...]  # the strongest contributions, strongest first

    def explain(self) -> str:
        parts = ", ".join(f"{name} {w:+.2f}" for name, w in self.top)
        return f"p={self.probability:.3f} ({parts})" if parts else f"p={self.probability:.3f}"


def score(text: str, prior: float | None = None, top: int = 4) -> Scored:
    """Probability and the ``top`` feature contributions (by absolute weight) behind it.

    ``prior``: a different base rate of hard turns than the training corpus had; shifts the log-odds by
    ``logit(prior) - logit(corpus rate)``.
    """
    model = _model()
    names = list(model.spec.feature_set(text))
    found = list(map(model.weights.get, names))
    z = model.bias + math.fsum(w for w in found if w is not None)
    if prior is not None:
        z += _logit(prior) - _logit(model.cloud_share)
    return Scored(_sigmoid(z), _strongest(names, found, top))


def _strongest(names: list[str], found: list[float | None], top: int) -> tuple[tuple[str, float], ...]:
    """The ``top`` weighted features of largest absolute weight (ties by name): a cheap pre-filter, then a sort."""
    if top <= 0:
        return ()
    for floor in (0.5, 0.2, 0.0):
        strong = [(n, w) for n, w in zip(names, found, strict=True) if w is not None and (w >= floor or w <= -floor)]
        if len(strong) >= top or floor == 0.0:
            strong.sort(key=lambda fw: (-abs(fw[1]), fw[0]))
            return tuple(strong[:top])
    return ()  # pragma: no cover - the loop always returns at floor 0


def probability(text: str, prior: float | None = None) -> float:
    """Probability that ``text`` (one user turn, on its own) needs the strong model."""
    return score(text, prior, top=0).probability


def threshold_for_share(target_share: float) -> float:
    """The threshold that would have sent ``target_share`` of the calibration sample to the strong model."""
    return quantile_threshold(_model().quantiles, target_share)


def default_threshold() -> float:
    """The decision threshold chosen at training time (recorded in the weights file)."""
    return _model().threshold


# --------------------------------------------------------------------------------------------------------------
# Conversations
# --------------------------------------------------------------------------------------------------------------


class Routed(NamedTuple):
    cloud: bool  # True: the strong model
    complexity: float  # the probability used for the decision (store it as the turn's complexity)
    own: float  # the message's own probability
    kind: str  # follow_up_kind(), "first" for the first turn
    reason: str
    why: str = ""  # the basis of the reason: the score's explanation, and the follow-up rule that applied


def _prior_complexity(turn: PriorTurn) -> float:
    value = turn.complexity
    if value is not None and not math.isnan(value):
        return min(1.0, max(0.0, value))
    # imported turn: nobody scored it; a long message is weak evidence of a hard one
    return min(0.5, max(0, turn.user_chars) / 4000.0)


def conversation_difficulty(history: Sequence[PriorTurn], decay: float | None = None) -> float:
    """The largest of the last few turns' complexities, each discounted by ``decay`` per turn back."""
    model = _model()
    d = model.decay if decay is None else decay
    best = 0.0
    for back, turn in enumerate(reversed(history[-model.lookback :])):
        best = max(best, _prior_complexity(turn) * d**back)
    return best


def route(
    text: str,
    history: Sequence[PriorTurn] = (),
    threshold: float | None = None,
    prior: float | None = None,
    *,
    decay: float | None = None,
    discount: float | None = None,
) -> Routed:
    """Decide one turn. ``history``: the session's earlier turns, oldest first (the newest last). ``decay``:
    another conversation decay than the trained one (the trainer tunes it with this)."""
    model = _model() if discount is None else _model()._replace(rewrite_discount=discount)
    cut = model.threshold if threshold is None else threshold
    d = model.decay if decay is None else decay
    scored = score(text, prior)
    own = scored.probability
    kind = model.cues.kind(text) if history else "first"
    complexity = own
    why = scored.explain()
    if kind == "reference":
        inherited = d * conversation_difficulty(history, d)
        if inherited > own:
            complexity = inherited
            why = f"builds on earlier turns (conversation {inherited:.3f}); own {why}"
    elif kind in ("social", "reformat"):
        # rewriting the previous answer or saying thanks is a cheap-model task, whatever the words look like
        complexity = own * model.rewrite_discount
        why = f"{kind} follow-up, its own complexity x {model.rewrite_discount:g}: {why}"
    elif kind == "new_topic":
        why = f"new topic, routed on its own: {why}"
    cloud = complexity >= cut
    side = "strong" if cloud else "local"
    reason = f"{MODEL_VERSION} {side}: {complexity:.3f} {'>=' if cloud else '<'} {cut:.3f}; {why}"
    return Routed(cloud=cloud, complexity=round(complexity, 4), own=round(own, 4), kind=kind, reason=reason, why=why)


def route_conversation(
    texts: Sequence[str], threshold: float | None = None, *, decay: float | None = None, discount: float | None = None
) -> list[Routed]:
    """Decide every turn of a conversation in order, each with this router's own earlier decisions as its history
    (as the service stores them): for evaluation and training, which have texts and labels but no records."""
    history: list[PriorTurn] = []
    routed: list[Routed] = []
    for text in texts:
        turn = route(text, history, threshold, decay=decay, discount=discount)
        routed.append(turn)
        history.append(
            PriorTurn(backend="cloud" if turn.cloud else "local", complexity=turn.complexity, user_chars=len(text))
        )
    return routed


def assess(prompt: str, history: Sequence[PriorTurn], threshold: float, decay: float | None = None) -> Assessment:
    """This version's view of a turn, for `decision.decide` (which applies tiers, overrides and switches).

    ``decay`` is the service's ``follow_up_decay`` (tuned for rules-v1); learned-v1 uses its own trained decay.
    """
    routed = route(prompt, history, threshold)
    follow_up = routed.kind == "reference" and routed.complexity > routed.own
    signals = (routed.kind,) if routed.kind not in ("none", "first") else ()
    return Assessment(
        routed.complexity, f"{MODEL_VERSION} complexity {routed.complexity:.3f} ({routed.why})", "", follow_up, signals
    )
