"""Routing analytics over turn records (one session's or an owner's), aggregated here rather than in SQL."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shared.domain.clock import utc_day
from shared.domain.feedback import Feedback, feedback_summary
from shared.domain.pricing import Price
from shared.domain.records import TurnRecord


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was really observed, stable for small samples."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def analytics(
    records: Sequence[TurnRecord],
    all_cloud: Price | None = None,
    all_cloud_basis: str = "no all-cloud reference price was given",
    *,
    feedback: Iterable[tuple[str | None, Feedback]] = (),
) -> dict[str, Any]:
    """Distribution, switches, fallbacks, latency, tokens and cost by backend, the all-cloud comparison, the
    feedback the turns got (`(answering backend, feedback)` pairs), the shadow router's agreement and the daily
    totals.

    `all_cloud` is the price the same tokens would have cost had every turn gone to the cloud backend; the
    caller picks it (and says why it is None in `all_cloud_basis`), so this stays pure.
    """
    distribution: dict[str, int] = {}
    latencies: dict[str, list[float]] = {}
    tokens: dict[str, dict[str, int]] = {}
    cost: dict[str, float] = {}
    for record in records:
        if record.backend is None:
            continue
        backend = record.backend
        distribution[backend] = distribution.get(backend, 0) + 1
        if record.latency_ms is not None:
            latencies.setdefault(backend, []).append(float(record.latency_ms))
        bucket = tokens.setdefault(backend, {"input": 0, "output": 0})
        bucket["input"] += record.input_tokens
        bucket["output"] += record.output_tokens
        cost[backend] = round(cost.get(backend, 0.0) + record.cost, 8)
    overhead = summary_overhead(records)
    total_cost = round(sum(cost.values()) + sum(bucket["cost"] for bucket in overhead.values()), 8)
    return {
        "total_exchanges": len(records),
        "routing_distribution": distribution,
        "model_switches": sum(1 for record in records if record.switched_from),
        "fallbacks": sum(1 for record in records if record.fallback_chain),
        "latency_ms": {
            backend: {"mean": round(sum(values) / len(values), 3), "p95": round(percentile(values, 0.95), 3)}
            for backend, values in latencies.items()
        },
        "tokens": tokens,
        "cost": cost,
        "total_cost": total_cost,
        **all_cloud_comparison(tokens, total_cost, all_cloud, all_cloud_basis),
        "feedback": feedback_summary(feedback),
        "shadow": shadow_agreement(records),
        "summary": overhead,
        "context": context_fitting(records),
        "daily": daily_totals(records),
    }


_CALL_FIELDS = ("calls", "failed", "input_tokens", "output_tokens", "latency_ms", "cost")


def summary_overhead(records: Sequence[TurnRecord]) -> dict[str, dict[str, float]]:
    """What summarizing older turns cost, by the backend that was asked: calls (failed ones too), tokens, time
    and money. `total_cost` includes it; the turns' own `cost` by backend does not."""
    overhead: dict[str, dict[str, float]] = {}
    for record in records:
        for call in record.summary_calls:
            bucket = overhead.setdefault(str(call.get("backend")), dict.fromkeys(_CALL_FIELDS, 0))
            for key in _CALL_FIELDS:
                bucket[key] = round(bucket[key] + float(call.get(key) or 0), 8)
    return {
        backend: {key: int(value) if key in _CALL_FIELDS[:4] else value for key, value in bucket.items()}
        for backend, bucket in overhead.items()
    }


def context_fitting(records: Sequence[TurnRecord]) -> dict[str, Any]:
    """How the turns' contexts were fitted (full, summary, truncated) and how far the token estimate of what was
    sent was from the input tokens the model reported, by backend (relative error, nearest-rank p50 and p95)."""
    modes: dict[str, int] = {}
    errors: dict[str, list[float]] = {}
    for record in records:
        note = record.extra.get("context")
        if record.backend is None or not isinstance(note, Mapping):
            continue
        modes[str(note.get("mode"))] = modes.get(str(note.get("mode")), 0) + 1
        estimate = note.get("estimated_tokens")
        if isinstance(estimate, int | float) and record.input_tokens > 0:
            errors.setdefault(record.backend, []).append(abs(estimate - record.input_tokens) / record.input_tokens)
    return {
        "modes": modes,
        "estimate_error": {
            backend: {
                "turns": len(values),
                "p50": round(percentile(values, 0.5), 4),
                "p95": round(percentile(values, 0.95), 4),
            }
            for backend, values in errors.items()
        },
    }


def daily_totals(records: Sequence[TurnRecord]) -> list[dict[str, Any]]:
    """Turns by backend and cost per UTC day of `completed_at`, oldest first; days without turns are left out.

    `turns_total` also counts turns without a backend (imported ones), which `turns` leaves out, as
    `routing_distribution` does.
    """
    days: dict[str, dict[str, Any]] = {}
    for record in records:
        day = utc_day(record.completed_at)
        bucket = days.setdefault(day, {"day": day, "turns": {}, "cost": 0.0, "turns_total": 0})
        bucket["turns_total"] += 1
        if record.backend is not None:
            bucket["turns"][record.backend] = bucket["turns"].get(record.backend, 0) + 1
        bucket["cost"] = round(bucket["cost"] + record.cost + record.summary_cost, 8)  # all the day's spend
    return [days[day] for day in sorted(days)]


def shadow_agreement(records: Sequence[TurnRecord]) -> dict[str, Any] | None:
    """How often the shadow router (ROUTER_SHADOW) chose what the live router chose, over the turns it saw.

    Each such turn's record holds `extra.shadow`: the shadow's version and backend, and the live router's own
    choice (`primary`, before any fallback). Turns with an explicit route count too: both routers chose "auto".
    """
    shadows = [record.extra["shadow"] for record in records if isinstance(record.extra.get("shadow"), Mapping)]
    if not shadows:
        return None
    versions = sorted({str(shadow.get("router_version")) for shadow in shadows})
    agreed = sum(1 for shadow in shadows if shadow.get("backend") == shadow.get("primary"))
    return {"router_version": ", ".join(versions), "turns": len(shadows), "agreement": round(agreed / len(shadows), 4)}


def all_cloud_comparison(
    tokens: Mapping[str, Mapping[str, int]], total_cost: float, price: Price | None, basis: str
) -> dict[str, Any]:
    """What the same tokens would have cost on the cloud backend, and how much routing saved (negative: lost)."""
    if price is None:
        return {"all_cloud_cost": None, "saved_vs_all_cloud": None, "all_cloud_basis": basis}
    input_tokens = sum(bucket["input"] for bucket in tokens.values())
    output_tokens = sum(bucket["output"] for bucket in tokens.values())
    all_cloud_cost = price.cost(input_tokens, output_tokens)
    return {
        "all_cloud_cost": all_cloud_cost,
        "saved_vs_all_cloud": round(all_cloud_cost - total_cost, 8),
        "all_cloud_basis": basis,
    }
