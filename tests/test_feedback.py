"""Feedback on turns over HTTP: the contract (`POST /api/sessions/{id}/turns/{turn}/feedback`), isolation,
errors naming their field, and feedback as part of the session's data: analytics count it, reconcile rebuilds
it from Blob, export/import and fork carry it, the audit trail records that it was given but not what."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from shared.domain.audit import ACTIONS
from tests.api_helpers import client, principal, stored_documents
from tests.fixtures_app import LiveServer

ALICE, BOB = principal("alice-01"), principal("bob-01")
HARD = (
    "Design a rate limiter for a distributed API gateway: compare token bucket and sliding window approaches, "
    "analyze the trade-offs in consistency and latency, and explain step by step how to handle clock skew."
)


def conversation(api: httpx.Client) -> str:
    first = api.post("/chat", json={"message": "hi there", "route": "local"}).json()
    api.post("/chat", json={"message": HARD, "session_id": first["session_id"], "route": "cloud"})
    return str(first["session_id"])


def rate(api: httpx.Client, session_id: str, turn: int | str, **body: Any) -> httpx.Response:
    return api.post(f"/sessions/{session_id}/turns/{turn}/feedback", json=body)


@pytest.fixture
def alice(live_server: Callable[..., LiveServer]) -> Iterator[httpx.Client]:
    with client(live_server().url, ALICE) as api:
        yield api


def test_feedback_is_stored_replaced_and_shown_with_the_turn_and_in_analytics(alice: httpx.Client) -> None:
    session_id = conversation(alice)
    first = rate(alice, session_id, 1, rating="up")
    assert first.status_code == 200
    body = first.json()
    assert {key: body[key] for key in ("session_id", "turn", "rating", "preferred_backend", "comment")} == {
        "session_id": session_id,
        "turn": 1,
        "rating": "up",
        "preferred_backend": None,
        "comment": None,
    }
    again = rate(alice, session_id, 2, rating="down", preferred_backend="local", comment="a short answer would do")
    assert again.status_code == 200 and again.json()["comment"] == "a short answer would do"
    replaced = rate(alice, session_id, 1, rating="down", preferred_backend="cloud")  # one per turn: replaces
    assert replaced.json()["rating"] == "down"

    turns = alice.get(f"/sessions/{session_id}").json()["turns"]
    assert turns[0]["feedback"]["rating"] == "down" and turns[0]["feedback"]["preferred_backend"] == "cloud"
    assert turns[1]["feedback"]["comment"] == "a short answer would do"
    expected = {"up": 0, "down": 2, "by_backend": {"local": {"up": 0, "down": 1}, "cloud": {"up": 0, "down": 1}}}
    assert alice.get(f"/sessions/{session_id}/analytics").json()["feedback"] == expected
    assert alice.get("/analytics").json()["feedback"] == expected


@pytest.mark.parametrize(
    ("turn", "body", "status", "code", "field"),
    [
        (1, {"rating": "meh"}, 422, "invalid_request", "rating"),
        (1, {"rating": "up", "preferred_backend": "mars"}, 422, "invalid_request", "preferred_backend"),
        (1, {"rating": "up", "comment": "x" * 2001}, 422, "invalid_request", "comment"),
        (1, {"rating": "up", "stars": 5}, 422, "invalid_request", "stars"),
        (1, {}, 422, "invalid_request", "rating"),
        (3, {"rating": "up"}, 404, "turn_not_found", "turn"),
        (0, {"rating": "up"}, 404, "turn_not_found", "turn"),
        ("first", {"rating": "up"}, 422, "invalid_id", "turn"),
    ],
)
def test_bad_feedback_is_refused_naming_the_field(
    alice: httpx.Client, turn: int | str, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    session_id = conversation(alice)
    answer = rate(alice, session_id, turn, **body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code and answer.json()["error"].get("field") == field
    assert "feedback" not in alice.get(f"/sessions/{session_id}").json()["turns"][0]


def test_another_owners_session_is_not_found_and_keeps_its_feedback(live_server: Callable[..., LiveServer]) -> None:
    server = live_server()
    with client(server.url, ALICE) as alice, client(server.url, BOB) as bob:
        session_id = conversation(alice)
        assert rate(alice, session_id, 1, rating="up").status_code == 200
        refused = rate(bob, session_id, 1, rating="down")
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "session_not_found"
        assert rate(bob, "nosuchsession", 1, rating="down").status_code == 404
        assert alice.get(f"/sessions/{session_id}").json()["turns"][0]["feedback"]["rating"] == "up"
        assert bob.get("/analytics").json()["feedback"] == {"up": 0, "down": 0, "by_backend": {}}


async def test_feedback_survives_a_cosmos_rebuild_from_blob(
    live_server: Callable[..., LiveServer], make_services: Callable[..., Any]
) -> None:
    server = live_server()
    with client(server.url, ALICE) as alice:
        session_id = conversation(alice)
        rate(alice, session_id, 2, rating="down", preferred_backend="local")
    services = await make_services(server.env)
    turn_doc = f"alice-01.{session_id}.000002"
    container = services.metadata.database.container("turns")
    stored = await container.read_item(turn_doc, partition_key=session_id)
    assert stored["feedback"] == {"rating": "down", "preferred_backend": "local"}  # its time and comment: Blob only
    await container.replace_item(turn_doc, {key: value for key, value in stored.items() if key != "feedback"})

    report = await services.reconcile.reconcile(owner="alice-01")
    assert report.turns_repaired == 1
    rebuilt = await container.read_item(turn_doc, partition_key=session_id)
    assert rebuilt["feedback"]["rating"] == "down"
    analytics = await services.conversations.owner_analytics("alice-01")
    assert analytics["feedback"]["by_backend"] == {"cloud": {"up": 0, "down": 1}}


def test_export_import_and_fork_carry_feedback(alice: httpx.Client) -> None:
    session_id = conversation(alice)
    rate(alice, session_id, 1, rating="up", comment="friendly")
    rate(alice, session_id, 2, rating="down", preferred_backend="foundry")
    exported = alice.get(f"/sessions/{session_id}/export").json()
    assert [turn.get("feedback", {}).get("rating") for turn in exported["turns"]] == ["up", "down"]
    assert exported["turns"][0]["feedback"]["comment"] == "friendly"

    imported = alice.post("/sessions/import", json={"format": "export", "data": exported})
    assert imported.status_code == 201
    copy = imported.json()["session_id"]
    assert [turn["feedback"]["rating"] for turn in alice.get(f"/sessions/{copy}").json()["turns"]] == ["up", "down"]

    forked = alice.post(f"/sessions/{session_id}/fork", json={"at_turn": 1}).json()
    assert [turn.get("feedback", {}).get("comment") for turn in forked["turns"]] == ["friendly"]


async def test_feedback_is_audited_without_its_content_and_erased_with_the_session(
    live_server: Callable[..., LiveServer],
) -> None:
    assert "feedback" in ACTIONS
    server = live_server()
    with client(server.url, ALICE) as alice:
        session_id = conversation(alice)
        rate(alice, session_id, 1, rating="down", comment="the secret plan is tuesday")
        events = alice.get(f"/sessions/{session_id}/audit").json()["events"]
        assert ("feedback", "ok") in [(event["action"], event["outcome"]) for event in events]
        documents = await stored_documents(server.env)
        assert "tuesday" not in str(documents)  # the comment stays in Blob only
        assert alice.delete(f"/sessions/{session_id}").status_code == 204
        assert rate(alice, session_id, 1, rating="up").status_code == 404
    assert not [doc for doc in (await stored_documents(server.env))["turns"] if doc["sessionId"] == session_id]


async def test_feedback_waits_for_a_running_turn_and_the_comment_is_masked(
    live_server: Callable[..., LiveServer], make_services: Callable[..., Any]
) -> None:
    server = live_server(PII_REDACTION="true")
    services = await make_services(server.env)
    with client(server.url, ALICE) as alice:
        session_id = conversation(alice)
        async with services.snapshots.locked("alice-01", session_id):  # as a running turn holds it
            busy = await asyncio.to_thread(rate, alice, session_id, 1, rating="up")
        assert busy.status_code == 409 and busy.headers["retry-after"]
        masked = rate(alice, session_id, 1, rating="down", comment="mail me at ada@example.com")
        assert masked.json()["comment"] == "mail me at [EMAIL]"
        assert alice.get(f"/sessions/{session_id}").json()["turns"][0]["feedback"]["comment"] == "mail me at [EMAIL]"
