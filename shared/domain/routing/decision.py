"""The routing decision: which backend answers a turn, why, and which ones to try after it if it fails.

A turn's complexity (from `rules.py`) picks a tier: below ``local_threshold`` the local backend, else the first
configured strong backend in ``strong_order``. A follow-up (`followups.py`) inherits
``max(own complexity, previous complexity * follow_up_decay)`` and stays on the previous turn's backend when
that backend serves the resulting tier; the decay lets a long chain of trivial follow-ups drift back to the
cheap tier. A user's explicit route wins, and the reason says what auto would have chosen.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from shared.domain.backends import BACKENDS, ROUTES, STRONG_BACKENDS, canonical
from shared.domain.errors import BackendNotConfigured, NoBackendConfigured, UnknownRoute
from shared.domain.routing.followups import follow_up_cue, is_small_talk, opening_words
from shared.domain.routing.rules import ROUTER_VERSION, Analysis, analyze, length_contribution


@dataclass(frozen=True)
class RouterConfig:
    """Tunables, read from settings once; validated here so a typo in an app setting fails at start-up."""

    local_threshold: float = 0.45
    strong_order: tuple[str, ...] = ("cloud", "foundry", "apim")
    fallback_order: tuple[str, ...] = ("cloud", "foundry", "apim", "local")
    # How much of the previous turn's complexity a follow-up inherits. Below 1 so that a long chain of trivial
    # follow-ups ("shorter", "and in French?", ...) eventually returns to the cheap tier.
    follow_up_decay: float = 0.9

    def __post_init__(self) -> None:
        if not _is_unit(self.local_threshold):
            raise ValueError(f"local_threshold must be within [0, 1], got {self.local_threshold!r}")
        if not _is_unit(self.follow_up_decay):
            raise ValueError(f"follow_up_decay must be within [0, 1], got {self.follow_up_decay!r}")
        _check_order("strong_order", self.strong_order, STRONG_BACKENDS)
        _check_order("fallback_order", self.fallback_order, BACKENDS)


@dataclass(frozen=True)
class PriorTurn:
    """What the router needs from one earlier turn record of the session (history is ordered newest last)."""

    backend: str | None  # None for turns imported from elsewhere: nobody routed them
    complexity: float | None  # None when unknown (imported turns)
    user_chars: int = 0  # length of that turn's user message; a lower bound for an unknown complexity


@dataclass(frozen=True)
class Decision:
    """The routing outcome, stored with the turn record and shown in analytics."""

    backend: str
    complexity: float  # in [0, 1], rounded to 3 decimals; for follow-ups the inherited value
    reason: str
    router_version: str
    signals: tuple[str, ...]
    switched_from: str | None
    follow_up: bool


def _is_unit(value: float) -> bool:
    return isinstance(value, int | float) and not math.isnan(value) and 0.0 <= value <= 1.0


def _check_order(name: str, order: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    unknown = [b for b in order if b not in allowed]
    if unknown:
        raise ValueError(f"{name} contains unknown backends {unknown}; allowed: {', '.join(allowed)}")
    if len(set(order)) != len(order):
        raise ValueError(f"{name} lists a backend twice: {order}")


def fmt(value: float) -> str:
    """0.72 -> "0.72", 0.7 -> "0.7", 0.449 -> "0.449": short, and exact for values already rounded to 3 places."""
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _prior_complexity(turn: PriorTurn) -> float:
    """The previous turn's complexity; for an imported turn the length signal of its message as a lower bound."""
    value = turn.complexity
    if value is not None and not math.isnan(value):
        return min(1.0, max(0.0, value))
    return length_contribution(0, max(0, turn.user_chars))


@dataclass(frozen=True)
class _Tiered:
    backend: str
    explanation: str  # what follows the complexity, e.g. ">= 0.45: strong backend cloud"


def _pick(complexity: float, available: tuple[str, ...], config: RouterConfig, sticky: str | None) -> _Tiered:
    """Apply the tier rules to ``complexity``; ``sticky`` is the backend a follow-up should stay on if possible."""
    threshold = fmt(config.local_threshold)
    preference = config.strong_order + tuple(b for b in STRONG_BACKENDS if b not in config.strong_order)
    strong = tuple(b for b in preference if b in available)

    def strong_choice() -> tuple[str, str]:
        if sticky in strong:
            return sticky, " (stays on the previous turn's backend)"
        return strong[0], ""

    if complexity < config.local_threshold:
        if "local" in available:
            return _Tiered("local", f"< {threshold}: local backend")
        backend, note = strong_choice()
        return _Tiered(backend, f"< {threshold} but no local backend is configured: strong backend {backend}{note}")
    if strong:
        backend, note = strong_choice()
        return _Tiered(backend, f">= {threshold}: strong backend {backend}{note}")
    return _Tiered("local", f">= {threshold} but no strong backend is configured: local backend")


