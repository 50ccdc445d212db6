"""The local emulators behave like Azure where the app depends on it.

Each Cosmos test pins one gap that tools/cosmos_emulator.js closes (see the comment block at its top);
each Azurite test pins a Blob Storage feature the app's storage layer uses. Talking through the real
async SDKs is the point: a passing test means the SDK call the app makes gets the service's answer.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from azure.core import MatchConditions
from azure.core.async_paging import AsyncPageIterator
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError
from azure.cosmos import PartitionKey
from azure.cosmos.aio import ContainerProxy, CosmosClient
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosBatchOperationError,
    CosmosHttpResponseError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)
from azure.storage.blob import StorageErrorCode
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from tools.emulators import Azurite, CosmosEmulator, EmulatorError

TEST_DATABASE = "emulator-tests"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _error_code(error: CosmosHttpResponseError) -> str:
    """The "code" of the JSON error body, which the app's error mapping and logs rely on."""
    assert error.response is not None
    return str(json.loads(error.response.text())["code"])


def _storage_error_code(error: HttpResponseError) -> object:
    """The x-ms-error-code the storage SDK copied onto the error (set at runtime, so not in the type)."""
    return getattr(error, "error_code", None)


async def _collect(items: AsyncIterable[Any]) -> list[Any]:
    return [item async for item in items]


# --- Cosmos DB ------------------------------------------------------------------------------------------------


@pytest.fixture
async def cosmos_client(cosmos_emulator: CosmosEmulator) -> AsyncIterator[CosmosClient]:
    async with CosmosClient(cosmos_emulator.endpoint, credential=cosmos_emulator.key) as client:
        yield client


@pytest.fixture
async def container(cosmos_client: CosmosClient) -> ContainerProxy:
    """A fresh container partitioned on /sessionId, like the app's turns container."""
    database = await cosmos_client.create_database_if_not_exists(TEST_DATABASE)
    return await database.create_container(_unique("turns"), partition_key=PartitionKey("/sessionId"))


async def test_read_of_missing_item_raises_not_found_with_cosmos_error_body(container: ContainerProxy) -> None:
    # The id exists, but in another partition: the unpatched emulator crashed with a 500 here.
    await container.create_item({"id": "turn-1", "sessionId": "s1"})

    with pytest.raises(CosmosResourceNotFoundError) as caught:
        await container.read_item("turn-1", partition_key="s2")

    assert caught.value.status_code == 404
    assert _error_code(caught.value) == "NotFound"
    assert (await container.read_item("turn-1", partition_key="s1"))["id"] == "turn-1"


MissingCall = Callable[[CosmosClient, ContainerProxy], Awaitable[object]]
MISSING_RESOURCE_CALLS: dict[str, MissingCall] = {
    "delete_missing_item": lambda client, c: c.delete_item("nope", partition_key="s1"),
    "replace_missing_item": lambda client, c: c.replace_item("nope", {"id": "nope", "sessionId": "s1"}),
    "patch_missing_item": lambda client, c: c.patch_item(
        "nope", partition_key="s1", patch_operations=[{"op": "set", "path": "/x", "value": 1}]
    ),
    "read_missing_container": lambda client, c: (
        client.get_database_client(TEST_DATABASE).get_container_client("missing").read()
    ),
    "read_missing_database": lambda client, c: client.get_database_client("missing").read(),
    "create_item_in_missing_container": lambda client, c: (
        client.get_database_client(TEST_DATABASE)
        .get_container_client("missing")
        .create_item({"id": "x", "sessionId": "s1"})
    ),
}


@pytest.mark.parametrize("call", MISSING_RESOURCE_CALLS.values(), ids=MISSING_RESOURCE_CALLS.keys())
async def test_operations_on_missing_resources_raise_not_found_with_cosmos_error_body(
    cosmos_client: CosmosClient, container: ContainerProxy, call: MissingCall
) -> None:
    with pytest.raises(CosmosResourceNotFoundError) as caught:
        await call(cosmos_client, container)

    assert _error_code(caught.value) == "NotFound"


async def test_batch_takes_partition_key_from_header_for_every_operation_type(container: ContainerProxy) -> None:
    await container.create_item({"id": "kept", "sessionId": "s1", "n": 1})
    await container.create_item({"id": "gone", "sessionId": "s1"})

    results = await container.execute_item_batch(
        [
            ("create", ({"id": "new", "sessionId": "s1"},)),
            ("upsert", ({"id": "upserted", "sessionId": "s1"},)),
            ("replace", ("kept", {"id": "kept", "sessionId": "s1", "n": 2})),
            ("patch", ("kept", [{"op": "incr", "path": "/n", "value": 10}])),
            ("read", ("kept",)),
            ("delete", ("gone",)),
        ],
        partition_key="s1",
    )

    assert [r["statusCode"] for r in results] == [201, 201, 200, 200, 200, 204]
    assert results[4]["resourceBody"]["n"] == 12
    assert (await container.read_item("new", partition_key="s1"))["id"] == "new"
    with pytest.raises(CosmosResourceNotFoundError):
        await container.read_item("gone", partition_key="s1")


