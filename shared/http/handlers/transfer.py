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
    async with call.audited(action="import", session_id=None) as audited:
        transfer = (await call.services()).transfer
        view = await transfer.import_session(call.caller.owner, body.format, body.data, body.session_id)
        audited.session_id = view.snapshot.session_id
    return _created(view)


async def export_session(call: Call) -> Response:
    session_id = call.param("session_id")
    async with call.audited(action="export", session_id=session_id):
        document = await (await call.services()).transfer.export_session(call.caller.owner, session_id)
    return json_response(ExportDocument.model_validate(document))


async def fork_session(call: Call) -> Response:
    session_id = call.param("session_id")
    body = await call.body(ForkRequest)
    async with call.audited(action="fork", session_id=session_id):
        view = await (await call.services()).transfer.fork_session(call.caller.owner, session_id, body.at_turn)
    return _created(view)
