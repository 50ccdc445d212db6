"""Scenario 8: turns in flight in one worker process, to choose Flex Consumption's `perInstanceConcurrency`.

Flex Consumption sends an instance at most `perInstanceConcurrency` HTTP requests at once (Python apps default
to 1), and a chat turn spends most of its time waiting for the model. This measures what one worker process
does with more turns in flight. Each concurrency level C (1, 4, 8, 16, 32, 64) gets a fresh
`python -m tools.devserver` (one uvicorn worker serving the function app's handlers, as in scenario 5) against
the emulators, with two fake models as processes that wait 1 s before answering a 1,200-character reply.
After three sequential warm-up turns (imports, clients, connections) and a second's rest, the server's
resident memory is read at rest. Then C clients each send turns one after another, five per session before
starting a new session, until the level's time is up and a minimum number of turns is done. Client i starts
i/C of a model latency after the first: independent users' turns do not arrive in step.

Per level: throughput (turns that ended while all C clients were busy, per second of that time); client
latency p50 and p95 over every turn; the server's resident memory (VmRSS every 100 ms: at rest, steady = the
median over the second half of the busy time, and peak); MB per in-flight turn = (steady RSS - RSS at rest) / C;
the server's CPU per turn; and errors (any answer but 200). Afterwards every acknowledged turn is looked up in
Blob and in Cosmos as in scenario 5: exactly once each, and nothing unacknowledged.

The local process is not a Flex Consumption instance. There the instance also runs the Functions host (.NET)
and the Python worker's gRPC layer, which are not measured here, so the memory headroom of a 2,048 MB
instance adds HOST_ALLOWANCE_MB to the measured resting RSS, keeps FREE_FRACTION of the instance free, and
divides the rest by the largest MB per in-flight turn measured at C >= 4. The chosen concurrency is the
largest C up to which every level's p95 stays within P95_TOLERANCE of C=1's, without errors, and that fits.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import matplotlib

from bench import prose
from bench.env import CpuMeter, FakeModel, describe, load_average, resident_mb
from bench.stack import MODELS
from bench.throughput import DevServer, durable, post_turn, processes, server_env, status_counts, verify
from tools.emulators import Azurite, CosmosEmulator

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

LEVELS = (1, 4, 8, 16, 32, 64)
LATENCY = 1.0
SESSION_TURNS = 5
WARM_UP_TURNS = 3
SAMPLE_EVERY_S = 0.1
INSTANCE_MB = 2048  # the template's default instanceMemoryMB (infra/main.bicep functionInstanceMemoryMB)
# Not measured here: the Functions host process and the Python worker's gRPC layer beside the app's own memory.
HOST_ALLOWANCE_MB = 400
FREE_FRACTION = 0.25  # kept free: longer conversations than five turns, allocator fragmentation, GC lag
P95_TOLERANCE = 1.2  # a level "keeps up" while its p95 stays within 20% of the p95 at C=1
OURS, LIMIT = "#1f77b4", "#d62728"  # bench.report's colours
PLOT = "concurrency.png"


@dataclass(frozen=True)
class Plan:
    window_s: float  # each level runs at least this long
    min_turns: int  # and at least this many turns (C=1 needs it for a p95)


FULL = Plan(window_s=20.0, min_turns=40)
QUICK = Plan(window_s=6.0, min_turns=12)


def run(azurite: Azurite, cosmos: CosmosEmulator, quick: bool) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    reply = prose.assistant_message(random.Random(5))
    with (
        FakeModel("local", latency=LATENCY, reply=reply, models=(MODELS["local"],)) as local,
        FakeModel("cloud", latency=LATENCY, reply=reply, models=(MODELS["cloud"],)) as cloud,
    ):
        levels = [_level(azurite, cosmos, local, cloud, concurrency, plan) for concurrency in LEVELS]
    return _summary(levels, plan)


def _level(
    azurite: Azurite, cosmos: CosmosEmulator, local: FakeModel, cloud: FakeModel, concurrency: int, plan: Plan
) -> dict[str, Any]:
    env = server_env(azurite, cosmos, local, cloud, "bench-cc")
    server = DevServer(env).start()
    try:
        load = _Load(concurrency, plan, seed=7000 + concurrency * 1000)
        level = asyncio.run(_measure(server, load, processes(server, azurite, cosmos, local, cloud)))
    finally:
        server.stop()
    level["check"] = asyncio.run(verify(azurite, cosmos, env, load.log))
    level["load_average_after"] = load_average()
    return level


@dataclass
class _Load:
    """C clients, each sending turns one after another on sessions of SESSION_TURNS, until the plan is done.

    Client i starts i/C of a model latency after the first, so the turns' CPU work spreads over the model's wait
    as independent users' does; started together, with a model that always takes 1 s, they would stay in step
    and queue for the CPU at the same moments of every turn.
    """

    concurrency: int
    plan: Plan
    seed: int
    log: list[dict[str, Any]] = field(default_factory=list)
    started: float = 0.0
    busy_until: float | None = None  # when the first client stopped: up to here all C were busy

    def _more(self) -> bool:
        now = time.perf_counter()
        if now - self.started < self.plan.window_s or len(self.log) < self.plan.min_turns:
            return True
        if self.busy_until is None:
            self.busy_until = now
        return False

    def busy(self, wall: float) -> tuple[float, float]:
        """From when the last client started to when the first one stopped: all C turns were in flight."""
        last_started = self.started + LATENCY * (self.concurrency - 1) / self.concurrency
        return last_started, self.busy_until or self.started + wall

    async def _client(self, client: httpx.AsyncClient, index: int) -> None:
        await asyncio.sleep(LATENCY * index / self.concurrency)
        for number in itertools.count():
            messages = [user for user, _ in prose.exchanges(self.seed + index * 1000 + number, SESSION_TURNS)]
            session_id: str | None = None
            for message in messages:
                if not self._more():
                    return
                entry = await post_turn(client, message, session_id)
                self.log.append(entry)
                if entry["status"] != 200:
                    break  # a new session: the next turn of this one may depend on a turn that does not exist
                session_id = entry["session_id"]

    async def run(self, client: httpx.AsyncClient) -> float:
        """Runs the load; returns the wall time until the last turn finished."""
        self.started = time.perf_counter()
        await asyncio.gather(*(self._client(client, index) for index in range(self.concurrency)))
        return time.perf_counter() - self.started


class _Sampler:
    """VmRSS of a process every SAMPLE_EVERY_S, on a thread (the event loop is busy with the clients)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []  # (perf_counter, MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            value = resident_mb(self.pid)
            if value is not None:
                self.samples.append((time.perf_counter(), value))
            self._stop.wait(SAMPLE_EVERY_S)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


