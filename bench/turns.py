"""Scenario 1: what a turn costs besides the model, at 1, 10, 100 and 500 turns, ours and theirs.

Ours. The wall time of `Conversations.chat()` minus the model call as the turn record states it
(`record.latency_ms`: from starting the agent run to its final response, so Agent Framework's own per-run work
and the HTTP call to the model are excluded). What is left is the lease and the load (which go out together:
`open`), routing, fitting the context, building the session and the record, the save (journal append,
compaction or creation) and the Cosmos metadata writes (with the lease release beside them). The timed store
subclasses (`bench.instrument`) split it into open, save and metadata; "other" is the remainder. Every turn's
storage requests and sequential steps are counted at the transport (`shared.storage.transport.counting`).

Warm and cold. The first measured turn of each conversation comes to a worker that holds no copy of the session
(cold: the snapshot and the journal are read beside the lease); the next ones to the worker that served the
previous turn (warm: only the journal's new part is read, beside the lease). The headline figure is the warm
one; the cold one is reported beside it.

Theirs. The time spent in `CosmosHistoryProvider`'s two hooks of the same kind of `Agent.run`: before_run
(loading the history) and after_run (saving: the provider reads the whole history again, then upserts the
new messages in a transactional batch). The model call and Agent Framework's own work are excluded as for ours.

Both also report the whole turn's wall time with a model that answers at once (a ratio that includes what
each design sends to the model: ours caps the context, theirs sends every stored message).

Turn N of a conversation is measured on a conversation holding N-1 exchanges written directly
(`bench.seed`, in the layout real turns leave), then T consecutive real turns (N, N+1, ...) on each of R
conversations, ours and theirs alternating.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from bench import prose
from bench.env import describe, ratio
from bench.seed import created_at_for, expected_transcript, make_entries, natural_layout, seed_ours, seed_theirs
from bench.stack import MODELS, SOURCE_ID, Stack, order_report, sort_key_ties, transcript_of
from shared.domain.clock import utc_iso
from shared.domain.ids import new_session_id
from shared.domain.records import Entry

OWNER = "bench"
PHASES = ("open", "load", "save", "metadata")  # what the timed stores split a turn into (bench.instrument)
LENGTHS = (1, 10, 100, 500)
# length: (conversations, consecutive measured turns on each)
PLAN = {1: (24, 1), 10: (8, 3), 100: (6, 4), 500: (4, 6)}
PLAN_QUICK = {1: (10, 1), 10: (4, 2), 100: (3, 2), 500: (2, 3)}


async def warm_up(stack: Stack) -> None:
    """Open connections and load lazily imported code before anything is timed."""
    session_id = None
    for user, reply in prose.exchanges(99, 3):
        result, *_ = await stack.our_turn(OWNER, user, reply, session_id)
        session_id = result.session_id
    for user, reply in prose.exchanges(98, 3):
        await stack.their_turn("warmup", "warmup", user, reply)


async def run(stack: Stack, quick: bool) -> dict[str, Any]:
    plan = PLAN_QUICK if quick else PLAN
    await warm_up(stack)
    samples: list[dict[str, Any]] = []
    order: dict[str, Any] = {"ours": [], "theirs": []}
    compactions: dict[int, list[float]] = {}
    for length in LENGTHS:
        conversations_count, turns = plan[length]
        their_container = f"turns-{length}"
        await stack.their_container(their_container)
        conversations: list[dict[str, Any]] = []
        for index in range(conversations_count):
            exchanges = prose.exchanges(length * 1000 + index, length - 1 + turns)
            history, live = exchanges[: length - 1], exchanges[length - 1 :]
            conversation: dict[str, Any] = {"live": live, "ours": None, "theirs": uuid.uuid4().hex, "entries": []}
            if history:
                start, created_at = created_at_for(len(history))
                entries = make_entries(history, tuple(MODELS), MODELS, start)
                conversation["entries"] = entries
                conversation["ours"] = new_session_id()
                await seed_ours(stack.snapshots, stack.metadata, OWNER, conversation["ours"], entries, created_at)
                # The first measured turn comes to a worker with no copy of the session (cold); the next ones to
                # the worker that served the previous turn (warm).
                stack.snapshots.forget(OWNER, conversation["ours"])
                await seed_theirs(
                    await stack.their_container(their_container), conversation["theirs"], entries, SOURCE_ID
                )
            conversations.append(conversation)
        for step in range(turns):
            for index, conversation in enumerate(conversations):
                user, reply = conversation["live"][step]
                order_pair = ("ours", "theirs") if (index + step) % 2 == 0 else ("theirs", "ours")
                sample: dict[str, Any] = {"length": length, "turn": length + step}
                for who in order_pair:
                    if who == "ours":
                        cold = step == 0 and length > 1  # a worker with no copy (see the seeding above)
                        result, total, trips = await stack.our_turn(OWNER, user, reply, conversation["ours"])
                        conversation["ours"] = result.session_id
                        model_ms = float(result.record.latency_ms or 0.0)
                        phases = dict(stack.phases)
                        known = sum(phases.get(name, 0.0) for name in PHASES)
                        phases["other"] = total - model_ms - known
                        sample["ours"] = {
                            "total_ms": total,
                            "model_ms": model_ms,
                            "overhead_ms": total - model_ms,
                            "storage_ms": phases.get("save", 0.0) + phases.get("metadata", 0.0),
                            "phases": phases,
                            "backend": result.record.backend,
                            "cold": cold,
                            "round_trips": trips.to_dict(),
                        }
                    else:
                        their = await stack.their_turn(their_container, conversation["theirs"], user, reply)
                        overhead = their.phases.get("load", 0.0) + their.phases.get("save", 0.0)
                        sample["theirs"] = {
                            "total_ms": their.total_ms,
                            "model_ms": their.total_ms - overhead,
                            "overhead_ms": overhead,
                            "phases": their.phases,
                        }
                samples.append(sample)
        # Every resumed transcript, both stores, after the measured turns.
        for conversation in conversations:
            expected = expected_transcript(conversation["entries"]) + [
                pair for user, reply in conversation["live"] for pair in (("user", user), ("assistant", reply))
            ]
            snapshot = await stack.snapshots.load(OWNER, conversation["ours"])
            ours_got = [(str(m["role"]), str(m["contents"][0]["text"])) for m in snapshot.af_messages()]
            order["ours"].append({"length": length, **order_report(expected, ours_got)})
            theirs_got = transcript_of(await stack.their_messages(their_container, conversation["theirs"]))
            documents, tied = await sort_key_ties(await stack.their_container(their_container), conversation["theirs"])
            order["theirs"].append(
                {"length": length, **order_report(expected, theirs_got), "documents": documents, "tied": tied}
            )
        # A compaction, forced once per conversation: the save a turn pays now and then (see SUMMARY).
        if length >= 10:
            for index, conversation in enumerate(conversations):
                user, reply = prose.exchanges(length * 7000 + index, 1)[0]
                async with stack.snapshots.locked(OWNER, conversation["ours"]) as lock:
                    before = await stack.snapshots.load(OWNER, conversation["ours"])
                    start, _ = created_at_for(0)
                    entry: Entry = make_entries([(user, reply)], tuple(MODELS), MODELS, start, before.turns + 1)[0]
                    after = before.with_entry(entry, utc_iso(start), before.agent_state)
                    started = time.perf_counter()
                    await stack.snapshots._compact(lock, after)
                    compactions.setdefault(length, []).append((time.perf_counter() - started) * 1000.0)
    result = summarize(samples, order, compactions, plan)
    result["compaction_schedule"] = compaction_schedule(stack)
    return result


def compaction_schedule(stack: Stack) -> dict[str, Any]:
    """At which turns a conversation's save is a compaction (the store's rule replayed over 1,000 prose turns),
    and so how often a turn near 10, 100 and 500 pays one: the amortized cost is compaction time / interval."""
    start, created_at = created_at_for(1000)
    entries = make_entries(prose.exchanges(424_242, 1000), tuple(MODELS), MODELS, start)
    _, _, turns_compacted = natural_layout(stack.snapshots, OWNER, "schedule", created_at, entries)
    intervals = {}
    for length in (10, 100, 500):
        after = [turn for turn in turns_compacted if turn >= length]
        before = [turn for turn in turns_compacted if turn < length]
        if after:
            intervals[str(length)] = after[0] - (before[-1] if before else 1)
    return {"compaction_turns": turns_compacted, "interval_around": intervals}


def _trip_kinds(trips: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct step sequences seen (a compaction or a day's first turn has more), with how often."""
    seen: dict[str, dict[str, Any]] = {}
    for item in trips:
        key = repr(item["steps"])
        entry = seen.setdefault(key, {**item, "turns": 0})
        entry["turns"] += 1
    return sorted(seen.values(), key=lambda entry: -entry["turns"])