async def test_failed_batch_rolls_back_the_operations_before_the_failure(container: ContainerProxy) -> None:
    await container.create_item({"id": "existing", "sessionId": "s1"})

    with pytest.raises(CosmosBatchOperationError) as caught:
        await container.execute_item_batch(
            [
                ("create", ({"id": "first", "sessionId": "s1"},)),
                ("create", ({"id": "existing", "sessionId": "s1"},)),
                ("create", ({"id": "third", "sessionId": "s1"},)),
            ],
            partition_key="s1",
        )

    assert caught.value.error_index == 1
    assert caught.value.status_code == 409
    assert [r["statusCode"] for r in caught.value.operation_responses] == [424, 409, 424]
    with pytest.raises(CosmosResourceNotFoundError):
        await container.read_item("first", partition_key="s1")


async def test_batch_rejects_a_document_of_another_partition(container: ContainerProxy) -> None:
    with pytest.raises(CosmosBatchOperationError) as caught:
        await container.execute_item_batch([("create", ({"id": "x", "sessionId": "s2"},))], partition_key="s1")

    assert caught.value.status_code == 400
    with pytest.raises(CosmosResourceNotFoundError):
        await container.read_item("x", partition_key="s2")


async def test_writes_with_stale_etag_raise_precondition_failed_and_change_nothing(container: ContainerProxy) -> None:
    original = await container.create_item({"id": "session", "sessionId": "s1", "version": 1})
    current = await container.replace_item(
        "session",
        {"id": "session", "sessionId": "s1", "version": 2},
        etag=original["_etag"],
        match_condition=MatchConditions.IfNotModified,
    )
    stale = {"etag": original["_etag"], "match_condition": MatchConditions.IfNotModified}

    with pytest.raises(CosmosAccessConditionFailedError):
        await container.replace_item("session", {"id": "session", "sessionId": "s1", "version": 3}, **stale)
    with pytest.raises(CosmosAccessConditionFailedError):
        await container.upsert_item({"id": "session", "sessionId": "s1", "version": 3}, **stale)
    with pytest.raises(CosmosAccessConditionFailedError):
        await container.delete_item("session", partition_key="s1", **stale)

    stored = await container.read_item("session", partition_key="s1")
    assert (stored["version"], stored["_etag"]) == (2, current["_etag"])


async def test_create_of_existing_id_in_same_partition_raises_conflict(container: ContainerProxy) -> None:
    await container.create_item({"id": "turn-1", "sessionId": "s1"})
    await container.create_item({"id": "turn-1", "sessionId": "s2"})  # same id, other partition: allowed

    with pytest.raises(CosmosResourceExistsError):
        await container.create_item({"id": "turn-1", "sessionId": "s1"})


async def test_query_with_partition_key_only_sees_that_partition(container: ContainerProxy) -> None:
    for session, n in (("s1", 1), ("s1", 2), ("s2", 3)):
        await container.create_item({"id": f"{session}-{n}", "sessionId": session, "n": n})

    select_all = [i["id"] for i in await _collect(container.query_items("SELECT * FROM c", partition_key="s1"))]
    parameterized = await _collect(
        container.query_items(
            "SELECT VALUE c.id FROM c WHERE c.n >= @n", parameters=[{"name": "@n", "value": 0}], partition_key="s1"
        )
    )

    assert sorted(select_all) == ["s1-1", "s1-2"]
    assert sorted(parameterized) == ["s1-1", "s1-2"]


async def test_query_order_by_top_and_paging_resume_from_continuation_token(container: ContainerProxy) -> None:
    for n in range(5):
        await container.create_item({"id": f"t{n}", "sessionId": "s1", "n": n})
    await container.create_item({"id": "other", "sessionId": "s2", "n": 99})
    query = "SELECT VALUE c.id FROM c WHERE c.sessionId = @s ORDER BY c.n DESC"
    parameters: list[dict[str, object]] = [{"name": "@s", "value": "s1"}]

    top = await _collect(
        container.query_items(
            "SELECT TOP @take VALUE c.id FROM c ORDER BY c.n DESC", parameters=[{"name": "@take", "value": 2}]
        )
    )
    pager = cast(
        AsyncPageIterator[Any], container.query_items(query, parameters=parameters, max_item_count=2).by_page()
    )
    first_page = await _collect(await pager.__anext__())
    token = pager.continuation_token
    resumed = container.query_items(query, parameters=parameters, max_item_count=2).by_page(token)
    second_page = await _collect(await resumed.__anext__())

    assert top == ["other", "t4"]
    assert first_page == ["t4", "t3"]
    assert token
    assert second_page == ["t2", "t1"]


async def test_cosmos_emulator_serves_again_after_restart_on_same_port(tmp_path: Path) -> None:
    with CosmosEmulator(log_dir=tmp_path) as emulator:
        port = emulator.port
        async with CosmosClient(emulator.endpoint, credential=emulator.key) as client:
            await client.create_database("before-restart")

        emulator.stop()
        assert not emulator.running
        emulator.start()

        assert emulator.port == port
        async with CosmosClient(emulator.endpoint, credential=emulator.key) as client:
            with pytest.raises(CosmosResourceNotFoundError):  # in memory: a restart starts empty
                await client.get_database_client("before-restart").read()
            await client.create_database("after-restart")


