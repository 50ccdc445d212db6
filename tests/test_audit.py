"""Audit events on the emulators: one per session action with its outcome, never any message text, readable by
the session's owner or an admin only, and a failing audit write never fails the user's request."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.app import Services
from shared.domain.audit import ACTIONS, AuditEvent, outcome_of
from shared.domain.errors import SessionBusy, SessionNotFound
from shared.domain.ids import InvalidId
from shared.http.errors import ApiError
from tests.api_helpers import client, drop_container, principal, stream_chat
from tests.fixtures_app import LiveServer

WORDS = ("first secret: the falcon flies", "second secret: blue umbrella", "third secret: seven herons")


async def audit_documents(services: Services) -> list[dict[str, Any]]:
    return [item async for item in services.metadata.database.container("audit").query_items("SELECT * FROM c")]


def test_outcomes_follow_the_failure_and_details_hold_counts_only() -> None:
    assert outcome_of(None) == "ok"
    assert outcome_of(SessionNotFound("s")) == "not_found"
    assert outcome_of(ApiError(404, "session_not_found", "No such session.")) == "not_found"
    assert outcome_of(SessionBusy("s")) == "busy"
    assert outcome_of(InvalidId("session_id", "../x")) == "rejected"
    assert outcome_of(ApiError(403, "forbidden", "no")) == "forbidden"
    assert outcome_of(RuntimeError("boom")) == "error"
    with pytest.raises(ValueError, match="counts only"):
        AuditEvent("s1", "alice", "alice", "read", "ok", "2026-01-01T00:00:00.000000Z", details={"text": "hi"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="unknown audit action"):
        AuditEvent("s1", "alice", "alice", "peek", "ok", "2026-01-01T00:00:00.000000Z")


def test_every_action_the_api_audits_is_a_known_action() -> None:
    """An unknown action is refused by AuditEvent, and `record` only logs that: the event would be lost."""
    handlers = Path(__file__).resolve().parent.parent / "shared" / "http" / "handlers"
    source = "\n".join(path.read_text(encoding="utf-8") for path in sorted(handlers.glob("*.py")))
    used = {
        word
        for line in source.splitlines()
        if re.search(r"audit\.audited\(|\baction\s*=", line)
        for word in re.findall(r'"([a-z_]+)"', line)
    }
    assert {"create", "continue", "read", "delete"} <= used
    assert used <= ACTIONS, sorted(used - ACTIONS)


async def test_every_session_action_is_audited_with_its_outcome_and_no_content(
    live_server: Callable[..., LiveServer], make_services: Callable[..., Any]
) -> None:
    server = live_server()
    services = await make_services(server.env)
    replies: list[str] = []
    with client(server.url, principal("alice-01")) as alice:
        created = alice.post("/chat", json={"message": WORDS[0], "route": "local"}).json()
        session_id = created["session_id"]
        replies.append(created["reply"])
        continued = alice.post("/chat", json={"message": WORDS[1], "session_id": session_id, "route": "local"})
        replies.append(continued.json()["reply"])
        response, events = stream_chat(alice, {"message": WORDS[2], "session_id": session_id, "route": "local"})
        assert response.status_code == 200 and events[-1].name == "done"
        replies.append(events[-1].data["reply"])
        assert alice.get(f"/sessions/{session_id}").status_code == 200
        assert alice.post(f"/sessions/{session_id}/resume").status_code == 200
        assert alice.get(f"/sessions/{session_id}/analytics").status_code == 200
        assert alice.post("/chat", json={"message": "x" * 40_000, "session_id": session_id}).status_code == 413
        assert alice.delete(f"/sessions/{session_id}").status_code == 204
        assert alice.get(f"/sessions/{session_id}").status_code == 404

        trail = alice.get(f"/sessions/{session_id}/audit")

    assert trail.status_code == 200, trail.text
    assert [(event["action"], event["outcome"]) for event in trail.json()["events"]] == [
        ("create", "ok"),
        ("continue", "ok"),
        ("continue", "ok"),  # the streamed turn, recorded when its stream ended
        ("read", "ok"),
        ("read", "ok"),  # resume without a message
        ("read_analytics", "ok"),
        ("continue", "rejected"),  # message too long
        ("delete", "ok"),
        ("read", "not_found"),
    ]
    stored = await audit_documents(services)
    assert len(stored) == 9
    assert {(doc["userId"], doc["actor"], doc["sessionId"], doc["ttl"]) for doc in stored} == {
        ("alice-01", "alice-01", session_id, 365 * 86_400)
    }
    text = json.dumps(stored)
    for secret in (*WORDS, *replies):
        assert secret not in text


async def test_a_session_audit_trail_is_shown_to_its_owner_or_an_admin_only(
    live_server: Callable[..., LiveServer], make_services: Callable[..., Any]
) -> None:
    server = live_server()
    with (
        client(server.url, principal("alice-01")) as alice,
        client(server.url, principal("bob-01")) as bob,
        client(server.url, principal("root-01", roles=["admin"])) as admin,
    ):
        session_id = alice.post("/chat", json={"message": "hello", "route": "local"}).json()["session_id"]
        assert bob.get(f"/sessions/{session_id}").status_code == 404  # a probe: audited under bob

        refused = bob.get(f"/sessions/{session_id}/audit")
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "session_not_found"
        owner_view = alice.get(f"/sessions/{session_id}/audit").json()["events"]
        admin_view = admin.get(f"/sessions/{session_id}/audit").json()["events"]
        assert admin.get("/sessions/nosuchsession/audit").status_code == 404

    assert [(event["actor"], event["action"]) for event in owner_view] == [("alice-01", "create")]
    assert sorted((event["actor"], event["action"], event["outcome"]) for event in admin_view) == [
        ("alice-01", "create", "ok"),
        ("bob-01", "read", "not_found"),
    ]


async def test_a_turn_refused_because_the_session_is_busy_is_audited_as_busy(
    live_server: Callable[..., LiveServer], make_services: Callable[..., Any]
) -> None:
    server = live_server()
    services = await make_services(server.env)
    with client(server.url, principal("alice-01")) as alice:
        session_id = alice.post("/chat", json={"message": "hello", "route": "local"}).json()["session_id"]
        async with services.snapshots.locked("alice-01", session_id):  # as a running turn holds it
            refused = alice.post("/chat", json={"message": "again", "session_id": session_id, "route": "local"})
        assert refused.status_code == 409
        events = alice.get(f"/sessions/{session_id}/audit").json()["events"]
    assert [(event["action"], event["outcome"]) for event in events] == [("create", "ok"), ("continue", "busy")]


async def test_a_failing_audit_write_never_fails_the_users_request(
    live_server: Callable[..., LiveServer],
    make_env: Callable[..., dict[str, str]],
    make_services: Callable[..., Any],
) -> None:
    env = make_env()
    await make_services(env)  # creates the database and its containers
    # A server that may not recreate missing containers (as in Azure), so its audit writes really fail.
    server = live_server({**env, "COSMOS_CREATE_RESOURCES": "false"})
    with client(server.url, principal("alice-01")) as alice:
        session_id = alice.post("/chat", json={"message": "hello", "route": "local"}).json()["session_id"]
        await drop_container(env, "audit")

        assert alice.get(f"/sessions/{session_id}").status_code == 200
        assert alice.post("/chat", json={"message": "more", "session_id": session_id, "route": "local"}).is_success
        assert alice.delete(f"/sessions/{session_id}").status_code == 204
