"""Request units of a Cosmos DB write, estimated from Azure's published guidance (pure).

The emulator answers every request with a constant `x-ms-request-charge: 1` (hard-coded in
@vercel/cosmosdb-server's `lib/index.js`), so it cannot measure what a write costs. Microsoft's page
"Understand request units consumption in Azure Cosmos DB" (Microsoft Learn) gives the charge of a write by
document size, plus 0.2 RU for each index term the write adds or removes; a replace costs a deletion and an
insertion of the document, and removes and adds each changed term. Its figures are illustrative (the page says
so): this is an estimate to compare shapes and policies with, not a bill.

Index terms: under the default policy every leaf of the document (each array element too); under a policy
that excludes the root, each included path, present or not (the page on indexing policies says an included
path gets a value even when undefined). `id` and `_ts` are always indexed, and every write changes `_ts`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

# Write charge by document size (KB, RU), from that page's table; a document is charged at the first row that
# holds it (the page gives no interpolation).
WRITE_RU_BY_SIZE_KB: tuple[tuple[int, float], ...] = (
    (1, 4.95),
    (2, 6.29),
    (4, 6.67),
    (8, 7.04),
    (16, 9.52),
    (32, 11.23),
    (64, 22.67),
)
RU_PER_INDEX_TERM = 0.2
ALWAYS_INDEXED = ("/id", "/_ts")
_ABSENT = object()


def document_bytes(document: Mapping[str, Any]) -> int:
    """Compact UTF-8 JSON size of a document without the service's system properties (what a write sends)."""
    body = {key: value for key, value in document.items() if not key.startswith("_")}
    return len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def size_ru(size_bytes: int) -> float:
    for kilobytes, charge in WRITE_RU_BY_SIZE_KB:
        if size_bytes <= kilobytes * 1024:
            return charge
    raise ValueError(f"a {size_bytes}-byte document is past the table ({WRITE_RU_BY_SIZE_KB[-1][0]} KB)")


def index_terms(document: Mapping[str, Any], included: Sequence[str] | None) -> dict[str, Any]:
    """Indexed path -> value of a document: every leaf (`included` None: the default policy) or the included
    paths (`/a/b/?`, absent ones too), plus `id` and `_ts`."""
    terms: dict[str, Any] = {path: document.get(path[1:], _ABSENT) for path in ALWAYS_INDEXED}
    if included is None:
        body = {key: value for key, value in document.items() if not key.startswith("_") and key != "id"}
        terms.update(_leaves(body, ""))
        return terms
    for path in included:
        value: Any = document
        for part in path.strip("/").removesuffix("/?").split("/"):
            value = value.get(part, _ABSENT) if isinstance(value, Mapping) else _ABSENT
        terms[path] = value
    return terms


def _leaves(value: Any, path: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        children = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    else:
        return {path: value}
    return {leaf: item for key, child in children for leaf, item in _leaves(child, f"{path}/{key}").items()}


def create_ru(document: Mapping[str, Any], included: Sequence[str] | None) -> float:
    """A write of a new item: its size's charge and every term it indexes."""
    return round(size_ru(document_bytes(document)) + RU_PER_INDEX_TERM * len(index_terms(document, included)), 2)


def replace_ru(before: Mapping[str, Any], after: Mapping[str, Any], included: Sequence[str] | None) -> float:
    """An upsert over an existing item: the old document deleted, the new inserted, each changed term removed and
    added (`_ts` always changes)."""
    old, new = index_terms(before, included), index_terms(after, included)
    changed = sum(
        1 for path in old.keys() | new.keys() if path == "/_ts" or old.get(path, _ABSENT) != new.get(path, _ABSENT)
    )
    sizes = size_ru(document_bytes(before)) + size_ru(document_bytes(after))
    return round(sizes + 2 * RU_PER_INDEX_TERM * changed, 2)
