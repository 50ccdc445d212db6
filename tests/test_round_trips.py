"""Round trips of a turn and of a resume, counted at the storage transport (`shared.storage.transport`).

Counts are deterministic for a code path (which requests go out, and which go out together), so unlike times
they are asserted. A *step* is a set of requests in flight at the same time; the steps of a turn are what it
waits for in sequence. Correctness with a worker's session copy is checked here too: workers alternating on a
session, a compaction by another worker, and a session deleted behind a worker's back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.app import Services
from shared.domain.errors import SessionNotFound
from shared.storage.transport import RoundTrips, counting

WARM_TURN = [
    ["blob:get:journal", "blob:lease:acquire"],  # the journal's new part, read beside the lease
    ["blob:appendblock"],
    ["blob:lease:release", "cosmos:upsert", "cosmos:upsert"],  # the lease goes back beside the metadata writes
]
COLD_TURN = [
    ["blob:get:journal", "blob:get:snapshot", "blob:lease:acquire"],  # both blobs, read beside the lease
    ["blob:appendblock"],
    ["blob:lease:release", "cosmos:upsert", "cosmos:upsert"],
]


async def turn(services: Services, text: str, session: str | None = None) -> tuple[str, RoundTrips]:
    with counting() as trips:
        result = await services.conversations.chat("alice", text, session, route="local")
    return result.session_id, trips


async def test_a_new_session_a_warm_turn_and_a_cold_turn_take_2_3_and_3_steps(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any]
) -> None:
    env = make_env()
    worker = await make_services(env)
    session, new = await turn(worker, "hello")
    # The snapshot first; its empty journal beside the metadata writes.
    assert new.steps() == [["blob:put:snapshot"], ["blob:put:journal", "cosmos:upsert", "cosmos:upsert"]]

    for text in ("second", "third"):
        _, warm = await turn(worker, text, session)
        assert warm.steps() == WARM_TURN and warm.requests == 6

    other = await make_services(env)  # another worker: no copy of the session
    _, cold = await turn(other, "fourth", session)
    assert cold.steps() == COLD_TURN and cold.requests == 7


async def test_a_resume_takes_one_step_cold_or_warm(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any]
) -> None:
    env = make_env()
    worker = await make_services(env)
    session, _ = await turn(worker, "hello")
    await turn(worker, "again", session)
    with counting() as warm:
        view = await worker.conversations.get("alice", session)
    assert warm.steps() == [["blob:get:journal", "blob:get:snapshot"]]  # a 304 and the journal's (empty) new part
    assert view.snapshot.turns == 2

    cold_worker = await make_services(env)
    with counting() as cold:
        again = await cold_worker.conversations.get("alice", session)
    assert cold.steps() == [["blob:get:journal", "blob:get:snapshot"]]
    assert again.snapshot.entries == view.snapshot.entries


async def test_workers_taking_turns_on_one_session_each_see_the_others_turns(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any]
) -> None:
    env = make_env()
    first, second = await make_services(env), await make_services(env)
    session, _ = await turn(first, "turn 1")
    await turn(second, "turn 2", session)
    for number in range(3, 9):  # each worker's copy is one turn behind when its turn comes
        worker = first if number % 2 else second
        _, trips = await turn(worker, f"turn {number}", session)
        assert trips.steps() == WARM_TURN  # the other worker's turn came with the journal's new part
    for worker in (first, second):
        snapshot = await worker.snapshots.load("alice", session)
        said = [message["content"] for message in snapshot.openai_messages() if message["role"] == "user"]
        assert said == [f"turn {number}" for number in range(1, 9)]
        assert [entry.turn for entry in snapshot.entries] == list(range(1, 9))


async def test_a_compaction_by_another_worker_makes_the_copy_read_again(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any]
) -> None:
    env = make_env(SNAPSHOT_COMPACT_EVERY="2")
    first, second = await make_services(env), await make_services(env)
    session, _ = await turn(first, "turn 1")
    await turn(first, "turn 2", session)
    generation = (await first.snapshots.load("alice", session)).generation
    for number in range(3, 7):  # the second worker compacts (every 2 journal turns) behind the first's back
        await turn(second, f"turn {number}", session)
    assert (await second.snapshots.load("alice", session)).generation > generation
    _, trips = await turn(first, "turn 7", session)
    operations = [operation for step in trips.steps() for operation in step]
    assert operations.count("blob:get:snapshot") >= 1 and trips.steps()[0] == ["blob:get:journal", "blob:lease:acquire"]
    snapshot = await first.snapshots.load("alice", session)
    assert [entry.turn for entry in snapshot.entries] == list(range(1, 8))
    said = [message["content"] for message in snapshot.openai_messages() if message["role"] == "user"]
    assert said == [f"turn {number}" for number in range(1, 8)]


async def test_a_session_deleted_behind_a_workers_back_is_not_found_not_served_from_its_copy(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any]
) -> None:
    env = make_env()
    first, second = await make_services(env), await make_services(env)
    session, _ = await turn(first, "hello")
    await turn(first, "again", session)
    assert await second.conversations.delete("alice", session)
    with pytest.raises(SessionNotFound):
        await first.conversations.get("alice", session)
    with pytest.raises(SessionNotFound):
        await turn(first, "still there?", session)


async def test_a_turn_as_the_http_handler_runs_it_writes_its_audit_event_in_its_last_step(
    make_services: Callable[..., Any],
) -> None:
    services = await make_services()
    session, _ = await turn(services, "hello")
    async with services.audit.audited("alice", session, "continue") as audited:
        with counting() as trips:
            saved = services.audit.turn_saved("alice", audited)
            await services.conversations.chat("alice", "again", session, route="local", on_saved=saved)
    assert audited.recorded  # written by the turn, so not again when `audited` ends
    steps = trips.steps()
    assert steps[:2] == WARM_TURN[:2] and len(steps) == 3
    assert steps[2] == sorted([*WARM_TURN[2], "cosmos:upsert"])  # the audit event: one more write, same step
    events = await services.audit.session_events(session, "alice")
    assert [event.action for event in events] == ["continue"]


@pytest.mark.parametrize("warm", [True, False])
async def test_a_new_session_whose_journal_was_never_written_goes_on(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any], warm: bool
) -> None:
    """The journal is written after the snapshot (beside the metadata): if that write never happened (a crash),
    the journal reads as empty and the next turn writes it."""
    from azure.storage.blob.aio import ContainerClient

    env = make_env()
    worker = await make_services(env)
    session, _ = await turn(worker, "turn 1")
    journal = worker.snapshots.journal_name("alice", session)
    async with ContainerClient.from_connection_string(
        env["STORAGE_CONNECTION_STRING"], env["SNAPSHOT_CONTAINER"]
    ) as container:
        await container.delete_blob(journal)
    if not warm:
        worker = await make_services(env)
    assert (await worker.conversations.get("alice", session)).snapshot.turns == 1
    await turn(worker, "turn 2", session)
    await turn(worker, "turn 3", session)
    fresh = await make_services(env)
    snapshot = await fresh.snapshots.load("alice", session)
    said = [message["content"] for message in snapshot.openai_messages() if message["role"] == "user"]
    assert said == ["turn 1", "turn 2", "turn 3"] and snapshot.journal_turns == 2


async def test_an_openai_client_resending_the_whole_conversation_costs_what_a_turn_does(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any]
) -> None:
    """`/v1/chat/completions` compares the conversation sent with the stored one on the snapshot the turn loads
    anyway: with `X-Session-Id` the round trips are a turn's, and without it one summaries query comes first."""
    from shared.services.completions import Completion
    from shared.services.events import TurnCompleted

    env = make_env()
    worker = await make_services(env)
    session, _ = await turn(worker, "turn 1")
    for number in (2, 3):
        await turn(worker, f"turn {number}", session)

    async def complete(services: Services, text: str, session_id: str | None) -> RoundTrips:
        sent = (await worker.snapshots.load("alice", session)).openai_messages()  # what the client holds
        completion = Completion("local", [*sent, {"role": "user", "content": text}], session_id=session_id)
        with counting() as trips:
            events = [event async for event in services.completions.complete("alice", completion)]
        last = events[-1]
        assert isinstance(last, TurnCompleted) and last.result.session_id == session, last
        return trips

    assert (await complete(worker, "turn 4", session)).steps() == WARM_TURN
    assert (await complete(await make_services(env), "turn 5", session)).steps() == COLD_TURN
    stateless = await complete(worker, "turn 6", None)  # found by the transcript hash in its summary
    assert stateless.steps() == [["cosmos:query"], *WARM_TURN]
    snapshot = await worker.snapshots.load("alice", session)
    said = [message["content"] for message in snapshot.openai_messages() if message["role"] == "user"]
    assert said == [f"turn {number}" for number in range(1, 7)]  # each stored once, in one session


async def test_an_empty_journal_costs_a_worker_without_a_copy_one_step_more(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any]
) -> None:
    """A ranged read of an empty blob is refused without the blob's ETag or metadata (416, on Azure as on
    Azurite), so right after a session's first turn (or a compaction) a worker without a copy asks for them: a
    resume asks at once, a turn when it saves, with its lease renewed beside the question."""
    env = make_env()
    session, _ = await turn(await make_services(env), "hello")
    reader, writer = await make_services(env), await make_services(env)
    with counting() as resume:
        await reader.conversations.get("alice", session)
    assert resume.steps() == [["blob:get:journal", "blob:get:snapshot"], ["blob:head:journal"]]
    _, cold = await turn(writer, "second", session)
    assert cold.steps() == [COLD_TURN[0], ["blob:head:journal", "blob:lease:renew"], *COLD_TURN[1:]]
