"""The caller's spend and budget (GET /users/me/usage), audited in the caller's user partition, without content."""

from __future__ import annotations

from fastapi.responses import Response

from shared.domain.audit import user_partition
from shared.http.call import Call
from shared.http.models import UsageReport
from shared.http.responses import json_response


async def my_usage(call: Call) -> Response:
    owner = call.caller.owner
    async with call.audited(action="read_usage", session_id=user_partition(owner)):
        report = await (await call.services()).conversations.usage(owner)
    return json_response(UsageReport.model_validate(report))
