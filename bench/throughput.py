"""Scenario 5: the local HTTP server under 50 concurrent sessions, and a durability check afterwards.

`python -m tools.devserver` runs as its own process (one uvicorn worker, the function app's handlers) against
the emulators, with two fake models as processes (local and cloud) that wait 200 ms before answering with a
1,200-character reply. 50 sessions each send 5 turns one after another (a session never has two turns in
flight), all sessions at once, over HTTP from this process. Ideal throughput is sessions / model latency =
250 turns/s; the shortfall is the server's own work (and everything sharing the machine's cores with it:
both emulators, both fake models and the client).

Afterwards every acknowledged turn (a 200 answer) is looked up: in Blob (the session's snapshot loaded with
`SnapshotStore.load`: the entry for that turn number holds exactly the message sent, and no turn is stored
twice) and in Cosmos (the session's turn documents: exactly one per acknowledged turn, and none other).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
import uuid
from collections import Counter
from typing import Any

import httpx
from azure.cosmos.aio import CosmosClient
from azure.storage.blob.aio import BlobServiceClient

from bench import prose
from bench.env import PYTHON, CpuMeter, FakeModel, describe, load_average, terminate
from bench.stack import MODELS
from shared.domain.errors import SessionNotFound
from shared.domain.ids import ANONYMOUS_OWNER
from shared.storage.snapshots import SnapshotStore
from tools.emulators import REPO_ROOT, Azurite, CosmosEmulator, free_port

SESSIONS = 50
TURNS = 5
LATENCY = 0.2


def server_env(
    azurite: Azurite, cosmos: CosmosEmulator, local: FakeModel, cloud: FakeModel, name: str = "bench-tp"
) -> dict[str, str]:
    """The dev server's settings: the emulators, both fake models, and a container and database of its own."""
    name = f"{name}-{uuid.uuid4().hex[:8]}"
    return {
        "STORAGE_CONNECTION_STRING": azurite.connection_string,
        "SNAPSHOT_CONTAINER": name,
        "COSMOS_ENDPOINT": cosmos.endpoint,
        "COSMOS_KEY": cosmos.key,
        "COSMOS_DATABASE": name,
        "LOCAL_MODEL_ENDPOINT": local.base_url,
        "LOCAL_MODEL_NAME": MODELS["local"],
        "CLOUD_MODEL_ENDPOINT": cloud.base_url,
        "CLOUD_MODEL_NAME": MODELS["cloud"],
        "CLOUD_MODEL_API_KEY": "fake-key",
        "MODEL_TIMEOUT_SECONDS": "60",
    }


def status_counts(log: list[dict[str, Any]]) -> dict[str, int]:
    """How many answers had each HTTP status (as strings, in order of first appearance)."""
    return dict(Counter(str(entry["status"]) for entry in log))


