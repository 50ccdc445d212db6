"""Azure Functions entry point (Python v2 programming model): triggers only, no logic.

Each HTTP function hands its request to one handler in `shared.api`, which parses, calls the `shared`
package and maps the result. The handlers take and return FastAPI types (azurefunctions-extensions-http-fastapi)
so that chat can stream Server-Sent Events; this needs `PYTHON_ENABLE_INIT_INDEXING=1` and host 4.34.1+.
Every route but health and the OpenAPI document needs a function key in Azure.
"""

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

from shared import api, retention

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

_chat = api.handler(api.chat)
_resume = api.handler(api.resume)
_list_sessions = api.handler(api.list_sessions)
_get_session = api.handler(api.get_session)
_delete_session = api.handler(api.delete_session)
_session_analytics = api.handler(api.session_analytics)
_owner_analytics = api.handler(api.owner_analytics)
_session_audit = api.handler(api.session_audit)
_erase_me = api.handler(api.erase_me)
_erase_user = api.handler(api.erase_user)
_reconcile_metadata = api.handler(api.reconcile_metadata)
_import_session = api.handler(api.import_session)
_export_session = api.handler(api.export_session)
_fork_session = api.handler(api.fork_session)
_health = api.handler(api.health)
_openapi = api.handler(api.openapi)


@app.route(route="chat", methods=["POST"])
async def chat(req: Request) -> Response:
    return await _chat(req)


@app.route(route="sessions/{session_id}/resume", methods=["POST"])
async def resume_session(req: Request) -> Response:
    return await _resume(req)


@app.route(route="sessions", methods=["GET"])
async def list_sessions(req: Request) -> Response:
    return await _list_sessions(req)


@app.route(route="sessions/{session_id}", methods=["GET"])
async def get_session(req: Request) -> Response:
    return await _get_session(req)


@app.route(route="sessions/{session_id}", methods=["DELETE"])
async def delete_session(req: Request) -> Response:
    return await _delete_session(req)


@app.route(route="sessions/{session_id}/analytics", methods=["GET"])
async def session_analytics(req: Request) -> Response:
    return await _session_analytics(req)


@app.route(route="sessions/import", methods=["POST"])
async def import_session(req: Request) -> Response:
    return await _import_session(req)


@app.route(route="sessions/{session_id}/export", methods=["GET"])
async def export_session(req: Request) -> Response:
    return await _export_session(req)


@app.route(route="sessions/{session_id}/fork", methods=["POST"])
async def fork_session(req: Request) -> Response:
    return await _fork_session(req)


@app.route(route="analytics", methods=["GET"])
async def owner_analytics(req: Request) -> Response:
    return await _owner_analytics(req)


@app.route(route="sessions/{session_id}/audit", methods=["GET"])
async def session_audit(req: Request) -> Response:
    return await _session_audit(req)


# Registered before users/{user_id}: the dev server matches in order (the Functions host prefers literals).
@app.route(route="users/me", methods=["DELETE"])
async def erase_me(req: Request) -> Response:
    return await _erase_me(req)


@app.route(route="users/{user_id}", methods=["DELETE"])
async def erase_user(req: Request) -> Response:
    return await _erase_user(req)


# Not admin/...: the Functions host reserves every route starting with "admin" (the function would not load).
@app.route(route="manage/reconcile", methods=["POST"])
async def reconcile_metadata(req: Request) -> Response:
    return await _reconcile_metadata(req)


@app.timer_trigger(schedule="%RETENTION_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
async def retention_timer(timer: func.TimerRequest) -> None:
    await retention.timer_job()


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: Request) -> Response:
    return await _health(req)


@app.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def openapi(req: Request) -> Response:
    return await _openapi(req)
