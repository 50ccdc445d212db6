"""Health (anonymous): storage, Cosmos DB and the configured backends with their cooldown state."""

from __future__ import annotations

from fastapi.responses import Response

from shared.http.call import Call
from shared.http.models import BackendHealth, Health
from shared.http.responses import json_response


async def health(call: Call) -> Response:
    services = await call.services()
    checks = await services.conversations.health()
    states = services.conversations.backend_states()
    # Degraded when no backend can answer: none configured, or every one cooling down in this instance.
    answering = any(state["state"] != "cooling_down" for state in states.values())
    healthy = checks["storage"] == "ok" and checks["cosmos"] == "ok" and answering
    report = Health(
        status="ok" if healthy else "degraded",
        storage=checks["storage"],
        cosmos=checks["cosmos"],
        backends={
            name: BackendHealth(model=backend.model, **states[name]) for name, backend in services.backends.items()
        },
    )
    return json_response(report, 200 if healthy else 503)