def summarize(
    samples: list[dict[str, Any]],
    order: dict[str, Any],
    compactions: dict[int, list[float]],
    plan: dict[int, tuple[int, int]],
) -> dict[str, Any]:
    by_length: dict[str, Any] = {}
    for length in LENGTHS:
        rows = [sample for sample in samples if sample["length"] == length]
        cold_rows = [row for row in rows if row["ours"]["cold"]]
        warm_rows = [row for row in rows if not row["ours"]["cold"]]
        ours_overhead = [row["ours"]["overhead_ms"] for row in warm_rows]
        theirs_overhead = [row["theirs"]["overhead_ms"] for row in rows]
        cold_stats = describe([row["ours"]["overhead_ms"] for row in cold_rows]) if cold_rows else None
        ours_total = [row["ours"]["total_ms"] for row in rows]
        theirs_total = [row["theirs"]["total_ms"] for row in rows]
        ours_stats = describe(ours_overhead)
        theirs_stats = describe(theirs_overhead)
        phases = sorted({name for row in rows for name, value in row["ours"]["phases"].items() if _is_number(value)})
        their_phases = sorted({n for row in rows for n, v in row["theirs"]["phases"].items() if _is_number(v)})
        kinds: dict[str, int] = {}
        for row in rows:
            kind = row["ours"]["phases"].get("save_kind", "?")
            kinds[kind] = kinds.get(kind, 0) + 1
        by_length[str(length)] = {
            "conversations": plan[length][0],
            "turns_each": plan[length][1],
            "ours_overhead_ms": ours_stats,
            "theirs_overhead_ms": theirs_stats,
            "ratio_p50": ratio(ours_stats["p50"], theirs_stats["p50"]),
            "ratio_p95": ratio(ours_stats["p95"], theirs_stats["p95"]),
            "ours_total_ms": describe(ours_total),
            "theirs_total_ms": describe(theirs_total),
            "total_ratio_p50": ratio(describe(ours_total)["p50"], describe(theirs_total)["p50"]),
            "ours_model_ms": describe([row["ours"]["model_ms"] for row in rows]),
            "theirs_model_ms": describe([row["theirs"]["model_ms"] for row in rows]),
            "ours_storage_ms": describe([row["ours"]["storage_ms"] for row in rows]),
            "ours_save_kinds": kinds,
            "ours_phases_p50_ms": {
                name: describe([float(row["ours"]["phases"].get(name, 0.0)) for row in rows])["p50"] for name in phases
            },
            "theirs_phases_p50_ms": {
                name: describe([float(row["theirs"]["phases"].get(name, 0.0)) for row in rows])["p50"]
                for name in their_phases
            },
            "ours_compaction_ms": describe(compactions.get(length, [])),
            "ours_cold_overhead_ms": cold_stats,
            "cold_ratio_p50": ratio(cold_stats["p50"], theirs_stats["p50"]) if cold_stats else None,
            "ours_round_trips": {
                kind: _trip_kinds([row["ours"]["round_trips"] for row in chosen])
                for kind, chosen in (("warm", warm_rows), ("cold", cold_rows))
                if chosen
            },
        }
    return {
        "scenario": "turn_overhead",
        "what": __doc__,
        "by_length": by_length,
        "order": order,
        "samples": samples,
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
