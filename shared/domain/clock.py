"""Time as stored: fixed-width UTC ISO strings, and the one source of "now" that services take as a default."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The default clock of every service (tests pass their own)."""
    return datetime.now(UTC)


def utc_iso(moment: datetime) -> str:
    """Fixed-width UTC timestamps, so that string order is time order (Cosmos ORDER BY, blob tags)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_day(timestamp: str) -> str:
    """The UTC day (YYYY-MM-DD) of a stored timestamp (`utc_iso` is fixed width: its first ten characters)."""
    return timestamp[:10]


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
