"""Start and stop the local emulators (Azurite blob storage, Cosmos DB) the same way everywhere.

Tests (tests/fixtures_emulators.py), `make run` (`python -m tools.emulators`) and the benchmarks all go
through this module, so "works in tests" means "works locally" and a fix to startup or shutdown lands once.

Each emulator is a Node child process started in its own process group on 127.0.0.1. It counts as started
only when it answers a real HTTP request, not merely when its port is open. `stop()` signals the whole
group and waits, so `start()` can bring it back on the same port (fault-injection tests rely on this);
Azurite keeps its data across that restart when the location stays the same, the Cosmos emulator does not
(it is in-memory). Child output goes to a log file so a failing test can show it (`logs()`).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import http.client
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = REPO_ROOT / "node_modules"
COSMOS_LAUNCHER = REPO_ROOT / "tools" / "cosmos_emulator.js"
HOST = "127.0.0.1"

# Well-known, public development credentials (documented by Microsoft for Azurite and the Cosmos emulator).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
COSMOS_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="

DEFAULT_BLOB_PORT = 10000
DEFAULT_COSMOS_PORT = 8081
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
LOG_TAIL_CHARS = 4000


class EmulatorError(RuntimeError):
    """An emulator could not be found, started or reached."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    The port is released before the emulator binds it, so another process could take it in between;
    `EmulatorProcess.start()` retries with a new port when it chose the port itself.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM when this process dies, even by SIGKILL.

    Without it, a test run or `make run` killed hard leaves emulators holding their ports. Linux only, and only
    from the main thread: the kernel sends the signal when the *thread* that forked exits.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_parent_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))

    return set_parent_death_signal


def _node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        raise EmulatorError("node is not on PATH: the emulators need Node.js 20 (then run `npm ci`)")
    return node


