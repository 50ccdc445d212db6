"""Spans: the request, the routing decision, each model call (GenAI semantic conventions: `chat {model}` with
`gen_ai.*` attributes), the snapshot load and save, and the metadata write.

Async generators: a turn is an async generator whose steps may run in different tasks (the first event in
the request's task, the rest in the SSE response's task), so no span is made current across a `yield`; spans
that outlive a step are started detached and only made current around each step (`within`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from shared.observability.metrics import LATENCY
from shared.observability.setup import include_content

if TYPE_CHECKING:
    from shared.config import BackendSettings
    from shared.domain.routing import Decision

tracer = trace.get_tracer("shared.telemetry")

R = TypeVar("R")
T = TypeVar("T")


def within(span: Span, iterable: AsyncIterable[T]) -> AsyncIterable[T]:
    """Iterate with `span` current during each step only (never across the consumer's `yield`).

    With telemetry off the iterable is returned as it is: no wrapper, no cost per item.
    """
    if not span.is_recording():
        return iterable
    return _within(trace.set_span_in_context(span), iterable)


async def _within(ctx: otel_context.Context, iterable: AsyncIterable[T]) -> AsyncIterator[T]:
    iterator = aiter(iterable)
    while True:
        token = otel_context.attach(ctx)
        try:
            item = await anext(iterator)
        except StopAsyncIteration:
            return
        finally:
            otel_context.detach(token)
        yield item


async def request_span(operation: str, method: str, path: str, call: Callable[[], Awaitable[R]]) -> R:
    """Run one HTTP handler under a span for the request, unless one is already recording.

    The Functions host reports the request itself; when its trace context reached this worker the span is an
    internal child of it, else (the dev server, tests) it is the server span. A streamed response's span ends
    when its body ends, and the turn's spans run under it while the body is produced.
    """
    current = trace.get_current_span()
    if current.is_recording():
        response = await call()
        _describe_response(current, response)
        return response
    span = tracer.start_span(
        f"{method} {operation}",
        kind=SpanKind.INTERNAL if current.get_span_context().is_valid else SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": path, "llmrouter.operation": operation},
    )
    if not span.is_recording():
        return await call()
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        response = await call()
    except BaseException as exc:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        span.end()
        raise
    finally:
        otel_context.detach(token)
    _describe_response(span, response)
    body = getattr(response, "body_iterator", None)
    if body is None:
        span.end()
    else:
        response.body_iterator = _ending(span, body)  # type: ignore[attr-defined]
    return response


def _describe_response(span: Span, response: object) -> None:
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))


async def _ending(span: Span, body: AsyncIterable[T]) -> AsyncIterator[T]:
    try:
        async for chunk in within(span, body):
            yield chunk
    finally:
        span.end()


def describe_decision(span: Span, decision: Decision, route: str) -> None:
    """The routing decision on its span: numbers and names, and the free-text reason only with content on."""
    if not span.is_recording():
        return
    span.set_attributes(
        {
            "llmrouter.route.requested": route,
            "llmrouter.route.backend": decision.backend,
            "llmrouter.route.complexity": decision.complexity,
            "llmrouter.route.follow_up": decision.follow_up,
            "llmrouter.route.signals": list(decision.signals),
            "llmrouter.router_version": decision.router_version,
        }
    )
    if decision.switched_from:
        span.set_attribute("llmrouter.route.switched_from", decision.switched_from)
    if include_content():
        span.set_attribute("llmrouter.route.reason", decision.reason)


def provider_name(config: BackendSettings | None) -> str:
    """`gen_ai.provider.name`: Azure OpenAI for Azure hosts, else the OpenAI-compatible protocol."""
    return "azure.ai.openai" if config is not None and config.is_azure else "openai"


class ModelCall:
    """One model call: its `chat {model}` span (GenAI conventions) and its latency sample.

    The span is started detached and made current only while the model stream is stepped (`stream`, `wait`),
    so Agent Framework's own spans nest under it without any context crossing a `yield` of the turn.
    """

    __slots__ = ("_attributes", "_ended", "_started", "span")

    def __init__(self, backend: str, model: str, config: BackendSettings | None, purpose: str = "turn") -> None:
        self._started = time.perf_counter()
        self._ended = False
        # `purpose`: "turn" answers the user; "summary" writes a summary of older turns (shared.domain.context).
        self._attributes: dict[str, str] = {"llmrouter.backend": backend, "llmrouter.call": purpose}
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": provider_name(config),
            "gen_ai.provider.name": provider_name(config),
            "gen_ai.request.model": model,
            "llmrouter.backend": backend,
            "llmrouter.call": purpose,
        }
        if config is not None:
            url = urlparse(config.endpoint)
            if url.hostname:
                attributes["server.address"] = url.hostname
            if url.port:
                attributes["server.port"] = url.port
        self.span = tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes)

    @contextlib.contextmanager
    def current(self) -> Iterator[None]:
        """The span current for a block that does not yield (Agent Framework starts its spans when a run is made)."""
        if not self.span.is_recording():
            yield
            return
        token = otel_context.attach(trace.set_span_in_context(self.span))
        try:
            yield
        finally:
            otel_context.detach(token)

    def stream(self, iterable: AsyncIterable[T]) -> AsyncIterable[T]:
        if not self.span.is_recording():
            return iterable
        return self._stream(iterable)

    async def _stream(self, iterable: AsyncIterable[T]) -> AsyncIterator[T]:
        try:
            async for item in within(self.span, iterable):
                yield item
        except GeneratorExit:  # the client went away mid-answer
            self.failed("cancelled")
            raise

    async def wait(self, awaitable: Awaitable[T]) -> T:
        if not self.span.is_recording():
            return await awaitable
        token = otel_context.attach(trace.set_span_in_context(self.span))
        try:
            return await awaitable
        finally:
            otel_context.detach(token)

    def succeeded(self, input_tokens: int, output_tokens: int) -> None:
        if self._ended:
            return
        self.span.set_attributes(
            {"gen_ai.usage.input_tokens": input_tokens, "gen_ai.usage.output_tokens": output_tokens}
        )
        self._end(self._attributes)

    def failed(self, kind: str) -> None:
        if self._ended:
            return
        self.span.set_attribute("error.type", kind)
        self.span.set_status(Status(StatusCode.ERROR, kind))
        self._end({**self._attributes, "error.type": kind})

    def _end(self, attributes: Mapping[str, str]) -> None:
        self._ended = True
        LATENCY.record((time.perf_counter() - self._started) * 1000, attributes)
        self.span.end()
