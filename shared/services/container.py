"""The services of one worker process, as the composition root built them: what the HTTP handlers and the
timer are given. Every field is built once per process (see `shared.app`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.agents.backends import Backend
from shared.config import Settings
from shared.services.audit import AuditLog
from shared.services.completions import ChatCompletions
from shared.services.conversations import Conversations
from shared.services.erasure import Erasure
from shared.services.feedback import TurnFeedback
from shared.services.reconcile import Reconciler
from shared.services.retention import Retention
from shared.services.transfer import SessionTransfer
from shared.storage.metadata import MetadataStore
from shared.storage.snapshots import SnapshotStore

logger = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[Any]]


@dataclass
class Services:
    settings: Settings
    snapshots: SnapshotStore
    metadata: MetadataStore
    backends: Mapping[str, Backend]
    conversations: Conversations
    transfer: SessionTransfer
    audit: AuditLog
    erasure: Erasure
    reconcile: Reconciler
    retention: Retention
    feedback: TurnFeedback
    completions: ChatCompletions
    started_at: datetime
    closers: list[Closer] = field(default_factory=list, repr=False)

    async def close(self) -> None:
        await close_all(self.closers)


async def close_all(closers: list[Closer]) -> None:
    """Close clients in reverse order of creation; closing is best effort."""
    for closer in reversed(closers):
        try:
            await closer()
        except Exception:  # noqa: BLE001 - closing is best effort
            logger.warning("a client did not close cleanly", exc_info=True)
