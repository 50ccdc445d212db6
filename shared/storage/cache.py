"""This worker's copy of the sessions it served lately, so a warm session is not downloaded and decoded whole.

A cached `Snapshot` is only ever a starting point, never trusted as it is: the next load checks it against the
service (the snapshot blob's ETag, which every compaction changes, and the journal read from the cached append
position onwards, which brings any turn another worker saved since). The lease and the append-position
condition still guard every write, as without the cache. Bounded by the turns held (least recently used out).
"""

from __future__ import annotations

from collections import OrderedDict

from shared.domain.sessions import Snapshot

DEFAULT_MAX_TURNS = 20_000  # about 60 MB of decoded history at 1.5 KB of text a turn


class SessionCache:
    def __init__(self, max_turns: int = DEFAULT_MAX_TURNS) -> None:
        self._max_turns = max_turns
        self._turns = 0
        self._items: OrderedDict[tuple[str, str], Snapshot] = OrderedDict()

    def get(self, owner: str, session_id: str) -> Snapshot | None:
        key = (owner, session_id)
        snapshot = self._items.get(key)
        if snapshot is not None:
            self._items.move_to_end(key)
        return snapshot

    def put(self, snapshot: Snapshot) -> None:
        """Keep `snapshot` as saved or loaded (it must carry the snapshot blob's ETag: without one it is dropped)."""
        key = (snapshot.owner, snapshot.session_id)
        self.drop(*key)
        if snapshot.etag is None or snapshot.turns > self._max_turns:
            return
        self._items[key] = snapshot
        self._turns += snapshot.turns
        while self._turns > self._max_turns:
            _, evicted = self._items.popitem(last=False)
            self._turns -= evicted.turns

    def drop(self, owner: str, session_id: str) -> None:
        evicted = self._items.pop((owner, session_id), None)
        if evicted is not None:
            self._turns -= evicted.turns
