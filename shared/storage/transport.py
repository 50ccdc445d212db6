"""The storage clients' HTTP transport: one aiohttp session per process for Blob and Cosmos, with the environment
read once, and the round trips of a piece of work counted when someone asks.

Why one session, built here: each SDK client otherwise opens its own aiohttp session with `trust_env=True`, and
aiohttp then reads `~/.netrc` and the proxy variables in a worker thread on every request (a profile of the
server showed that, with the thread hand-offs, at about a fifth of its CPU). Here proxies are resolved once,
when the clients are built, from the same variables, `NO_PROXY` included (`shared.config.network`).

Counting (`counting()`): every request a storage client sends inside the block is recorded with its start and
end, so the block's *requests* and its *sequential steps* (requests that overlap in time form one step: they
were in flight together) are known. Both are deterministic for the same code path, so tests assert them; the
benchmarks report them per turn and per resume.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
from azure.core.pipeline.transport import AioHttpTransport, AsyncHttpTransport


@dataclass(frozen=True)
class Trip:
    service: str  # "blob" or "cosmos"
    operation: str  # e.g. "lease:acquire", "get", "appendblock", "upsert"
    started: float
    ended: float


@dataclass
class RoundTrips:
    """The storage requests of one piece of work, in the order they were sent."""

    trips: list[Trip] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.trips)

    def steps(self) -> list[list[str]]:
        """The requests grouped into sequential steps: a request that starts before every request of the current
        step has ended joins it (they were in flight together); otherwise it starts the next step."""
        grouped: list[list[str]] = []
        ended = float("-inf")
        for trip in sorted(self.trips, key=lambda item: item.started):
            if trip.started > ended or not grouped:
                grouped.append([])
                ended = trip.ended
            grouped[-1].append(f"{trip.service}:{trip.operation}")
            ended = max(ended, trip.ended)
        return [sorted(step) for step in grouped]

    def to_dict(self) -> dict[str, Any]:
        steps = self.steps()
        return {"requests": self.requests, "sequential_steps": len(steps), "steps": steps}


_CURRENT: ContextVar[RoundTrips | None] = ContextVar("llmrouter_round_trips", default=None)


@contextlib.contextmanager
def counting() -> Iterator[RoundTrips]:
    """Record every storage request sent in this block (and in the tasks it starts)."""
    trips = RoundTrips()
    token = _CURRENT.set(trips)
    try:
        yield trips
    finally:
        _CURRENT.reset(token)


def _blob_operation(method: str, url: str, headers: Any) -> str:
    query = parse_qs(urlparse(url).query)
    comp = (query.get("comp") or [""])[0]
    if comp == "lease":
        return f"lease:{headers.get('x-ms-lease-action', '?')}"
    if comp:
        return comp.lower()
    name = urlparse(url).path.rsplit("/", 1)[-1]
    what = "journal" if name.startswith("journal") else "snapshot" if name.startswith("snapshot") else name
    return f"{method.lower()}:{what}"


def _cosmos_operation(method: str, url: str, headers: Any) -> str:
    if str(headers.get("x-ms-documentdb-isquery")).lower() == "true":
        return "query"
    if str(headers.get("x-ms-documentdb-is-upsert")).lower() == "true":
        return "upsert"
    kinds = [part for part in urlparse(url).path.split("/") if part in ("dbs", "colls", "docs", "pkranges")]
    return f"{method.lower()}:{kinds[-1] if kinds else 'account'}"


class CountingTransport(AsyncHttpTransport):  # type: ignore[misc]
    """An aiohttp transport over the process's shared session that records requests for `counting()`."""

    def __init__(self, session: aiohttp.ClientSession, service: str, **connection: Any) -> None:
        self._inner = AioHttpTransport(session=session, session_owner=False, **connection)
        self._service = service
        self._name = _blob_operation if service == "blob" else _cosmos_operation

    async def send(self, request: Any, **kwargs: Any) -> Any:
        trips = _CURRENT.get()
        if trips is None:
            return await self._inner.send(request, **kwargs)
        started = time.perf_counter()
        try:
            return await self._inner.send(request, **kwargs)
        finally:
            operation = self._name(request.method, request.url, request.headers)
            trips.trips.append(Trip(self._service, operation, started, time.perf_counter()))

    async def open(self) -> None:
        await self._inner.open()

    async def close(self) -> None:
        await self._inner.close()  # never closes the shared session: `SharedSession.close` does

    async def sleep(self, duration: float) -> None:
        await self._inner.sleep(duration)

    async def __aenter__(self) -> CountingTransport:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()


class SharedSession:
    """The process's aiohttp session for the storage clients (made on first use, inside the event loop)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def transport(self, service: str, **connection: Any) -> CountingTransport:
        if self._session is None:
            # trust_env=False: the environment is read once, by `proxies_for`, not on every request.
            self._session = aiohttp.ClientSession(
                trust_env=False, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
            )
        return CountingTransport(self._session, service, **connection)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
