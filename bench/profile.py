"""Where the server's CPU goes: py-spy on the dev server process under the throughput scenario's kind of load.

`python -m bench.profile --label before` starts the emulators, two fake models (200 ms) and `tools.devserver`
(one uvicorn worker, the function app's handlers), sends 20 sessions x 10 turns over HTTP (all sessions at once,
each session's turns one after another) while `py-spy record` samples the server at 250 Hz (idle threads left
out), and writes `bench/results/profile-<label>.txt`: CPU per turn from /proc, then the samples by package
(the innermost frame's package: where the CPU is spent) and by what our code called (the first frame outside
`shared/` below a `shared/` frame), then the top functions by own samples.

Sampled, so each share has the usual sampling error (a few tenths of a percent at these sample counts); the
machine is shared, so compare shares, not absolute time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import httpx

from bench import prose
from bench.env import FakeModel, cpu_seconds, emulators
from bench.throughput import DevServer, server_env

RESULTS = Path(__file__).resolve().parent / "results"
SESSIONS = 20
TURNS = 10
RATE = 250


def _package(frame: str) -> str:
    """The package a py-spy frame (`function (path:line)`) belongs to."""
    path = frame.rsplit("(", 1)[-1].split(":", 1)[0]
    if "/shared/" in path:
        return "shared." + path.split("/shared/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "site-packages/" in path:
        parts = path.split("site-packages/", 1)[1].split("/")
        top = parts[0].removesuffix(".py")
        return (
            f"{top}.{parts[1].removesuffix('.py')}" if top in ("azure", "agent_framework") and len(parts) > 1 else top
        )
    if "/lib/python3" in path:
        return "stdlib." + path.rsplit("/", 1)[-1].removesuffix(".py")
    return path


def summarize(lines: Iterable[str], turns: int, cpu_s: float | None) -> str:
    own: collections.Counter[str] = collections.Counter()
    package: collections.Counter[str] = collections.Counter()
    called: collections.Counter[str] = collections.Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        package[_package(frames[-1])] += count
        ours = [index for index, frame in enumerate(frames) if "/shared/" in frame]
        if ours and ours[-1] + 1 < len(frames):
            called[_package(frames[ours[-1] + 1])] += count
        elif ours:
            called["(our own code)"] += count
        else:
            called["(outside any call of ours: server, event loop)"] += count
    out = [f"turns: {turns}; samples: {total} at {RATE} Hz"]
    if cpu_s is not None:
        out.append(f"server CPU: {cpu_s:.2f} s, {cpu_s * 1000 / turns:.1f} ms per turn")
    for title, counter, limit in (
        ("samples by package of the innermost frame", package, 30),
        ("samples by what our code called (first frame outside shared/)", called, 25),
        ("top functions by own samples", own, 40),
    ):
        out += ["", title, "-" * len(title)]
        out += [f"{count * 100 / max(total, 1):5.1f}%  {name}" for name, count in counter.most_common(limit)]
    return "\n".join(out) + "\n"


async def _load(url: str) -> int:
    limits = httpx.Limits(max_connections=SESSIONS * 2, max_keepalive_connections=SESSIONS * 2)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        for user, _ in prose.exchanges(1, 3):  # warm-up: connections, lazy imports, first clients
            (await client.post("/chat", json={"message": user})).raise_for_status()
        done = 0

        async def session(index: int) -> None:
            nonlocal done
            session_id = None
            for user, _ in prose.exchanges(100 + index, TURNS):
                body = {"message": user, **({"session_id": session_id} if session_id else {})}
                response = await client.post("/chat", json=body)
                response.raise_for_status()
                session_id = response.json()["session_id"]
                done += 1

        await asyncio.gather(*(session(index) for index in range(SESSIONS)))
        return done


def run(label: str) -> Path:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with emulators() as (azurite, cosmos):
        local = FakeModel("local", latency=0.2, reply=prose.assistant_message(random.Random(3)))
        cloud = FakeModel("cloud", latency=0.2, reply=local.reply)
        with local, cloud:
            server = DevServer(server_env(azurite, cosmos, local, cloud, "prof")).start()
            try:
                assert server.process is not None
                raw = Path(f"/tmp/py-spy-{label}-{uuid.uuid4().hex[:6]}.txt")
                asyncio.run(_warm(server.url))
                record = subprocess.Popen(
                    [spy, "record", "--pid", str(server.process.pid), "--rate", str(RATE), "--format", "raw",
                     "--output", str(raw), "--nonblocking", "--full-filenames"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                time.sleep(1.0)
                before = cpu_seconds(server.process.pid)
                turns = asyncio.run(_load(server.url))
                after = cpu_seconds(server.process.pid)
                record.send_signal(signal.SIGINT)
                record.wait(timeout=60)
            finally:
                server.stop()
    cpu = None if before is None or after is None else after - before
    out = RESULTS / f"profile-{label}.txt"
    header = f"# py-spy of the dev server: {SESSIONS} sessions x {TURNS} turns, 200 ms models (bench/profile.py)\n"
    out.write_text(header + summarize(raw.read_text().splitlines(), turns, cpu))
    return out


async def _warm(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        (await client.get("/health")).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", required=True, help="profile-<label>.txt in bench/results/")
    args = parser.parse_args()
    print(run(args.label))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