class EmulatorProcess:
    """A Node emulator child process bound to 127.0.0.1:port. Subclasses give the command and the probe."""

    name = "emulator"

    def __init__(
        self,
        port: int | None = None,
        *,
        log_dir: Path | None = None,
        node_modules: Path = NODE_MODULES,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    ) -> None:
        self._port_is_ours = port is None  # we chose it, so we may pick another if it was taken meanwhile
        self.port = port if port is not None else free_port()
        self.node_modules = node_modules
        self.startup_timeout = startup_timeout
        self._owned_dirs: list[Path] = []
        self.log_dir = log_dir if log_dir is not None else self._make_owned_dir(f"{self.name}-logs-")
        self.log_path = self.log_dir / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    # --- to be provided by subclasses -------------------------------------------------------------------
    def command(self) -> list[str]:
        """The command line that starts the emulator on `self.port`."""
        raise NotImplementedError

    def probe(self) -> bool:
        """Make one real request; True when the emulator answered like itself."""
        raise NotImplementedError

    # --- lifecycle ----------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Self:
        """Start the process and return once it answers requests; raise EmulatorError with its log if not."""
        if self.running:
            return self
        self._check_node_modules()
        attempts = 3 if self._port_is_ours else 1
        for attempt in range(1, attempts + 1):
            try:
                self._start_once()
                # From now on clients know this port: a restart must come back on it, never move.
                self._port_is_ours = False
                return self
            except EmulatorError:
                if attempt == attempts:
                    raise
                # Most likely another process took the free port between free_port() and our bind.
                self.port = free_port()
                logger.warning("%s did not start, retrying on port %d", self.name, self.port)
        return self

    def stop(self) -> None:
        """Stop the process group (SIGTERM, then SIGKILL) and wait for it; safe to call when not running."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        self._signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            logger.warning("%s (pid %d) ignored SIGTERM, killing it", self.name, process.pid)
            self._signal_group(process, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        logger.info("%s stopped (port %d)", self.name, self.port)

    def restart(self) -> Self:
        """Stop then start on the same port (and, for Azurite, the same data location)."""
        self.stop()
        return self.start()

    def logs(self) -> str:
        """The tail of the child's output, for error messages and failing-test reports."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return text[-LOG_TAIL_CHARS:]

    def close(self) -> None:
        """Stop, then delete the temporary directories this object created itself (never given ones)."""
        self.stop()
        for directory in self._owned_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        self._owned_dirs.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} port={self.port} {state} log={self.log_path}>"

    # --- internals ----------------------------------------------------------------------------------------
    def _make_owned_dir(self, prefix: str) -> Path:
        directory = Path(tempfile.mkdtemp(prefix=prefix))
        self._owned_dirs.append(directory)
        return directory

    def _check_node_modules(self) -> None:
        if not self.node_modules.is_dir():
            raise EmulatorError(f"{self.node_modules} is missing: run `npm ci` in {self.node_modules.parent}")

    def _start_once(self) -> None:
        # Without this check, a leftover emulator on a fixed port (e.g. 10000) would pass the readiness
        # probe and the test would silently talk to the wrong process.
        if _port_open(self.port):
            raise EmulatorError(f"{self.name}: port {self.port} on {HOST} is already in use")
        command = self.command()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} starting: {' '.join(command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() signals the group, never a name
                preexec_fn=_die_with_parent(),  # only calls prctl(), see _die_with_parent
            )
        try:
            self._wait_until_ready()
        except EmulatorError:
            self.stop()
            raise
        logger.info("%s ready on port %d (pid %d, log %s)", self.name, self.port, self._process.pid, self.log_path)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise EmulatorError(f"{self.name} exited with code {code} while starting:\n{self.logs()}")
            if _port_open(self.port) and self._probe_quietly():
                return
            time.sleep(0.1)
        raise EmulatorError(
            f"{self.name} did not answer on port {self.port} within {self.startup_timeout:.0f}s:\n{self.logs()}"
        )

    def _probe_quietly(self) -> bool:
        try:
            return self.probe()
        except (OSError, http.client.HTTPException):
            return False

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(process.pid, sig)  # pgid == pid thanks to start_new_session


class Azurite(EmulatorProcess):
    """Azurite blob service. Data lives under `location`, so a restart with the same location keeps it."""

    name = "azurite"

    def __init__(
        self,
        port: int | None = None,
        *,
        location: Path | None = None,
        log_dir: Path | None = None,
        node_modules: Path = NODE_MODULES,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(port, log_dir=log_dir, node_modules=node_modules, startup_timeout=startup_timeout)
        self.location = location if location is not None else self._make_owned_dir("azurite-data-")

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        parts = {
            "DefaultEndpointsProtocol": "http",
            "AccountName": AZURITE_ACCOUNT,
            "AccountKey": AZURITE_KEY,  # Azurite's public, well-known development key
            "BlobEndpoint": self.endpoint,
        }
        return "".join(f"{name}={value};" for name, value in parts.items())

    def command(self) -> list[str]:
        self.location.mkdir(parents=True, exist_ok=True)
        return [
            _node_executable(),
            str(self.node_modules / ".bin" / "azurite-blob"),
            "--blobHost", HOST,
            "--blobPort", str(self.port),
            "--location", str(self.location),
            "--skipApiVersionCheck",  # the Python SDK may be newer than this Azurite
            "--loose",
            "--disableTelemetry",
            "--silent",
            # Not --blobKeepAliveTimeout: azurite-blob 3.35 reads the wrong flag and always keeps 5 s.
        ]  # fmt: skip

    def probe(self) -> bool:
        # An unauthenticated request is enough: any answer from Azurite's blob handler proves it serves.
        connection = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            connection.request("GET", f"/{AZURITE_ACCOUNT}?comp=list")
            response = connection.getresponse()
            response.read()
            return response.getheader("x-ms-request-id") is not None
        finally:
            connection.close()


class CosmosEmulator(EmulatorProcess):
    """Cosmos DB NoSQL emulator (tools/cosmos_emulator.js): HTTPS, in memory, empty after every start."""

    name = "cosmos"
    key = COSMOS_KEY

    def __init__(
        self,
        port: int | None = None,
        *,
        log_dir: Path | None = None,
        node_modules: Path = NODE_MODULES,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
        verbose: bool = False,
    ) -> None:
        super().__init__(port, log_dir=log_dir, node_modules=node_modules, startup_timeout=startup_timeout)
        self.verbose = verbose

    @property
    def endpoint(self) -> str:
        # 127.0.0.1 (not an IP of the machine) makes the azure-cosmos SDK skip TLS verification of the
        # emulator's self-signed certificate on its own.
        return f"https://{HOST}:{self.port}/"

    def command(self) -> list[str]:
        command = [_node_executable(), str(COSMOS_LAUNCHER), "--port", str(self.port), "--host", HOST]
        return [*command, "--verbose"] if self.verbose else command

    def probe(self) -> bool:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(HOST, self.port, timeout=2, context=context)
        try:
            connection.request("GET", "/")  # the database account document, the SDK's first request
            response = connection.getresponse()
            return response.status == 200 and b"writableLocations" in response.read()
        finally:
            connection.close()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.emulators",
        description="Run Azurite (blob) and the Cosmos DB emulator for local development until Ctrl-C.",
    )
    parser.add_argument("--blob-port", type=int, default=DEFAULT_BLOB_PORT)
    parser.add_argument("--cosmos-port", type=int, default=DEFAULT_COSMOS_PORT)
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / ".data" / "azurite", help="Azurite data")
    parser.add_argument("--log-dir", type=Path, default=REPO_ROOT / ".data" / "logs")
    parser.add_argument("--verbose", action="store_true", help="log every Cosmos request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start both emulators, print the settings for local.settings.json/.env, and wait for Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = _parse_args(argv)
    azurite = Azurite(args.blob_port, location=args.data_dir, log_dir=args.log_dir)
    cosmos = CosmosEmulator(args.cosmos_port, log_dir=args.log_dir, verbose=args.verbose)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        azurite.start()
        cosmos.start()
        print(f"STORAGE_CONNECTION_STRING={azurite.connection_string}")
        print(f"COSMOS_ENDPOINT={cosmos.endpoint}")
        print(f"COSMOS_KEY={cosmos.key}", flush=True)
        logger.info("logs in %s; press Ctrl-C to stop", args.log_dir)
        while not stopped.wait(timeout=1.0):
            for emulator in (azurite, cosmos):
                if not emulator.running:
                    raise EmulatorError(f"{emulator.name} exited unexpectedly:\n{emulator.logs()}")
    except KeyboardInterrupt:
        pass
    except EmulatorError as error:
        logger.error("%s", error)
        return 1
    finally:
        cosmos.stop()
        azurite.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
