"""Telemetry: spans and metrics of a turn over the live HTTP server, no message text anywhere, Azure Monitor lazy.

The OpenTelemetry SDK is installed in this process once (global providers can be set only once) with an
in-memory span exporter and an in-memory metric reader; the live server runs in a thread of this process, so
what its handlers emit lands there. Nothing here mocks our code or the SDKs.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_framework.observability import OBSERVABILITY_SETTINGS
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from shared.config import Settings, SettingsError
from shared.observability import setup as telemetry
from tests.fixtures_app import LiveServer
from tools.fake_model import Behaviour, FakeModelServer

ROOT = Path(__file__).resolve().parent.parent
PROMPT_MARKER = "QZXPROMPTMARKER7731"
REPLY_MARKER = "QZXREPLYMARKER4409"
HARD = (
    "Design a distributed rate limiter for a multi-region API. Compare token bucket and sliding window "
    "approaches, analyze the trade-offs in consistency and latency, and explain step by step how to handle clock skew."
)
CONTENT_LOGGERS = ("", "shared", "openai", "httpx", "httpcore", "azure", "agent_framework", "uvicorn", "opentelemetry")
MINIMAL = {"STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true", "COSMOS_ENDPOINT": "https://127.0.0.1:8081/"}

_SPANS = InMemorySpanExporter()
_METRICS = InMemoryMetricReader()


@pytest.fixture(scope="module")
def otel() -> Iterator[None]:
    """The OpenTelemetry SDK with in-memory export, installed in this process for this module's tests."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.add_span_processor(SimpleSpanProcessor(_SPANS))
    else:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_SPANS))
        trace.set_tracer_provider(provider)
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(MeterProvider(metric_readers=[_METRICS]))
    yield
    _SPANS.shutdown()  # later modules' spans are not kept in memory


@pytest.fixture
def spans(otel: None) -> Iterator[InMemorySpanExporter]:
    _SPANS.clear()
    yield _SPANS
    _SPANS.clear()


def metric_points(name: str) -> dict[frozenset[tuple[str, Any]], float]:
    """Current value of a counter (sum) or histogram (count) per attribute set."""
    points: dict[frozenset[tuple[str, Any]], float] = {}
    data = _METRICS.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    points[frozenset(point.attributes.items())] = value if value is not None else point.count
    return points


def delta(before: dict[frozenset[tuple[str, Any]], float], after: dict[frozenset[tuple[str, Any]], float]) -> dict:
    return {
        dict(key).get("llmrouter.backend", "") + "|" + json.dumps(dict(key), sort_keys=True): after[key]
        - before.get(key, 0)
        for key in after
        if after[key] != before.get(key, 0)
    }


