"""The Cosmos turn documents are lean and lose nothing their readers need.

A turn document keeps what analytics, budgets and router calibration read (`shared/storage/documents.py`); the Blob
record keeps everything. Proved here: the exact fields kept; analytics (and budget charges and calibration rows)
over Cosmos rows equal to those over the Blob records, pure and then for a real varied session on the emulators;
version-1 documents still read the same; a turn's two metadata writes report their charge and fail apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from bench.prose import exchanges
from shared.app import Services
from shared.domain.analytics import analytics
from shared.domain.feedback import Feedback
from shared.domain.pricing import Price
from shared.domain.records import Attempt, TurnRecord, carried_record, imported_record
from shared.domain.sessions import summary_of
from shared.storage.documents import charge_of, kept_record, turn_document, turn_row
from tests.api_helpers import drop_container
from tests.consistency import version_1_turn_document
from tools.calibrate_router import evidence
from tools.fake_model import Behaviour, FakeModelServer

HARD = "Design a distributed rate limiter for a multi-region API and explain the trade-offs step by step."
CLOUD_PRICE = Price(2.5, 10.0)
AT = "2026-03-0{}T10:00:00.000000Z"


def record(turn: int, backend: str | None, **fields: Any) -> TurnRecord:
    base: dict[str, Any] = {
        "turn": turn, "backend": backend, "model": f"{backend}-model", "complexity": 0.5, "reason": "rules say so",
        "router_version": "learned-v1", "route_requested": "auto", "switched_from": None, "fallback_chain": (),
        "latency_ms": 100.0 + turn, "turn_ms": 120.0 + turn, "input_tokens": 10 * turn, "output_tokens": 20 * turn,
        "cost": 0.001 * turn, "started_at": AT.format(turn), "completed_at": AT.format(turn), "user_chars": 30,
        "reply_chars": 90, "signals": ("code",), "follow_up": False,
        "extra": {"context": {"backend": backend, "mode": "full", "window": 8000, "estimated_tokens": 11 * turn}},
    }  # fmt: skip
    return TurnRecord(**{**base, **fields})


SUMMARY_CALL = {
    "backend": "local", "model": "llama3.2", "calls": 2, "failed": 1, "input_tokens": 5000, "output_tokens": 300,
    "latency_ms": 40.5, "cost": 0.0007,
}  # fmt: skip
SHADOW = {"router_version": "rules-v1", "backend": "cloud", "complexity": 0.61, "primary": "local"}
FELL_BACK = (Attempt("cloud", "gpt-4o-mini", "server_error", 12.5), Attempt("foundry", "phi", "cooldown", 0.0))


def varied_records() -> list[TurnRecord]:
    """Carried turns (imported, and copied from an export), live turns with switches, fallbacks, shadow choices,
    summary calls, redaction notes, explicit routes, and zero complexity and latency."""
    now = datetime(2026, 3, 1, 9, tzinfo=UTC)
    exchange = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey"}]
    imported = imported_record(1, exchange, now, "openai")
    copied = carried_record(record(7, "cloud"), turn=2, now=now, reason="imported (export)", extra={"export": 1})
    summary_note = {"backend": "local", "mode": "summary", "estimated_tokens": 900, "summary_calls": [SUMMARY_CALL]}
    return [
        imported,
        copied,
        record(3, "local", complexity=0.0, latency_ms=0.0, cost=0.0, extra={"shadow": SHADOW, "context": summary_note}),
        record(4, "cloud", switched_from="local", extra={"shadow": {**SHADOW, "primary": "cloud"}}),
        record(5, "local", switched_from="cloud", fallback_chain=FELL_BACK, extra={"redaction": {"applied": True}}),
        record(6, "apim", route_requested="apim", router_version=None, complexity=None, input_tokens=0),
    ]


def varied_feedback() -> dict[int, Feedback]:
    return {
        1: Feedback("up", AT.format(1)),
        3: Feedback("down", AT.format(3), "cloud", "too short"),
        5: Feedback("up", AT.format(5), comment="nice"),
    }


def all_analytics(records: Sequence[TurnRecord], feedback: dict[int, Feedback]) -> dict[str, Any]:
    rated = [(r.backend, feedback[r.turn]) for r in records if r.turn in feedback]
    return analytics(records, CLOUD_PRICE, "cloud price", feedback=rated)


# ---- the document shape (pure) -------------------------------------------------------------------------------------


def test_a_turn_document_keeps_what_analytics_budgets_and_calibration_read_and_nothing_else() -> None:
    summary_note = {"backend": "local", "mode": "summary", "window": 4000, "estimated_tokens": 900,
                    "turns_sent": [3, 4], "summary_calls": [SUMMARY_CALL]}  # fmt: skip
    full = record(
        4, "local", switched_from="cloud", fallback_chain=FELL_BACK,
        extra={"shadow": SHADOW, "context": summary_note, "redaction": {"applied": True, "kinds": ["EMAIL"]}},
    )  # fmt: skip
    document = turn_document("alice", "s1", full, Feedback("down", AT.format(4), "cloud", "the secret"))
    assert document == {
        "id": "alice.s1.000004",
        "type": "turn",
        "schemaVersion": 2,
        "sessionId": "s1",
        "userId": "alice",
        "turn": 4,
        "completed_at": AT.format(4),
        "backend": "local",
        "latency_ms": 104.0,
        "input_tokens": 40,
        "output_tokens": 80,
        "cost": 0.004,
        "switched_from": "cloud",
        "fallback_chain": [attempt.to_dict() for attempt in FELL_BACK],
        "complexity": 0.5,
        "router_version": "learned-v1",
        "extra": {
            "shadow": {"router_version": "rules-v1", "backend": "cloud", "primary": "local"},
            "context": {
                "mode": "summary",
                "estimated_tokens": 900,
                "summary_calls": [{key: value for key, value in SUMMARY_CALL.items() if key != "model"}],
            },
        },
        "summary_cost": 0.0007,
        "feedback": {"rating": "down", "preferred_backend": "cloud"},
    }
    assert "the secret" not in json.dumps(document) and "rules say so" not in json.dumps(document)


def test_a_field_at_its_default_is_left_out_but_a_zero_complexity_or_latency_is_kept() -> None:
    local = record(1, "local", complexity=0.0, latency_ms=0.0, cost=0.0, extra={})
    document = turn_document("alice", "s1", local)
    assert {key: document[key] for key in ("complexity", "latency_ms")} == {"complexity": 0.0, "latency_ms": 0.0}
    for absent in ("cost", "switched_from", "fallback_chain", "route_requested", "imported", "extra", "summary_cost"):
        assert absent not in document, absent
    carried = turn_document("alice", "s1", varied_records()[0])
    assert carried["imported"] is True and "backend" not in carried and "latency_ms" not in carried
    assert turn_row(carried).record.backend is None and turn_row(carried).record.imported


def test_analytics_budgets_and_calibration_over_lean_documents_equal_those_over_the_full_records() -> None:
    records, feedback = varied_records(), varied_feedback()
    documents = [turn_document("alice", "s1", r, feedback.get(r.turn)) for r in records]
    rows = [turn_row(document) for document in documents]
    assert all_analytics([row.record for row in rows], feedback) == all_analytics(records, feedback)
    assert [row.feedback for row in rows] == [
        None if r.turn not in feedback else Feedback(feedback[r.turn].rating, "", feedback[r.turn].preferred_backend)
        for r in records
    ]
    full = [version_1_turn_document("alice", "s1", r, feedback.get(r.turn)) for r in records]
    assert [charge_of(document) for document in documents] == [charge_of(document) for document in full]
    for version in ("learned-v1", "rules-v1"):
        assert evidence(documents, version) == evidence(full, version)
    assert evidence(documents, "learned-v1")[0], "the calibration sample has rated turns"


def test_a_version_1_document_reads_as_the_full_record_with_the_same_analytics() -> None:
    records, feedback = varied_records(), varied_feedback()
    old = [turn_row(version_1_turn_document("alice", "s1", r, feedback.get(r.turn))) for r in records]
    assert [row.record for row in old] == records
    lean = [turn_row(turn_document("alice", "s1", r, feedback.get(r.turn))).record for r in records]
    assert lean == [kept_record(r) for r in records]
    assert all_analytics(lean, feedback) == all_analytics([row.record for row in old], feedback)


def test_a_document_of_an_unknown_schema_version_is_refused() -> None:
    document = {**turn_document("alice", "s1", record(1, "local")), "schemaVersion": 3}
    with pytest.raises(ValueError, match="schema version 3"):
        turn_row(document)


# ---- on the emulators ----------------------------------------------------------------------------------------------


async def test_a_turns_two_metadata_writes_report_their_request_charge_and_a_failed_one_leaves_the_other_written(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any]
) -> None:
    env = make_env(COSMOS_CREATE_RESOURCES="false")  # as in Azure: a missing container is not recreated
    services: Services = await make_services(env)
    await services.metadata.ensure_resources()
    first = await services.conversations.chat("alice", "hi")
    snapshot = await services.snapshots.load("alice", first.session_id)
    # The emulator answers every request with x-ms-request-charge 1 (hard-coded): two writes, 2 RU.
    assert await services.metadata.record_turn(summary_of(snapshot), first.record) == 2.0
    await drop_container(env, "sessions")

    second = await services.conversations.chat("alice", "and again", first.session_id)

    assert not second.metadata_saved  # logged; reconcile repairs it
    rows = await services.metadata.turns.rows_of_session("alice", first.session_id)
    assert [row.record for row in rows] == [kept_record(first.record), kept_record(second.record)]


async def test_analytics_over_cosmos_rows_equal_analytics_over_the_blob_records_for_a_varied_session(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    """Imported turns, a summary of them for a small local window, shadow choices, a switch, a fallback and
    feedback: the analytics the API serves from Cosmos are those of the Blob records."""
    models["local"].configure(tokenizer="bpe", context_window=1500)
    env = make_env(LOCAL_MODEL_CONTEXT_TOKENS="1500", MODEL_MAX_OUTPUT_TOKENS="300", ROUTER_SHADOW="rules-v1")
    services: Services = await make_services(env)
    history = [
        {"role": role, "content": text} for question, answer in exchanges(3, 8)
        for role, text in (("user", question), ("assistant", answer))
    ]  # fmt: skip
    session = (await services.transfer.import_session("alice", "openai", history)).snapshot.session_id
    await services.conversations.chat("alice", "and in short?", session, route="local")
    await services.conversations.chat("alice", HARD, session)
    models["cloud"].script(Behaviour.error(500))
    await services.conversations.chat("alice", HARD + " Again, in more depth.", session)
    await services.feedback.give("alice", session, 9, rating="down", preferred_backend="cloud", comment="short")
    await services.feedback.give("alice", session, 2, rating="up")
    snapshot = await services.snapshots.load("alice", session)
    records = snapshot.records
    assert [r.backend for r in records] == [None] * 8 + ["local", "cloud", "local"]
    assert records[8].summary_calls and records[9].switched_from == "local" and records[10].fallback_chain
    assert all("shadow" in r.extra for r in records[8:])
    rows = await services.metadata.turns.rows_of_session("alice", session)
    assert [row.record for row in rows] == [kept_record(r) for r in records]  # the Cosmos path, all 11 turns

    from_cosmos = await services.conversations.session_analytics("alice", session)
    owner = await services.conversations.owner_analytics("alice")
    await services.metadata.database.container("sessions").delete_item(session, partition_key="alice")
    from_blob = await services.conversations.session_analytics("alice", session)  # no summary: Blob decides

    assert from_cosmos == from_blob
    assert {key: value for key, value in owner.items() if key not in ("period", "sessions")} == {
        key: value for key, value in from_blob.items() if key != "session_id"
    }
    assert from_blob["fallbacks"] == 1 and from_blob["model_switches"] == 2 and from_blob["shadow"]["turns"] == 3
    assert from_blob["summary"]["local"]["calls"] >= 1 and from_blob["feedback"]["up"] == 1
