"""The storage SDK clients, built from the settings: Blob (connection string for Azurite, identity in Azure)
and Cosmos DB (key for the emulator, identity in Azure), over one aiohttp session (`shared.storage.transport`).
The composition root calls `open_storage` once per process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from azure.cosmos.aio import CosmosClient
from azure.storage.blob.aio import BlobServiceClient

from shared.config import Settings
from shared.config.network import proxies_for
from shared.storage.metadata import MetadataStore
from shared.storage.snapshots import SnapshotStore
from shared.storage.transport import SharedSession

Closer = Callable[[], Awaitable[Any]]


async def open_storage(
    settings: Settings, credential: Any, closers: list[Closer]
) -> tuple[SnapshotStore, MetadataStore]:
    """The snapshot and metadata stores, sharing one HTTP session (closed after both clients)."""
    session = SharedSession()
    closers.append(session.close)
    return await open_snapshots(settings, credential, closers, session), await open_metadata(
        settings, credential, closers, session
    )


def _timeouts(settings: Settings) -> dict[str, Any]:
    # Both timeouts: without read_timeout a store that accepts connections but never answers holds a request
    # for the SDK's default (65 s) per attempt.
    return {"connection_timeout": settings.storage_timeout_seconds, "read_timeout": settings.storage_timeout_seconds}


async def open_snapshots(
    settings: Settings, credential: Any, closers: list[Closer], session: SharedSession
) -> SnapshotStore:
    options: dict[str, Any] = {
        "retry_total": settings.storage_max_retries,
        "transport": session.transport("blob", **_timeouts(settings)),
        **_timeouts(settings),
    }

    def blob_service(**extra: Any) -> BlobServiceClient:
        if settings.storage_connection_string:
            return BlobServiceClient.from_connection_string(settings.storage_connection_string, **options, **extra)
        return BlobServiceClient(settings.storage_blob_endpoint or "", credential=credential, **options, **extra)

    service = blob_service()
    proxies = proxies_for(service.url)  # the endpoint is only known once the connection string is parsed
    if proxies:
        service = blob_service(proxies=proxies)
    closers.append(service.close)
    store = SnapshotStore(
        service.get_container_client(settings.snapshot_container), compact_every=settings.snapshot_compact_every
    )
    if settings.storage_connection_string:
        await store.ensure_container()  # Azurite; in Azure the container comes from Bicep
    return store


async def open_metadata(
    settings: Settings, credential: Any, closers: list[Closer], session: SharedSession
) -> MetadataStore:
    client = CosmosClient(
        settings.cosmos_endpoint,
        credential=settings.cosmos_key or credential,
        retry_total=settings.storage_max_retries,
        transport=session.transport("cosmos", **_timeouts(settings)),
        proxies=proxies_for(settings.cosmos_endpoint) or {},
        **_timeouts(settings),
    )
    closers.append(client.close)
    metadata = MetadataStore(
        client,
        settings.cosmos_database,
        settings.cosmos_turns_container,
        settings.cosmos_sessions_container,
        settings.cosmos_audit_container,
        create_resources=settings.cosmos_create_resources,
        audit_retention_days=settings.audit_retention_days,
    )
    if settings.cosmos_create_resources:
        await metadata.ensure_resources()
    return metadata