def by_name(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    """Our spans of that name (Agent Framework names its own model-call span the same way)."""
    return [
        span
        for span in finished
        if span.name == name
        and span.instrumentation_scope is not None
        and span.instrumentation_scope.name == "shared.telemetry"
    ]


def children(finished: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    return [span for span in finished if span.parent is not None and span.parent.span_id == parent.context.span_id]


def span_text(span: ReadableSpan) -> str:
    parts = [span.name, json.dumps(dict(span.attributes or {}), default=str)]
    parts += [event.name + json.dumps(dict(event.attributes or {}), default=str) for event in span.events]
    return "\n".join(parts)


def capture_every_logger(caplog: pytest.LogCaptureFixture) -> None:
    for name in CONTENT_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)


def chat_over_http(server: LiveServer, models: dict[str, FakeModelServer]) -> list[str]:
    """One JSON turn and one streamed turn carrying the markers; returns every response body."""
    bodies = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        models["local"].script(Behaviour.text(f"Sure thing {REPLY_MARKER} done"))
        first = client.post("/chat", json={"message": f"hello {PROMPT_MARKER} there"})
        assert first.status_code == 200, first.text
        bodies.append(first.text)
        models["cloud"].script(Behaviour.text(f"Long answer {REPLY_MARKER} here"))
        second = client.post(
            "/chat",
            json={"message": f"{HARD} {PROMPT_MARKER}", "session_id": first.json()["session_id"], "stream": True},
        )
        assert second.status_code == 200 and "event: done" in second.text, second.text
        bodies.append(second.text)
    return bodies


def test_no_prompt_or_reply_text_reaches_logs_spans_or_metrics(
    live_server: Callable[..., LiveServer],
    models: dict[str, FakeModelServer],
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    capture_every_logger(caplog)
    # As if ENABLE_SENSITIVE_DATA=true were set for Agent Framework: our setting must switch it off again.
    OBSERVABILITY_SETTINGS.enable_sensitive_data = True
    bodies = chat_over_http(live_server(), models)

    assert all(REPLY_MARKER in body for body in bodies)  # the client does get the text
    assert not OBSERVABILITY_SETTINGS.enable_sensitive_data
    leaked_logs = [
        (record.name, record.levelname)
        for record in caplog.records
        if PROMPT_MARKER in record.getMessage() or REPLY_MARKER in record.getMessage()
    ]
    assert not leaked_logs
    assert len(caplog.records) > 10  # DEBUG from the SDKs was really captured
    finished = spans.get_finished_spans()
    assert any(span.name.startswith("invoke_agent") or span.name.startswith("chat") for span in finished)
    leaked_spans = [
        span.name for span in finished if PROMPT_MARKER in span_text(span) or REPLY_MARKER in span_text(span)
    ]
    assert not leaked_spans
    data = _METRICS.get_metrics_data()
    assert data is not None and PROMPT_MARKER not in data.to_json() and REPLY_MARKER not in data.to_json()


def test_content_reaches_spans_only_when_telemetry_include_content_is_on(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer], spans: InMemorySpanExporter
) -> None:
    try:
        chat_over_http(live_server(TELEMETRY_INCLUDE_CONTENT="true"), models)
        assert OBSERVABILITY_SETTINGS.enable_sensitive_data
        texts = [span_text(span) for span in spans.get_finished_spans()]
        assert any(PROMPT_MARKER in text for text in texts) and any(REPLY_MARKER in text for text in texts)
    finally:
        OBSERVABILITY_SETTINGS.enable_sensitive_data = False
        telemetry.configure(Settings.from_env(MINIMAL))


def test_a_turn_is_traced_under_its_request_with_genai_model_call_spans(
    api: httpx.Client, models: dict[str, FakeModelServer], spans: InMemorySpanExporter
) -> None:
    first = api.post("/chat", json={"message": "hi there"}).json()
    spans.clear()
    second = api.post("/chat", json={"message": HARD, "session_id": first["session_id"]}).json()
    finished = spans.get_finished_spans()

    [request] = by_name(finished, "POST chat")
    assert request.parent is None and request.kind is SpanKind.SERVER
    assert request.attributes["http.response.status_code"] == 200
    direct = {span.name for span in children(finished, request)}
    assert {"llmrouter.snapshot.load", "llmrouter.route", "chat gpt-4o-mini"} <= direct
    assert {"llmrouter.snapshot.save", "llmrouter.metadata.write"} <= direct
    assert all(span.context.trace_id == request.context.trace_id for span in finished)

    [route] = by_name(finished, "llmrouter.route")
    assert route.attributes["llmrouter.route.backend"] == "cloud"
    assert route.attributes["llmrouter.route.complexity"] == second["route"]["complexity"]
    assert "llmrouter.route.reason" not in route.attributes

    [model_call] = by_name(finished, "chat gpt-4o-mini")
    assert model_call.kind is SpanKind.CLIENT
    assert model_call.attributes["gen_ai.operation.name"] == "chat"
    assert model_call.attributes["gen_ai.system"] == model_call.attributes["gen_ai.provider.name"] == "openai"
    assert model_call.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert model_call.attributes["gen_ai.usage.input_tokens"] == second["usage"]["input_tokens"]
    assert model_call.attributes["gen_ai.usage.output_tokens"] == second["usage"]["output_tokens"]
    assert model_call.attributes["server.address"] == "127.0.0.1"
    # Agent Framework's own spans of the call (invoke_agent, then its chat span) nest under ours.
    [agent_span] = children(finished, model_call)
    assert agent_span.name == "invoke_agent router-cloud" and agent_span.instrumentation_scope.name == "agent_framework"
    assert [span.name for span in children(finished, agent_span)] == ["chat gpt-4o-mini"]


def test_a_streamed_turn_is_traced_until_its_last_event_without_context_errors(
    api: httpx.Client, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="opentelemetry")
    with api.stream("POST", "/chat", json={"message": "tell me a joke", "stream": True}) as response:
        body = "".join(response.iter_text())
    assert "event: done" in body
    finished = spans.get_finished_spans()
    [request] = by_name(finished, "POST chat")
    [save] = by_name(finished, "llmrouter.snapshot.save")
    [model_call] = by_name(finished, "chat llama3.2")
    assert save.parent is not None and save.parent.span_id == request.context.span_id
    assert model_call.parent is not None and model_call.parent.span_id == request.context.span_id
    assert request.end_time is not None and save.end_time is not None and request.end_time >= save.end_time
    assert not [record for record in caplog.records if record.name.startswith("opentelemetry")]


def test_a_fallback_shows_as_a_failed_model_span_and_in_the_metrics(
    api: httpx.Client, models: dict[str, FakeModelServer], spans: InMemorySpanExporter
) -> None:
    fallbacks, latency = metric_points("llmrouter.fallbacks"), metric_points("llmrouter.model.latency")
    models["cloud"].script(Behaviour.error(503))
    answer = api.post("/chat", json={"message": HARD}).json()
    assert answer["route"]["backend"] == "local" and answer["route"]["fallback_from"] == "cloud"

    finished = spans.get_finished_spans()
    [failed] = by_name(finished, "chat gpt-4o-mini")
    [answered] = by_name(finished, "chat llama3.2")
    assert failed.status.status_code is StatusCode.ERROR and failed.attributes["error.type"] == "server"
    assert answered.status.status_code is not StatusCode.ERROR
    assert list(delta(fallbacks, metric_points("llmrouter.fallbacks")).values()) == [1]
    assert [key.split("|")[0] for key in delta(fallbacks, metric_points("llmrouter.fallbacks"))] == ["cloud"]
    new_latency = delta(latency, metric_points("llmrouter.model.latency"))
    assert sorted(json.loads(key.split("|", 1)[1]).get("error.type", "ok") for key in new_latency) == ["ok", "server"]


def test_metrics_count_turns_switches_tokens_and_cost_by_backend(
    live_server: Callable[..., LiveServer], spans: InMemorySpanExporter
) -> None:
    names = ("llmrouter.turns", "llmrouter.switches", "llmrouter.tokens", "llmrouter.cost")
    before = {name: metric_points(name) for name in names}
    server = live_server(PRICE_TABLE=json.dumps({"cloud": {"input": 10000, "output": 20000}}))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        first = client.post("/chat", json={"message": "hi"}).json()
        second = client.post("/chat", json={"message": HARD, "session_id": first["session_id"]}).json()
    grown = {name: delta(before[name], metric_points(name)) for name in names}

    turns = {key.split("|")[0]: value for key, value in grown["llmrouter.turns"].items()}
    assert turns == {"local": 1, "cloud": 1}
    assert [json.loads(key.split("|", 1)[1]) for key in grown["llmrouter.switches"]] == [
        {"llmrouter.backend": "cloud", "llmrouter.switched_from": "local"}
    ]
    tokens = {
        (key.split("|")[0], json.loads(key.split("|", 1)[1])["gen_ai.token.type"]): value
        for key, value in grown["llmrouter.tokens"].items()
    }
    assert tokens == {
        ("local", "input"): first["usage"]["input_tokens"],
        ("local", "output"): first["usage"]["output_tokens"],
        ("cloud", "input"): second["usage"]["input_tokens"],
        ("cloud", "output"): second["usage"]["output_tokens"],
    }
    cost = {key.split("|")[0]: value for key, value in grown["llmrouter.cost"].items()}
    assert cost == {"cloud": pytest.approx(second["cost"])} and second["cost"] > 0


def test_settings_refuse_a_malformed_authentication_string() -> None:
    for bad in ("Authorization=Key", "ClientId=abc", "Authorization", "Authorization=AAD;Secret=x"):
        with pytest.raises(SettingsError, match="APPLICATIONINSIGHTS_AUTHENTICATION_STRING"):
            Settings.from_env({**MINIMAL, "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": bad})


def test_telemetry_is_signed_with_the_managed_identity_the_authentication_string_names() -> None:
    from azure.identity import ManagedIdentityCredential

    plain = Settings.from_env(MINIMAL)
    assert telemetry.telemetry_credential(plain) is None
    for auth in ("Authorization=AAD;ClientId=11111111-2222-3333-4444-555555555555", "Authorization=AAD"):
        settings = Settings.from_env(
            {**MINIMAL, "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": auth, "AZURE_CLIENT_ID": "client-of-the-app"}
        )
        assert isinstance(telemetry.telemetry_credential(settings), ManagedIdentityCredential)
    assert telemetry.parse_authentication_string("Authorization=AAD;ClientId=abc") == (True, "abc")
    assert telemetry.parse_authentication_string("authorization=AAD;") == (True, None)


PROBE = """
import json, os, sys
from opentelemetry import trace
import function_app
from shared.observability import setup as telemetry
from shared.config import Settings

def state():
    with trace.get_tracer("probe").start_as_current_span("probe") as span:
        recording = span.is_recording()
    return {
        "azure_monitor_imported": "azure.monitor.opentelemetry" in sys.modules,
        "sdk_imported": "opentelemetry.sdk.trace" in sys.modules,
        "provider": type(trace.get_tracer_provider()).__name__,
        "recording": recording,
    }

telemetry.configure(Settings.from_env())
without = state()
os.environ["APPLICATIONINSIGHTS_CONNECTION_STRING"] = os.environ.pop("PROBE_CONNECTION_STRING")
telemetry.configure(Settings.from_env())
print(json.dumps({"without": without, "with": state()}), flush=True)
os._exit(0)  # skip the exporters' flush at exit: there is nobody listening at the ingestion endpoint
"""


def test_azure_monitor_is_imported_and_exporting_only_once_a_connection_string_is_set(tmp_path: Path) -> None:
    base = {key: value for key, value in os.environ.items() if not key.startswith(("APPLICATIONINSIGHTS_", "OTEL_"))}
    environ = {
        **base,
        **MINIMAL,
        "PROBE_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
        "IngestionEndpoint=http://127.0.0.1:9/;LiveEndpoint=http://127.0.0.1:9/",
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",  # no call home from a test
        "OTEL_TRACES_SAMPLER": "always_on",  # the distro's default rate limiter may drop the probe's one span
        "TMPDIR": str(tmp_path),  # where the exporter keeps what it could not send
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", PROBE], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120, check=True
    )
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["without"] == {
        "azure_monitor_imported": False,
        "sdk_imported": False,
        "provider": "ProxyTracerProvider",
        "recording": False,
    }
    assert probe["with"] == {
        "azure_monitor_imported": True,
        "sdk_imported": True,
        "provider": "TracerProvider",
        "recording": True,
    }
