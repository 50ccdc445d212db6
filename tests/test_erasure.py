"""Erasure of one person's data on the emulators: nothing of theirs is left in Blob or Cosmos, other users are
untouched, the receipt counts what went, an interrupted erasure is completed by running it again, and the
erasure is refused (nothing deleted) when its audit proof cannot be written."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from azure.cosmos.exceptions import CosmosResourceNotFoundError

from shared.app import Services
from shared.domain.errors import SessionBusy
from shared.domain.ids import owner_key
from tests.api_helpers import client, drop_container, principal, stored_blobs
from tests.fixtures_app import LiveServer

SECRET = "my locker code is 4711"


async def chat(services: Services, owner: str, text: str, session_id: str | None = None) -> str:
    return (await services.conversations.chat(owner, text, session_id, route="local")).session_id


async def documents_of(services: Services, owner: str) -> dict[str, list[dict[str, Any]]]:
    """Every Cosmos document whose subject is `owner`, by container (cross-partition reads, not our code)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name, container in (
        ("turns", services.metadata.database.container("turns")),
        ("sessions", services.metadata.database.container("sessions")),
        ("audit", services.metadata.database.container("audit")),
    ):
        items = container.query_items(
            "SELECT * FROM c WHERE c.userId = @owner", parameters=[{"name": "@owner", "value": owner}]
        )
        found[name] = [item async for item in items]
    return found


async def blobs_of(services: Services, owner: str) -> list[str]:
    return [blob.name async for blob in services.snapshots._container.list_blobs(name_starts_with=f"{owner}/")]


async def test_erasing_me_leaves_nothing_of_the_caller_and_everything_of_others(
    live_server: Callable[..., LiveServer], make_services: Callable[..., Any]
) -> None:
    server = live_server()
    services = await make_services(server.env)
    alice_id, bob_id = "alice-7f3a", "bob-19cc"
    with client(server.url, principal(alice_id)) as alice, client(server.url, principal(bob_id)) as bob:
        first = alice.post("/chat", json={"message": SECRET, "route": "local"}).json()["session_id"]
        alice.post("/chat", json={"message": "and another thing", "session_id": first, "route": "local"})
        second = alice.post("/chat", json={"message": "a second topic", "route": "local"}).json()["session_id"]
        alice.get(f"/sessions/{second}")
        kept = bob.post("/chat", json={"message": "bob's own words", "route": "local"}).json()["session_id"]
        # Leftovers of earlier failures: a journal with no snapshot (and so no tags), and Cosmos records whose
        # blobs are gone.
        half_written = "halfwritten01"
        await services.snapshots._container.upload_blob(f"{alice_id}/{half_written}/journal.jsonl.gz", b"")
        third = alice.post("/chat", json={"message": "soon orphaned", "route": "local"}).json()["session_id"]
        for name in await blobs_of(services, alice_id):
            if f"/{third}/" in name:
                await services.snapshots._container.delete_blob(name)
        before = await documents_of(services, alice_id)

        response = alice.delete("/users/me")

        assert response.status_code == 200, response.text
        receipt = response.json()
        assert receipt["user_id"] == alice_id
        assert receipt["sessions_deleted"] == 4  # first, second, the half-written one, the orphaned one
        erasure_events = [doc for doc in before["audit"] if doc["action"] == "erase_user"]
        assert receipt["records_deleted"] == sum(len(docs) for docs in before.values()) - len(erasure_events)
        assert bob.get(f"/sessions/{kept}").status_code == 200

    assert not [name for name in await stored_blobs(server.env) if name.startswith(f"{alice_id}/")]
    assert [name for name in await stored_blobs(server.env) if name.startswith(f"{bob_id}/{kept}/")]
    after = await documents_of(services, alice_id)
    assert after["turns"] == [] and after["sessions"] == []
    assert [(doc["action"], doc["outcome"], doc["sessionId"]) for doc in after["audit"]] == [
        ("erase_user", "ok", f"user:{alice_id}")
    ]
    assert after["audit"][0]["details"] == {"sessions_deleted": 4, "records_deleted": receipt["records_deleted"]}
    assert SECRET not in json.dumps(after)
    assert await services.erasure.find_sessions(alice_id) == set()
    bobs = await documents_of(services, bob_id)
    assert len(bobs["turns"]) == 1 and len(bobs["sessions"]) == 1


