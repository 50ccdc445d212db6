"""Traces and metrics: OpenTelemetry API calls everywhere, Azure Monitor export only when it is configured.

Without `APPLICATIONINSIGHTS_CONNECTION_STRING` the OpenTelemetry API's no-op providers answer every call:
nothing is exported, nothing can fail, and a turn pays a few microseconds for its spans. With it,
`configure()` imports `azure-monitor-opentelemetry` (lazily: about 0.3-0.5 s of imports a worker without
telemetry never pays) and calls `configure_azure_monitor()` once per process, signed with the managed
identity when `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` says `Authorization=AAD`. When the Functions
worker configured Azure Monitor itself (`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`, which also makes
it propagate the host's trace context into each invocation) a real tracer provider is already installed and
is used as it is.

Spans: the request (`api.handler`), the routing decision, each model call (GenAI semantic conventions:
`chat {model}` with `gen_ai.*` attributes), the snapshot load and save, and the metadata write. Metrics:
turns, switches and fallbacks (counters), model latency (histogram), tokens and cost (counters), all by
backend.

Content: no prompt or reply text goes into spans, metrics or logs unless `TELEMETRY_INCLUDE_CONTENT=true`.
That one setting also drives Agent Framework's own instrumentation (`agent_framework.observability`), whose
"sensitive data" mode records messages in its spans: it is forced off otherwise, even when the
`ENABLE_SENSITIVE_DATA` environment variable asks for it.

Async generators: a turn is an async generator whose steps may run in different tasks (the first event in
the request's task, the rest in the SSE response's task), so no span is made current across a `yield`; spans
that outlive a step are started detached and only made current around each step (`within`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from shared.records import TurnRecord
    from shared.routing import Decision
    from shared.settings import BackendSettings, Settings

logger = logging.getLogger(__name__)

tracer = trace.get_tracer(__name__)
meter = metrics.get_meter(__name__)

TURNS = meter.create_counter("llmrouter.turns", unit="{turn}", description="Completed turns by answering backend.")
SWITCHES = meter.create_counter(
    "llmrouter.switches", unit="{turn}", description="Turns answered by another backend than the previous turn."
)
FALLBACKS = meter.create_counter(
    "llmrouter.fallbacks", unit="{call}", description="Model calls that failed and passed the turn to the next backend."
)
LATENCY = meter.create_histogram(
    "llmrouter.model.latency", unit="ms", description="Duration of one model call (success or failure) by backend."
)
TOKENS = meter.create_counter("llmrouter.tokens", unit="{token}", description="Tokens by backend and direction.")
COST = meter.create_counter("llmrouter.cost", unit="USD", description="Cost of completed turns by backend.")

# Instrumentations of the Azure Monitor distro that do not apply here: the Functions host already reports
# the HTTP request (the FastAPI instrumentation would report it twice), and there is no Django, Flask or
# PostgreSQL. Azure SDK (Blob, Cosmos), httpx (model calls) and urllib3 spans stay on.
_DISABLED_INSTRUMENTATIONS = ("fastapi", "django", "flask", "psycopg2")

_configured_for: object | None = None
_exporting = False
_include_content = False

R = TypeVar("R")
T = TypeVar("T")


# ---- configuration -------------------------------------------------------------------------------------------


def parse_authentication_string(text: str | None) -> tuple[bool, str | None]:
    """(use Entra ID, client id) from `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` ('Authorization=AAD;ClientId=...').

    Raises ValueError naming what is wrong; the settings loader adds the variable's name.
    """
    if not text:
        return False, None
    pairs: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"must be key=value pairs separated by ';', got {part.strip()!r}")
        pairs[key.strip().lower()] = value.strip()
    unknown = set(pairs) - {"authorization", "clientid"}
    if unknown:
        raise ValueError(f"has unknown keys {sorted(unknown)}; expected Authorization=AAD and optionally ClientId")
    if pairs.get("authorization") != "AAD":
        raise ValueError("must contain Authorization=AAD (Entra ID is the only supported authentication)")
    return True, pairs.get("clientid")


def include_content() -> bool:
    """Whether prompts and replies may go into telemetry (`TELEMETRY_INCLUDE_CONTENT`)."""
    return _include_content


def configure(settings: Settings) -> None:
    """Apply the telemetry settings; cheap to call on every request (returns at once for the same settings).

    Exporting starts at most once per process; the content switch follows the latest settings.
    """
    global _configured_for, _include_content, _exporting
    if settings is _configured_for:
        return
    _configured_for = settings
    _include_content = settings.telemetry_include_content
    _configure_agent_framework(settings.telemetry_include_content)
    if settings.applicationinsights_connection_string and not _exporting:
        _exporting = _start_azure_monitor(settings)


def _configure_agent_framework(content: bool) -> None:
    from agent_framework.observability import OBSERVABILITY_SETTINGS, enable_instrumentation

    if content:
        enable_instrumentation(enable_sensitive_data=True)
    else:
        OBSERVABILITY_SETTINGS.enable_sensitive_data = False


def _start_azure_monitor(settings: Settings) -> bool:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        logger.info(
            "a tracer provider is already installed (the Functions worker's); Azure Monitor is not set up again"
        )
        return True
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure_azure_monitor(
            connection_string=settings.applicationinsights_connection_string,
            credential=telemetry_credential(settings),
            logger_name="shared",  # our loggers only; the azure SDKs' request logs stay out of the traces table
            instrumentation_options={name: {"enabled": False} for name in _DISABLED_INSTRUMENTATIONS},
        )
    except Exception:  # noqa: BLE001 - telemetry must never take the service down
        logger.exception("Azure Monitor could not be configured; continuing without exporting telemetry")
        return False
    logger.info("exporting traces, metrics and logs to Azure Monitor")
    return True


def telemetry_credential(settings: Settings) -> Any:
    """The managed identity that signs telemetry, or None for instrumentation-key ingestion.

    `Authorization=AAD` in `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` asks for Entra ID; the identity is its
    `ClientId`, else `AZURE_CLIENT_ID` (the app's user-assigned identity). The exporter needs a synchronous
    credential (it exports from its own thread), so this is `azure.identity`, not `azure.identity.aio`.
    """
    aad, client_id = parse_authentication_string(settings.applicationinsights_authentication_string)
    if not aad:
        return None
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=client_id or settings.azure_client_id)


# ---- spans ---------------------------------------------------------------------------------------------------


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
    if _include_content:
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

    def __init__(self, backend: str, model: str, config: BackendSettings | None) -> None:
        self._started = time.perf_counter()
        self._ended = False
        self._attributes: dict[str, str] = {"llmrouter.backend": backend}
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": provider_name(config),
            "gen_ai.provider.name": provider_name(config),
            "gen_ai.request.model": model,
            "llmrouter.backend": backend,
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


# ---- metrics -------------------------------------------------------------------------------------------------


def turn_completed(record: TurnRecord) -> None:
    """Counters of a saved turn: by backend; tokens by direction; a switch when the backend changed."""
    backend = {"llmrouter.backend": record.backend or "none"}
    TURNS.add(1, {**backend, "llmrouter.route.requested": record.route_requested})
    if record.switched_from:
        SWITCHES.add(1, {**backend, "llmrouter.switched_from": record.switched_from})
    TOKENS.add(record.input_tokens, {**backend, "gen_ai.token.type": "input"})
    TOKENS.add(record.output_tokens, {**backend, "gen_ai.token.type": "output"})
    COST.add(record.cost, backend)


def fallback_taken(backend: str, error_kind: str, next_backend: str) -> None:
    FALLBACKS.add(1, {"llmrouter.backend": backend, "error.type": error_kind, "llmrouter.fallback_to": next_backend})
