"""What each Cosmos container indexes: only the paths its queries filter or sort on (declared once, here).

Cosmos indexes every path of every item by default, and each indexed term costs write RUs and index storage.
Here the root is excluded and each container includes exactly the properties that a WHERE or ORDER BY of this
package names (`tests/test_cosmos_documents.py` reads every query of the stores and checks that the two agree).
A partition key is not indexed under this strategy unless included, so it is listed like any other path; `id`
and `_ts` are always indexed by the service. No query sorts on two properties, so no composite index is needed.

`infra/app/cosmos.bicep` declares the same policies for Azure (`tests/test_infra.py` compares them with these);
`CosmosDatabase.ensure_resources` creates the local containers with them. The emulator stores a policy but does
not enforce it: it answers a query on an excluded path all the same, so only Azure shows what a policy costs.
"""

from __future__ import annotations

from typing import Any, Literal

Kind = Literal["turns", "sessions", "audit"]

INDEXED_PATHS: dict[Kind, tuple[str, ...]] = {
    # session rows (sessionId, userId, ORDER BY turn), owner rows and budgets (userId, completed_at), calibration
    # (completed_at), erasure and orphans (userId, sessionId)
    "turns": ("/sessionId/?", "/userId/?", "/type/?", "/turn/?", "/completed_at/?"),
    # the list (userId, ORDER BY sortKey), OpenAI clients' session lookup (the hashes), retention (last_active)
    "sessions": ("/userId/?", "/type/?", "/sortKey/?", "/last_active/?", "/transcript_hash/?", "/replay_hash/?"),
    # a session's trail (sessionId, userId) and a user's events on erasure (userId)
    "audit": ("/sessionId/?", "/userId/?", "/type/?"),
}


def indexing_policy(kind: Kind) -> dict[str, Any]:
    """The container's indexing policy, as the service and Bicep spell it."""
    return {
        "indexingMode": "consistent",
        "automatic": True,
        "includedPaths": [{"path": path} for path in INDEXED_PATHS[kind]],
        "excludedPaths": [{"path": "/*"}],
    }