class DevServer:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> DevServer:
        self.process = subprocess.Popen(
            [PYTHON, "-m", "tools.devserver", "--port", str(self.port)],
            cwd=REPO_ROOT,
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"devserver exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("devserver did not answer /api/health within 60 s")

    def stop(self) -> None:
        process, self.process = self.process, None
        terminate(process, grace=20)


def processes(
    server: DevServer, azurite: Azurite, cosmos: CosmosEmulator, local: FakeModel, cloud: FakeModel
) -> dict[str, int | None]:
    """Every process of a run by name, for `CpuMeter`."""
    return {
        "devserver": server.process.pid if server.process else None,
        "azurite": azurite.pid,
        "cosmos emulator": cosmos.pid,
        "fake model local": local.process.pid if local.process else None,
        "fake model cloud": cloud.process.pid if cloud.process else None,
    }


async def post_turn(client: httpx.AsyncClient, message: str, session_id: str | None) -> dict[str, Any]:
    """One `POST /chat` as a client sees it: status (or the exception's name), latency, session, turn, message."""
    body: dict[str, Any] = {"message": message}
    if session_id is not None:
        body["session_id"] = session_id
    started = time.perf_counter()
    try:
        response = await client.post("/chat", json=body)
        status = response.status_code
        data = response.json() if status == 200 else {}
    except httpx.HTTPError as exc:
        status, data = type(exc).__name__, {}
    return {
        "status": status,
        "latency_ms": (time.perf_counter() - started) * 1000.0,
        "session_id": data.get("session_id", session_id),
        "turn": data.get("turn"),
        "message": message,
        "ended": time.perf_counter(),
    }


async def _session(client: httpx.AsyncClient, messages: list[str], log: list[dict[str, Any]]) -> None:
    session_id: str | None = None
    for message in messages:
        entry = await post_turn(client, message, session_id)
        log.append(entry)
        if entry["status"] != 200:
            return  # the rest of this session would depend on a turn that may not exist
        session_id = entry["session_id"]


async def _one_run(
    url: str, seed: int, processes: dict[str, int | None]
) -> tuple[list[dict[str, Any]], float, dict[str, float | None]]:
    limits = httpx.Limits(max_connections=SESSIONS * 2, max_keepalive_connections=SESSIONS * 2)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        for user, _ in prose.exchanges(seed - 1, 3):  # warm-up: connections, lazy imports, first clients
            await client.post("/chat", json={"message": user})
        plans = [[user for user, _ in prose.exchanges(seed * 100 + index, TURNS)] for index in range(SESSIONS)]
        log: list[dict[str, Any]] = []
        meter = CpuMeter(processes)
        started = time.perf_counter()
        await asyncio.gather(*(_session(client, plan, log) for plan in plans))
        wall = time.perf_counter() - started
        cpu = meter.read()
    for entry in log:
        entry["ended"] -= started
    return log, wall, cpu


async def verify(azurite: Azurite, cosmos: CosmosEmulator, env: dict[str, str], log: list[dict[str, Any]]) -> dict:
    acknowledged = [entry for entry in log if entry["status"] == 200]
    by_session: dict[str, dict[int, str]] = {}
    for entry in acknowledged:
        by_session.setdefault(entry["session_id"], {})[int(entry["turn"])] = entry["message"]
    problems: list[str] = []
    blob_ok = cosmos_ok = 0
    async with BlobServiceClient.from_connection_string(azurite.connection_string) as blob_service:
        store = SnapshotStore(blob_service.get_container_client(env["SNAPSHOT_CONTAINER"]))
        async with CosmosClient(cosmos.endpoint, credential=cosmos.key) as client:
            turns = client.get_database_client(env["COSMOS_DATABASE"]).get_container_client("turns")
            for session_id, sent in by_session.items():
                try:
                    snapshot = await store.load(ANONYMOUS_OWNER, session_id)
                except SessionNotFound:
                    problems.append(f"{session_id}: no snapshot")
                    continue
                stored = {}
                for entry in snapshot.entries:
                    if entry.turn in stored:
                        problems.append(f"{session_id}: turn {entry.turn} stored twice in Blob")
                    stored[entry.turn] = str(entry.openai_messages[0]["content"])
                for turn, message in sent.items():
                    if stored.get(turn) == message:
                        blob_ok += 1
                    else:
                        problems.append(f"{session_id}: acknowledged turn {turn} missing or different in Blob")
                extra = set(stored) - set(sent)
                if extra:
                    problems.append(f"{session_id}: Blob holds unacknowledged turns {sorted(extra)}")
                documents = [
                    item["turn"]
                    async for item in turns.query_items(
                        "SELECT c.turn FROM c WHERE c.sessionId = @s AND c.type = 'turn'",
                        parameters=[{"name": "@s", "value": session_id}],
                        partition_key=session_id,
                    )
                ]
                for turn in sent:
                    count = documents.count(turn)
                    if count == 1:
                        cosmos_ok += 1
                    else:
                        problems.append(f"{session_id}: acknowledged turn {turn} has {count} Cosmos documents")
                extra_docs = set(documents) - set(sent)
                if extra_docs:
                    problems.append(f"{session_id}: Cosmos holds unacknowledged turns {sorted(extra_docs)}")
    return {
        "acknowledged": len(acknowledged),
        "in_blob_exactly_once": blob_ok,
        "in_cosmos_exactly_once": cosmos_ok,
        "problems": problems[:50],
        "problem_count": len(problems),
    }


def durable(check: dict[str, Any]) -> bool:
    """Whether `verify` found every acknowledged turn exactly once in Blob and in Cosmos, and nothing else."""
    return bool(
        check["problem_count"] == 0
        and check["in_blob_exactly_once"] == check["acknowledged"]
        and check["in_cosmos_exactly_once"] == check["acknowledged"]
    )


def run(azurite: Azurite, cosmos: CosmosEmulator, quick: bool) -> dict[str, Any]:
    reply = prose.assistant_message(random.Random(5))
    runs: list[dict[str, Any]] = []
    with (
        FakeModel("local", latency=LATENCY, reply=reply, models=(MODELS["local"],)) as local,
        FakeModel("cloud", latency=LATENCY, reply=reply, models=(MODELS["cloud"],)) as cloud,
    ):
        for index in range(1 if quick else 3):
            env = server_env(azurite, cosmos, local, cloud)
            server = DevServer(env).start()
            try:
                log, wall, cpu = asyncio.run(
                    _one_run(server.url, 900 + index, processes(server, azurite, cosmos, local, cloud))
                )
            finally:
                server.stop()
            check = asyncio.run(verify(azurite, cosmos, env, log))
            ok = [entry for entry in log if entry["status"] == 200]
            statuses = status_counts(log)
            runs.append(
                {
                    "wall_s": round(wall, 3),
                    "turns_per_s": round(len(ok) / wall, 2),
                    "latency_ms": describe([entry["latency_ms"] for entry in ok], 1),
                    "statuses": statuses,
                    "cpu_seconds": cpu,
                    "server_cpu_ms_per_turn": round(cpu["devserver"] * 1000 / len(ok), 2)
                    if ok and cpu.get("devserver") is not None
                    else None,
                    "load_average_after": load_average(),
                    "check": check,
                    "latencies": [round(entry["latency_ms"], 1) for entry in ok],
                }
            )
    ideal = SESSIONS / LATENCY
    rates = [run["turns_per_s"] for run in runs]
    p95s = [run["latency_ms"]["p95"] for run in runs]
    p50s = [run["latency_ms"]["p50"] for run in runs]
    return {
        "scenario": "throughput",
        "what": __doc__,
        "sessions": SESSIONS,
        "turns_per_session": TURNS,
        "model_latency_s": LATENCY,
        "ideal_turns_per_s": ideal,
        "turns_per_s": describe(rates, 2),
        "server_cpu_ms_per_turn": describe(
            [r["server_cpu_ms_per_turn"] for r in runs if r["server_cpu_ms_per_turn"]], 2
        ),
        "fraction_of_ideal_p50": round(describe(rates, 2)["p50"] / ideal, 3),
        "latency_p50_ms": describe(p50s, 1),
        "latency_p95_ms": describe(p95s, 1),
        "all_acknowledged_turns_durable": all(durable(run["check"]) for run in runs),
        "runs": runs,
    }
