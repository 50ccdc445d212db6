"""Session-wide emulator fixtures (imported by tests/conftest.py).

Both emulators start once per test session on free ports, so the suite stays fast and never collides with
a developer's `make run` on 10000/8081. Tests that stop an emulator (fault injection) must start it again
before they finish, e.g. in a `finally:`; the object keeps its port and, for Azurite, its data location.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tools.emulators import Azurite, CosmosEmulator

EMULATOR_FIXTURES = ("azurite", "cosmos_emulator")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A running Azurite blob service; use `.connection_string` (data in a session temp dir)."""
    base = tmp_path_factory.mktemp("azurite")
    emulator = Azurite(location=base / "data", log_dir=base)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def cosmos_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CosmosEmulator]:
    """A running Cosmos DB emulator; use `.endpoint` and `.key`. In memory: empty after a restart."""
    emulator = CosmosEmulator(log_dir=tmp_path_factory.mktemp("cosmos"))
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the emulators' log tails to a failed test that used them, where the cause often shows."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    if report.failed:
        for name in EMULATOR_FIXTURES:
            emulator = funcargs.get(name)
            if emulator is not None:
                report.sections.append((f"{name} log ({emulator.log_path})", emulator.logs()))
    return report
