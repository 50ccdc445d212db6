"""Health (anonymous): storage, Cosmos DB and the configured backends."""

from __future__ import annotations

from fastapi.responses import Response

from shared.http.call import Call
from shared.http.models import Health
from shared.http.responses import json_response


async def health(call: Call) -> Response:
    services = await call.services()
    checks = await services.conversations.health()
    healthy = checks["storage"] == "ok" and checks["cosmos"] == "ok" and bool(services.backends)
    report = Health(
        status="ok" if healthy else "degraded",
        storage=checks["storage"],
        cosmos=checks["cosmos"],
        backends={name: {"model": backend.model} for name, backend in services.backends.items()},
    )
    return json_response(report, 200 if healthy else 503)
