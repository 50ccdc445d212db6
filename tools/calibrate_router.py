"""Propose a router threshold and target cloud share from a deployment's own feedback. Reports; changes nothing.

Reads, from the deployment's Cosmos DB (the same settings as the app: COSMOS_ENDPOINT and COSMOS_KEY or an
identity), every turn of the last `--days` that the router decided itself (`route: auto`) with the router version
in use, and the feedback its users gave. Then it scores every threshold by how often it agrees with that
feedback (see `shared.domain.routing.calibration`) and prints the evidence and the proposal as JSON:

    python -m tools.calibrate_router [--days 30] [--version learned-v1]

To apply a proposal, set ROUTER_LOCAL_THRESHOLD (or ROUTER_TARGET_CLOUD_SHARE) on the app; compare it first on
live traffic with ROUTER_SHADOW if it changes much.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from shared.app import build_services
from shared.config import Settings, get_settings
from shared.domain.clock import utc_iso, utc_now
from shared.domain.routing.calibration import RatedTurn, propose


def evidence(rows: Sequence[Mapping[str, Any]], version: str) -> tuple[list[RatedTurn], list[float]]:
    """The routed turns of `version` (their complexities) and, among them, the rated ones."""
    routed = [
        row
        for row in rows
        if row.get("route_requested", "auto") == "auto"
        and row.get("router_version") == version
        and not row.get("imported")
        and isinstance(row.get("complexity"), int | float)
        and row.get("backend")
    ]
    rated = [
        RatedTurn(
            float(row["complexity"]),
            str(row["backend"]),
            str(row["feedback"]["rating"]),
            row["feedback"].get("preferred_backend"),
        )
        for row in routed
        if isinstance(row.get("feedback"), Mapping) and row["feedback"].get("rating") in ("up", "down")
    ]
    return rated, [float(row["complexity"]) for row in routed]


async def report(settings: Settings, days: int, version: str) -> dict[str, Any]:
    services = await build_services(settings)
    try:
        since = utc_iso(utc_now() - timedelta(days=days))
        rows = await services.metadata.turns.routed_since(since)
    finally:
        await services.close()
    rated, complexities = evidence(rows, version)
    current = settings.router.threshold(version)
    return {"router_version": version, "since": since, **propose(rated, complexities, current)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30, help="turns completed in the last N days (default 30)")
    parser.add_argument("--version", help="router version to calibrate (default: ROUTER_VERSION)")
    args = parser.parse_args(argv)
    settings = get_settings()
    result = asyncio.run(report(settings, args.days, args.version or settings.router.version))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
