"""What is true of the Cosmos emulator today, checked at the start of each run (the figures depend on it).

- Transactional batch with the partition key only in the request header (how the Python SDK and
  `CosmosHistoryProvider.save_messages` send it): does a Read inside a batch work?
- `query_items(..., partition_key=A)` with SQL that does not filter on the key: only partition A, or all?
- How many pages a 250-item query comes back in without `max_item_count` (Azure pages by item count and a
  4 MB response size and the SDK follows continuation tokens; one page here means fewer round trips).
- Numbers: does a `sort_key` of time in nanoseconds + 1 come back as written, and how often do two consecutive
  nanosecond values share one double?
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from azure.cosmos import PartitionKey
from azure.cosmos.aio import CosmosClient


def double_collisions(samples: int = 20_000) -> dict[str, Any]:
    """How often `t` and `t + 1` (the provider's base and base + index for one save) are one double."""
    ties = 0
    for _ in range(samples):
        t = time.time_ns()
        ties += float(t) == float(t + 1)
    t = time.time_ns()
    return {
        "samples": samples,
        "tied_fraction": round(ties / samples, 4),
        "example_ns": t,
        "double_spacing_at_example": math.ulp(float(t)),
    }


async def run(cosmos_endpoint: str, cosmos_key: str) -> dict[str, Any]:
    async with CosmosClient(cosmos_endpoint, credential=cosmos_key) as client:
        database = await client.create_database_if_not_exists(f"facts-{uuid.uuid4().hex[:8]}")
        container = await database.create_container_if_not_exists("c", PartitionKey(path="/session_id"))
        for index in range(250):
            await container.upsert_item({"id": f"a{index}", "session_id": "A", "n": index})
        for index in range(5):
            await container.upsert_item({"id": f"b{index}", "session_id": "B", "n": index})
        batch_read_ok = True
        try:
            await container.execute_item_batch(batch_operations=[("read", ("a1",))], partition_key="A")
        except Exception:  # noqa: BLE001 - the outcome is the fact
            batch_read_ok = False
        scoped = [item async for item in container.query_items("SELECT * FROM c", partition_key="B")]
        pages = 0
        items = 0
        async for page in container.query_items("SELECT * FROM c", partition_key="A").by_page():
            pages += 1
            items += len([item async for item in page])
        exact = time.time_ns() + 1
        await container.upsert_item({"id": "ns", "session_id": "A", "sort_key": exact})
        back = (await container.read_item("ns", partition_key="A"))["sort_key"]
        await client.delete_database(database.id)
    return {
        "batch_read_with_header_partition_key_ok": batch_read_ok,
        "query_with_partition_key_B_returned": len(scoped),
        "query_with_partition_key_B_expected": 5,
        "partition_key_on_query_respected": len(scoped) == 5,
        "pages_for_250_items_without_max_item_count": pages,
        "items_in_those_pages": items,
        "sort_key_written": exact,
        "sort_key_read_back": back,
        "sort_key_exact": back == exact,
        "doubles": double_collisions(),
    }
