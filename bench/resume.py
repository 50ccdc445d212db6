"""Scenario 2: time to load a 10-, 100- and 500-turn conversation ready to continue, ours and theirs.

Ours: `SnapshotStore.load` (snapshot and journal blobs, read at once, decoded) by a worker with no copy of the session
(cold: someone coming back next week), followed by the `AgentSession` the next turn builds: the history it sends
(here the `CONTEXT_MAX_*` caps decide, as without a context window), which is what continuing needs. Beside it:
the same by the worker that just loaded it (warm: its copy is checked with a conditional read of the snapshot
beside the journal's new part), and the cold load followed by `AgentSession.from_dict` of the whole history (the
figure this scenario reported before the next turn's session was built from the fitted history only). The
storage requests and the sequential steps of each load are counted at the transport.
Theirs: `CosmosHistoryProvider.get_messages` (one query over the session's partition, ordered by sort_key, each
document turned into a `Message`), which is what its before_run does. The conversations are written directly
(`bench.seed`, ours in the snapshot/journal layout real turns leave); every load is checked for order.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from agent_framework import AgentSession, Message

from bench import prose
from bench.context import caps_only_history
from bench.env import describe, ratio
from bench.seed import created_at_for, expected_transcript, make_entries, seed_ours, seed_theirs
from bench.stack import MODELS, SOURCE_ID, Stack, order_report, transcript_of
from shared.agents.session import payload_of, session_payload
from shared.domain.ids import new_session_id
from shared.domain.sessions import Snapshot
from shared.storage.transport import counting

OWNER = "bench-resume"
LENGTHS = (10, 100, 500)
PLAN = (4, 6)  # conversations per length, loads of each
PLAN_QUICK = (2, 3)


def next_turn_session(snapshot: Snapshot, stack: Stack) -> AgentSession:
    """The `AgentSession` the next turn builds: the history it sends (no context window here, so the
    CONTEXT_MAX_* caps decide), as `shared.services.context` fits it and `shared.agents.session` assembles it."""
    history = caps_only_history(snapshot.entries, stack.settings)
    return AgentSession.from_dict(session_payload(snapshot.session_id, snapshot.agent_state, history))


def _trip_counts(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests and sequential steps of the loads (the same for every load of a kind), and one load's steps."""
    return {
        "requests": sorted({item["requests"] for item in items}),
        "sequential_steps": sorted({item["sequential_steps"] for item in items}),
        "steps": items[0]["steps"] if items else [],
    }


def _session_transcript(session: AgentSession) -> list[tuple[str, str]]:
    messages = session.state.get("in_memory", {}).get("messages", [])
    out: list[tuple[str, str]] = []
    for message in messages:
        if isinstance(message, Message):
            out.append((str(message.role), message.text))
        else:
            out.append((str(message["role"]), str(message["contents"][0]["text"])))
    return out


async def run(stack: Stack, quick: bool) -> dict[str, Any]:
    conversations_count, loads = PLAN_QUICK if quick else PLAN
    results: dict[str, Any] = {}
    order: dict[str, list[dict[str, Any]]] = {"ours": [], "theirs": []}
    for length in LENGTHS:
        container_name = f"resume-{length}"
        container = await stack.their_container(container_name)
        conversations = []
        for index in range(conversations_count):
            start, created_at = created_at_for(length)
            entries = make_entries(prose.exchanges(50_000 + length * 100 + index, length), tuple(MODELS), MODELS, start)
            ours, theirs = new_session_id(), uuid.uuid4().hex
            snapshot = await seed_ours(stack.snapshots, None, OWNER, ours, entries, created_at)
            await seed_theirs(container, theirs, entries, SOURCE_ID)
            conversations.append((ours, theirs, expected_transcript(entries), snapshot))
        provider = stack.their_provider(container_name)
        ours_ms: list[float] = []
        theirs_ms: list[float] = []
        layout: list[dict[str, int]] = []
        warm_ms: list[float] = []
        full_ms: list[float] = []
        trips: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
        for repeat in range(loads):
            for index, (ours, theirs, expected, _) in enumerate(conversations):
                for who in ("ours", "theirs") if (repeat + index) % 2 == 0 else ("theirs", "ours"):
                    stack.snapshots.forget(OWNER, ours)  # cold: a worker that has not served this session
                    started = time.perf_counter()
                    if who == "ours":
                        with counting() as cold:
                            snapshot = await stack.snapshots.load(OWNER, ours)
                        loaded = time.perf_counter()
                        next_turn_session(snapshot, stack)
                        ours_ms.append((time.perf_counter() - started) * 1000.0)
                        whole = time.perf_counter()
                        session = AgentSession.from_dict(payload_of(snapshot))
                        full_ms.append((loaded - started + time.perf_counter() - whole) * 1000.0)
                        trips["cold"].append(cold.to_dict())
                        warm_started = time.perf_counter()
                        with counting() as warm:
                            again = await stack.snapshots.load(OWNER, ours)
                        next_turn_session(again, stack)
                        warm_ms.append((time.perf_counter() - warm_started) * 1000.0)
                        trips["warm"].append(warm.to_dict())
                        order["ours"].append({"length": length, **order_report(expected, _session_transcript(session))})
                        if repeat == 0:
                            layout.append(
                                {
                                    "snapshot_turns": snapshot.snapshot_turns,
                                    "journal_turns": snapshot.journal_turns,
                                    "snapshot_bytes": snapshot.snapshot_bytes,
                                    "journal_bytes": snapshot.journal_bytes,
                                }
                            )
                    else:
                        messages = await provider.get_messages(theirs)
                        theirs_ms.append((time.perf_counter() - started) * 1000.0)
                        order["theirs"].append({"length": length, **order_report(expected, transcript_of(messages))})
        ours_stats, theirs_stats = describe(ours_ms), describe(theirs_ms)
        results[str(length)] = {
            "ours_ms": ours_stats,
            "theirs_ms": theirs_stats,
            "ratio_p50": ratio(ours_stats["p50"], theirs_stats["p50"]),
            "ratio_p95": ratio(ours_stats["p95"], theirs_stats["p95"]),
            "ours_layout": layout,
            "ours_warm_ms": describe(warm_ms),
            "ours_whole_history_ms": describe(full_ms),
            "ours_round_trips": {kind: _trip_counts(items) for kind, items in trips.items()},
        }
    return {"scenario": "resume", "what": __doc__, "by_length": results, "order": order}
