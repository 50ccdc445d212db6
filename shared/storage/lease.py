"""The session lease: a 60 s blob lease on the session's snapshot, held for one turn and renewed while it runs.

A second turn on the same session is refused (SessionBusy) when it asks for the lease, before its model is
called. A lease that lapses (a worker paused past it) is not relied on alone: every write of a turn is also
conditioned on what the turn read (the snapshot's and the journal's ETags, the append position).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob.aio import BlobClient, BlobLeaseClient

from shared.aio import finish
from shared.domain.errors import SessionBusy, SessionNotFound

logger = logging.getLogger(__name__)

LEASE_SECONDS = 60
LEASE_RENEW_SECONDS = 20


@dataclass
class SessionLock:
    """A held lease on a session's snapshot blob; renewed in the background while a turn runs.

    `release` may come early (a turn releases once its entry is saved, beside its metadata writes) and may come
    twice: only the first one sends anything."""

    lease: BlobLeaseClient
    session_id: str = ""
    renewer: asyncio.Task[None] | None = None
    released: bool = False

    async def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.renewer is not None:
            self.renewer.cancel()
        # Completes even when a client hanging up mid-stream cancels this task: otherwise the session would stay
        # blocked until the lease lapses.
        await finish(_release(self.lease, self.session_id))


async def acquire(snapshot: BlobClient, session_id: str) -> SessionLock:
    """The session's lease, renewed until released; SessionBusy at once if another turn holds it, SessionNotFound
    if there is no such session."""
    lease = BlobLeaseClient(snapshot)
    try:
        await lease.acquire(lease_duration=LEASE_SECONDS)
    except ResourceNotFoundError:
        raise SessionNotFound(session_id) from None
    except HttpResponseError as exc:
        if exc.status_code == 409:
            raise SessionBusy(session_id) from None
        raise
    lock = SessionLock(lease, session_id)
    lock.renewer = asyncio.create_task(_renew(lease, session_id))
    return lock


async def _renew(lease: BlobLeaseClient, session_id: str) -> None:
    """Keep the lease while the turn runs. A transient failure is retried at the next interval (the lease is
    still valid for LEASE_SECONDS after the last success); a lost lease stops renewing, and the conditions on
    every write still refuse a save that lost it."""
    while True:
        await asyncio.sleep(LEASE_RENEW_SECONDS)
        try:
            await lease.renew()
        except HttpResponseError as exc:
            if exc.status_code in (409, 412):
                logger.warning("lost the lease on session %s", session_id)
                return
            logger.warning("could not renew the lease on session %s (HTTP %s)", session_id, exc.status_code)
        except AzureError:
            logger.warning("could not renew the lease on session %s (storage unreachable)", session_id)


async def _release(lease: BlobLeaseClient, session_id: str) -> None:
    try:
        await lease.release()
    except ResourceNotFoundError:
        logger.info("session %s was deleted while held", session_id)
    except AzureError:
        # Expired, taken over, or storage unreachable: the lease lapses by itself within LEASE_SECONDS.
        logger.warning("could not release the lease on session %s", session_id)
