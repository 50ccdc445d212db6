"""The routing decision: which backend answers a turn, why, and which ones to try after it if it fails.

A router version (`learned-v1` by default, `rules-v1` the hand-written one) assesses the turn's complexity,
inheriting the conversation's difficulty for a follow-up. The complexity picks a tier: below the threshold the
local backend, else the first configured strong backend in ``strong_order`` (a follow-up stays on the previous
turn's backend when that backend serves the tier). The threshold is ``local_threshold`` when set, else the one
that sends ``target_cloud_share`` of the version's calibration sample to the strong tier, else the version's own.
A user's explicit route wins, and the reason says what auto would have chosen. ``shadow`` names another version
whose choice is recorded beside the real one, to compare versions on real traffic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from shared.domain.backends import BACKENDS, ROUTES, STRONG_BACKENDS, canonical
from shared.domain.errors import BackendNotConfigured, NoBackendConfigured, UnknownRoute
from shared.domain.routing import learned, rules_router
from shared.domain.routing.rules_router import fmt
from shared.domain.routing.types import Assessment, PriorTurn


@dataclass(frozen=True)
class RouterVersion:
    """One router version behind the interface `decide` needs."""

    name: str
    assess: Callable[[str, Sequence[PriorTurn], float, float], Assessment]
    default_threshold: Callable[[], float]
    threshold_for_share: Callable[[float], float]


VERSIONS: Mapping[str, RouterVersion] = {
    version.name: version
    for version in (
        RouterVersion(learned.MODEL_VERSION, learned.assess, learned.default_threshold, learned.threshold_for_share),
        RouterVersion(
            rules_router.VERSION,
            rules_router.assess,
            lambda: rules_router.DEFAULT_THRESHOLD,
            rules_router.threshold_for_share,
        ),
    )
}
DEFAULT_VERSION = learned.MODEL_VERSION


@dataclass(frozen=True)
class RouterConfig:
    """Tunables, read from settings once; validated here so a typo in an app setting fails at start-up."""

    local_threshold: float | None = None  # None: from target_cloud_share, else the version's own threshold
    strong_order: tuple[str, ...] = ("cloud", "foundry", "apim")
    fallback_order: tuple[str, ...] = ("cloud", "foundry", "apim", "local")
    # How much of the previous turn's complexity a follow-up inherits (rules-v1). Below 1 so that a long chain of
    # trivial follow-ups ("shorter", "and in French?", ...) eventually returns to the cheap tier.
    follow_up_decay: float = 0.9
    version: str = DEFAULT_VERSION
    target_cloud_share: float | None = None
    shadow: str | None = None

    def __post_init__(self) -> None:
        for name in ("local_threshold", "follow_up_decay", "target_cloud_share"):
            value = getattr(self, name)
            if value is not None and not _is_unit(value):
                raise ValueError(f"{name} must be within [0, 1], got {value!r}")
        if self.local_threshold is not None and self.target_cloud_share is not None:
            raise ValueError("set local_threshold or target_cloud_share, not both")
        for name in ("version", "shadow"):
            value = getattr(self, name)
            if value is not None and value not in VERSIONS:
                raise ValueError(f"{name} must be one of {', '.join(VERSIONS)}, got {value!r}")
        _check_order("strong_order", self.strong_order, STRONG_BACKENDS)
        _check_order("fallback_order", self.fallback_order, BACKENDS)

    def threshold(self, version: str | None = None) -> float:
        """The complexity at and above which `version` (default: this config's) sends a turn to a strong backend.

        An explicit `local_threshold` is on the scale of this config's version only: the shadow, another version,
        keeps its own threshold (or the one for the target share), so shadow agreement compares each at its best."""
        name = version or self.version
        router = VERSIONS[name]
        if self.local_threshold is not None and name == self.version:
            return self.local_threshold
        if self.target_cloud_share is not None:
            return round(router.threshold_for_share(self.target_cloud_share), 4)
        return router.default_threshold()


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
    auto_backend: str | None = None  # what the router itself chose (differs from `backend` under an override)


def _is_unit(value: float) -> bool:
    return isinstance(value, int | float) and not math.isnan(value) and 0.0 <= value <= 1.0


def _check_order(name: str, order: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    unknown = [b for b in order if b not in allowed]
    if unknown:
        raise ValueError(f"{name} contains unknown backends {unknown}; allowed: {', '.join(allowed)}")
    if len(set(order)) != len(order):
        raise ValueError(f"{name} lists a backend twice: {order}")


@dataclass(frozen=True)
class _Tiered:
    backend: str
    explanation: str  # what follows the complexity, e.g. ">= 0.45: strong backend cloud"


def _pick(
    complexity: float, threshold: float, available: tuple[str, ...], config: RouterConfig, sticky: str | None
) -> _Tiered:
    """Apply the tier rules to ``complexity``; ``sticky`` is the backend a follow-up should stay on if possible."""
    shown = fmt(threshold)
    preference = config.strong_order + tuple(b for b in STRONG_BACKENDS if b not in config.strong_order)
    strong = tuple(b for b in preference if b in available)

    def strong_choice() -> tuple[str, str]:
        if sticky in strong:
            return sticky, " (stays on the previous turn's backend)"
        return strong[0], ""

    if complexity < threshold:
        if "local" in available:
            return _Tiered("local", f"< {shown}: local backend")
        backend, note = strong_choice()
        return _Tiered(backend, f"< {shown} but no local backend is configured: strong backend {backend}{note}")
    if strong:
        backend, note = strong_choice()
        return _Tiered(backend, f">= {shown}: strong backend {backend}{note}")
    return _Tiered("local", f">= {shown} but no strong backend is configured: local backend")


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
    *,
    version: str | None = None,
) -> Decision:
    """Choose the backend for ``prompt``.

    ``history`` holds the session's earlier turns, newest last. A follow-up builds on the conversation's
    complexity; the previous backend is that of the newest turn that has one (imported turns have none).
    ``configured`` names the backends that have an endpoint. ``route`` is the user's explicit choice, "auto" for
    the router. ``version`` picks another router version than the config's (the shadow's).

    Raises ``UnknownRoute`` or ``BackendNotConfigured`` (both ``ValueError``: the client's fault) and
    ``NoBackendConfigured`` (``RuntimeError``: the deployment's fault).
    """
    available = _check_route(route, configured)
    name = version or config.version
    threshold = config.threshold(name)
    assessed = VERSIONS[name].assess(prompt, history, threshold, config.follow_up_decay)
    # Imported turns were routed by nobody: the backend to stay on, or to have switched from, is the newest real one.
    previous_backend = next((turn.backend for turn in reversed(history) if turn.backend is not None), None)
    auto = _pick(assessed.complexity, threshold, available, config, previous_backend if assessed.follow_up else None)
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
        router_version=name,
        signals=assessed.signals,
        switched_from=switched_from,
        follow_up=assessed.follow_up,
        auto_backend=auto.backend,
    )


def redirected(decision: Decision, backend: str, why: str, previous_backend: str | None) -> Decision:
    """The decision sent to `backend` instead, for a reason of the service's own (a budget): the reason says why,
    and the switch from the previous turn's backend is told for the backend that will really answer."""
    reason = decision.reason
    if decision.switched_from is not None:
        reason = reason.rsplit("; switched from ", 1)[0]
    reason += f"; {why}"
    switched_from = previous_backend if previous_backend is not None and previous_backend != backend else None
    if switched_from is not None:
        reason += f"; switched from {switched_from}"
    return replace(decision, backend=backend, reason=reason, switched_from=switched_from)


def shadow_decision(
    prompt: str, history: Sequence[PriorTurn], configured: Collection[str], config: RouterConfig
) -> Decision | None:
    """What the shadow version would have chosen on its own (auto), or None when no shadow is configured."""
    if config.shadow is None:
        return None
    return decide(prompt, history, configured, config, version=config.shadow)


def fallback_chain(chosen: str, configured: Collection[str], config: RouterConfig) -> tuple[str, ...]:
    """Backends to try, in order, after ``chosen`` failed: configured ones only, never ``chosen`` itself.

    ``config.fallback_order`` first; configured backends it does not mention follow in canonical order, so an
    incomplete ROUTER_FALLBACK_ORDER never silently disables a configured backend.
    """
    available = canonical(configured)
    ordered = [b for b in config.fallback_order if b in available and b != chosen]
    rest = [b for b in available if b not in config.fallback_order and b != chosen]
    return tuple(ordered + rest)
