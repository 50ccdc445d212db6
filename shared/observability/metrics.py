"""Metrics: turns, switches and fallbacks (counters), model latency (histogram), tokens and cost (counters), all
by backend. No-op until a meter provider is installed (see `setup.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import metrics

if TYPE_CHECKING:
    from shared.domain.records import TurnRecord

meter = metrics.get_meter("shared.telemetry")

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
