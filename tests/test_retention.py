"""The retention timer on the emulators: exactly the expired set goes, re-runs finish an interrupted sweep,
a turn running during the sweep keeps its session, and a dry run deletes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.app import Services
from shared.domain.audit import RETENTION_ACTOR
from shared.domain.clock import utc_iso
from shared.domain.errors import SessionNotFound
from shared.services.conversations import Conversations
from shared.services.retention import candidate_expression, is_expired, retention_cutoff, tag_is_stale
from tools.fake_model import Behaviour, FakeModelServer

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=30)  # RETENTION_DAYS defaults to 30


class Clock:
    """The time the service sees; tests move it to write sessions with exact timestamps."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def conversations_at(services: Services, clock: Clock) -> Conversations:
    return Conversations(services.settings, services.snapshots, services.metadata, services.backends, clock=clock)


async def session_at(services: Services, when: datetime, owner: str = "alice", text: str = "hello") -> str:
    """A real one-turn session (fake model, real stores) whose last activity is exactly `when`."""
    result = await conversations_at(services, Clock(when)).chat(owner, text, route="local")
    return result.session_id


async def blob_names(services: Services, prefix: str = "") -> list[str]:
    return [blob.name async for blob in services.snapshots._container.list_blobs(name_starts_with=prefix)]


async def cosmos_ids(services: Services, session_id: str) -> list[str]:
    turns = services.metadata.database.container("turns").query_items(
        "SELECT c.id FROM c WHERE c.sessionId = @s",
        parameters=[{"name": "@s", "value": session_id}],
        partition_key=session_id,
    )
    found = [item["id"] async for item in turns]
    summaries = services.metadata.database.container("sessions").query_items(
        "SELECT c.id FROM c WHERE c.id = @s", parameters=[{"name": "@s", "value": session_id}]
    )
    return found + [item["id"] async for item in summaries]


async def exists_everywhere(services: Services, owner: str, session_id: str) -> bool:
    return bool(await blob_names(services, f"{owner}/{session_id}/")) and bool(await cosmos_ids(services, session_id))


async def gone_everywhere(services: Services, owner: str, session_id: str) -> bool:
    return not await blob_names(services, f"{owner}/{session_id}/") and not await cosmos_ids(services, session_id)


# ---- pure selection ----------------------------------------------------------------------------------------------


def test_selection_is_strictly_older_than_the_window_with_a_day_tag_that_includes_the_cutoff_day() -> None:
    cutoff = retention_cutoff(NOW, 30)
    assert cutoff == datetime(2026, 1, 30, 12, 0, tzinfo=UTC)
    assert candidate_expression(cutoff) == "\"lastActiveDay\" <= '2026-01-30'"
    assert is_expired(utc_iso(cutoff - timedelta(microseconds=1)), cutoff)
    assert not is_expired(utc_iso(cutoff), cutoff)
    assert not is_expired(utc_iso(cutoff + timedelta(seconds=1)), cutoff)
    assert not tag_is_stale(utc_iso(cutoff + timedelta(hours=11)), cutoff)  # same day: the tag is right
    assert tag_is_stale(utc_iso(cutoff + timedelta(days=1)), cutoff)


# ---- the sweep ---------------------------------------------------------------------------------------------------


async def test_sweep_deletes_exactly_the_sessions_idle_longer_than_the_window(services: Services) -> None:
    old = await session_at(services, CUTOFF - timedelta(days=10))
    just_expired = await session_at(services, CUTOFF - timedelta(seconds=1))
    at_cutoff = await session_at(services, CUTOFF)
    just_inside = await session_at(services, CUTOFF + timedelta(seconds=1))
    fresh = await session_at(services, NOW - timedelta(hours=1), owner="bob")

    report = await services.retention.sweep(NOW)

    assert (report.scanned, report.expired, report.deleted, report.skipped, report.failed) == (4, 2, 2, 2, 0)
    assert sorted(report.sessions) == sorted([f"alice/{old}", f"alice/{just_expired}"])
    for session_id in (old, just_expired):
        assert await gone_everywhere(services, "alice", session_id)
    for owner, session_id in (("alice", at_cutoff), ("alice", just_inside), ("bob", fresh)):
        assert await exists_everywhere(services, owner, session_id)
        assert (await services.snapshots.load(owner, session_id)).turns == 1
    events = [
        item
        async for item in services.metadata.database.container("audit").query_items(
            "SELECT * FROM c WHERE c.type = 'audit'"
        )
    ]
    assert sorted(event["sessionId"] for event in events) == sorted([old, just_expired])
    assert {(event["actor"], event["action"], event["outcome"]) for event in events} == {
        (RETENTION_ACTOR, "retention_delete", "ok")
    }


