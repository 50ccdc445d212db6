"""Every setting the service reads, in one frozen object built once from the environment.

`SETTINGS_SPEC` is the single list of names: the README table, `local.settings.sample.json` and the
Bicep app settings are checked against it by the tests, so a name cannot drift between them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

from shared.redaction import ExtraPattern, parse_extra_patterns
from shared.routing import BACKENDS, RouterConfig
from shared.telemetry import parse_authentication_string

Where = Literal["bicep", "optional", "local"]


class SettingsError(ValueError):
    """A required setting is missing or a setting has a malformed value; the message names it."""


@dataclass(frozen=True)
class SettingSpec:
    name: str
    default: str | None
    description: str
    # "bicep": the deployment must set it; "optional": the deployment may set it;
    # "local": only for local runs against the emulators, never in Azure (keys, connection strings).
    azure: Where


def _backend_specs() -> list[SettingSpec]:
    specs: list[SettingSpec] = []
    labels = {
        "local": "local OpenAI-compatible model (Ollama, Foundry Local, vLLM)",
        "cloud": "cloud model (Azure OpenAI or OpenAI)",
        "foundry": "Microsoft Foundry model",
        "apim": "API Management gateway in front of a model",
    }
    for backend in BACKENDS:
        prefix = f"{backend.upper()}_MODEL_"
        specs += [
            SettingSpec(
                prefix + "ENDPOINT", None, f"Base URL of the {labels[backend]}; the backend is on when set.", "optional"
            ),
            SettingSpec(
                prefix + "NAME", None, f"Model (or Azure deployment) name of the {backend} backend.", "optional"
            ),
            SettingSpec(
                prefix + "API_KEY",
                None,
                f"API key of the {backend} backend. Azure endpoints without a key use Entra ID"
                + ("; APIM sends it as Ocp-Apim-Subscription-Key." if backend == "apim" else "."),
                "local",
            ),
        ]
    return specs


SETTINGS_SPEC: tuple[SettingSpec, ...] = (
    *_backend_specs(),
    SettingSpec(
        "AZURE_OPENAI_API_VERSION", "2024-10-21", "api-version sent to Azure OpenAI style endpoints.", "optional"
    ),
    SettingSpec("AZURE_CLIENT_ID", None, "Client id of the app's user-assigned managed identity (Azure).", "bicep"),
    SettingSpec(
        "STORAGE_BLOB_ENDPOINT",
        None,
        "Blob service URL for snapshots, authenticated by identity. One of this or the connection string.",
        "bicep",
    ),
    SettingSpec("STORAGE_CONNECTION_STRING", None, "Blob connection string for Azurite (local only).", "local"),
    SettingSpec("SNAPSHOT_CONTAINER", "conversations", "Blob container holding conversation snapshots.", "bicep"),
    SettingSpec("COSMOS_ENDPOINT", None, "Cosmos DB account endpoint (required).", "bicep"),
    SettingSpec("COSMOS_KEY", None, "Cosmos DB key for the local emulator only; Azure uses identity.", "local"),
    SettingSpec("COSMOS_DATABASE", "llmrouter", "Cosmos DB database.", "bicep"),
    SettingSpec("COSMOS_TURNS_CONTAINER", "turns", "Turn records, partition key /sessionId.", "bicep"),
    SettingSpec("COSMOS_SESSIONS_CONTAINER", "sessions", "Session summaries, partition key /userId.", "bicep"),
    SettingSpec("COSMOS_AUDIT_CONTAINER", "audit", "Audit events, partition key /sessionId.", "bicep"),
    SettingSpec(
        "COSMOS_CREATE_RESOURCES",
        None,
        "Create the database and containers when missing (default: true with COSMOS_KEY, else false; "
        "in Azure they come from Bicep).",
        "local",
    ),
    SettingSpec("ROUTER_LOCAL_THRESHOLD", "0.45", "Complexity below this goes to the local backend.", "optional"),
    SettingSpec("ROUTER_STRONG_ORDER", "cloud,foundry,apim", "Preference among the strong backends.", "optional"),
    SettingSpec(
        "ROUTER_FALLBACK_ORDER",
        "cloud,foundry,apim,local",
        "Order in which other backends are tried when the chosen one fails.",
        "optional",
    ),
    SettingSpec(
        "CONTEXT_MAX_MESSAGES", "50", "Most history messages sent to a model (history is never cut).", "optional"
    ),
    SettingSpec("CONTEXT_MAX_CHARS", "60000", "Most history characters sent to a model.", "optional"),
    SettingSpec("MESSAGE_MAX_CHARS", "32000", "Longest accepted user message.", "optional"),
    SettingSpec("REQUEST_MAX_BYTES", "262144", "Largest accepted request body.", "optional"),
    SettingSpec(
        "IMPORT_MAX_BYTES", "4194304", "Largest accepted body of POST /sessions/import (413 above).", "optional"
    ),
    SettingSpec("IMPORT_MAX_MESSAGES", "1000", "Most messages one import may hold (422 above).", "optional"),
    SettingSpec("MODEL_TIMEOUT_SECONDS", "60", "Timeout of one model call.", "optional"),
    SettingSpec(
        "MODEL_MAX_RETRIES",
        "0",
        "Retries of one backend before falling back to the next (the fallback is the retry).",
        "optional",
    ),
    SettingSpec("MODEL_MAX_OUTPUT_TOKENS", None, "Cap on the tokens a model may generate per turn.", "optional"),
    SettingSpec("STORAGE_TIMEOUT_SECONDS", "10", "Timeout of one Blob or Cosmos request.", "optional"),
    SettingSpec("STORAGE_MAX_RETRIES", "3", "Retries of one Blob or Cosmos request.", "optional"),
    SettingSpec(
        "PRICE_TABLE",
        "{}",
        'USD per million tokens: {"cloud": {"input": 0.15, "output": 0.6}, "cloud:gpt-4o": {...}}.',
        "optional",
    ),
    SettingSpec(
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        None,
        "Application Insights to export traces, metrics and logs to (azure-monitor-opentelemetry, imported only "
        "when set); unset, nothing is exported.",
        "bicep",
    ),
    SettingSpec(
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        None,
        "'Authorization=AAD;ClientId=<id>': sign telemetry with that managed identity (AZURE_CLIENT_ID without "
        "ClientId).",
        "bicep",
    ),
    SettingSpec(
        "TELEMETRY_INCLUDE_CONTENT",
        "false",
        "Put prompts and replies into spans (also Agent Framework's sensitive data); never in production.",
        "optional",
    ),
    SettingSpec(
        "PII_REDACTION",
        "false",
        "Mask e-mails, phones, cards, IBANs, IPs and PII_EXTRA_PATTERNS before anything is stored.",
        "optional",
    ),
    SettingSpec(
        "PII_REDACT_BEFORE_MODEL",
        "false",
        "Also mask what non-local backends are sent (the local backend sees the original); needs PII_REDACTION.",
        "optional",
    ),
    SettingSpec(
        "PII_EXTRA_PATTERNS",
        "[]",
        'More kinds to mask, JSON: [{"name": "EMPLOYEE_ID", "pattern": "EMP-\\\\d{6}"}] masks as [EMPLOYEE_ID].',
        "optional",
    ),
    SettingSpec(
        "SNAPSHOT_COMPACT_EVERY",
        "16",
        "Fewest journal turns before the full snapshot is rewritten (also waits for the journal to reach "
        "half the snapshot's size, so saving stays flat as a conversation grows).",
        "optional",
    ),
    SettingSpec("SYSTEM_PROMPT", None, "Instructions given to every backend's agent.", "optional"),
    SettingSpec("RETENTION_DAYS", "30", "Conversations idle for longer are deleted by the retention timer.", "bicep"),
    SettingSpec("RETENTION_SCHEDULE", "0 0 3 * * *", "NCRONTAB schedule of the retention timer.", "bicep"),
    SettingSpec("RETENTION_DRY_RUN", "false", "Report what retention would delete without deleting.", "optional"),
    SettingSpec(
        "RETENTION_BATCH_SIZE",
        "100",
        "Sessions the retention timer and reconcile handle per batch (and per query of the orphan pass).",
        "optional",
    ),
    SettingSpec(
        "AUDIT_RETENTION_DAYS",
        "365",
        "Days an audit event is kept (per-item ttl; in Azure also the audit container's default TTL).",
        "bicep",
    ),
    SettingSpec(
        "TRUST_PRINCIPAL_HEADERS",
        "false",
        "Take the caller from X-MS-CLIENT-PRINCIPAL-ID; only safe behind App Service Authentication (off by default: "
        "fails closed to the one anonymous owner; `make run` and the sample turn it on locally).",
        "bicep",
    ),
    SettingSpec("ADMIN_ROLE", "admin", "Role claim that grants the admin routes.", "optional"),
)

_SPEC_BY_NAME = {spec.name: spec for spec in SETTINGS_SPEC}
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
AZURE_HOST_SUFFIXES = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
    ".azure-api.net",
    ".models.ai.azure.com",
    ".inference.ai.azure.com",
)


@dataclass(frozen=True)
class BackendSettings:
    name: str
    endpoint: str
    model: str
    api_key: str | None = field(default=None, repr=False)

    @property
    def is_azure(self) -> bool:
        host = (urlparse(self.endpoint).hostname or "").lower()
        return host.endswith(AZURE_HOST_SUFFIXES)


@dataclass(frozen=True)
class Price:
    input_per_million: float
    output_per_million: float


@dataclass(frozen=True)
class Settings:
    backends: Mapping[str, BackendSettings]
    azure_openai_api_version: str
    azure_client_id: str | None
    storage_blob_endpoint: str | None
    storage_connection_string: str | None = field(repr=False)
    snapshot_container: str
    cosmos_endpoint: str
    cosmos_key: str | None = field(repr=False)
    cosmos_database: str
    cosmos_turns_container: str
    cosmos_sessions_container: str
    cosmos_audit_container: str
    cosmos_create_resources: bool
    router: RouterConfig
    context_max_messages: int
    context_max_chars: int
    message_max_chars: int
    request_max_bytes: int
    import_max_bytes: int
    import_max_messages: int
    model_timeout_seconds: float
    model_max_retries: int
    model_max_output_tokens: int | None
    storage_timeout_seconds: float
    storage_max_retries: int
    price_table: Mapping[str, Price]
    applicationinsights_connection_string: str | None = field(repr=False)
    applicationinsights_authentication_string: str | None
    telemetry_include_content: bool
    pii_redaction: bool
    pii_redact_before_model: bool
    pii_extra_patterns: tuple[ExtraPattern, ...]
    snapshot_compact_every: int
    system_prompt: str
    retention_days: int
    retention_schedule: str
    retention_dry_run: bool
    retention_batch_size: int
    audit_retention_days: int
    trust_principal_headers: bool
    admin_role: str

    @property
    def configured_backends(self) -> tuple[str, ...]:
        return tuple(name for name in BACKENDS if name in self.backends)

    def price(self, backend: str, model: str) -> Price | None:
        return self.price_table.get(f"{backend}:{model}") or self.price_table.get(backend)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _Env(os.environ if environ is None else environ)
        backends: dict[str, BackendSettings] = {}
        for backend in BACKENDS:
            prefix = f"{backend.upper()}_MODEL_"
            endpoint = env.text(prefix + "ENDPOINT")
            if not endpoint:
                continue
            env.url(prefix + "ENDPOINT")
            model = env.text(prefix + "NAME")
            if not model:
                raise SettingsError(f"{prefix}NAME is required when {prefix}ENDPOINT is set")
            backends[backend] = BackendSettings(backend, endpoint.rstrip("/"), model, env.text(prefix + "API_KEY"))

        blob_endpoint = env.text("STORAGE_BLOB_ENDPOINT")
        blob_connection = env.text("STORAGE_CONNECTION_STRING")
        if not blob_endpoint and not blob_connection:
            raise SettingsError("STORAGE_BLOB_ENDPOINT (or STORAGE_CONNECTION_STRING for Azurite) is required")
        if blob_endpoint:
            env.url("STORAGE_BLOB_ENDPOINT")
        cosmos_endpoint = env.url("COSMOS_ENDPOINT", required=True)
        cosmos_key = env.text("COSMOS_KEY")
        create = env.text("COSMOS_CREATE_RESOURCES")

        strong = env.backend_list("ROUTER_STRONG_ORDER")
        fallback = env.backend_list("ROUTER_FALLBACK_ORDER")
        threshold = env.number("ROUTER_LOCAL_THRESHOLD", minimum=0.0, maximum=1.0)

        return cls(
            backends=backends,
            azure_openai_api_version=env.text("AZURE_OPENAI_API_VERSION") or "",
            azure_client_id=env.text("AZURE_CLIENT_ID"),
            storage_blob_endpoint=blob_endpoint,
            storage_connection_string=blob_connection,
            snapshot_container=env.container_name("SNAPSHOT_CONTAINER"),
            cosmos_endpoint=cosmos_endpoint,
            cosmos_key=cosmos_key,
            cosmos_database=env.text("COSMOS_DATABASE") or "",
            cosmos_turns_container=env.text("COSMOS_TURNS_CONTAINER") or "",
            cosmos_sessions_container=env.text("COSMOS_SESSIONS_CONTAINER") or "",
            cosmos_audit_container=env.text("COSMOS_AUDIT_CONTAINER") or "",
            cosmos_create_resources=env.flag("COSMOS_CREATE_RESOURCES") if create else cosmos_key is not None,
            router=RouterConfig(local_threshold=threshold, strong_order=strong, fallback_order=fallback),
            context_max_messages=env.integer("CONTEXT_MAX_MESSAGES", minimum=1),
            context_max_chars=env.integer("CONTEXT_MAX_CHARS", minimum=100),
            message_max_chars=env.integer("MESSAGE_MAX_CHARS", minimum=1),
            request_max_bytes=env.integer("REQUEST_MAX_BYTES", minimum=1024),
            import_max_bytes=env.integer("IMPORT_MAX_BYTES", minimum=1024),
            import_max_messages=env.integer("IMPORT_MAX_MESSAGES", minimum=1, maximum=100_000),
            model_timeout_seconds=env.number("MODEL_TIMEOUT_SECONDS", minimum=0.1, maximum=600.0),
            model_max_retries=env.integer("MODEL_MAX_RETRIES", minimum=0, maximum=10),
            model_max_output_tokens=env.integer("MODEL_MAX_OUTPUT_TOKENS", minimum=1)
            if env.text("MODEL_MAX_OUTPUT_TOKENS")
            else None,
            storage_timeout_seconds=env.number("STORAGE_TIMEOUT_SECONDS", minimum=0.1, maximum=300.0),
            storage_max_retries=env.integer("STORAGE_MAX_RETRIES", minimum=0, maximum=10),
            price_table=env.price_table("PRICE_TABLE"),
            applicationinsights_connection_string=env.text("APPLICATIONINSIGHTS_CONNECTION_STRING"),
            applicationinsights_authentication_string=env.checked(
                "APPLICATIONINSIGHTS_AUTHENTICATION_STRING", parse_authentication_string
            ),
            telemetry_include_content=env.flag("TELEMETRY_INCLUDE_CONTENT"),
            pii_redaction=env.flag("PII_REDACTION"),
            pii_redact_before_model=env.pii_redact_before_model(),
            pii_extra_patterns=env.parsed("PII_EXTRA_PATTERNS", parse_extra_patterns),
            snapshot_compact_every=env.integer("SNAPSHOT_COMPACT_EVERY", minimum=1, maximum=10_000),
            system_prompt=env.text("SYSTEM_PROMPT") or DEFAULT_SYSTEM_PROMPT,
            retention_days=env.integer("RETENTION_DAYS", minimum=1, maximum=36_500),
            retention_schedule=env.text("RETENTION_SCHEDULE") or "",
            retention_dry_run=env.flag("RETENTION_DRY_RUN"),
            retention_batch_size=env.integer("RETENTION_BATCH_SIZE", minimum=1, maximum=5_000),
            audit_retention_days=env.integer("AUDIT_RETENTION_DAYS", minimum=1, maximum=36_500),
            trust_principal_headers=env.flag("TRUST_PRINCIPAL_HEADERS"),
            admin_role=env.text("ADMIN_ROLE") or "admin",
        )


DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer accurately and concisely."


class _Env:
    """Typed reads of the environment, each falling back to the spec default and naming the variable on error."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str) -> str | None:
        raw = self._environ.get(name)
        if raw is not None and raw.strip():
            return raw.strip()
        return _SPEC_BY_NAME[name].default

    def url(self, name: str, *, required: bool = False) -> str:
        value = self.text(name)
        if not value:
            if required:
                raise SettingsError(f"{name} is required")
            return ""
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
        return value

    def integer(self, name: str, *, minimum: int, maximum: int | None = None) -> int:
        value = self.text(name)
        try:
            number = int(value or "")
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {value!r}") from None
        if number < minimum or (maximum is not None and number > maximum):
            raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {number}")
        return number

    def number(self, name: str, *, minimum: float, maximum: float) -> float:
        value = self.text(name)
        try:
            number = float(value or "")
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {value!r}") from None
        if not minimum <= number <= maximum:
            raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {number}")
        return number

    def flag(self, name: str) -> bool:
        value = (self.text(name) or "").lower()
        if value in ("true", "1", "yes"):
            return True
        if value in ("false", "0", "no", ""):
            return False
        raise SettingsError(f"{name} must be true or false, got {value!r}")

    def backend_list(self, name: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in (self.text(name) or "").split(",") if item.strip())
        unknown = [item for item in items if item not in BACKENDS]
        if unknown or len(set(items)) != len(items):
            raise SettingsError(f"{name} must list distinct backends from {', '.join(BACKENDS)}, got {items!r}")
        return items

    def container_name(self, name: str) -> str:
        value = self.text(name) or ""
        if not re.fullmatch(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]", value):
            raise SettingsError(f"{name} is not a valid blob container name: {value!r}")
        return value

    def price_table(self, name: str) -> dict[str, Price]:
        raw = self.text(name) or "{}"
        try:
            table = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{name} is not valid JSON: {exc.msg} at position {exc.pos}") from None
        if not isinstance(table, dict):
            raise SettingsError(f"{name} must be a JSON object of backend or backend:model keys")
        prices: dict[str, Price] = {}
        for key, entry in table.items():
            backend = key.split(":", 1)[0]
            if backend not in BACKENDS:
                raise SettingsError(f"{name} key {key!r} must start with one of {', '.join(BACKENDS)}")
            if not isinstance(entry, dict) or not {"input", "output"} <= entry.keys():
                raise SettingsError(f"{name}[{key!r}] must be an object with numeric 'input' and 'output'")
            try:
                prices[key] = Price(float(entry["input"]), float(entry["output"]))
            except (TypeError, ValueError):
                raise SettingsError(f"{name}[{key!r}] prices must be numbers") from None
            if prices[key].input_per_million < 0 or prices[key].output_per_million < 0:
                raise SettingsError(f"{name}[{key!r}] prices must not be negative")
        return prices

    def parsed(self, name: str, parse: Callable[[str], Any]) -> Any:
        """The value as `parse` (a pure parser that raises ValueError) reads it; None when unset."""
        raw = self.text(name)
        if raw is None:
            return None
        try:
            return parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{name} {exc}") from None

    def checked(self, name: str, parse: Callable[[str], Any]) -> str | None:
        """The raw value, after `parse` accepted it."""
        self.parsed(name, parse)
        return self.text(name)

    def pii_redact_before_model(self) -> bool:
        # Masking what a cloud model is sent while storing the original would store a conversation the model
        # never saw (and leave earlier turns unmasked in the history it is sent): the setting builds on storage.
        if self.flag("PII_REDACT_BEFORE_MODEL") and not self.flag("PII_REDACTION"):
            raise SettingsError("PII_REDACT_BEFORE_MODEL=true needs PII_REDACTION=true")
        return self.flag("PII_REDACT_BEFORE_MODEL")


_cached: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read on first use (never at import, so a bad value fails loudly at start)."""
    global _cached
    if _cached is None:
        _cached = Settings.from_env()
    return _cached


def reset_settings_cache() -> None:
    """Forget the cached settings (tests and the dev server change the environment between runs)."""
    global _cached
    _cached = None
