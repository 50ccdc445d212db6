"""Per-process wiring: every client is created once, lazily, on first use, and reused by every invocation.

Nothing here runs at import time, so importing `function_app` does no network I/O and a bad setting
fails at the first request with a message naming it (and in the log of the worker's start).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from azure.cosmos.aio import CosmosClient
from azure.storage.blob.aio import BlobServiceClient

from shared import telemetry
from shared.backends import Backend, build_backends
from shared.conversation import Conversations
from shared.metadata import MetadataStore
from shared.settings import Settings, get_settings
from shared.snapshots import SnapshotStore

logger = logging.getLogger(__name__)


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


@dataclass
class Services:
    settings: Settings
    conversations: Conversations
    snapshots: SnapshotStore
    metadata: MetadataStore
    backends: dict[str, Backend]
    _closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    async def close(self) -> None:
        await self.close_all(self._closers)

    @staticmethod
    async def close_all(closers: list[Callable[[], Awaitable[Any]]]) -> None:
        for closer in reversed(closers):
            try:
                await closer()
            except Exception:  # noqa: BLE001 - closing is best effort
                logger.warning("a client did not close cleanly", exc_info=True)


async def build_services(settings: Settings) -> Services:
    """Every client, built once. If a step fails (storage down at start), what was built is closed again, so a
    worker retrying on every request during an outage does not pile up clients."""
    telemetry.configure(settings)  # first, so the clients built below are instrumented when exporting
    closers: list[Callable[[], Awaitable[Any]]] = []
    try:
        return await _build(settings, closers)
    except BaseException:
        await Services.close_all(closers)
        raise


async def _build(settings: Settings, closers: list[Callable[[], Awaitable[Any]]]) -> Services:
    credential = make_credential(settings) if _needs_credential(settings) else None
    if credential is not None:
        closers.append(credential.close)

    storage_options: dict[str, Any] = {
        "retry_total": settings.storage_max_retries,
        "connection_timeout": settings.storage_timeout_seconds,
        "read_timeout": settings.storage_timeout_seconds,
    }
    if settings.storage_connection_string:
        blob_service = BlobServiceClient.from_connection_string(settings.storage_connection_string, **storage_options)
    else:
        blob_service = BlobServiceClient(settings.storage_blob_endpoint or "", credential=credential, **storage_options)
    closers.append(blob_service.close)
    snapshots = SnapshotStore(
        blob_service.get_container_client(settings.snapshot_container), compact_every=settings.snapshot_compact_every
    )
    if settings.storage_connection_string:
        await snapshots.ensure_container()  # Azurite; in Azure the container comes from Bicep

    cosmos = CosmosClient(
        settings.cosmos_endpoint,
        credential=settings.cosmos_key or credential,  # type: ignore[arg-type]
        # Both timeouts: without read_timeout a Cosmos that accepts connections but never answers holds a request
        # for the SDK's default (65 s) per attempt.
        connection_timeout=settings.storage_timeout_seconds,
        read_timeout=settings.storage_timeout_seconds,
        retry_total=settings.storage_max_retries,
    )
    closers.append(cosmos.close)
    metadata = MetadataStore(
        cosmos,
        settings.cosmos_database,
        settings.cosmos_turns_container,
        settings.cosmos_sessions_container,
        settings.cosmos_audit_container,
        create_resources=settings.cosmos_create_resources,
    )
    if settings.cosmos_create_resources:
        await metadata.ensure_resources()

    token_provider = None
    if credential is not None:
        from azure.identity.aio import get_bearer_token_provider

        token_provider = get_bearer_token_provider(credential, "https://cognitiveservices.azure.com/.default")
    backends = build_backends(settings, token_provider)
    for backend in backends.values():
        closers.append(backend.close)
    conversations = Conversations(settings, snapshots, metadata, backends)
    return Services(settings, conversations, snapshots, metadata, backends, closers)


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
