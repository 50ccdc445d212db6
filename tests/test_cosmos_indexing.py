"""The Cosmos containers index only the paths their queries filter or sort on, in Azure and on the emulator.

The policy is declared once (`shared/storage/indexing.py`): the Bicep must equal it (`tests/test_infra.py`), the
stores' query texts must filter and sort on exactly its paths (read here from the source), and the service creates
and recreates the local containers with it. The emulator stores a policy but does not enforce it (pinned below), so
what a policy saves in Azure is estimated by the benchmark (`bench/request_units.py`), not tested here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.cosmos.aio import CosmosClient

from shared.app import Services
from shared.storage.indexing import INDEXED_PATHS, indexing_policy
from tests.api_helpers import drop_container

ROOT = Path(__file__).resolve().parent.parent

STORE_MODULES = {"turns": "turns.py", "sessions": "summaries.py", "audit": "audit.py"}
FILTERED_OR_SORTED = re.compile(r"\bc\.(\w+)\s*(?:=|!=|<|>)|ORDER BY c\.(\w+)")


def queried_paths(module: str) -> set[str]:
    """Every property a query text of the module filters or sorts on, as an index path (`id` is always indexed)."""
    tree = ast.parse((ROOT / "shared" / "storage" / module).read_text())
    texts = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    names = {name for text in texts for match in FILTERED_OR_SORTED.finditer(text) for name in match.groups() if name}
    return {f"/{name}/?" for name in names - {"id"}}


@pytest.mark.parametrize("kind", list(STORE_MODULES))
def test_each_container_indexes_exactly_the_paths_its_queries_filter_or_sort_on(kind: str) -> None:
    assert queried_paths(STORE_MODULES[kind]) == set(INDEXED_PATHS[kind])  # type: ignore[index]
    policy = indexing_policy(kind)  # type: ignore[arg-type]
    assert policy["excludedPaths"] == [{"path": "/*"}] and policy["indexingMode"] == "consistent"
    assert not policy.get("compositeIndexes")  # no query sorts on two properties


def test_the_query_scan_sees_a_filter_and_a_sort_it_must_index() -> None:
    """Guard on the scan above: it finds comparisons and ORDER BY in the stores' real query texts."""
    assert {"/turn/?", "/completed_at/?", "/userId/?"} <= queried_paths("turns.py")
    assert {"/sortKey/?", "/last_active/?", "/replay_hash/?"} <= queried_paths("summaries.py")


async def container_properties(env: dict[str, str], name: str) -> dict[str, Any]:
    async with CosmosClient(env["COSMOS_ENDPOINT"], credential=env["COSMOS_KEY"]) as client:
        return dict(await client.get_database_client(env["COSMOS_DATABASE"]).get_container_client(name).read())


def indexed(properties: dict[str, Any]) -> tuple[list[str], list[str]]:
    policy = properties["indexingPolicy"]
    return [item["path"] for item in policy["includedPaths"]], [item["path"] for item in policy["excludedPaths"]]


async def test_containers_are_created_and_recreated_with_their_indexing_policy_and_a_turn_writes_both_documents(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any]
) -> None:
    env = make_env()
    services: Services = await make_services(env)
    for kind in INDEXED_PATHS:
        assert indexed(await container_properties(env, kind)) == (list(INDEXED_PATHS[kind]), ["/*"])
    first = await services.conversations.chat("alice", "hi")
    await drop_container(env, "turns")
    await drop_container(env, "sessions")

    # Both writes of the next turn find their container gone: the first recreates what is missing (under a lock,
    # with the policies), then each write is tried again.
    second = await services.conversations.chat("alice", "and again", first.session_id)

    assert second.metadata_saved
    for kind in ("turns", "sessions"):
        assert indexed(await container_properties(env, kind)) == (list(INDEXED_PATHS[kind]), ["/*"])
    [row] = await services.metadata.turns.rows_of_session("alice", first.session_id)  # turn 1 went with its container
    assert (row.record.turn, row.record.completed_at) == (2, second.record.completed_at)
    summary = await services.metadata.summary("alice", first.session_id)
    assert summary is not None and summary.turns == 2


async def test_the_emulator_stores_an_indexing_policy_but_answers_queries_on_excluded_paths_anyway(
    services: Services,
) -> None:
    """Why no test here can show what the policy saves: the emulator does not enforce it (Azure would scan)."""
    result = await services.conversations.chat("alice", "hi", route="local")
    found = await services.metadata.database.query(
        "turns", "SELECT c.id FROM c WHERE c.sessionId = @s AND c.backend = 'local'",
        {"s": result.session_id}, partition=result.session_id,
    )  # fmt: skip
    assert "/backend/?" not in INDEXED_PATHS["turns"] and len(found) == 1
