"""Stopwatches around the real storage calls of a turn, for both stores. Nothing here changes behaviour.

Each class subclasses the real store or provider and times its `super()` call into a `Phases` dict the
scenario resets before every turn, so a turn's overhead can be split into its parts (lease, load, save,
metadata) without a second, separate measurement that might differ from what a turn really does.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from agent_framework import Message
from agent_framework_azure_cosmos import CosmosHistoryProvider

from shared.domain.records import TurnRecord
from shared.domain.sessions import SessionSummary, Snapshot
from shared.storage.lease import SessionLock
from shared.storage.metadata import MetadataStore
from shared.storage.snapshots import SnapshotStore


class Phases(dict[str, Any]):
    """Milliseconds per phase of the current turn (plus a few labels such as the kind of save)."""

    def add(self, name: str, started: float) -> None:
        self[name] = self.get(name, 0.0) + (time.perf_counter() - started) * 1000.0


class TimedSnapshotStore(SnapshotStore):
    def __init__(self, *args: Any, phases: Phases, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.phases = phases

    async def load(self, owner: str, session_id: str) -> Snapshot:
        started = time.perf_counter()
        try:
            return await super().load(owner, session_id)
        finally:
            self.phases.add("load", started)

    async def create(self, snapshot: Snapshot) -> Snapshot:
        started = time.perf_counter()
        try:
            return await super().create(snapshot)
        finally:
            self.phases.add("save", started)
            self.phases["save_kind"] = "create"

    async def append(self, lock: SessionLock, before: Snapshot, after: Snapshot) -> Snapshot:
        started = time.perf_counter()
        saved = await super().append(lock, before, after)
        self.phases.add("save", started)
        self.phases["save_kind"] = "compaction" if saved.generation != before.generation else "append"
        return saved

    @contextlib.asynccontextmanager
    async def opened(self, owner: str, session_id: str) -> AsyncIterator[tuple[SessionLock, Snapshot]]:
        """The lease and the load, which go out together: one phase, `open`. (The lease goes back beside the
        metadata writes, inside the `metadata` phase.)"""
        started = time.perf_counter()
        context = super().opened(owner, session_id)
        opened = await context.__aenter__()
        self.phases.add("open", started)
        try:
            yield opened
        except BaseException as exc:
            if not await context.__aexit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            await context.__aexit__(None, None, None)


class TimedMetadataStore(MetadataStore):
    def __init__(self, *args: Any, phases: Phases, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.phases = phases
        self.request_charges: list[float] = []  # RU of each turn's metadata writes, as the service reported them

    async def record_turn(self, summary: SessionSummary, record: TurnRecord) -> float:
        started = time.perf_counter()
        try:
            charge = await super().record_turn(summary, record)
        finally:
            self.phases.add("metadata", started)
        self.request_charges.append(charge)
        return charge


class TimedHistoryProvider(CosmosHistoryProvider):
    """`CosmosHistoryProvider` with its two hooks timed: before_run loads, after_run saves (it reads first)."""

    def __init__(self, *args: Any, phases: Phases, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.phases = phases

    async def before_run(self, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            await super().before_run(**kwargs)
        finally:
            self.phases.add("load", started)

    async def after_run(self, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            await super().after_run(**kwargs)
        finally:
            self.phases.add("save", started)

    async def save_messages(self, session_id: str | None, messages: Sequence[Message], **kwargs: Any) -> None:
        self.phases["saved_messages"] = self.phases.get("saved_messages", 0) + len(messages)
        await super().save_messages(session_id, messages, **kwargs)
