"""Agent Framework's own instrumentation: its "sensitive data" mode records messages in its spans, so it
follows `TELEMETRY_INCLUDE_CONTENT` and is forced off otherwise, even when its `ENABLE_SENSITIVE_DATA`
environment variable asks for it."""

from __future__ import annotations


def configure_agent_framework(include_content: bool) -> None:
    from agent_framework.observability import OBSERVABILITY_SETTINGS, enable_instrumentation

    if include_content:
        enable_instrumentation(enable_sensitive_data=True)
    else:
        OBSERVABILITY_SETTINGS.enable_sensitive_data = False
