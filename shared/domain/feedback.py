"""Feedback on a turn: thumbs up or down, optionally the backend the user would have preferred and a comment.

One per turn (a repeat replaces it). It is part of the session's data: stored with the snapshot (Blob, the
source of truth), mirrored without its comment on the turn's Cosmos document (for analytics and calibration),
exported, imported, forked with the turns it is about, and erased with the session.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.domain.backends import BACKENDS

RATINGS = ("up", "down")
COMMENT_MAX_CHARS = 2000


@dataclass(frozen=True)
class Feedback:
    rating: str
    at: str
    preferred_backend: str | None = None
    comment: str | None = None

    def __post_init__(self) -> None:
        if self.rating not in RATINGS:
            raise ValueError(f"rating must be one of {', '.join(RATINGS)}, got {self.rating!r}")
        if self.preferred_backend is not None and self.preferred_backend not in BACKENDS:
            raise ValueError(f"preferred_backend must be one of {', '.join(BACKENDS)}")
        if self.comment is not None and len(self.comment) > COMMENT_MAX_CHARS:
            raise ValueError(f"comment must be at most {COMMENT_MAX_CHARS} characters")

    def to_dict(self, *, comment: bool = True) -> dict[str, Any]:
        """The stored form; without the comment where only the rating is needed (Cosmos, analytics)."""
        data: dict[str, Any] = {"rating": self.rating, "preferred_backend": self.preferred_backend, "at": self.at}
        if comment and self.comment is not None:
            data["comment"] = self.comment
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Feedback:
        return cls(
            rating=str(data["rating"]),
            at=str(data.get("at", "")),
            preferred_backend=data.get("preferred_backend"),
            comment=data.get("comment"),
        )


def feedback_summary(rated: Iterable[tuple[str | None, Feedback]]) -> dict[str, Any]:
    """Counts of ups and downs, in all and by the backend that answered the rated turn."""
    summary: dict[str, Any] = {"up": 0, "down": 0, "by_backend": {}}
    for backend, feedback in rated:
        summary[feedback.rating] += 1
        if backend is not None:
            bucket = summary["by_backend"].setdefault(backend, {"up": 0, "down": 0})
            bucket[feedback.rating] += 1
    return summary
