"""The service's one exception hierarchy: every failure it raises on purpose is a `ServiceError`.

Each class also derives from the built-in exception whose meaning it shares (`ValueError` for a caller's bad
input, `LookupError` for a missing session, `RuntimeError` for a state the caller can wait out), so generic
handlers keep working. The HTTP layer maps each class to one status (see `shared.http.errors`); nothing here
knows about HTTP. `status` attributes are read by the audit log to name an outcome without HTTP types.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from shared.domain.backends import ROUTES, canonical

if TYPE_CHECKING:
    from shared.domain.budget import Exhausted
    from shared.domain.records import Attempt


class ServiceError(Exception):
    """Base class: catch every deliberate failure of the service in one place."""


# ---- the caller's input --------------------------------------------------------------------------------------


class InvalidRequest(ServiceError, ValueError):
    """The caller sent something this service refuses; `field` names where, when known."""

    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidMessage(InvalidRequest):
    """A chat message that is not a non-empty string within MESSAGE_MAX_CHARS."""

    def __init__(self, reason: str, field_name: str = "message") -> None:
        super().__init__(reason, field_name)

    @property
    def too_long(self) -> bool:
        return "longer than" in str(self)


class ContextTooLarge(InvalidRequest):
    """The message and the conversation's instructions alone exceed the backend's context window (less the
    answer's reserve): no history could be sent beside them. Refused before any model call."""

    status = 413

    def __init__(self, backend: str, window: int, reserve: int, needed: int) -> None:
        super().__init__(
            f"the message and the conversation's instructions need about {needed} tokens, but the {backend} "
            f"backend's context window of {window} tokens keeps {reserve} for the answer and so takes at most "
            f"{window - reserve}; send a shorter message or route to a backend with a larger window",
            "message",
        )
        self.backend = backend
        self.window = window
        self.needed = needed


class InvalidCursor(InvalidRequest):
    """A continuation token that this service did not issue."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "continuation")


class InvalidImport(InvalidRequest):
    """The import data is not acceptable; `field` says where (`data[3].role`). Nothing was written."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}", field)


class InvalidFork(InvalidRequest):
    """The fork point is outside the session; `field` is the request field (`at_turn`)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}", field)


# ---- sessions ------------------------------------------------------------------------------------------------


class SessionNotFound(ServiceError, LookupError):
    """No session with this id for this owner (also what another owner's session looks like)."""

    status = 404


class TurnNotFound(ServiceError, LookupError):
    """The session has no such turn."""

    status = 404

    def __init__(self, session_id: str, turn: int) -> None:
        super().__init__(f"session {session_id} has no turn {turn}")
        self.turn = turn


class SessionBusy(ServiceError, RuntimeError):
    """Another turn holds the session; the caller should retry shortly."""

    status = 409
    retry_after_seconds = 2


class SessionConflict(ServiceError, RuntimeError):
    """The session changed since it was read (a lost lease or a racing creation); nothing was written."""

    status = 409


class SessionExists(ServiceError, RuntimeError):
    """The caller already has a session with the requested id; nothing was written."""

    status = 409

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id} already exists")
        self.session_id = session_id


class SnapshotCorrupt(ServiceError, RuntimeError):
    """A stored document cannot be read (unknown schema version, bad gzip, broken turn sequence)."""


# ---- routing -------------------------------------------------------------------------------------------------


class RoutingError(ServiceError):
    """Base class of the router's refusals."""


class UnknownRoute(RoutingError, ValueError):
    """The client asked for a route that does not exist: a client error (HTTP 422), not a server fault."""

    def __init__(self, route: str) -> None:
        self.route = route
        self.allowed: tuple[str, ...] = ROUTES
        super().__init__(f"unknown route {route!r}; allowed routes: {', '.join(ROUTES)}")


class UnknownModel(RoutingError, LookupError):
    """An OpenAI client asked for a model this deployment does not serve (`auto` or a configured backend)."""

    status = 404

    def __init__(self, model: str, served: Collection[str]) -> None:
        self.model = model
        self.served = tuple(served)
        super().__init__(f"The model {model!r} does not exist; this router serves {', '.join(self.served)}.")


class BackendNotConfigured(RoutingError, ValueError):
    """The client overrode the route to a backend this deployment does not have.

    It carries the configured backends so that the HTTP layer can tell the user what they may choose instead.
    """

    def __init__(self, route: str, configured: Collection[str]) -> None:
        self.route = route
        self.configured: tuple[str, ...] = canonical(configured)
        names = ", ".join(self.configured) or "none"
        super().__init__(f"backend {route!r} is not configured; configured backends: {names}")


class NoBackendConfigured(RoutingError, RuntimeError):
    """No backend at all is configured: a deployment fault (HTTP 503), not something the user can fix."""

    def __init__(self) -> None:
        super().__init__(
            "no model backend is configured; set at least one of LOCAL_, CLOUD_, FOUNDRY_ or APIM_MODEL_ENDPOINT"
        )


# ---- model calls ---------------------------------------------------------------------------------------------


class ModelCallError(ServiceError, RuntimeError):
    """A backend failed in a way that another backend may not (the turn falls back on these)."""

    def __init__(self, backend: str, kind: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(f"{backend}: {kind}" + (f" (HTTP {status})" if status else ""))
        self.backend = backend
        self.kind = kind
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Worth trying another backend: down, slow, overloaded, the request too long for this model's window,
        or not called at all (REFUSALS). Another 400 would fail anywhere."""
        return self.about_backend or self.kind in ("context_length", *REFUSALS)

    @property
    def about_backend(self) -> bool:
        """Says something about the backend's health (a circuit breaker counts it): not a refusal to call it,
        and not a request this model could not take (too long for its window, or otherwise rejected)."""
        return self.kind in ("connection", "timeout", "rate_limited", "server", "auth")


# Kinds of a backend the turn did not call: cooling down after failures, or over the owner's budget.
REFUSALS = ("cooldown", "budget")


class AllBackendsFailed(ServiceError, RuntimeError):
    """Every backend in the chain failed or was skipped; carries the last error that decides the answer (for
    502/503/504 and Retry-After) and notes on the skipped ones."""

    def __init__(self, attempts: Sequence[Attempt], last: ModelCallError, notes: Sequence[str] = ()) -> None:
        super().__init__(f"every backend failed: {', '.join(a.backend + '=' + a.error for a in attempts)}")
        self.attempts = tuple(attempts)
        self.last = last
        self.notes = tuple(notes)


class BudgetExceeded(ServiceError, RuntimeError):
    """The owner's budget leaves no room for the paid backend the turn needs (HTTP 429 until the period resets)."""

    status = 429

    def __init__(self, backend: str, exhausted: Exhausted) -> None:
        super().__init__(f"the {backend} backend is not allowed: {exhausted.describe()}")
        self.backend = backend
        self.exhausted = exhausted


class StreamBroken(ServiceError, RuntimeError):
    """The model failed after part of the answer was sent; nothing was stored."""

    def __init__(self, error: ModelCallError) -> None:
        super().__init__(str(error))
        self.error = error
