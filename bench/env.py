"""What every scenario shares: the machine and commit stamp, the emulators, fake model processes, statistics.

Fake models run as separate processes (`python -m tools.fake_model`), never as a thread of the benchmark:
a server in the same interpreter competes for the GIL with the code being measured.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from tools.emulators import REPO_ROOT, Azurite, CosmosEmulator

PYTHON = sys.executable


# ---- statistics ---------------------------------------------------------------------------------------------


def quantile(values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated quantile (numpy's default), so p50 of an even sample is the mean of the middle two."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def describe(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """Median, p95, p99, interquartile range and extremes of a sample (n included, so spread can be judged)."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(quantile(values, 0.5), digits),
        "p95": round(quantile(values, 0.95), digits),
        "p99": round(quantile(values, 0.99), digits),
        "q1": round(quantile(values, 0.25), digits),
        "q3": round(quantile(values, 0.75), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def ratio(ours: float, theirs: float) -> float | None:
    if not theirs or math.isnan(ours) or math.isnan(theirs):
        return None
    return round(ours / theirs, 3)


# ---- provenance ---------------------------------------------------------------------------------------------


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _node_package_version(name: str) -> str | None:
    with contextlib.suppress(OSError, ValueError):
        return str(json.loads((REPO_ROOT / "node_modules" / name / "package.json").read_text())["version"])
    return None


def provenance(argv: Sequence[str]) -> dict[str, Any]:
    """Commit (with a dirty flag), command, machine and date: stamped on every result file."""
    status = _git("status", "--porcelain")
    return {
        "commit": _git("rev-parse", "HEAD") or "unknown",
        "dirty": bool(status),
        "command": " ".join(["python -m bench", *argv]),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_at_start": load_average(),
        "machine": {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "ram_gib": _ram_gib(),
            "python": platform.python_version(),
            "os": platform.platform(),
        },
        "versions": {
            name: _version(name)
            for name in (
                "agent-framework-core",
                "agent-framework-openai",
                "agent-framework-azure-cosmos",
                "azure-cosmos",
                "azure-storage-blob",
                "openai",
            )
        }
        | {
            "azurite": _node_package_version("azurite"),
            "@vercel/cosmosdb-server": _node_package_version("@vercel/cosmosdb-server"),
            "node": _node_version(),
        },
    }


def _node_version() -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    return None


# ---- processes ----------------------------------------------------------------------------------------------


def terminate(process: subprocess.Popen[Any] | None, grace: float = 10.0) -> None:
    """Stop a child process: SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@dataclass
class FakeModel:
    """`python -m tools.fake_model` as a child process; stopped by its own pid."""

    name: str
    latency: float = 0.0
    reply: str | None = None
    models: tuple[str, ...] = ("fake-model",)
    port: int = 0
    process: subprocess.Popen[str] | None = field(default=None, repr=False)
    # One client for the control calls: a new httpx client per call builds an SSL context (~80 ms of CPU).
    _control: httpx.Client | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeModel:
        command = [PYTHON, "-m", "tools.fake_model", "--port", "0", "--name", self.name, "--latency", str(self.latency)]
        for model in self.models:
            command += ["--model", model]
        if self.reply is not None:
            command += ["--reply", self.reply]
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("FAKE_MODEL_READY "):
            self.stop()
            raise RuntimeError(f"fake model {self.name} did not start: {line!r}")
        self.port = int(json.loads(line.split(" ", 1)[1])["port"])
        self._control = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        return self

    def script(self, replies: Sequence[str], when: str | None = None) -> None:
        """Queue replies, consumed in order by the next chat completions (sequential turns get them in order); with
        `when`, only by a request whose messages hold that text (a turn's own message: a summary call the turn
        makes first, for older turns, gets the default reply instead of the turn's)."""
        assert self._control is not None, "start() first"
        body = {"behaviours": [{"reply": reply, **({"when": when} if when else {})} for reply in replies]}
        self._control.post("/_control/script", json=body).raise_for_status()

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        process, self.process = self.process, None
        terminate(process)

    def __enter__(self) -> FakeModel:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def emulators() -> Iterator[tuple[Azurite, CosmosEmulator]]:
    """Azurite and the Cosmos emulator on free ports, with temporary data, for the whole benchmark run."""
    with Azurite() as azurite, CosmosEmulator() as cosmos:
        yield azurite, cosmos


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc), or None if unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class CpuMeter:
    """CPU seconds the named processes, and this one (the client), use from construction to `read()`."""

    def __init__(self, processes: dict[str, int | None]) -> None:
        self.processes = processes
        self._client = time.process_time()
        self._before = {name: cpu_seconds(pid) for name, pid in processes.items()}

    def read(self) -> dict[str, float | None]:
        used: dict[str, float | None] = {"client (this process)": round(time.process_time() - self._client, 3)}
        for name, pid in self.processes.items():
            before, after = self._before[name], cpu_seconds(pid)
            used[name] = None if before is None or after is None else round(after - before, 3)
        return used


def resident_mb(pid: int | None, field: str = "VmRSS") -> float | None:
    """Resident memory of a process in MB (Linux /proc): `VmRSS` now, or `VmHWM`, its peak so far."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: other work on the machine shows up here and in the spread."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None
