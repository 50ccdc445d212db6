"""`python -m bench [--quick] [--only turns,resume,...]`: run the benchmarks and write bench/results/.

Starts Azurite and the Cosmos emulator on free ports and fake models as processes, runs the scenarios (see
each module's docstring for exactly what it measures), and writes one JSON file per scenario, SUMMARY.md and
PNG plots, all stamped with the commit, the command, the machine and the date. Nothing here asserts on time:
a benchmark reports, it does not pass or fail.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    coldstart,
    concurrency,
    context,
    facts,
    report,
    resume,
    router,
    routing_eval,
    storage,
    throughput,
    turns,
)
from bench.env import FakeModel, emulators, load_average, provenance
from bench.stack import MODELS, build_stack, settings_env
from shared.storage.metadata import MetadataStore

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("turns", "resume", "storage", "coldstart", "throughput", "router", "context", "concurrency", "routing")


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _timed(name: str, scenario: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Runs one scenario, adding how long it took and the load average before and after."""
    _log(f"{name} ...")
    began, load_before = time.perf_counter(), load_average()
    result = scenario()
    result["elapsed_s"] = round(time.perf_counter() - began, 1)
    result["load_average"] = {"before": load_before, "after": load_average()}
    _log(f"{name} done in {result['elapsed_s']} s")
    return result


async def _in_process(
    azurite: Any, cosmos: Any, model: FakeModel, name: str, module: Any, quick: bool
) -> dict[str, Any]:
    """One scenario run against the service's own stores and agents in this process (its own stack, closed after)."""
    stack = await build_stack(azurite, cosmos, model, name)
    try:
        result: dict[str, Any] = await module.run(stack, quick)
        return result
    finally:
        await stack.close()


async def _create_cosmos_resources(env: dict[str, str]) -> None:
    from azure.cosmos.aio import CosmosClient

    async with CosmosClient(env["COSMOS_ENDPOINT"], credential=env["COSMOS_KEY"]) as client:
        await MetadataStore(client, env["COSMOS_DATABASE"], "turns", "sessions", "audit").ensure_resources()


def _coldstart(azurite: Any, cosmos: Any, model: FakeModel, quick: bool) -> dict[str, Any]:
    env = settings_env(azurite, cosmos, model, "cold")
    asyncio.run(_create_cosmos_resources(env))  # as in Azure, where Bicep made them: the app does not
    return coldstart.run(env, quick)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a minute or two); for a smoke run")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {SCENARIOS}")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the results go (default bench/results)")
    parser.add_argument(
        "--report-only", action="store_true", help="rebuild SUMMARY.md and the plots from the JSON files in --out"
    )
    args = parser.parse_args(arguments)
    if args.report_only:
        return _report_only(args.out)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {sorted(unknown)}")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("azure").setLevel(logging.ERROR)

    stamp = provenance(arguments)
    started = time.perf_counter()
    results: dict[str, Any] = {}
    with emulators() as (azurite, cosmos):
        _log(f"emulators up: Azurite {azurite.port}, Cosmos {cosmos.port}")
        emulator_facts = asyncio.run(facts.run(cosmos.endpoint, cosmos.key))
        with FakeModel("instant", latency=0.0, models=tuple(MODELS.values())) as model:
            for name, module in (("turns", turns), ("resume", resume), ("storage", storage)):
                if name in only:
                    scenario = functools.partial(_in_process, azurite, cosmos, model, name, module, args.quick)
                    results[name] = _timed(name, lambda scenario=scenario: asyncio.run(scenario()))
            if "coldstart" in only:
                results["coldstart"] = _timed("coldstart", lambda: _coldstart(azurite, cosmos, model, args.quick))
        if "throughput" in only:
            results["throughput"] = _timed("throughput", lambda: throughput.run(azurite, cosmos, args.quick))
        if "context" in only:
            results["context"] = _timed("context", lambda: context.run(azurite, cosmos, args.quick))
        if "concurrency" in only:
            results["concurrency"] = _timed("concurrency", lambda: concurrency.run(azurite, cosmos, args.quick))
    if "router" in only:
        results["router"] = _timed("router", lambda: router.run(args.quick))
    if "routing" in only:
        results["routing"] = _timed("routing", routing_eval.routing_report)
    stamp["elapsed_s"] = round(time.perf_counter() - started, 1)
    stamp["quick"] = args.quick

    args.out.mkdir(parents=True, exist_ok=True)
    for name, result in results.items():
        document = {"provenance": stamp, "emulator_facts": emulator_facts, **result}
        (args.out / f"{name}.json").write_text(json.dumps(document, indent=1, default=str) + "\n")
    (args.out / "emulator_facts.json").write_text(
        json.dumps({"provenance": stamp, **emulator_facts}, indent=1, default=str) + "\n"
    )
    report.write(args.out, results, stamp, emulator_facts)
    _log(f"done in {stamp['elapsed_s']} s: {args.out / 'SUMMARY.md'}")
    return 0


def _report_only(out: Path) -> int:
    """SUMMARY.md and plots again from the stored results (e.g. after a change to the report), no measuring."""
    facts_document = json.loads((out / "emulator_facts.json").read_text())
    stamp = facts_document.pop("provenance")
    results = {path.stem: json.loads(path.read_text()) for path in out.glob("*.json") if path.stem != "emulator_facts"}
    report.write(out, results, stamp, facts_document)
    _log(f"rebuilt {out / 'SUMMARY.md'} from the stored results")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
