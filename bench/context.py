"""Scenario 7: context fitted to a small window, over a long conversation routed to the local backend.

One conversation of 500 exchanges (`bench.prose`: about 300-character questions, 1,200-character answers, one
topic), every turn forced to the local backend, whose model has an 8,192-token window
(`LOCAL_MODEL_CONTEXT_TOKENS=8192`, no output cap: the default reserve of 1,024 applies). The fake model counts
tokens like a BPE tokenizer (`tools.fake_model.bpe_tokens`, not characters / 4), refuses any request longer
than its window, and answers after `MODEL_LATENCY_S` (a small local model's time to answer); the summary calls
go to the same local backend (`CONTEXT_SUMMARY_BACKEND`'s default) and get a 2,400-character summary.

Per turn: the input tokens the model reported for the turn's request (what was sent), the service's estimate of
them, the summary calls the turn made and the time they took, and the whole turn's time. Reported over turns
1-100 and 401-500: tokens sent per turn, summary calls per 100 turns and the latency they add (amortized over
all turns, and on the turns that made one). For contrast, what `CONTEXT_MAX_*` alone (no window) would send
at turns 100 and 500, counted the same way: what the service sent before windows existed.

A second conversation of 100 exchanges routed automatically (local with 8k, cloud with 128k) adds the cloud
backend to the estimate's error, which is reported over every turn of both: |estimate - reported| / reported.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bench import prose
from bench.env import describe
from bench.stack import MODELS
from bench.throughput import server_env
from shared.app import Services, build_services
from shared.config import Settings
from shared.domain.analytics import percentile
from shared.domain.context import Window, assemble, output_reserve, plan_context, size_of, turns_of
from shared.domain.messages import to_openai
from shared.domain.records import Entry
from shared.domain.tokens import TokenRatio
from tools.emulators import Azurite, CosmosEmulator
from tools.fake_model import Behaviour, FakeModelServer, prompt_tokens

WINDOW = 8192
CLOUD_WINDOW = 128_000
MODEL_LATENCY_S = 0.1
SUMMARY_MARK = "keep the memory of a conversation"


def run(azurite: Azurite, cosmos: CosmosEmulator, quick: bool) -> dict[str, Any]:
    return asyncio.run(_run(azurite, cosmos, quick))


def _env(azurite: Azurite, cosmos: CosmosEmulator, local: FakeModelServer, cloud: FakeModelServer) -> dict[str, str]:
    windows = {"LOCAL_MODEL_CONTEXT_TOKENS": str(WINDOW), "CLOUD_MODEL_CONTEXT_TOKENS": str(CLOUD_WINDOW)}
    return {**server_env(azurite, cosmos, local, cloud, "bench-context"), **windows}  # type: ignore[arg-type]


async def _run(azurite: Azurite, cosmos: CosmosEmulator, quick: bool) -> dict[str, Any]:
    length = 200 if quick else 500
    summary_text = prose.assistant_message(random.Random(5), target=2400)
    local = FakeModelServer("local", models=(MODELS["local"],), tokenizer="bpe", context_window=WINDOW)
    cloud = FakeModelServer("cloud", models=(MODELS["cloud"],), tokenizer="bpe", context_window=CLOUD_WINDOW)
    local.latency = cloud.latency = MODEL_LATENCY_S
    with local, cloud:
        services = await build_services(Settings.from_env(_env(azurite, cosmos, local, cloud)))
        models = (local, cloud)
        try:
            long_rows, session = await _conversation(services, models, summary_text, length, "local", seed=21)
            caps_only = {turn: await _caps_only_tokens(services, session, turn) for turn in (100, length)}
            auto_rows, _ = await _conversation(services, models, summary_text, 60 if quick else 100, "auto", seed=8)
        finally:
            await services.close()
    windows = {f"{first}-{last}": _window(long_rows[first - 1 : last]) for first, last in _ranges(length)}
    errors = [abs(row["estimated"] - row["reported"]) / row["reported"] for row in long_rows + auto_rows]
    by_backend: dict[str, list[float]] = {}
    for row in long_rows + auto_rows:
        by_backend.setdefault(row["backend"], []).append(abs(row["estimated"] - row["reported"]) / row["reported"])
    return {
        "scenario": "context",
        "what": __doc__,
        "window": WINDOW,
        "reserve": output_reserve(WINDOW, None),
        "model_latency_s": MODEL_LATENCY_S,
        "turns": length,
        "by_window": windows,
        "at_turn": {str(turn): _at(long_rows[turn - 1], caps_only[turn]) for turn in (100, length)},
        "estimate_error": {
            "turns": len(errors),
            "p50": round(percentile(errors, 0.5), 4),
            "p95": round(percentile(errors, 0.95), 4),
            "max": round(max(errors), 4),
            "by_backend": {
                backend: {"turns": len(values), "p95": round(percentile(values, 0.95), 4)}
                for backend, values in by_backend.items()
            },
        },
        "refused_by_the_model": sum(row["refused"] for row in long_rows + auto_rows),
        "rows": long_rows,
    }


def _ranges(length: int) -> list[tuple[int, int]]:
    return [(1, 100), (length - 99, length)] if length > 100 else [(1, length)]


async def _conversation(
    services: Services,
    models: Sequence[FakeModelServer],
    summary_text: str,
    length: int,
    route: str,
    seed: int,
) -> tuple[list[dict[str, Any]], str]:
    rows: list[dict[str, Any]] = []
    session: str | None = None
    for number, (question, answer) in enumerate(prose.exchanges(seed, length), start=1):
        for model in models:
            model.clear()  # the log holds this turn's requests only (it copies whole bodies)
            model.set_default(Behaviour(reply=summary_text))  # every summary call
            model.script(Behaviour(reply=answer, when=question))  # the turn's own request
        started = time.perf_counter()
        result = await services.conversations.chat("bench", question, session, route=route)
        wall = (time.perf_counter() - started) * 1000
        session = result.session_id
        rows.append(_row(number, result.record, [r for model in models for r in model.requests], wall))
    assert session is not None
    return rows, session


def _row(number: int, record: Any, requests: Sequence[dict[str, Any]], wall_ms: float) -> dict[str, Any]:
    context = record.extra["context"]
    turn_requests = [r for r in requests if SUMMARY_MARK not in str(r["json"]["messages"][0].get("content"))]
    calls = context.get("summary_calls", [])
    return {
        "turn": number,
        "backend": record.backend,
        "mode": context["mode"],
        "reported": record.input_tokens,
        "estimated": context["estimated_tokens"],
        "sent_messages": len(turn_requests[-1]["json"]["messages"]) if turn_requests else None,
        "summary_calls": sum(call["calls"] for call in calls),
        "summary_ms": round(sum(call["latency_ms"] for call in calls), 1),
        "turn_ms": round(wall_ms, 1),
        "refused": sum(1 for r in requests if r["outcome"] == "error 400"),
    }


def _window(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    summarizing = [row for row in rows if row["summary_calls"]]
    return {
        "tokens_sent": describe([float(row["reported"]) for row in rows], 0),
        "summary_calls_per_100_turns": round(sum(row["summary_calls"] for row in rows) * 100 / len(rows), 1),
        "turns_that_summarized": len(summarizing),
        "added_ms_per_turn": round(sum(row["summary_ms"] for row in rows) / len(rows), 1),
        "added_ms_on_summarizing_turns": describe([row["summary_ms"] for row in summarizing], 1)
        if summarizing
        else None,
        "turn_ms": describe([row["turn_ms"] for row in rows], 1),
    }


def _at(row: dict[str, Any], caps_only: int) -> dict[str, Any]:
    return {
        "tokens_sent": row["reported"],
        "estimated": row["estimated"],
        "messages_sent": row["sent_messages"],
        "mode": row["mode"],
        "caps_only_tokens": caps_only,
        "caps_only_leaves_for_the_answer": WINDOW - caps_only,
    }


def caps_only_history(entries: Sequence[Entry], settings: Settings) -> list[Mapping[str, Any]]:
    """The history a turn sends without a context window: what CONTEXT_MAX_MESSAGES and CONTEXT_MAX_CHARS keep."""
    pinned, turns = turns_of([(entry.turn, entry.af_messages) for entry in entries])
    window = Window(None, 0, settings.context_max_messages, settings.context_max_chars)
    exact = TokenRatio(1.0, "bench")
    fixed = size_of([message for _, message in pinned], exact)
    plan = plan_context(turns, fixed, (), window, exact, summarize=False, backend="local")
    return assemble(pinned, turns, plan.keep_from, None)


async def _caps_only_tokens(services: Services, session: str, turn: int) -> int:
    """What CONTEXT_MAX_MESSAGES and CONTEXT_MAX_CHARS alone would have sent with turn `turn`'s message."""
    snapshot = await services.snapshots.load("bench", session)
    settings = services.settings
    history = caps_only_history(snapshot.entries[: turn - 1], settings)
    new = snapshot.entries[turn - 1].af_messages[0]
    messages = [{"role": "system", "content": settings.system_prompt}, *map(to_openai, [*history, new])]
    return prompt_tokens(messages, "bpe")


