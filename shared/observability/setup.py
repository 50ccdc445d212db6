"""Telemetry set-up: Azure Monitor export only when it is configured, and the content switch.

Without `APPLICATIONINSIGHTS_CONNECTION_STRING` the OpenTelemetry API's no-op providers answer every call:
nothing is exported, nothing can fail, and a turn pays a few microseconds for its spans. With it,
`configure()` imports `azure-monitor-opentelemetry` (lazily: about 0.3-0.5 s of imports a worker without
telemetry never pays) and calls `configure_azure_monitor()` once per process, signed with the managed
identity when `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` says `Authorization=AAD`. When the Functions
worker configured Azure Monitor itself (`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`, which also makes
it propagate the host's trace context into each invocation) a real tracer provider is already installed and
is used as it is.

Content: no prompt or reply text goes into spans, metrics or logs unless `TELEMETRY_INCLUDE_CONTENT=true`.
The same setting drives Agent Framework's own "sensitive data" mode; the composition root applies it there
(`shared.agents.instrumentation`), since only the agents layer imports Agent Framework.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from shared.config.environment import parse_authentication_string

if TYPE_CHECKING:
    from shared.config import Settings

__all__ = ["configure", "include_content", "parse_authentication_string", "telemetry_credential"]

logger = logging.getLogger(__name__)

# Instrumentations of the Azure Monitor distro that do not apply here: the Functions host already reports
# the HTTP request (the FastAPI instrumentation would report it twice), and there is no Django, Flask or
# PostgreSQL. Azure SDK (Blob, Cosmos), httpx (model calls) and urllib3 spans stay on.
_DISABLED_INSTRUMENTATIONS = ("fastapi", "django", "flask", "psycopg2")

_configured_for: object | None = None
_exporting = False
_include_content = False


def include_content() -> bool:
    """Whether prompts and replies may go into telemetry (`TELEMETRY_INCLUDE_CONTENT`)."""
    return _include_content


def configure(settings: Settings) -> None:
    """Apply the telemetry settings; cheap to call again (returns at once for the same settings).

    Exporting starts at most once per process; the content switch follows the latest settings.
    """
    global _configured_for, _include_content, _exporting
    if settings is _configured_for:
        return
    _configured_for = settings
    _include_content = settings.telemetry_include_content
    if settings.applicationinsights_connection_string and not _exporting:
        _exporting = _start_azure_monitor(settings)


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