async def test_a_session_with_a_stale_day_tag_is_kept_by_the_exact_timestamp_and_retagged(services: Services) -> None:
    session_id = await session_at(services, NOW - timedelta(days=2))
    blob = services.snapshots._container.get_blob_client(f"alice/{session_id}/snapshot.json.gz")
    tags = await blob.get_blob_tags()
    await blob.set_blob_tags({**tags, "lastActiveDay": "2025-12-01"})  # as if a tag write had failed

    report = await services.retention.sweep(NOW)

    assert (report.scanned, report.deleted, report.skipped) == (1, 0, 1)
    assert await exists_everywhere(services, "alice", session_id)
    assert (await blob.get_blob_tags())["lastActiveDay"] == (NOW - timedelta(days=2)).strftime("%Y-%m-%d")
    assert (await services.retention.sweep(NOW)).scanned == 0  # no longer a candidate


async def test_a_sweep_stopped_midway_or_crashed_midway_is_finished_by_the_next_run(services: Services) -> None:
    expired = [await session_at(services, CUTOFF - timedelta(days=day)) for day in (1, 2, 3)]
    # A crash inside an earlier delete, after the journals went and before the snapshot did:
    remnant = await session_at(services, CUTOFF - timedelta(days=4))
    await services.snapshots._container.get_blob_client(f"alice/{remnant}/journal.jsonl.gz").delete_blob()
    # A crash between the blob delete and the Cosmos delete: records without a snapshot.
    half_deleted = await session_at(services, CUTOFF - timedelta(days=5))
    assert await services.snapshots.delete("alice", half_deleted)
    kept = await session_at(services, NOW - timedelta(days=1))

    first = await services.retention.sweep(NOW, batch_size=2, max_batches=1)
    assert (first.scanned, first.deleted, first.complete) == (2, 2, False), first

    second = await services.retention.sweep(NOW, batch_size=2)
    assert second.complete and second.failed == 0
    assert (second.deleted, second.orphans_removed) == (2, 1)
    for session_id in (*expired, remnant, half_deleted):
        assert await gone_everywhere(services, "alice", session_id)
    assert await exists_everywhere(services, "alice", kept)

    third = await services.retention.sweep(NOW, batch_size=2)
    assert (third.scanned, third.deleted, third.orphans_found, third.failed) == (0, 0, 0, 0)


async def test_a_turn_running_during_the_sweep_keeps_its_session(
    services: Services, models: dict[str, FakeModelServer]
) -> None:
    session_id = await session_at(services, CUTOFF - timedelta(days=3))
    models["local"].script(Behaviour.slow(1.5, reply="still here"))
    live = conversations_at(services, Clock(NOW))
    turn = asyncio.create_task(live.chat("alice", "one more thing", session_id, route="local"))
    try:
        for _ in range(250):  # the model has the request, so the turn holds the session's lease
            if len(models["local"].requests) == 2:
                break
            await asyncio.sleep(0.02)
        assert len(models["local"].requests) == 2

        report = await services.retention.sweep(NOW)

        assert (report.scanned, report.deleted, report.skipped) == (1, 0, 1)
    finally:
        result = await turn
    assert result.turn == 2
    snapshot = await services.snapshots.load("alice", session_id)
    assert snapshot.turns == 2 and snapshot.updated_at == utc_iso(NOW)
    assert (await services.retention.sweep(NOW)).deleted == 0


async def test_a_dry_run_reports_what_would_go_and_deletes_nothing(make_services: Callable[..., Any]) -> None:
    services = await make_services(RETENTION_DRY_RUN="true")
    expired = await session_at(services, CUTOFF - timedelta(days=1))
    kept = await session_at(services, CUTOFF + timedelta(hours=1))
    orphan = await session_at(services, CUTOFF - timedelta(days=2))
    await services.snapshots.delete("alice", orphan)

    job = await services.retention.run_job(NOW)

    report = job.retention
    assert report.dry_run and job.reconcile is None
    assert (report.expired, report.deleted, report.orphans_found, report.orphans_removed) == (1, 0, 1, 0)
    assert sorted(report.sessions) == sorted([f"alice/{expired}", f"alice/{orphan}"])
    assert await exists_everywhere(services, "alice", expired)
    assert await exists_everywhere(services, "alice", kept)
    assert await cosmos_ids(services, orphan)


async def test_the_timer_job_also_reconciles_recently_active_sessions(services: Services) -> None:
    recent = await session_at(services, NOW - timedelta(hours=3))
    await services.metadata.database.container("sessions").delete_item(recent, partition_key="alice")

    job = await services.retention.run_job(NOW)

    assert job.reconcile is not None and job.reconcile.summaries_repaired == 1
    summary = await services.metadata.summary("alice", recent)
    assert summary is not None and summary.turns == 1


async def test_a_deleted_session_reads_as_missing_afterwards(services: Services) -> None:
    session_id = await session_at(services, CUTOFF - timedelta(days=1))
    await services.retention.sweep(NOW)
    with pytest.raises(SessionNotFound):
        await services.conversations.get("alice", session_id)
