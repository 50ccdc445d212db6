"""The composition root: every client and service of a worker process, built once, lazily, on first use.

Nothing here runs at import time, so importing `function_app` does no network I/O and a bad setting fails at
the first request with a message naming it (and in the worker's start log). `build_services` wires the
layers explicitly: stores from `shared.storage`, agents from `shared.agents`, services from
`shared.services`, each given exactly what it uses.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from shared.agents.backends import COGNITIVE_SERVICES_SCOPE, build_backends
from shared.agents.instrumentation import configure_agent_framework
from shared.config import Settings, get_settings
from shared.domain.clock import utc_now
from shared.observability import setup as telemetry
from shared.services.audit import AuditLog
from shared.services.completions import ChatCompletions
from shared.services.container import Closer, Services, close_all
from shared.services.conversations import Conversations
from shared.services.erasure import Erasure
from shared.services.feedback import TurnFeedback
from shared.services.reconcile import Reconciler
from shared.services.retention import JobReport, Retention, RetentionPolicy
from shared.services.transfer import SessionTransfer
from shared.storage.clients import open_storage

__all__ = ["Services", "build_services", "close_services", "get_services", "run_retention"]

logger = logging.getLogger(__name__)


def configure_telemetry(settings: Settings) -> None:
    """Export when configured, and the content switch for our spans and for Agent Framework's."""
    telemetry.configure(settings)
    configure_agent_framework(settings.telemetry_include_content)


def make_credential(settings: Settings) -> Any:
    """Managed identity in Azure (the user-assigned one named by AZURE_CLIENT_ID), developer logins locally."""
    from azure.identity.aio import (
        AzureCliCredential,
        AzureDeveloperCliCredential,
        ChainedTokenCredential,
        ManagedIdentityCredential,
    )

    if settings.azure_client_id:
        return ManagedIdentityCredential(client_id=settings.azure_client_id)
    return ChainedTokenCredential(AzureDeveloperCliCredential(), AzureCliCredential())


def _needs_credential(settings: Settings) -> bool:
    if not settings.storage_connection_string or not settings.cosmos_key:
        return True
    return any(config.is_azure and not config.api_key for config in settings.backends.values())


async def build_services(settings: Settings) -> Services:
    """Every client and service, built once. If a step fails (storage down at start), what was built is closed
    again, so a worker retrying on every request during an outage does not pile up clients."""
    configure_telemetry(settings)  # first, so the clients built below are instrumented when exporting
    closers: list[Closer] = []
    try:
        return await _build(settings, closers)
    except BaseException:
        await close_all(closers)
        raise


async def _build(settings: Settings, closers: list[Closer]) -> Services:
    credential = make_credential(settings) if _needs_credential(settings) else None
    if credential is not None:
        closers.append(credential.close)
    snapshots, metadata = await open_storage(settings, credential, closers)
    token_provider = None
    if credential is not None:
        from azure.identity.aio import get_bearer_token_provider

        token_provider = get_bearer_token_provider(credential, COGNITIVE_SERVICES_SCOPE)
    backends = build_backends(settings, token_provider)
    closers.extend(backend.close for backend in backends.values())
    audit = AuditLog(metadata.audit)
    conversations = Conversations(settings, snapshots, metadata, backends)
    transfer = SessionTransfer(settings, snapshots, metadata)
    reconciler = Reconciler(snapshots, metadata, settings.retention_batch_size)
    policy = RetentionPolicy(settings.retention_days, settings.retention_dry_run, settings.retention_batch_size)
    return Services(
        settings=settings,
        snapshots=snapshots,
        metadata=metadata,
        backends=backends,
        conversations=conversations,
        transfer=transfer,
        audit=audit,
        erasure=Erasure(snapshots, metadata, audit),
        reconcile=reconciler,
        retention=Retention(snapshots, metadata, audit, reconciler, policy),
        feedback=TurnFeedback(settings, snapshots, metadata),
        completions=ChatCompletions(settings, conversations, transfer, metadata),
        started_at=utc_now(),
        closers=closers,
    )


_services: Services | None = None
_locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


async def get_services() -> Services:
    """The process-wide services, built once on first use (concurrent first requests wait for one build)."""
    global _services
    if _services is None:
        lock = _locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with lock:
            if _services is None:
                _services = await build_services(get_settings())
    return _services


async def close_services() -> None:
    """Close every client (the dev server and tests call this; the Functions host just ends the process)."""
    global _services
    if _services is not None:
        await _services.close()
        _services = None
    _locks.clear()


async def run_retention() -> JobReport:
    """The retention timer's work, on the process-wide services."""
    return await (await get_services()).retention.run_job()
