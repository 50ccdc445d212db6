"""The data lifecycle over HTTP: erasure, a session's audit trail, and reconcile (admin)."""

from __future__ import annotations

from fastapi.responses import Response

from shared.domain.audit import user_partition
from shared.domain.ids import owner_key
from shared.http.call import Call, forbidden
from shared.http.errors import ApiError, not_found
from shared.http.models import ErasureReceipt, ReconcileReport, ReconcileRequest
from shared.http.responses import audit_model, json_response


async def _erase(call: Call, owner: str, user_id: str) -> Response:
    services = await call.services()
    actor = call.caller.owner
    receipt = await services.erasure.erase_user(owner, user_id=user_id, actor=actor, admin=actor != owner)
    return json_response(ErasureReceipt.model_validate(receipt.to_dict()))


async def erase_me(call: Call) -> Response:
    caller = call.caller
    if caller.principal_id is None:
        # Anonymous data is shared by every unauthenticated caller: nobody may erase it as "theirs".
        raise ApiError(403, "forbidden", "Sign in to erase your data.")
    return await _erase(call, caller.owner, caller.principal_id)


async def erase_user(call: Call) -> Response:
    user_id = call.param("user_id")
    if user_id == "me":
        return await erase_me(call)
    caller = call.caller
    services = await call.services()
    owner = owner_key(user_id)
    if not caller.is_admin:
        await services.audit.record(
            actor=caller.owner,
            owner=owner,
            session_id=user_partition(owner),
            action="erase_user",
            outcome="forbidden",
        )
        raise forbidden(call.settings)
    return await _erase(call, owner, user_id)


async def session_audit(call: Call) -> Response:
    session_id = call.param("session_id")
    caller = call.caller
    services = await call.services()
    events = await services.audit.session_events(session_id, None if caller.is_admin else caller.owner)
    # The caller's own events, or all for an admin; a session counts as the caller's when it exists under
    # their key or one of their actions on it succeeded. Anyone else gets the missing-session answer.
    mine = [event for event in events if event.owner == caller.owner]
    owns = any(event.outcome == "ok" for event in mine) or await services.snapshots.exists(caller.owner, session_id)
    if not owns and not (caller.is_admin and events):
        raise not_found()
    return json_response(audit_model(session_id, events))


async def reconcile_metadata(call: Call) -> Response:
    call.require_admin()
    body = await call.body(ReconcileRequest, optional=True)
    owner = owner_key(body.owner) if body.owner is not None else None
    services = await call.services()
    report = await services.reconcile.reconcile(owner=owner, session_id=body.session_id)
    return json_response(ReconcileReport.model_validate(report.to_dict()))
