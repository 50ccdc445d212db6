"""Cold start: `import function_app` pays for what every request needs, and what only some requests (or some
settings) need waits for them.

A fresh interpreter per probe, since what is imported, read or built is per process. The probe reads
`sys.modules`, the files the process opens (an audit hook) and pydantic's build state of our HTTP shapes, once
after `import function_app` and again after a first chat turn against the emulators: names and flags, so the
checks are deterministic. How long any of it takes is `bench/coldstart.py`'s business, never a test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.config import SETTINGS_SPEC

ROOT = Path(__file__).resolve().parent.parent

# Modules a worker must not import until a setting asks for them: the Azure Monitor distro and the OpenTelemetry
# SDK without APPLICATIONINSIGHTS_CONNECTION_STRING, Entra ID credentials when keys and connection strings are set.
DEFERRED_MODULES = ("azure.monitor.opentelemetry", "opentelemetry.sdk.trace", "azure.identity", "azure.identity.aio")
WEIGHTS = "learned-v1.json"  # the learned router's weights, read by the first routing decision
DASHBOARD = "shared/http/dashboard/"  # the dashboard's files, read when a browser asks for them
# What a chat turn validates and answers with (a ChatResponse holds a RouteInfo and a Usage): 4 of 57 shapes.
CHAT_SHAPES = ["ChatRequest", "ChatResponse", "RouteInfo", "Usage"]

PROBE = """
import asyncio, json, os, sys

opened = []
sys.addaudithook(lambda event, args: event == "open" and isinstance(args[0], str) and opened.append(args[0]))

import function_app  # noqa: F401 - what is measured
import pydantic
from shared.http import models, openai_models

DEFERRED = json.loads(os.environ["PROBE_DEFERRED"])


def state():
    shapes = [
        value for module in (models, openai_models) for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, pydantic.BaseModel) and value.__module__ == module.__name__
    ]
    return {
        "imported": sorted(name for name in DEFERRED if name in sys.modules),
        "opened": sorted({path for path in opened if not path.endswith((".py", ".pyc"))}),
        "shapes": sorted(shape.__name__ for shape in shapes),
        "built": sorted(shape.__name__ for shape in shapes if shape.__pydantic_complete__),
    }


async def requests():
    import httpx
    from tools.devserver import create_app
    from shared.app import close_services

    found = {"at_import": state()}
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        chat = await client.post("/api/chat", json={"message": "What is a good first step to plan a garden?"})
        found["after_first_turn"] = state()
        page = await client.get("/api/dashboard")
        found["after_dashboard"] = state()
    await close_services()
    return {**found, "statuses": [chat.status_code, page.status_code]}


print(json.dumps(asyncio.run(requests())), flush=True)
"""


def probe(env: dict[str, str]) -> dict[str, Any]:
    """The probe's findings in a fresh interpreter whose settings are `env` and nothing else."""
    settings = {spec.name for spec in SETTINGS_SPEC}
    base = {key: value for key, value in os.environ.items() if key not in settings}
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**base, **env, "PROBE_DEFERRED": json.dumps(DEFERRED_MODULES)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _read(state: dict[str, Any], fragment: str) -> list[str]:
    return [path for path in state["opened"] if fragment in path]


def test_import_function_app_defers_what_the_first_turn_does_not_need(
    make_env: Callable[..., dict[str, str]],
) -> None:
    result = probe(make_env())
    at_import, after, dashboard = result["at_import"], result["after_first_turn"], result["after_dashboard"]
    assert result["statuses"] == [200, 200]

    # Telemetry export and Entra ID credentials: not with these settings, neither at import nor for a turn.
    assert at_import["imported"] == []
    assert after["imported"] == []
    # The router's weights: read by the first decision, not at import.
    assert _read(at_import, WEIGHTS) == []
    assert _read(after, WEIGHTS) != []
    # The dashboard's files: read when the dashboard is asked for, not for a turn.
    assert _read(after, DASHBOARD) == []
    assert _read(dashboard, DASHBOARD) != []
    # HTTP shapes: none built at import; a chat turn builds the chat route's, and no other route's.
    assert len(at_import["shapes"]) > 40
    assert at_import["built"] == []
    assert after["built"] == CHAT_SHAPES
    assert dashboard["built"] == CHAT_SHAPES


def test_entra_id_credentials_are_imported_when_a_setting_needs_them(make_env: Callable[..., dict[str, str]]) -> None:
    # Without COSMOS_KEY the Cosmos client needs a credential (off Azure, the chain of developer logins), built
    # with the services by the first request. Whether it could sign anyone in is not the point here.
    env = {key: value for key, value in make_env().items() if key != "COSMOS_KEY"}
    result = probe(env)
    assert result["at_import"]["imported"] == []
    assert result["after_first_turn"]["imported"] == ["azure.identity", "azure.identity.aio"]
