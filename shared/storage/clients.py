"""The storage SDK clients, built from the settings: Blob (connection string for Azurite, identity in Azure)
and Cosmos DB (key for the emulator, identity in Azure). The composition root calls these once per process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from azure.cosmos.aio import CosmosClient
from azure.storage.blob.aio import BlobServiceClient

from shared.config import Settings
from shared.storage.metadata import MetadataStore
from shared.storage.snapshots import SnapshotStore

Closer = Callable[[], Awaitable[Any]]


async def open_snapshots(settings: Settings, credential: Any, closers: list[Closer]) -> SnapshotStore:
    options: dict[str, Any] = {
        "retry_total": settings.storage_max_retries,
        "connection_timeout": settings.storage_timeout_seconds,
        "read_timeout": settings.storage_timeout_seconds,
    }
    if settings.storage_connection_string:
        service = BlobServiceClient.from_connection_string(settings.storage_connection_string, **options)
    else:
        service = BlobServiceClient(settings.storage_blob_endpoint or "", credential=credential, **options)
    closers.append(service.close)
    store = SnapshotStore(
        service.get_container_client(settings.snapshot_container), compact_every=settings.snapshot_compact_every
    )
    if settings.storage_connection_string:
        await store.ensure_container()  # Azurite; in Azure the container comes from Bicep
    return store


async def open_metadata(settings: Settings, credential: Any, closers: list[Closer]) -> MetadataStore:
    client = CosmosClient(
        settings.cosmos_endpoint,
        credential=settings.cosmos_key or credential,
        # Both timeouts: without read_timeout a Cosmos that accepts connections but never answers holds a request
        # for the SDK's default (65 s) per attempt.
        connection_timeout=settings.storage_timeout_seconds,
        read_timeout=settings.storage_timeout_seconds,
        retry_total=settings.storage_max_retries,
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