async def _measure(server: DevServer, load: _Load, every: dict[str, int | None]) -> dict[str, Any]:
    assert server.process is not None
    pid = server.process.pid
    limits = httpx.Limits(max_connections=load.concurrency * 2, max_keepalive_connections=load.concurrency * 2)
    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
        session_id = None
        for user, _ in prose.exchanges(load.seed - 1, WARM_UP_TURNS):
            session_id = (await post_turn(client, user, session_id))["session_id"]
        await asyncio.sleep(1.0)  # let the warm-up's garbage go before reading memory at rest
        at_rest = resident_mb(pid)
        assert at_rest is not None, "reading a process's memory needs Linux /proc"
        meter = CpuMeter(every)
        with _Sampler(pid) as sampler:
            wall = await load.run(client)
        cpu = meter.read()
    memory = _memory(load, wall, at_rest, sampler.samples)
    memory["rss_mb"]["high_water_mark"] = resident_mb(pid, "VmHWM")  # the process's peak, start-up included
    return {**_figures(load, wall, cpu["devserver"], memory), "cpu_seconds": cpu}


def _figures(load: _Load, wall: float, cpu: float | None, memory: dict[str, Any]) -> dict[str, Any]:
    ok = [entry for entry in load.log if entry["status"] == 200]
    busy_from, busy_until = load.busy(wall)
    ended_while_busy = sum(1 for entry in ok if busy_from <= entry["ended"] <= busy_until)
    statuses = status_counts(load.log)
    return {
        "concurrency": load.concurrency,
        "turns": len(ok),
        "errors": len(load.log) - len(ok),
        "statuses": statuses,
        "wall_s": round(wall, 2),
        "busy_s": round(busy_until - busy_from, 2),
        "turns_per_s": round(ended_while_busy / (busy_until - busy_from), 2),
        "latency_ms": describe([entry["latency_ms"] for entry in ok], 1),
        **memory,
        "server_cpu_ms_per_turn": round(cpu * 1000 / len(ok), 2) if cpu is not None and ok else None,
        "server_cores_busy": round(cpu / wall, 2) if cpu is not None else None,
        "latencies": [round(entry["latency_ms"], 1) for entry in ok],
    }