def markdown(result: dict[str, Any], note: str = "") -> list[str]:
    """The scenario's section of SUMMARY.md; `note` (the run's stamp) goes under its heading."""
    lines = [
        "## Context fitted to a small window (scenario 7)",
        note,
        "",
        f"One conversation of {result['turns']} exchanges routed to a local model with a {result['window']:,}-token "
        f"window ({result['reserve']:,} kept for the answer), which answers after "
        f"{result['model_latency_s'] * 1000:.0f} ms and counts tokens like a BPE tokenizer; summaries are written "
        "by the same local backend.",
        "",
        "| Turns | Tokens sent per turn, p50 (max) | Summary calls per 100 turns | Added latency per turn, ms "
        "(amortized) | On a turn that summarizes, ms p50 | Whole turn, ms p50 |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in result["by_window"].items():
        on = row["added_ms_on_summarizing_turns"]
        on_text = "-" if on is None else f"{on['p50']:.0f}"
        lines.append(
            f"| {label} | {row['tokens_sent']['p50']:.0f} ({row['tokens_sent']['max']:.0f}) | "
            f"{row['summary_calls_per_100_turns']:g} | {row['added_ms_per_turn']:g} | "
            f"{on_text} | {row['turn_ms']['p50']:.0f} |"
        )
    lines.append("")
    for turn, row in result["at_turn"].items():
        left = row["caps_only_leaves_for_the_answer"]
        verdict = (
            f"more than the {result['window']:,}-token window: the model refuses it"
            if left < 0
            else f"leaving {left:,} tokens of the window for the answer"
        )
        lines.append(
            f"- Turn {turn}: {row['tokens_sent']:,} tokens sent ({row['messages_sent']} messages, {row['mode']}); "
            f"`CONTEXT_MAX_*` alone would send {row['caps_only_tokens']:,} tokens, {verdict}."
        )
    error = result["estimate_error"]
    lines += [
        f"- Token estimate against the model's count, over {error['turns']} turns of both conversations: "
        f"p50 {error['p50'] * 100:.1f}%, p95 {error['p95'] * 100:.1f}%, max {error['max'] * 100:.1f}% "
        "(the first turn on a backend uses the conservative default ratio); by backend: "
        + ", ".join(
            f"{name} p95 {item['p95'] * 100:.1f}% ({item['turns']} turns)" for name, item in error["by_backend"].items()
        )
        + f". Requests the model refused as too long: {result['refused_by_the_model']}.",
        "",
    ]
    return lines
