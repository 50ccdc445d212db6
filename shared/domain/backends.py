"""The backends a deployment may configure, and the routes a client may ask for."""

from __future__ import annotations

from collections.abc import Collection

BACKENDS: tuple[str, ...] = ("local", "cloud", "foundry", "apim")
STRONG_BACKENDS: tuple[str, ...] = ("cloud", "foundry", "apim")
ROUTES: tuple[str, ...] = ("auto", *BACKENDS)


def canonical(configured: Collection[str]) -> tuple[str, ...]:
    """Configured backends in canonical order (`configured` may be a set, whose order is not reproducible)."""
    return tuple(backend for backend in BACKENDS if backend in configured)
