"""The dashboard (anonymous): its page and its assets, static files only (`shared.http.static`).

The page holds no data: it calls this API from the browser with the caller's own identity (App Service
Authentication's session cookie, or a function key it asks for and keeps in the tab).
"""

from __future__ import annotations

from fastapi.responses import RedirectResponse, Response

from shared.http.call import Call
from shared.http.errors import ApiError
from shared.http.static import ASSETS, PAGE, SECURITY_HEADERS, serve


async def dashboard(call: Call) -> Response:
    """GET /dashboard: the page. With a trailing slash, a redirect to the path without it (the page's links to
    its assets are relative to that path, so a different routePrefix needs no change)."""
    url = call.request.url
    if url.path.endswith("/") and url.path.rstrip("/"):
        target = url.path.rstrip("/") + (f"?{url.query}" if url.query else "")
        return RedirectResponse(target, status_code=308, headers=SECURITY_HEADERS)
    return serve(call.request, PAGE)


async def dashboard_asset(call: Call) -> Response:
    """GET /dashboard/assets/{name}: one file of the whitelist, or 404."""
    name = call.param("name")
    if name not in ASSETS:
        raise ApiError(404, "not_found", "No such dashboard file.", headers=dict(SECURITY_HEADERS))
    return serve(call.request, name)
