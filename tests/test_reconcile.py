"""Reconcile on the emulators: Cosmos records deleted or altered behind the service's back are rebuilt from the
Blob snapshots, nothing is written when all is in order, orphans of deleted sessions are removed, an empty
Cosmos (a restarted dev emulator) is refilled, and the admin route is for admins only."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from shared.app import Services
from shared.domain.sessions import summary_of
from shared.storage.documents import kept_record, stored_fields, turn_document
from tests.api_helpers import client, principal
from tests.consistency import version_1_turn_document
from tests.fixtures_app import LiveServer

HARD = "Design a distributed rate limiter for a multi-region API and explain the trade-offs step by step."


async def chat(services: Services, owner: str, text: str, session_id: str | None = None) -> str:
    return (await services.conversations.chat(owner, text, session_id)).session_id


async def all_documents(services: Services) -> dict[str, dict[str, dict[str, Any]]]:
    """Every turn and session document by id, system properties (etag, timestamp) included."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for name, container in (
        ("turns", services.metadata.database.container("turns")),
        ("sessions", services.metadata.database.container("sessions")),
    ):
        found[name] = {item["id"]: item async for item in container.query_items("SELECT * FROM c")}
    return found


async def assert_metadata_matches_snapshot(services: Services, owner: str, session_id: str) -> None:
    snapshot = await services.snapshots.load(owner, session_id)
    stored = await services.metadata.session_turns(owner, session_id)
    # Cosmos keeps of each record what analytics read (tests/test_cosmos_documents.py pins which fields)
    assert [record.to_dict() for record in stored] == [kept_record(record).to_dict() for record in snapshot.records]
    summary = await services.metadata.summary(owner, session_id)
    expected = summary_of(snapshot)  # what a turn writes, transcript hashes included
    assert summary is not None
    assert {**summary.to_dict(), "title": None} == expected.to_dict()


async def test_reconcile_rebuilds_records_deleted_or_altered_behind_the_services_back(services: Services) -> None:
    long = await chat(services, "alice", "hi there")
    for text in (HARD, "thanks!"):
        await chat(services, "alice", text, long)
    short = await chat(services, "alice", "what is 2 + 2?")
    other = await chat(services, "bob", "hello")
    turns, sessions = services.metadata.database.container("turns"), services.metadata.database.container("sessions")
    await turns.delete_item(f"alice.{long}.000002", partition_key=long)
    altered = await turns.read_item(f"alice.{long}.000001", partition_key=long)
    await turns.upsert_item({**altered, "backend": "apim", "cost": 12.5})
    await sessions.delete_item(short, partition_key="alice")
    summary = await sessions.read_item(other, partition_key="bob")
    await sessions.upsert_item({**summary, "input_tokens": 999_999})
    titled = await sessions.read_item(long, partition_key="alice")
    await sessions.upsert_item({**titled, "title": "Rate limiter"})  # a field reconcile does not own

    report = await services.reconcile.reconcile()

    assert report.to_dict() == {
        "sessions_checked": 3,
        "turns_repaired": 2,
        "summaries_repaired": 2,
        "orphans_removed": 0,
        "failed": 0,
    }
    for owner, session_id in (("alice", long), ("alice", short), ("bob", other)):
        await assert_metadata_matches_snapshot(services, owner, session_id)
    assert (await services.metadata.summary("alice", long)).title == "Rate limiter"  # type: ignore[union-attr]


async def test_reconcile_writes_nothing_when_all_is_in_order(services: Services) -> None:
    first = await chat(services, "alice", "hi there")
    await chat(services, "alice", HARD, first)
    await chat(services, "bob", "hello")
    before = await all_documents(services)

    report = await services.reconcile.all()

    assert report.to_dict() == {
        "sessions_checked": 2,
        "turns_repaired": 0,
        "summaries_repaired": 0,
        "orphans_removed": 0,
        "failed": 0,
    }
    assert await all_documents(services) == before  # etags and timestamps too: not one write