# --- Azurite (Blob Storage) -------------------------------------------------------------------------------------


@pytest.fixture
async def blob_container(azurite: Azurite) -> AsyncIterator[ContainerClient]:
    async with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        container_client = await service.create_container(_unique("conversations"))
        yield container_client


async def test_blob_round_trip_and_stale_if_match_raises_conflict(blob_container: ContainerClient) -> None:
    blob = blob_container.get_blob_client("session.json")
    first = await blob.upload_blob(b'{"v": 1}')
    second = await blob.upload_blob(
        b'{"v": 2}', overwrite=True, etag=first["etag"], match_condition=MatchConditions.IfNotModified
    )

    with pytest.raises(ResourceModifiedError) as caught:
        await blob.upload_blob(
            b'{"v": 3}', overwrite=True, etag=first["etag"], match_condition=MatchConditions.IfNotModified
        )

    assert caught.value.status_code == 412
    downloaded = await blob.download_blob()
    assert await downloaded.readall() == b'{"v": 2}'
    assert downloaded.properties.etag == second["etag"]


async def test_append_blob_rejects_append_at_a_stale_position(blob_container: ContainerClient) -> None:
    blob = blob_container.get_blob_client("session.log")
    await blob.create_append_blob()
    await blob.append_block(b"turn-1\n", appendpos_condition=0)

    with pytest.raises(HttpResponseError) as caught:
        await blob.append_block(b"turn-1-again\n", appendpos_condition=0)

    assert caught.value.status_code == 412
    assert _storage_error_code(caught.value) == StorageErrorCode.APPEND_POSITION_CONDITION_NOT_MET
    await blob.append_block(b"turn-2\n", appendpos_condition=len(b"turn-1\n"))
    assert await (await blob.download_blob()).readall() == b"turn-1\nturn-2\n"


async def test_blob_index_tags_are_stored_and_found_by_tag_query(blob_container: ContainerClient) -> None:
    user = _unique("user")  # tag queries span the whole account: a unique value keeps tests apart
    await blob_container.upload_blob("a.json", b"{}", tags={"user": user, "state": "active"})
    await blob_container.upload_blob("b.json", b"{}", tags={"user": user, "state": "archived"})
    await blob_container.get_blob_client("b.json").set_blob_tags({"user": user, "state": "active"})
    await blob_container.upload_blob("c.json", b"{}", tags={"user": "someone-else", "state": "active"})

    found = [b.name async for b in blob_container.find_blobs_by_tags(f"\"user\"='{user}' AND \"state\"='active'")]

    assert sorted(found) == ["a.json", "b.json"]
    assert await blob_container.get_blob_client("b.json").get_blob_tags() == {"user": user, "state": "active"}


async def test_blob_lease_blocks_other_writers_until_released(blob_container: ContainerClient) -> None:
    blob = blob_container.get_blob_client("session.json")
    await blob.upload_blob(b"v1")
    lease = await blob.acquire_lease(lease_duration=15)

    with pytest.raises(HttpResponseError) as without_lease:
        await blob.upload_blob(b"intruder", overwrite=True)
    with pytest.raises(ResourceExistsError) as second_lease:
        await blob.acquire_lease(lease_duration=15)
    await blob.upload_blob(b"v2", overwrite=True, lease=lease)
    await lease.release()
    await blob.upload_blob(b"v3", overwrite=True)

    assert without_lease.value.status_code == 412
    assert _storage_error_code(without_lease.value) == StorageErrorCode.LEASE_ID_MISSING
    assert second_lease.value.status_code == 409
    assert await (await blob.download_blob()).readall() == b"v3"


async def test_azurite_keeps_blobs_across_restart_on_same_port_and_location(tmp_path: Path) -> None:
    with Azurite(location=tmp_path / "data", log_dir=tmp_path) as emulator:
        port = emulator.port
        async with BlobServiceClient.from_connection_string(emulator.connection_string) as service:
            await service.create_container("kept")
            await service.get_blob_client("kept", "blob.txt").upload_blob(b"survives restart")

        emulator.stop()
        assert not emulator.running
        emulator.start()

        assert emulator.port == port
        async with BlobServiceClient.from_connection_string(emulator.connection_string) as service:
            downloaded = await service.get_blob_client("kept", "blob.txt").download_blob()
            assert await downloaded.readall() == b"survives restart"


# --- the launcher itself ------------------------------------------------------------------------------------------


def test_start_without_node_modules_fails_with_npm_ci_hint(tmp_path: Path) -> None:
    emulator = CosmosEmulator(log_dir=tmp_path, node_modules=tmp_path / "node_modules")

    with pytest.raises(EmulatorError, match="npm ci"):
        emulator.start()
    assert not emulator.running


def test_start_refuses_a_port_another_process_listens_on(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        emulator = Azurite(port, location=tmp_path / "data", log_dir=tmp_path)

        with pytest.raises(EmulatorError, match="already in use"):
            emulator.start()
        assert not emulator.running