async def test_only_an_admin_may_erase_another_user_by_principal_id(
    live_server: Callable[..., LiveServer], make_services: Callable[..., Any]
) -> None:
    server = live_server()
    services = await make_services(server.env)
    carol_id = "carol@example.com"  # not a safe id: stored under its hash, like every request of hers
    carol_key = owner_key(carol_id)
    with (
        client(server.url, principal(carol_id)) as carol,
        client(server.url, principal("mallory-01")) as mallory,
        client(server.url, principal("root-01", roles=["admin"])) as admin,
    ):
        session_id = carol.post("/chat", json={"message": "carol's words", "route": "local"}).json()["session_id"]

        refused = mallory.delete(f"/users/{carol_id}")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert carol.get(f"/sessions/{session_id}").status_code == 200

        erased = admin.delete(f"/users/{carol_id}")
        assert erased.status_code == 200, erased.text
        assert erased.json()["user_id"] == carol_id and erased.json()["sessions_deleted"] == 1
        again = admin.delete(f"/users/{carol_id}")
        assert (again.status_code, again.json()["sessions_deleted"], again.json()["records_deleted"]) == (200, 0, 0)
        assert carol.get(f"/sessions/{session_id}").status_code == 404

    assert await blobs_of(services, carol_key) == []
    audit = (await documents_of(services, carol_key))["audit"]
    assert sorted((doc["actor"], doc["action"], doc["outcome"], doc["admin"]) for doc in audit) == sorted(
        [
            ("mallory-01", "erase_user", "forbidden", False),  # the refused attempt is on record
            ("root-01", "erase_user", "ok", True),  # both erasures, the second one finding nothing
            ("root-01", "erase_user", "ok", True),
            (carol_key, "read", "not_found", False),  # carol's read after the erasure
        ]
    )


async def test_an_anonymous_caller_cannot_erase_the_shared_anonymous_data(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server()
    with client(server.url) as anonymous:
        anonymous.post("/chat", json={"message": "hi", "route": "local"})
        response = anonymous.delete("/users/me")
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


async def test_an_erasure_stopped_by_a_busy_session_is_completed_by_running_it_again(services: Services) -> None:
    sessions = [await chat(services, "alice", f"topic {n}") for n in range(3)]
    other = await chat(services, "bob", "bob's words")

    async with services.snapshots.locked("alice", sessions[1]):  # a turn holds this one
        with pytest.raises(SessionBusy):
            await services.erasure.erase_user("alice", user_id="alice", actor="alice", busy_wait_seconds=0.01)
    assert await services.erasure.find_sessions("alice") == {sessions[1]}

    receipt = await services.erasure.erase_user("alice", user_id="alice", actor="alice", busy_wait_seconds=0.01)

    assert (receipt.sessions_deleted, receipt.records_deleted) == (1, 2)  # one turn record and one summary
    assert await services.erasure.find_sessions("alice") == set()
    assert await blobs_of(services, "alice") == []
    outcomes = sorted(doc["outcome"] for doc in (await documents_of(services, "alice"))["audit"])
    assert outcomes == ["busy", "ok"]
    assert (await services.snapshots.load("bob", other)).turns == 1


async def test_an_erasure_whose_audit_proof_cannot_be_written_deletes_nothing(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any]
) -> None:
    env = make_env()
    session_id = await chat(await make_services(env), "alice", "keep me for now")
    # A process that may not recreate missing containers (as in Azure): Cosmos then fails for audit only.
    services = await make_services({**env, "COSMOS_CREATE_RESOURCES": "false"})
    await drop_container(env, "audit")

    with pytest.raises(CosmosResourceNotFoundError):
        await services.erasure.erase_user("alice", user_id="alice", actor="alice")

    assert (await services.snapshots.load("alice", session_id)).turns == 1
    assert await services.metadata.summary("alice", session_id) is not None