def _memory(load: _Load, wall: float, at_rest: float, samples: list[tuple[float, float]]) -> dict[str, Any]:
    """RSS at rest, steady (median over the second half of the busy time) and peak, and their growth per turn."""
    busy_from, busy_until = load.busy(wall)
    middle = busy_from + (busy_until - busy_from) / 2
    every = [mb for _, mb in samples] or [at_rest]
    steady = statistics.median([mb for at, mb in samples if middle <= at <= busy_until] or every)
    return {
        "rss_mb": {"at_rest": round(at_rest, 1), "steady": round(steady, 1), "peak": round(max(every), 1)},
        "mb_per_in_flight_turn": {
            "steady": round((steady - at_rest) / load.concurrency, 2),
            "peak": round((max(every) - at_rest) / load.concurrency, 2),
        },
        "rss_samples": [[round(at - load.started, 2), round(mb, 1)] for at, mb in samples],
    }


def _memory_model(levels: list[dict[str, Any]]) -> dict[str, Any]:
    """How many turns in flight fit a 2,048 MB instance, from the measured figures and the stated allowances."""
    at_rest = statistics.median(level["rss_mb"]["at_rest"] for level in levels)
    per_turn = max(  # at C=1 one turn's memory is within the noise of the RSS
        value for level in levels if level["concurrency"] >= 4 for value in level["mb_per_in_flight_turn"].values()
    )
    baseline = at_rest + HOST_ALLOWANCE_MB
    usable = INSTANCE_MB * (1 - FREE_FRACTION) - baseline
    return {
        "instance_mb": INSTANCE_MB,
        "worker_at_rest_mb": round(at_rest, 1),
        "host_allowance_mb": HOST_ALLOWANCE_MB,
        "baseline_in_azure_mb": round(baseline, 1),
        "free_fraction": FREE_FRACTION,
        "usable_for_turns_mb": round(usable, 1),
        "mb_per_in_flight_turn": round(per_turn, 2),
        "in_flight_turns_that_fit": int(usable // per_turn) if per_turn > 0 else None,
    }


def _choice(levels: list[dict[str, Any]], memory: dict[str, Any]) -> dict[str, Any]:
    """The largest C up to which every level is free of errors, keeps its p95 within P95_TOLERANCE of C=1's, and
    fits in memory (a level that passes above one that fails is noise, not headroom)."""
    limit = levels[0]["latency_ms"]["p95"] * P95_TOLERANCE
    chosen = 1
    for level in levels:
        if level["errors"] or level["latency_ms"]["p95"] > limit:
            break
        if level["concurrency"] > memory["in_flight_turns_that_fit"]:
            break
        chosen = level["concurrency"]
    return {"p95_limit_ms": round(limit, 1), "chosen": chosen}


def _cpu(levels: list[dict[str, Any]], chosen: int) -> dict[str, Any]:
    """What the server's CPU per turn means for one core, the share a 2,048 MB Flex Consumption instance gets."""
    per_turn = statistics.median(level["server_cpu_ms_per_turn"] for level in levels)
    return {
        "server_ms_per_turn_p50": round(per_turn, 1),
        "turns_per_s_per_core": round(1000 / per_turn, 1),
        "core_share_at_chosen": round(chosen * per_turn / (LATENCY * 1000), 2),
    }


def _summary(levels: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
    memory = _memory_model(levels)
    choice = _choice(levels, memory)
    return {
        "scenario": "concurrency",
        "what": __doc__,
        "levels": list(LEVELS),
        "model_latency_s": LATENCY,
        "session_turns": SESSION_TURNS,
        "window_s": plan.window_s,
        "min_turns": plan.min_turns,
        "memory": memory,
        "recommendation": choice,
        "cpu": _cpu(levels, choice["chosen"]),
        "all_acknowledged_turns_durable": all(durable(level["check"]) for level in levels),
        "by_level": levels,
    }


# ---- report -------------------------------------------------------------------------------------------------


def markdown(result: dict[str, Any], note: str, plot_name: str) -> list[str]:
    """The scenario's section of SUMMARY.md: `note` is the run's stamp note, `plot_name` the PNG beside it."""
    memory, choice, cpu = result["memory"], result["recommendation"], result["cpu"]
    lines = ["## 8. Per-instance HTTP concurrency", note, result["what"].strip(), "", *table(result), ""]
    acknowledged = sum(level["check"]["acknowledged"] for level in result["by_level"])
    lines += [
        f"- Memory in a {memory['instance_mb']:,} MB instance: resting worker {memory['worker_at_rest_mb']:.0f} MB "
        f"+ {memory['host_allowance_mb']} MB assumed for the Functions host and the worker's gRPC layer (not "
        f"measured here) = {memory['baseline_in_azure_mb']:.0f} MB; keeping {memory['free_fraction']:.0%} free "
        f"leaves {memory['usable_for_turns_mb']:.0f} MB, at {memory['mb_per_in_flight_turn']:.2f} MB per turn in "
        f"flight (the most any level from C=4 up measured) room for about "
        f"{memory['in_flight_turns_that_fit']:,} turns in flight.",
        f"- Chosen per-instance concurrency: **{choice['chosen']}**, the largest C up to which every level kept its "
        f"p95 within {P95_TOLERANCE - 1:.0%} of C=1's ({choice['p95_limit_ms']:.0f} ms), answered without errors "
        "and fits in memory.",
        f"- CPU: the server spent {cpu['server_ms_per_turn_p50']:.0f} ms per turn (p50 over the levels), so one core "
        f"serves at most about {cpu['turns_per_s_per_core']:.0f} turns/s; with a {result['model_latency_s']:g} s "
        f"model, {choice['chosen']} turns in flight keep about {cpu['core_share_at_chosen']:.0%} of a core busy (a "
        "2,048 MB Flex Consumption instance has about one).",
        f"- Every acknowledged turn in Blob and in Cosmos exactly once: "
        f"{'yes' if result['all_acknowledged_turns_durable'] else 'NO'} ({acknowledged:,} turns over all levels).",
        "",
        f"![per-instance concurrency]({plot_name})",
        "",
    ]
    return lines


def table(result: dict[str, Any]) -> list[str]:
    """The sweep as a markdown table (also pasted into the README)."""
    lines = [
        "| Concurrency | Turns/s (ideal) | p50 ms | p95 ms | RSS MB at rest / steady / peak "
        "| MB per in-flight turn (steady) | Server CPU ms per turn | Errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for level in result["by_level"]:
        rss, per_turn = level["rss_mb"], level["mb_per_in_flight_turn"]
        ideal = level["concurrency"] / result["model_latency_s"]
        lines.append(
            f"| {level['concurrency']} | {level['turns_per_s']:.1f} ({ideal:g}) | {level['latency_ms']['p50']:.0f} | "
            f"{level['latency_ms']['p95']:.0f} | {rss['at_rest']:.0f} / {rss['steady']:.0f} / {rss['peak']:.0f} | "
            f"{per_turn['steady']:.2f} | {level['server_cpu_ms_per_turn']:.1f} | {level['errors']} |"
        )
    return lines


def plot(out: Path, result: dict[str, Any]) -> str:
    """Throughput, latency and memory against the turns in flight, as `out`/PLOT; returns its name."""
    levels = result["by_level"]
    concurrency = [level["concurrency"] for level in levels]
    figure, (rate, latency, memory) = plt.subplots(1, 3, figsize=(15, 4.4))
    rate.plot(concurrency, [level["turns_per_s"] for level in levels], marker="o", color=OURS, label="measured")
    rate.plot(
        concurrency, [c / result["model_latency_s"] for c in concurrency], "k--", label="ideal: C / model latency"
    )
    rate.set_ylabel("turns/s")
    rate.set_title("Throughput of one worker process")
    stats = [level["latency_ms"] for level in levels]
    latency.plot(concurrency, [s["p50"] for s in stats], marker="o", color=OURS, label="p50 (band: IQR)")
    latency.fill_between(concurrency, [s["q1"] for s in stats], [s["q3"] for s in stats], color=OURS, alpha=0.2)
    latency.plot(concurrency, [s["p95"] for s in stats], marker="^", linestyle="--", color=OURS, alpha=0.6, label="p95")
    latency.axhline(result["model_latency_s"] * 1000, color="black", linestyle=":", label="model latency")
    latency.axhline(result["recommendation"]["p95_limit_ms"], color=LIMIT, linestyle="--", label="p95 limit")
    latency.set_ylabel("turn latency at the client, ms")
    latency.set_title("Latency")
    for key, style in (("at_rest", ":"), ("steady", "-"), ("peak", "--")):
        memory.plot(concurrency, [level["rss_mb"][key] for level in levels], linestyle=style, marker="o", label=key)
    memory.set_ylabel("server RSS, MB")
    memory.set_title("Memory of the worker process")
    for axis in (rate, latency, memory):
        axis.set_xscale("log", base=2)
        axis.set_xticks(concurrency, [str(c) for c in concurrency])
        axis.set_xlabel("turns in flight (clients)")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / PLOT, dpi=110)
    plt.close(figure)
    return PLOT