@dataclass(frozen=True)
class _Assessed:
    """The turn's complexity and how it came about: its own, or inherited as a follow-up."""

    complexity: float
    basis: str  # "complexity 0.72 (code block, ...)" or the follow-up's arithmetic
    context: str  # why a low score did not inherit, when that matters ("; not a follow-up")
    follow_up: bool


def _assess(prompt: str, analysis: Analysis, previous: PriorTurn | None, config: RouterConfig) -> _Assessed:
    own = analysis.complexity
    opening = opening_words(prompt)
    cue = follow_up_cue(opening) if previous is not None else None
    if previous is not None and cue is not None:
        prior = _prior_complexity(previous)
        complexity = max(own, round(prior * config.follow_up_decay, 3))
        source = f"a turn on {previous.backend}" if previous.backend is not None else "an imported turn"
        basis = (
            f"follow-up to {source} ({cue}): complexity {fmt(complexity)} = max(own {fmt(own)} "
            f"({analysis.details()}), previous {fmt(prior)} * {fmt(config.follow_up_decay)})"
        )
        return _Assessed(complexity, basis, "", True)
    context = ""
    if previous is not None and own < config.local_threshold:
        # Only where inheriting would have mattered: it explains leaving a strong backend after a hard turn.
        context = "; small talk needs no context" if is_small_talk(opening) else "; not a follow-up"
    return _Assessed(own, f"complexity {fmt(own)} ({analysis.details()})", context, False)


def _check_route(route: str, configured: Collection[str]) -> tuple[str, ...]:
    if route not in ROUTES:
        raise UnknownRoute(route)
    available = canonical(configured)
    if not available:
        raise NoBackendConfigured()
    if route != "auto" and route not in available:
        raise BackendNotConfigured(route, configured)
    return available


def decide(
    prompt: str,
    history: Sequence[PriorTurn],
    configured: Collection[str],
    config: RouterConfig,
    route: str = "auto",
) -> Decision:
    """Choose the backend for ``prompt``.

    ``history`` holds the session's earlier turns, newest last. A follow-up builds on the newest turn's
    complexity; the previous backend is that of the newest turn that has one (imported turns have none).
    ``configured`` names the backends that have an endpoint. ``route`` is the user's explicit
    choice, "auto" for the rules.

    Raises ``UnknownRoute`` or ``BackendNotConfigured`` (both ``ValueError``: the client's fault) and
    ``NoBackendConfigured`` (``RuntimeError``: the deployment's fault).
    """
    available = _check_route(route, configured)
    analysis = analyze(prompt)
    assessed = _assess(prompt, analysis, history[-1] if history else None, config)
    # Imported turns were routed by nobody: the backend to stay on, or to have switched from, is the newest real one.
    previous_backend = next((turn.backend for turn in reversed(history) if turn.backend is not None), None)
    auto = _pick(assessed.complexity, available, config, previous_backend if assessed.follow_up else None)
    basis, context = assessed.basis, assessed.context
    if route != "auto":
        backend = route
        auto_text = f"auto would choose {auto.backend}" if auto.backend != route else "auto agrees"
        reason = f"user override: {route} ({auto_text}: {basis} {auto.explanation}){context}"
    elif len(available) == 1:
        backend = available[0]
        reason = f"only backend configured: {backend} ({basis}){context}"
    else:
        backend = auto.backend
        reason = f"{basis} {auto.explanation}{context}"
    switched_from = previous_backend if previous_backend is not None and previous_backend != backend else None
    if switched_from is not None:
        gone = "" if switched_from in available else ", which is no longer configured"
        reason += f"; switched from {switched_from}{gone}"
    return Decision(
        backend=backend,
        complexity=round(assessed.complexity, 3),
        reason=reason,
        router_version=ROUTER_VERSION,
        signals=analysis.signals + (("follow_up",) if assessed.follow_up else ()),
        switched_from=switched_from,
        follow_up=assessed.follow_up,
    )


def fallback_chain(chosen: str, configured: Collection[str], config: RouterConfig) -> tuple[str, ...]:
    """Backends to try, in order, after ``chosen`` failed: configured ones only, never ``chosen`` itself.

    ``config.fallback_order`` first; configured backends it does not mention follow in canonical order, so an
    incomplete ROUTER_FALLBACK_ORDER never silently disables a configured backend.
    """
    available = canonical(configured)
    ordered = [b for b in config.fallback_order if b in available and b != chosen]
    rest = [b for b in available if b not in config.fallback_order and b != chosen]
    return tuple(ordered + rest)
