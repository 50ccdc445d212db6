"""The one frozen settings object, built once from the environment (never at import time).

A bad or missing value fails at the first request (and in the worker's start log) with a message naming the
variable. The names, defaults and descriptions are in `spec.py`; the typed readers in `environment.py`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlparse

from shared.config.environment import Env, SettingsError, parse_authentication_string
from shared.domain.backends import BACKENDS
from shared.domain.budget import BudgetPolicy, Limits, parse_overrides
from shared.domain.circuit import BreakerPolicy
from shared.domain.ids import owner_key
from shared.domain.pricing import Price, Quote, quote
from shared.domain.redaction import ExtraPattern, Redactor, parse_extra_patterns
from shared.domain.routing import VERSIONS, RouterConfig

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
    context_tokens: int | None = None  # the model's context window, when known

    @property
    def is_azure(self) -> bool:
        host = (urlparse(self.endpoint).hostname or "").lower()
        return host.endswith(AZURE_HOST_SUFFIXES)


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
    context_summary: bool
    context_summary_backend: str
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
    budget: BudgetPolicy
    cooldown: BreakerPolicy
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

    @cached_property
    def redactor(self) -> Redactor | None:
        """The process's PII masker (its patterns compiled once), or None when `PII_REDACTION` is off."""
        return Redactor(self.pii_extra_patterns) if self.pii_redaction else None

    @property
    def configured_backends(self) -> tuple[str, ...]:
        return tuple(name for name in BACKENDS if name in self.backends)

    def price(self, backend: str, model: str) -> Price | None:
        return self.price_quote(backend, model).price

    def price_quote(self, backend: str, model: str) -> Quote:
        """The backend's price and where it comes from: PRICE_TABLE, the built-in table, or none."""
        return quote(self.price_table, backend, model)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check every setting; the first bad one raises SettingsError naming it."""
        env = Env(os.environ if environ is None else environ)
        return cls(
            **_backends(env),
            **_storage(env),
            **_routing_and_limits(env),
            **_spend_control(env),
            **_telemetry_and_privacy(env),
            **_lifecycle(env),
        )


DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer accurately and concisely."


def _backends(env: Env) -> dict[str, Any]:
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
        window = env.integer(prefix + "CONTEXT_TOKENS", minimum=256) if env.text(prefix + "CONTEXT_TOKENS") else None
        backends[backend] = BackendSettings(
            backend, endpoint.rstrip("/"), model, env.text(prefix + "API_KEY"), context_tokens=window
        )
    return {
        "backends": backends,
        "azure_openai_api_version": env.text("AZURE_OPENAI_API_VERSION") or "",
        "azure_client_id": env.text("AZURE_CLIENT_ID"),
    }


def _storage(env: Env) -> dict[str, Any]:
    blob_endpoint = env.text("STORAGE_BLOB_ENDPOINT")
    blob_connection = env.text("STORAGE_CONNECTION_STRING")
    if not blob_endpoint and not blob_connection:
        raise SettingsError("STORAGE_BLOB_ENDPOINT (or STORAGE_CONNECTION_STRING for Azurite) is required")
    if blob_endpoint:
        env.url("STORAGE_BLOB_ENDPOINT")
    cosmos_endpoint = env.url("COSMOS_ENDPOINT", required=True)
    cosmos_key = env.text("COSMOS_KEY")
    create = env.text("COSMOS_CREATE_RESOURCES")
    return {
        "storage_blob_endpoint": blob_endpoint,
        "storage_connection_string": blob_connection,
        "snapshot_container": env.container_name("SNAPSHOT_CONTAINER"),
        "cosmos_endpoint": cosmos_endpoint,
        "cosmos_key": cosmos_key,
        "cosmos_database": env.text("COSMOS_DATABASE") or "",
        "cosmos_turns_container": env.text("COSMOS_TURNS_CONTAINER") or "",
        "cosmos_sessions_container": env.text("COSMOS_SESSIONS_CONTAINER") or "",
        "cosmos_audit_container": env.text("COSMOS_AUDIT_CONTAINER") or "",
        "cosmos_create_resources": env.flag("COSMOS_CREATE_RESOURCES") if create else cosmos_key is not None,
    }


def _routing_and_limits(env: Env) -> dict[str, Any]:
    return {
        "router": _router(env),
        "context_max_messages": env.integer("CONTEXT_MAX_MESSAGES", minimum=1),
        "context_max_chars": env.integer("CONTEXT_MAX_CHARS", minimum=100),
        "context_summary": env.flag("CONTEXT_SUMMARY"),
        "context_summary_backend": env.choice("CONTEXT_SUMMARY_BACKEND", BACKENDS),
        "message_max_chars": env.integer("MESSAGE_MAX_CHARS", minimum=1),
        "request_max_bytes": env.integer("REQUEST_MAX_BYTES", minimum=1024),
        "import_max_bytes": env.integer("IMPORT_MAX_BYTES", minimum=1024),
        "import_max_messages": env.integer("IMPORT_MAX_MESSAGES", minimum=1, maximum=100_000),
        "model_timeout_seconds": env.number("MODEL_TIMEOUT_SECONDS", minimum=0.1, maximum=600.0),
        "model_max_retries": env.integer("MODEL_MAX_RETRIES", minimum=0, maximum=10),
        "model_max_output_tokens": env.integer("MODEL_MAX_OUTPUT_TOKENS", minimum=1)
        if env.text("MODEL_MAX_OUTPUT_TOKENS")
        else None,
        "storage_timeout_seconds": env.number("STORAGE_TIMEOUT_SECONDS", minimum=0.1, maximum=300.0),
        "storage_max_retries": env.integer("STORAGE_MAX_RETRIES", minimum=0, maximum=10),
        "price_table": env.price_table("PRICE_TABLE"),
    }


def _spend_control(env: Env) -> dict[str, Any]:
    default = Limits(
        env.optional_number("BUDGET_DAILY_USD", minimum=0.0, maximum=1e9),
        env.optional_number("BUDGET_MONTHLY_USD", minimum=0.0, maximum=1e9),
    )
    overrides = env.parsed("BUDGET_OVERRIDES", lambda text: parse_overrides(text, default, owner_key))
    return {
        "budget": BudgetPolicy(default, overrides or {}),
        "cooldown": BreakerPolicy(
            failures=env.integer("BACKEND_COOLDOWN_FAILURES", minimum=1, maximum=1000),
            cooldown_seconds=env.number("BACKEND_COOLDOWN_SECONDS", minimum=0.1, maximum=86_400.0),
        ),
    }


def _router(env: Env) -> RouterConfig:
    version = env.choice("ROUTER_VERSION", tuple(VERSIONS))
    shadow = env.choice("ROUTER_SHADOW", tuple(VERSIONS)) if env.text("ROUTER_SHADOW") else None
    threshold = env.optional_number("ROUTER_LOCAL_THRESHOLD", minimum=0.0, maximum=1.0)
    share = env.optional_number("ROUTER_TARGET_CLOUD_SHARE", minimum=0.0, maximum=1.0)
    if threshold is not None and share is not None:
        raise SettingsError("set ROUTER_LOCAL_THRESHOLD or ROUTER_TARGET_CLOUD_SHARE, not both")
    return RouterConfig(
        local_threshold=threshold,
        strong_order=env.backend_list("ROUTER_STRONG_ORDER"),
        fallback_order=env.backend_list("ROUTER_FALLBACK_ORDER"),
        version=version,
        target_cloud_share=share,
        shadow=shadow,
    )


def _telemetry_and_privacy(env: Env) -> dict[str, Any]:
    return {
        "applicationinsights_connection_string": env.text("APPLICATIONINSIGHTS_CONNECTION_STRING"),
        "applicationinsights_authentication_string": env.checked(
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING", parse_authentication_string
        ),
        "telemetry_include_content": env.flag("TELEMETRY_INCLUDE_CONTENT"),
        "pii_redaction": env.flag("PII_REDACTION"),
        "pii_redact_before_model": env.pii_redact_before_model(),
        "pii_extra_patterns": env.parsed("PII_EXTRA_PATTERNS", parse_extra_patterns),
    }


def _lifecycle(env: Env) -> dict[str, Any]:
    return {
        "snapshot_compact_every": env.integer("SNAPSHOT_COMPACT_EVERY", minimum=1, maximum=10_000),
        "system_prompt": env.text("SYSTEM_PROMPT") or DEFAULT_SYSTEM_PROMPT,
        "retention_days": env.integer("RETENTION_DAYS", minimum=1, maximum=36_500),
        "retention_schedule": env.text("RETENTION_SCHEDULE") or "",
        "retention_dry_run": env.flag("RETENTION_DRY_RUN"),
        "retention_batch_size": env.integer("RETENTION_BATCH_SIZE", minimum=1, maximum=5_000),
        "audit_retention_days": env.integer("AUDIT_RETENTION_DAYS", minimum=1, maximum=36_500),
        "trust_principal_headers": env.flag("TRUST_PRINCIPAL_HEADERS"),
        "admin_role": env.text("ADMIN_ROLE") or "admin",
    }


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
