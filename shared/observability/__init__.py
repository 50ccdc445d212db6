"""Observability: OpenTelemetry spans and metrics everywhere (no-op until configured), Azure Monitor set-up."""
