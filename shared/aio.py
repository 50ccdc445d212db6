"""Asyncio helpers: clean-up that survives cancellation, two awaitables at once, and batching of an async stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# Tasks started by `finish` are referenced here until done, so the event loop cannot drop them.
_RUNNING: set[asyncio.Future[Any]] = set()


async def finish(work: Coroutine[Any, Any, T]) -> T:
    """Run clean-up to its end even if the calling task is being cancelled.

    A client that hangs up mid-stream cancels the response task, and under Starlette/anyio it is cancelled again
    at every later `await`: a lease release or an audit write awaited directly would be cut short. Here the work
    runs in a task of its own, awaited through a shield, so it completes either way.
    """
    task = asyncio.ensure_future(work)
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return await asyncio.shield(task)


async def both(first: Awaitable[T], second: Awaitable[Any]) -> tuple[T, Any]:
    """Two awaitables at once; both end before this returns (the first failure is raised then)."""
    outcomes = await asyncio.gather(first, second, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes[0], outcomes[1]  # type: ignore[return-value]


async def batched(items: AsyncIterable[T], size: int) -> AsyncGenerator[list[T], None]:
    """`size` items at a time as they arrive, so memory stays flat however long the stream."""
    batch: list[T] = []
    async for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
