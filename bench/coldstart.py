"""Scenario 4: a fresh process importing the function app and serving its first request, against the imports alone.

Each sample is a new `python -c` process, so nothing is cached in the interpreter (the OS file cache is warm:
one discarded run of each kind comes first). Three kinds, interleaved:

- app: `import function_app`, then one `POST /api/chat` through `tools.devserver.create_app()` (the function
  app's own handlers on Starlette) with an in-process ASGI client (`httpx.ASGITransport`). The first request
  builds the services (Blob, Cosmos and model clients) against the emulators and runs a real turn on a fake
  model that answers at once. `COSMOS_CREATE_RESOURCES=false` as in Azure (the database exists already);
  the Blob container check still runs, as it does with a connection string. Importing the harness itself
  (`httpx` for the client, `tools.devserver` for the server: neither imports anything of the app at import
  time, and the app does not import `httpx`) is left out of the time; building the app's routes is in it.
- deps: only the mandatory imports (`azure.functions`, `azurefunctions.extensions.http.fastapi`,
  `azure.storage.blob.aio`, `azure.cosmos.aio`, `agent_framework`, `agent_framework.openai`, `openai`).
- bare: `python -c pass`, the interpreter's own start.

Reported per kind: the time inside the process (from its first statement) and the wall time seen by the parent
(spawn to the result line, so the interpreter start is included). The Functions host's own start is not here.

Then the import-time profile: `python -X importtime -c "import function_app"`, run a few more times in fresh
processes (each module's self and cumulative time is the median over the runs), with how many modules the import
loads (and how many of those the mandatory imports above do not) and the time spent in each top-level package's
own modules. Module counts and names are deterministic; the times are as noisy as the machine.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import time
from collections import defaultdict
from typing import Any

from bench.env import PYTHON, describe, ratio
from tools.emulators import REPO_ROOT

APP = """
import time
_t0 = time.perf_counter()
import function_app  # noqa: F401
_t1 = time.perf_counter()
import asyncio, json
import httpx  # the harness (its client and its server) is not timed: neither module imports the app
from tools.devserver import create_app
_t1h = time.perf_counter()

async def main():
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        response = await client.post("/api/chat", json={"message": "What is a good first step to plan a garden?"})
    _t2 = time.perf_counter()
    print(json.dumps({"status": response.status_code, "import_ms": (_t1 - _t0) * 1000,
                      "first_request_ms": (_t2 - _t1h) * 1000, "inside_ms": (_t1 - _t0 + _t2 - _t1h) * 1000}),
          flush=True)
    from shared.app import close_services
    await close_services()

asyncio.run(main())
"""

MANDATORY = """
import azure.functions, azurefunctions.extensions.http.fastapi, azure.storage.blob.aio, azure.cosmos.aio
import agent_framework, agent_framework.openai, openai
"""

DEPS = """
import time
_t0 = time.perf_counter()
MANDATORY
_t1 = time.perf_counter()
import json
print(json.dumps({"status": 0, "inside_ms": (_t1 - _t0) * 1000}), flush=True)
""".replace("MANDATORY", MANDATORY)

BARE = "import json; print(json.dumps({'status': 0, 'inside_ms': 0.0}), flush=True)"

KINDS = {"app": APP, "deps": DEPS, "bare": BARE}

# The profiled import; the marker on stderr separates its entries from those of the interpreter's own start.
PROFILED = "import function_app"
MARKER = "--- profiled import"
PROFILE = f"""
import sys
_before = len(sys.modules)
sys.stderr.write("{MARKER}\\n")
{PROFILED}
print('{{"status": 0, "modules": %d}}' % (len(sys.modules) - _before), flush=True)
"""
# How many modules the mandatory imports load, and which ones `import function_app` loads on top of them.
COUNTS = """
import sys
_before = len(sys.modules)
MANDATORY
_mandatory = set(sys.modules)
PROFILED
_beyond = sorted(set(sys.modules) - _mandatory)
import json
print(json.dumps({"status": 0, "mandatory": len(_mandatory) - _before, "beyond_mandatory": _beyond}), flush=True)
""".replace("MANDATORY", MANDATORY).replace("PROFILED", PROFILED)
_ENTRY = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$")
# Namespace packages are told apart by more of their name (azure.storage, not azure); ours by subpackage.
_PACKAGE_PARTS = {"azure": 2, "azurefunctions": 3, "shared": 2}
TOP = 20


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


Entry = tuple[str, int, float, float]  # module, nesting depth, self µs, cumulative µs


def _profile_once(env: dict[str, str]) -> tuple[int, list[Entry]]:
    """One `-X importtime` run of the profiled import in a fresh process: how many modules it loaded, and each
    module's entry in Python's order (a module after those it imported first)."""
    done = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", PROFILE], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0 or MARKER not in done.stderr:
        raise RuntimeError(f"import profile child failed: {done.stderr[-2000:]}")
    entries: list[Entry] = []
    for line in done.stderr.split(MARKER, 1)[1].splitlines():
        found = _ENTRY.match(line)
        if found:
            entries.append((found[4], len(found[3]) // 2, float(found[1]), float(found[2])))
    return json.loads(done.stdout)["modules"], entries


def _median_profile(profiles: list[list[Entry]]) -> list[Entry]:
    """Each entry's median self and cumulative time over the runs, in the first run's order. An entry is known by
    its module and how many entries of that module came before it (a module caught in an import cycle has two)."""
    keyed = [
        {key: (own, total) for key, (_, _, own, total) in zip(_keys(entries), entries, strict=True)}
        for entries in profiles
    ]
    merged: list[Entry] = []
    for key, (name, depth, _, _) in zip(_keys(profiles[0]), profiles[0], strict=True):
        seen = [run[key] for run in keyed if key in run]
        merged.append((name, depth, statistics.median(s[0] for s in seen), statistics.median(s[1] for s in seen)))
    return merged


def _keys(entries: list[Entry]) -> list[tuple[str, int]]:
    occurrences: dict[str, int] = defaultdict(int)
    keys = []
    for name, _, _, _ in entries:
        keys.append((name, occurrences[name]))
        occurrences[name] += 1
    return keys


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[: _PACKAGE_PARTS.get(parts[0], 1)])


def _packages(entries: list[Entry], beyond_mandatory: set[str]) -> list[dict[str, Any]]:
    """Time spent in each package's own modules (the sum of their self times), most first, with how many of its
    modules the mandatory imports do not load."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for name, _, own, _ in entries:
        package = totals[_package(name)]
        package[0] += 1
        package[1] += name in beyond_mandatory
        package[2] += own
    ranked = sorted(totals.items(), key=lambda item: -item[1][2])
    return [
        {"package": name, "modules": int(n), "beyond_mandatory": int(beyond), "self_ms": round(us / 1000, 1)}
        for name, (n, beyond, us) in ranked
    ]


