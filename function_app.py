"""Azure Functions entry point (Python v2 programming model): the table of contents of the app's triggers.

- One HTTP trigger per route of `shared.http.routes.ROUTE_TABLE` (chat, resume, sessions, analytics, import,
  export, fork, audit, erasure, reconcile, health, openapi.json, dashboard), registered by `register_routes`.
  Every route but health, the OpenAPI document and the dashboard's files needs a function key in Azure, unless
  App Service Authentication is on (then the sign-in is what lets a request in: see `register_routes`).
- The retention timer (`%RETENTION_SCHEDULE%`), which deletes idle conversations and reconciles metadata.

All logic lives in `shared/`; `shared.app` builds the services once per worker process, on first use.
"""

import azure.functions as func

from shared.app import get_services, run_retention
from shared.http.functions import register_routes

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

register_routes(app, get_services)


@app.timer_trigger(schedule="%RETENTION_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
async def retention_timer(timer: func.TimerRequest) -> None:
    await run_retention()
