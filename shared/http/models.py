"""The HTTP shapes: pydantic models that validate requests, serialize responses and generate the OpenAPI
document. One model per documented shape; handlers build responses from these, never by hand.

Every shape derives from `Shape`, whose validator and serializer pydantic builds on the shape's first use, not
when the class is defined: a worker then pays at import only for defining the classes, and on a request only
for the shapes of its route (a chat turn builds four of them); the OpenAPI document builds them all."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from shared.domain.backends import ROUTES
from shared.domain.ids import ID_PATTERN
from shared.services.import_plan import FORMATS

RouteName = Literal["auto", "local", "cloud", "foundry", "apim"]
assert set(RouteName.__args__) == set(ROUTES)  # type: ignore[attr-defined]  # the model and the router agree


class Shape(BaseModel):
    model_config = ConfigDict(defer_build=True)  # built on first use (module docstring)


class _Strict(Shape):
    model_config = ConfigDict(extra="forbid", strict=True)


class ChatRequest(_Strict):
    message: str = Field(description="The user's message.", min_length=1)
    session_id: str | None = Field(
        None, description="Continue this session; omit to start a new one.", pattern=ID_PATTERN.pattern
    )
    route: RouteName = Field("auto", description="Force a backend, or let the router decide.")
    stream: bool = Field(False, description="Answer as Server-Sent Events (same as Accept: text/event-stream).")


class ResumeRequest(_Strict):
    message: str | None = Field(
        None, description="Optionally continue the conversation with this message.", min_length=1
    )
    route: RouteName = Field("auto", description="Force a backend for the continuing message.")


class RouteInfo(Shape):
    backend: str
    model: str
    complexity: float | None
    reason: str
    switched_from: str | None
    fallback_from: str | None
    router_version: str | None = None
    fallback_chain: list[dict[str, Any]] = Field(default_factory=list)


class Usage(Shape):
    input_tokens: int
    output_tokens: int


class ChatResponse(Shape):
    session_id: str
    turn: int
    reply: str
    route: RouteInfo
    usage: Usage
    latency_ms: float
    cost: float
    created: bool = Field(description="True when this turn started a new session.")


def _no_additional_properties_key(schema: dict[str, Any]) -> None:
    # Extra fields are kept when serializing (tool_calls, tool_call_id of an imported tool exchange); JSON
    # Schema allows additional properties when the key is absent, so pydantic's explicit `true` is dropped.
    schema.pop("additionalProperties", None)


class OpenAIMessage(Shape):
    model_config = ConfigDict(extra="allow", json_schema_extra=_no_additional_properties_key)

    role: str
    content: str


class Summary(Shape):
    session_id: str
    created_at: str
    last_active: str
    turns: int
    backends: dict[str, int]
    switches: int
    fallbacks: int
    input_tokens: int
    output_tokens: int
    cost: float


class SessionResponse(Shape):
    session_id: str
    messages: list[OpenAIMessage]
    turns: list[dict[str, Any]]
    summary: Summary
    lineage: dict[str, Any] | None = Field(
        None, description="Where the session came from: a fork's source session and turn, or an import's format."
    )


class ResumeResponse(SessionResponse):
    turn: int | None = None
    reply: str | None = None
    route: RouteInfo | None = None
    usage: Usage | None = None
    latency_ms: float | None = None
    cost: float | None = None


class SessionList(Shape):
    sessions: list[Summary]
    continuation: str | None = Field(description="Pass as `continuation` for the next page; null on the last.")


class LatencyStats(Shape):
    mean: float
    p95: float


class TokenStats(Shape):
    input: int
    output: int


class DailyStats(Shape):
    day: str = Field(description="UTC day, YYYY-MM-DD.")
    turns: dict[str, int] = Field(description="Turns by backend (imported turns have none).")
    cost: float
    turns_total: int = Field(description="Every turn of the day, imported ones included.")


class Period(Shape):
    model_config = ConfigDict(populate_by_name=True)

    start: str | None = Field(alias="from", description="First UTC day included, or null.")
    end: str | None = Field(alias="to", description="Last UTC day included, or null.")


class Analytics(Shape):
    session_id: str | None = None
    total_exchanges: int
    routing_distribution: dict[str, int]
    model_switches: int
    fallbacks: int
    latency_ms: dict[str, LatencyStats]
    tokens: dict[str, TokenStats]
    cost: dict[str, float] = Field(description="The turns' own cost by the backend that answered.")
    total_cost: float = Field(description="Every turn's cost plus the summary calls' (`summary`).")
    all_cloud_cost: float | None = Field(
        None, description="What the same tokens would have cost on the cloud backend; null when there is no price."
    )
    saved_vs_all_cloud: float | None = Field(
        None, description="all_cloud_cost - total_cost (negative: routing cost more)."
    )
    all_cloud_basis: str | None = Field(None, description="The price used for all_cloud_cost, or why it is null.")
    feedback: FeedbackSummary = Field(description="Thumbs up and down the turns got.")
    shadow: ShadowAgreement | None = Field(None, description="Agreement with the shadow router; null without one.")
    summary: dict[str, SummaryOverhead] = Field(
        default_factory=dict,
        description="Overhead of summarizing older turns for small context windows, by the backend that wrote them.",
    )
    context: ContextFitting = Field(description="How the turns' contexts were fitted to the routed backend's window.")
    daily: list[DailyStats] = Field(
        description="Per UTC day of completed_at, oldest first; days without turns left out."
    )
    period: Period | None = Field(None, description="The UTC days asked for (GET /analytics only; null: open).")
    sessions: int | None = Field(None, description="Sessions with a turn in the period (GET /analytics only).")
    prices: dict[str, PriceInfo] = Field(
        default_factory=dict, description="The price each configured backend is charged at now, and its source."
    )


class PriceInfo(Shape):
    model: str
    input: float | None = Field(description="USD per million input tokens; null when there is no price.")
    output: float | None = Field(description="USD per million output tokens; null when there is no price.")
    source: Literal["configured", "built-in", "local", "unknown"] = Field(
        description="PRICE_TABLE, the built-in table, the local backend (free unless configured), or no price."
    )
    as_of: str | None = Field(description="Date of the built-in price; null for other sources.")
    basis: str = Field(description="Where the price comes from, in words.")


class SummaryOverhead(Shape):
    calls: int = Field(description="Summary calls made, failed ones included.")
    failed: int
    input_tokens: int
    output_tokens: int
    latency_ms: float = Field(description="Time the turns spent waiting for summaries, in total.")
    cost: float


class EstimateError(Shape):
    turns: int
    p50: float = Field(description="Median of |estimated - reported| / reported input tokens.")
    p95: float


class ContextFitting(Shape):
    modes: dict[str, int] = Field(
        description="Turns by how their history was sent: full, summary (older turns summarized) or truncated."
    )
    estimate_error: dict[str, EstimateError] = Field(
        description="Error of the token estimate of what was sent, against the model's own count, by backend."
    )


class FeedbackCounts(Shape):
    up: int
    down: int


class FeedbackSummary(FeedbackCounts):
    by_backend: dict[str, FeedbackCounts] = Field(description="Ratings by the backend that answered the rated turn.")


class ShadowAgreement(Shape):
    router_version: str = Field(description="The shadow router (ROUTER_SHADOW) whose choices were recorded.")
    turns: int
    agreement: float = Field(description="Share of those turns where it chose what the live router chose.")


class Health(Shape):
    status: Literal["ok", "degraded"]
    storage: str
    cosmos: str
    backends: dict[str, BackendHealth]


class BackendHealth(Shape):
    model: str
    state: Literal["ok", "cooling_down", "trial"] = Field(
        "ok",
        description="In this instance: ok; cooling_down (skipped after failures or a 429's Retry-After); trial "
        "(the cooldown is over and the next call decides).",
    )
    cooldown_seconds_left: float | None = Field(None, description="While cooling_down.")
    consecutive_failures: int = 0


class UsageTotals(Shape):
    cost: float = Field(description="USD: the summed cost of the turns.")
    turns: int = Field(description="Turns that ran (imported and forked copies do not count).")
    tokens: int = Field(description="Input and output tokens.")


class BudgetStatus(Shape):
    daily: float | None = Field(description="USD per UTC day; null: no limit.")
    monthly: float | None = Field(description="USD per UTC month; null: no limit.")
    remaining_daily: float | None
    remaining_monthly: float | None


class UsageReport(Shape):
    day: UsageTotals = Field(description="Today so far (UTC).")
    month: UsageTotals = Field(description="This calendar month so far (UTC).")
    budget: BudgetStatus


class FeedbackRequest(_Strict):
    rating: Literal["up", "down"] = Field(description="Was the answer good?")
    preferred_backend: Literal["local", "cloud", "foundry", "apim"] | None = Field(
        None, description="The backend that should have answered, if not the one that did."
    )
    comment: str | None = Field(None, max_length=2000, description="Why (masked like a message with PII_REDACTION).")


class FeedbackResponse(Shape):
    session_id: str
    turn: int
    rating: Literal["up", "down"]
    preferred_backend: str | None
    comment: str | None
    at: str


class ErasureReceipt(Shape):
    user_id: str = Field(description="The principal id whose data was erased.")
    sessions_deleted: int
    records_deleted: int = Field(description="Cosmos DB documents removed (turn records, summaries, audit events).")
    completed_at: str


class AuditEventInfo(Shape):
    id: str
    session_id: str
    action: str
    outcome: str
    at: str
    actor: str = Field(description="Owner key of who acted, or system:retention.")
    admin: bool
    details: dict[str, int]


class AuditTrail(Shape):
    session_id: str
    events: list[AuditEventInfo]


class ReconcileRequest(_Strict):
    owner: str | None = Field(
        None, description="Only this user's sessions (principal id).", min_length=1, max_length=256
    )
    session_id: str | None = Field(None, description="Only this session.", pattern=ID_PATTERN.pattern)


class ReconcileReport(Shape):
    sessions_checked: int
    turns_repaired: int
    summaries_repaired: int
    orphans_removed: int
    failed: int


class ErrorBody(Shape):
    code: str
    message: str
    field: str | None = None
    correlation_id: str | None = None
    budget: BudgetInfo | None = Field(
        default=None, description="With budget_exceeded: the period, its limit and the spend."
    )


class BudgetInfo(Shape):
    period: Literal["daily", "monthly"]
    limit: float = Field(description="USD.")
    spent: float = Field(description="USD spent in the period.")
    resets_in: int = Field(description="Seconds until the period resets (also the Retry-After header).")


class ErrorResponse(Shape):
    error: ErrorBody


ImportFormat = Literal["openai", "agent_session", "agent_thread_legacy", "export"]
assert set(ImportFormat.__args__) == set(FORMATS)  # type: ignore[attr-defined]


class ImportRequest(_Strict):
    format: ImportFormat = Field(
        description="openai: a list of chat messages; agent_session: an AgentSession.to_dict() payload; "
        "agent_thread_legacy: a pre-1.0 AgentThread serialization; export: a document from GET .../export."
    )
    data: Any = Field(description="The conversation, in the given format.")
    session_id: str | None = Field(
        None, description="Id of the new session; omit to get a generated one.", pattern=ID_PATTERN.pattern
    )


def _integral(value: Any) -> Any:
    """JSON has one number type and JSON Schema's `integer` includes 3.0: take a whole float as the int it is."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class ForkRequest(_Strict):
    at_turn: Annotated[int, BeforeValidator(_integral)] = Field(
        description="The last turn the new session keeps (1 to the session's turns).", ge=1
    )


class ExportEnvelope(Shape):
    session_id: str
    created_at: str
    updated_at: str
    agent_framework_version: str
    lineage: dict[str, Any] | None
    turns: int


class ExportDocument(Shape):
    schema_name: Literal["hybrid-llm-router.export"] = Field(alias="schema")
    schema_version: int
    exported_at: str
    session: ExportEnvelope
    messages: list[OpenAIMessage]
    agent_session: dict[str, Any] = Field(description="The AgentSession.to_dict() payload of the whole session.")
    turns: list[dict[str, Any]] = Field(description="Every turn record, each with its message_count.")