def import_profile(env: dict[str, str], runs: int) -> dict[str, Any]:
    """The import-time profile of `import function_app` over `runs` fresh processes: the modules it loads, the
    entries with the largest cumulative time, the time by package, and every module's line (medians)."""
    profiles = [_profile_once(env) for _ in range(runs)]
    counts = _one(COUNTS, env)
    entries = _median_profile([entries for _, entries in profiles])
    slowest = sorted(entries, key=lambda entry: -entry[3])[:TOP]
    return {
        "command": f'python -X importtime -c "{PROFILED}"',
        "runs": runs,
        "modules": profiles[0][0],
        "mandatory_modules": counts["mandatory"],
        "modules_beyond_mandatory": len(counts["beyond_mandatory"]),
        "import_ms": round(next((e[3] for e in entries if e[0] == "function_app"), 0.0) / 1000, 1),
        "top_cumulative": [
            {"module": name, "depth": depth, "self_ms": round(own / 1000, 1), "cumulative_ms": round(total / 1000, 1)}
            for name, depth, own, total in slowest
        ],
        "packages": _packages(entries, set(counts["beyond_mandatory"])),
        "beyond_mandatory": counts["beyond_mandatory"],
        "profile": [
            f"import time: {own:9.0f} | {total:10.0f} | {'  ' * depth}{name}" for name, depth, own, total in entries
        ],
    }


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
        "import_profile": import_profile(env, 2 if quick else 5),
    }


def markdown(result: dict[str, Any]) -> list[str]:
    """SUMMARY.md lines of the import-time profile: what `import function_app` loads and where its time goes."""
    profile = result.get("import_profile")
    if not profile:
        return []
    lines = [
        "### Import-time profile",
        "",
        f"`{profile['command']}`, median of {profile['runs']} fresh processes (`coldstart.json` keeps every "
        f"module's line): {profile['modules']:,} modules loaded, {profile['modules_beyond_mandatory']} of them "
        f"beyond the {profile['mandatory_modules']:,} of the mandatory imports; {profile['import_ms']:,.1f} ms under "
        "the profiler (which slows imports down; the timed runs above are not profiled).",
        "",
        f"| Module: the {TOP} largest cumulative times (· per level of nesting) | Cumulative ms | Self ms |",
        "|---|---|---|",
    ]
    for entry in profile["top_cumulative"]:
        indent = "· " * entry["depth"]
        lines.append(f"| {indent}`{entry['module']}` | {entry['cumulative_ms']:,.1f} | {entry['self_ms']:,.1f} |")
    lines += [
        "",
        "| Package: time in its own modules | Modules | Of them beyond the mandatory imports | ms |",
        "|---|---|---|---|",
    ]
    for package in profile["packages"][:TOP]:
        lines.append(
            f"| `{package['package']}` | {package['modules']} | {package['beyond_mandatory']} | "
            f"{package['self_ms']:,.1f} |"
        )
    return [*lines, ""]
