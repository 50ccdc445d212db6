"""Every setting the service reads, by name, with its default and where it is set.

`SETTINGS_SPEC` is the single list of names: the README table, `local.settings.sample.json` and the
Bicep app settings are checked against it (tools/settings_docs.py and the tests), so a name cannot drift
between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.domain.backends import BACKENDS

Where = Literal["bicep", "optional", "local"]


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

SPEC_BY_NAME = {spec.name: spec for spec in SETTINGS_SPEC}
