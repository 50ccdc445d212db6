"""Import, export and fork (the logic is `shared.services.transfer`)."""

from __future__ import annotations

from fastapi.responses import Response

from shared.http.call import Call
from shared.http.models import ExportDocument, ForkRequest, ImportRequest
from shared.http.responses import json_response, session_model
from shared.services.events import SessionView


def _created(view: SessionView) -> Response:
    location = f"/api/sessions/{view.snapshot.session_id}"
    return json_response(session_model(view), 201, {"Location": location})


async def import_session(call: Call) -> Response:
    body = await call.body(ImportRequest, limit=call.settings.import_max_bytes)
    owner = call.caller.owner
    services = await call.services()
    async with services.audit.audited(owner, None, "import") as audited:
        view = await services.transfer.import_session(owner, body.format, body.data, body.session_id)
        audited.session_id = view.snapshot.session_id
    return _created(view)


async def export_session(call: Call) -> Response:
    session_id = call.param("session_id")
    owner = call.caller.owner
    services = await call.services()
    async with services.audit.audited(owner, session_id, "export"):
        document = await services.transfer.export_session(owner, session_id)
    return json_response(ExportDocument.model_validate(document))


async def fork_session(call: Call) -> Response:
    session_id = call.param("session_id")
    body = await call.body(ForkRequest)
    owner = call.caller.owner
    services = await call.services()
    async with services.audit.audited(owner, session_id, "fork"):
        view = await services.transfer.fork_session(owner, session_id, body.at_turn)
    return _created(view)
