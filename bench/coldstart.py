"""Scenario 4: a fresh process importing the function app and serving its first request, against the imports alone.

Each sample is a new `python -c` process, so nothing is cached in the interpreter (the OS file cache is warm:
one discarded run of each kind comes first). Three kinds, interleaved:

- app: `import function_app`, then one `POST /api/chat` through `tools.devserver.create_app()` (the function
  app's own handlers on Starlette) with an in-process ASGI client (`httpx.ASGITransport`). The first request
  builds the services (Blob, Cosmos and model clients) against the emulators and runs a real turn on a fake
  model that answers at once. `COSMOS_CREATE_RESOURCES=false` as in Azure (the database exists already);
  the Blob container check still runs, as it does with a connection string.
- deps: only the mandatory imports (`azure.functions`, `azurefunctions.extensions.http.fastapi`,
  `azure.storage.blob.aio`, `azure.cosmos.aio`, `agent_framework`, `agent_framework.openai`, `openai`).
- bare: `python -c pass`, the interpreter's own start.

Reported per kind: the time inside the process (from its first statement) and the wall time seen by the parent
(spawn to the result line, so the interpreter start is included). The Functions host's own start is not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

from bench.env import PYTHON, describe, ratio
from tools.emulators import REPO_ROOT

APP = """
import time
_t0 = time.perf_counter()
import function_app  # noqa: F401
_t1 = time.perf_counter()
import asyncio, json
import httpx
from tools.devserver import create_app

async def main():
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        response = await client.post("/api/chat", json={"message": "What is a good first step to plan a garden?"})
    _t2 = time.perf_counter()
    print(json.dumps({"status": response.status_code, "import_ms": (_t1 - _t0) * 1000,
                      "first_request_ms": (_t2 - _t1) * 1000, "inside_ms": (_t2 - _t0) * 1000}), flush=True)
    from shared.app import close_services
    await close_services()

asyncio.run(main())
"""

DEPS = """
import time
_t0 = time.perf_counter()
import azure.functions, azurefunctions.extensions.http.fastapi, azure.storage.blob.aio, azure.cosmos.aio
import agent_framework, agent_framework.openai, openai
_t1 = time.perf_counter()
import json
print(json.dumps({"status": 0, "inside_ms": (_t1 - _t0) * 1000}), flush=True)
"""

BARE = "import json; print(json.dumps({'status': 0, 'inside_ms': 0.0}), flush=True)"

KINDS = {"app": APP, "deps": DEPS, "bare": BARE}


def _one(code: str, env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [PYTHON, "-c", code], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    wall = (time.perf_counter() - started) * 1000.0
    _, stderr = process.communicate(timeout=120)
    if not line.startswith("{"):
        raise RuntimeError(f"cold start child failed: {line!r} {stderr[-2000:]}")
    result = json.loads(line)
    result["wall_ms"] = wall
    return result


def run(service_env: dict[str, str], quick: bool) -> dict[str, Any]:
    env = {**os.environ, **service_env, "COSMOS_CREATE_RESOURCES": "false"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    repeats = 3 if quick else 7
    samples: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for code in KINDS.values():
        _one(code, env)  # warm the file cache and the bytecode cache; not counted
    for _ in range(repeats):
        for kind, code in KINDS.items():
            samples[kind].append(_one(code, env))
    statuses = sorted({sample["status"] for sample in samples["app"]})
    app_inside = describe([s["inside_ms"] for s in samples["app"]], 1)
    app_import = describe([s["import_ms"] for s in samples["app"]], 1)
    app_first = describe([s["first_request_ms"] for s in samples["app"]], 1)
    app_wall = describe([s["wall_ms"] for s in samples["app"]], 1)
    deps_inside = describe([s["inside_ms"] for s in samples["deps"]], 1)
    deps_wall = describe([s["wall_ms"] for s in samples["deps"]], 1)
    bare_wall = describe([s["wall_ms"] for s in samples["bare"]], 1)
    return {
        "scenario": "cold_start",
        "what": __doc__,
        "first_request_statuses": statuses,
        "app_import_function_app_ms": app_import,
        "app_first_request_ms": app_first,
        "app_import_and_first_request_ms": app_inside,
        "app_wall_ms": app_wall,
        "deps_import_ms": deps_inside,
        "deps_wall_ms": deps_wall,
        "bare_interpreter_wall_ms": bare_wall,
        "ratio_app_to_deps_inside_p50": ratio(app_inside["p50"], deps_inside["p50"]),
        "ratio_app_to_deps_wall_p50": ratio(app_wall["p50"], deps_wall["p50"]),
        "ratio_import_function_app_to_deps_p50": ratio(app_import["p50"], deps_inside["p50"]),
        "samples": samples,
    }
