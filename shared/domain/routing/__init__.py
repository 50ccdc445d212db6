"""Routing of one chat turn to a model backend: pure, deterministic, and explained.

Why a hand-written scorer instead of a classifier model: the decision runs on every turn, must cost far less
than a millisecond, must be explainable in analytics ("why did this go to the expensive model?") and must be
deterministic so that a stored turn record can be reproduced from its prompt and ``ROUTER_VERSION``.

Modules: `vocabulary` (the cue tables, as data), `rules` (the rules-v1 complexity score), `followups` (small
talk and follow-up cues) and `decision` (tiers, overrides, switches and the fallback chain). Everything here
is pure: no I/O, no clock, no randomness, no module state that changes.
"""

from shared.domain.backends import BACKENDS, ROUTES, STRONG_BACKENDS
from shared.domain.errors import BackendNotConfigured, NoBackendConfigured, RoutingError, UnknownRoute
from shared.domain.routing.decision import Decision, PriorTurn, RouterConfig, decide, fallback_chain
from shared.domain.routing.rules import ROUTER_VERSION, WEIGHTS, score

__all__ = [
    "BACKENDS",
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
    "score",
]
