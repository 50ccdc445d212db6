"""Shared pytest fixtures. Each section is owned by one area; keep sections self-contained."""

# ===== emulators: Azurite and Cosmos DB (tools/emulators.py, tests/fixtures_emulators.py) =====================
# Session fixtures `azurite` (tools.emulators.Azurite) and `cosmos_emulator` (tools.emulators.CosmosEmulator),
# plus a report hook that adds their logs to failed tests. Do not define another pytest_runtest_makereport here.
# ===== end emulators ==========================================================================================
# ===== the service: fake models, per-test settings, services, live HTTP server (tests/fixtures_app.py) =========
from tests.fixtures_app import (  # noqa: E402, F401
    api,
    container,
    live_server,
    make_env,
    make_services,
    model_servers,
    models,
    services,
)
from tests.fixtures_emulators import azurite, cosmos_emulator, pytest_runtest_makereport  # noqa: F401
# ===== end service ============================================================================================
