"""Routing of one chat turn to a model backend: pure, deterministic, and explained.

The decision runs on every turn, so it must cost far less than a millisecond, be explainable in analytics
("why did this go to the expensive model?") and be deterministic, so that a stored turn record can be reproduced
from its prompt and its ``router_version``. Two versions ship:

- ``learned-v1`` (the default): a logistic regression over readable features, trained offline on a labelled
  public corpus (``python -m tools.train_router``), weights in ``learned-v1.json``; ``learned.py``.
- ``rules-v1``: the hand-written scorer: ``rules.py`` (seven signal families), ``followups.py`` (small talk and
  follow-up cues), ``vocabulary.py`` + ``rules-v1.toml`` (its cue tables, as data), ``rules_router.py``.

``decision.py`` applies what both share: thresholds and calibration, tiers, overrides, switches, shadow
decisions and the fallback chain. Everything here is pure: the data files are read once; no I/O otherwise, no
clock, no randomness, no module state that changes.
"""

from shared.domain.backends import BACKENDS, ROUTES, STRONG_BACKENDS
from shared.domain.errors import BackendNotConfigured, NoBackendConfigured, RoutingError, UnknownRoute
from shared.domain.routing.decision import (
    DEFAULT_VERSION,
    VERSIONS,
    Decision,
    RouterConfig,
    decide,
    fallback_chain,
    redirected,
    shadow_decision,
)
from shared.domain.routing.rules import ROUTER_VERSION, WEIGHTS, score
from shared.domain.routing.types import PriorTurn

__all__ = [
    "BACKENDS",
    "DEFAULT_VERSION",
    "VERSIONS",
    "ROUTER_VERSION",
    "ROUTES",
    "STRONG_BACKENDS",
    "WEIGHTS",
    "BackendNotConfigured",
    "Decision",
    "NoBackendConfigured",
    "PriorTurn",
    "RouterConfig",
    "RoutingError",
    "UnknownRoute",
    "decide",
    "fallback_chain",
    "redirected",
    "score",
    "shadow_decision",
]
