"""Feedback on turns: stored with the session under its lease (Blob, the source of truth), then mirrored, without
its comment, on the turn's Cosmos document for analytics and calibration (reconcile repairs a failed mirror)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shared.config import Settings
from shared.domain.clock import utc_iso, utc_now
from shared.domain.errors import TurnNotFound
from shared.domain.feedback import Feedback
from shared.domain.ids import validate_id
from shared.storage.metadata import MetadataStore
from shared.storage.snapshots import SnapshotStore

logger = logging.getLogger(__name__)


@dataclass
class TurnFeedback:
    settings: Settings
    snapshots: SnapshotStore
    metadata: MetadataStore
    clock: Callable[[], datetime] = utc_now

    def __post_init__(self) -> None:
        self._redactor = self.settings.redactor

    async def give(
        self,
        owner: str,
        session_id: str,
        turn: int,
        *,
        rating: str,
        preferred_backend: str | None = None,
        comment: str | None = None,
    ) -> Feedback:
        """Store feedback on `turn` of the owner's session, replacing any earlier; TurnNotFound if there is none.
        The comment is masked like a message when PII_REDACTION is on."""
        validate_id(owner, "owner")
        validate_id(session_id)
        if comment is not None and self._redactor is not None:
            comment, _ = self._redactor.redact(comment)
        feedback = Feedback(rating, utc_iso(self.clock()), preferred_backend, comment)
        async with self.snapshots.opened(owner, session_id) as (lock, snapshot):
            if not 1 <= turn <= snapshot.turns:
                raise TurnNotFound(session_id, turn)
            await self.snapshots.append_feedback(lock, snapshot, turn, feedback)
        try:
            await self.metadata.turns.put(owner, session_id, snapshot.entries[turn - 1].record, feedback)
        except Exception:  # noqa: BLE001 - logged; the feedback is durable in Blob, reconcile mirrors it
            logger.exception("feedback on turn %d of session %s saved, but its metadata write failed", turn, session_id)
        return feedback