async def test_reconcile_rewrites_a_version_1_turn_document_in_the_lean_shape_which_reads_the_same_meanwhile(
    services: Services,
) -> None:
    """Old-shape documents (schema 1: the whole record) are read as they are, and are drift that reconcile rewrites:
    the sessions it visits shrink to what Cosmos keeps. A current document with a field left over is drift too."""
    session_id = await chat(services, "alice", "hi there")
    await chat(services, "alice", HARD, session_id)
    await services.feedback.give("alice", session_id, 1, rating="down", preferred_backend="cloud", comment="why")
    snapshot = await services.snapshots.load("alice", session_id)
    turns = services.metadata.database.container("turns")
    await turns.upsert_item(version_1_turn_document("alice", session_id, snapshot.records[0], snapshot.feedback[1]))
    current = turn_document("alice", session_id, snapshot.records[1])
    await turns.upsert_item({**current, "reason": "left over from an older writer"})
    expected = await services.conversations.session_analytics("alice", session_id)
    stored = {doc["turn"]: doc for doc in (await all_documents(services))["turns"].values()}
    assert stored[1]["schemaVersion"] == 1 and "model" in stored[1]  # the old shape, really stored

    await services.metadata.sessions.delete("alice", session_id)  # analytics from Blob, to compare with
    assert await services.conversations.session_analytics("alice", session_id) == expected
    report = await services.reconcile.reconcile(owner="alice", session_id=session_id)

    assert (report.turns_repaired, report.summaries_repaired) == (2, 1)
    stored = {doc["turn"]: stored_fields(doc) for doc in (await all_documents(services))["turns"].values()}
    assert stored == {
        1: turn_document("alice", session_id, snapshot.records[0], snapshot.feedback[1]),
        2: current,
    }
    assert await services.conversations.session_analytics("alice", session_id) == expected
    again = await services.reconcile.reconcile(owner="alice", session_id=session_id)
    assert (again.turns_repaired, again.summaries_repaired) == (0, 0)


async def test_reconcile_of_an_owner_removes_the_records_of_sessions_whose_snapshot_is_gone(
    services: Services,
) -> None:
    kept = await chat(services, "alice", "hi there")
    orphan = await chat(services, "alice", "soon gone")
    await chat(services, "alice", "still soon gone", orphan)
    await services.snapshots.delete("alice", orphan)  # as if a delete had crashed before reaching Cosmos

    report = await services.reconcile.reconcile(owner="alice")

    assert (report.sessions_checked, report.orphans_removed, report.turns_repaired) == (2, 3, 0)  # 2 turns, 1 summary
    assert await services.metadata.summary("alice", orphan) is None
    assert await services.metadata.session_turns("alice", orphan) == []
    await assert_metadata_matches_snapshot(services, "alice", kept)


async def test_reconcile_refills_an_empty_cosmos_from_the_snapshots_that_survived(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any]
) -> None:
    env = make_env()
    services = await make_services(env)
    sessions = [await chat(services, "alice", "hi there"), await chat(services, "bob", HARD)]
    await chat(services, "alice", "and more", sessions[0])
    # `make run`: Azurite keeps its data, the Cosmos emulator starts empty.
    fresh = await make_services({**env, "COSMOS_DATABASE": f"db-{uuid.uuid4().hex[:12]}"})
    assert await fresh.metadata.owner_turns("alice") == []

    report = await fresh.reconcile.all()

    assert (report.sessions_checked, report.turns_repaired, report.summaries_repaired) == (2, 3, 2)
    for owner, session_id in zip(("alice", "bob"), sessions, strict=True):
        await assert_metadata_matches_snapshot(fresh, owner, session_id)
        assert [turn_document(owner, session_id, r) for r in await fresh.metadata.session_turns(owner, session_id)]
    listed, _ = await fresh.metadata.list_sessions("alice", 10)
    assert [summary.session_id for summary in listed] == [sessions[0]]


async def test_the_reconcile_route_is_for_admins_and_reports_its_repairs(
    live_server: Callable[..., LiveServer], make_services: Callable[..., Any]
) -> None:
    server = live_server()
    services = await make_services(server.env)
    with (
        client(server.url, principal("alice-01")) as alice,
        client(server.url, principal("root-01", roles=["admin"])) as admin,
    ):
        session_id = alice.post("/chat", json={"message": "hello", "route": "local"}).json()["session_id"]
        await services.metadata.database.container("sessions").delete_item(session_id, partition_key="alice-01")

        refused = alice.post("/manage/reconcile")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert admin.post("/manage/reconcile", json={"owner": "alice-01", "extra": 1}).status_code == 422
        repaired = admin.post("/manage/reconcile", json={"owner": "alice-01"})
        assert repaired.status_code == 200, repaired.text
        assert repaired.json()["summaries_repaired"] == 1 and repaired.json()["sessions_checked"] == 1
        again = admin.post("/manage/reconcile", json={"owner": "alice-01", "session_id": session_id})
        assert again.json() == {
            "sessions_checked": 1,
            "turns_repaired": 0,
            "summaries_repaired": 0,
            "orphans_removed": 0,
            "failed": 0,
        }
        assert admin.post("/manage/reconcile").json()["sessions_checked"] == 1


def test_no_function_route_uses_a_prefix_the_functions_host_reserves() -> None:
    """The host refuses to load a function whose route starts with admin (even under /api) or runtime."""
    from tools.devserver import http_functions  # reads function_app's registrations (once per process)

    routes = [route for route, _, _ in http_functions()]
    assert "manage/reconcile" in routes
    assert not [route for route in routes if route.lower().startswith(("admin", "runtime"))]
