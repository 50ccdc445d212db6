"""`python -m bench [--quick] [--only turns,resume,...]`: run the benchmarks and write bench/results/.

Starts Azurite and the Cosmos emulator on free ports and fake models as processes, runs the scenarios (see
each module's docstring for exactly what it measures), and writes one JSON file per scenario, SUMMARY.md and
PNG plots, all stamped with the commit, the command, the machine and the date. Nothing here asserts on time:
a benchmark reports, it does not pass or fail.
"""

from __future__ import annotations

import argparse
import asyncio
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


async def _in_process(azurite: Any, cosmos: Any, model: FakeModel, only: set[str], quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, module in (("turns", turns), ("resume", resume), ("storage", storage)):
        if name not in only:
            continue
        _log(f"{name} ...")
        started = time.perf_counter()
        load_before = load_average()
        stack = await build_stack(azurite, cosmos, model, name)
        try:
            results[name] = await module.run(stack, quick)
        finally:
            await stack.close()
        results[name]["elapsed_s"] = round(time.perf_counter() - started, 1)
        results[name]["load_average"] = {"before": load_before, "after": load_average()}
        _log(f"{name} done in {results[name]['elapsed_s']} s")
    return results


async def _create_cosmos_resources(env: dict[str, str]) -> None:
    from azure.cosmos.aio import CosmosClient

    async with CosmosClient(env["COSMOS_ENDPOINT"], credential=env["COSMOS_KEY"]) as client:
        await MetadataStore(client, env["COSMOS_DATABASE"], "turns", "sessions", "audit").ensure_resources()


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
            results.update(asyncio.run(_in_process(azurite, cosmos, model, only, args.quick)))
            if "coldstart" in only:
                _log("coldstart ...")
                began = time.perf_counter()
                env = settings_env(azurite, cosmos, model, "cold")
                asyncio.run(_create_cosmos_resources(env))
                load_before = load_average()
                results["coldstart"] = coldstart.run(env, args.quick)
                results["coldstart"]["elapsed_s"] = round(time.perf_counter() - began, 1)
                results["coldstart"]["load_average"] = {"before": load_before, "after": load_average()}
        if "throughput" in only:
            _log("throughput ...")
            began = time.perf_counter()
            load_before = load_average()
            results["throughput"] = throughput.run(azurite, cosmos, args.quick)
            results["throughput"]["elapsed_s"] = round(time.perf_counter() - began, 1)
            results["throughput"]["load_average"] = {"before": load_before, "after": load_average()}
        if "context" in only:
            _log("context ...")
            began = time.perf_counter()
            load_before = load_average()
            results["context"] = context.run(azurite, cosmos, args.quick)
            results["context"]["elapsed_s"] = round(time.perf_counter() - began, 1)
            results["context"]["load_average"] = {"before": load_before, "after": load_average()}
        if "concurrency" in only:
            results["concurrency"] = _timed("concurrency", lambda: concurrency.run(azurite, cosmos, args.quick))
    if "router" in only:
        _log("router ...")
        began = time.perf_counter()
        load_before = load_average()
        results["router"] = router.run(args.quick)
        results["router"]["elapsed_s"] = round(time.perf_counter() - began, 1)
        results["router"]["load_average"] = {"before": load_before, "after": load_average()}
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
