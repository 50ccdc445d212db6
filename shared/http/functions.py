"""The function app's HTTP triggers, one per route of the table, and the wrapper every request goes through.

The wrapper reads the settings (a bad one is a 503 naming it), matches and validates the path parameters,
runs the handler under the request's span, and turns every failure into one of our JSON errors.

The triggers take and return FastAPI types (azurefunctions-extensions-http-fastapi) so chat can stream
Server-Sent Events; this needs `PYTHON_ENABLE_INIT_INDEXING=1` and host 4.34.1+. The Python worker indexes
each trigger by its function's name and signature: the parameter is `req`, annotated with the extension's
`Request` and `Response` types, resolvable at run time (this module does not postpone annotations).
"""

import os
from collections.abc import Mapping

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

from shared.config import SettingsError, get_settings
from shared.config.environment import Env
from shared.http.call import Call, Provider
from shared.http.errors import ApiError, error_response, openai_error_response
from shared.http.route import PATH_PARAMETERS, Route
from shared.http.routes import ROUTE_TABLE
from shared.observability.spans import request_span


def path_parameters(route: Route, request: Request) -> dict[str, str]:
    """The route's path parameters, each checked against its pattern. Under Functions' HTTP streams the host
    does not fill `path_params`, so the URL path is matched against the route's own template as a fallback."""
    values = dict(request.path_params or {})
    if any(name not in values for name in route.parameters):
        values = route.match(request.url.path) or {}
    params: dict[str, str] = {}
    for name in route.parameters:
        value = values.get(name)
        if value is None:
            raise ApiError(404, "not_found", "No such route.")
        pattern = PATH_PARAMETERS[name].pattern
        if not pattern.fullmatch(value):
            raise ApiError(422, "invalid_id", f"{name} must match {pattern.pattern}.", name)
        params[name] = value
    return params


async def dispatch(route: Route, request: Request, provider: Provider, *, signed_in: bool = False) -> Response:
    """Run the route's handler on the request; every failure becomes one of our JSON errors. With `signed_in`,
    a request without App Service Authentication's principal gets the platform's own answer, a bodiless 401,
    before anything else is read."""
    if signed_in and not request.headers.get("x-ms-client-principal-id", "").strip():
        return Response(status_code=401)
    errors = openai_error_response if route.openai else error_response
    try:
        settings = get_settings()
    except Exception as exc:  # noqa: BLE001 - the one error mapper
        return errors(exc)

    async def run() -> Response:
        try:
            call = Call(request, settings, path_parameters(route, request), provider)
            return await route.handler(call)
        except Exception as exc:  # noqa: BLE001 - the one error mapper
            return errors(exc)

    return await request_span(route.function_name, request.method, request.url.path, run)


def trigger(route: Route, provider: Provider, *, signed_in: bool = False):  # type: ignore[no-untyped-def]
    """The function the Functions host calls for `route`, named after its handler (untyped here: the worker reads
    the inner function's signature)."""

    async def function(req: Request) -> Response:
        return await dispatch(route, req, provider, signed_in=signed_in)

    function.__name__ = function.__qualname__ = route.function_name
    function.__doc__ = route.summary
    return function


def behind_app_service_authentication(environ: Mapping[str, str]) -> bool:
    """Whether App Service Authentication is on (the platform sets WEBSITE_AUTH_ENABLED=True) and the app trusts
    its principal headers (TRUST_PRINCIPAL_HEADERS, which infra/app/api.bicep turns on with authentication)."""
    try:
        trusted = Env(environ).flag("TRUST_PRINCIPAL_HEADERS")
    except SettingsError:
        return False  # malformed: fail closed (keys required); the first request then names the setting
    return trusted and environ.get("WEBSITE_AUTH_ENABLED", "").strip().lower() == "true"


def register_routes(app: func.FunctionApp, provider: Provider, environ: Mapping[str, str] | None = None) -> None:
    """An HTTP trigger per route of the table. Public routes (health, the OpenAPI document, the dashboard's
    files) need no function key; every other route needs one, unless App Service Authentication is on.

    Keyless behind App Service Authentication: the Bicep then requires authentication on every path but the
    public ones (`requireAuthentication`, `Return401`, `excludedPaths: anonymousPaths`), so each request that
    reaches a function has been signed in by the platform, which sets X-MS-CLIENT-PRINCIPAL-ID (a caller cannot
    set it). A function key adds nothing to that, and a browser cannot send one without the page holding a
    shared secret: the dashboard calls the API with the sign-in cookie alone. WEBSITE_AUTH_ENABLED only says the
    module is on, not that it requires sign-in, so those routes also refuse, with the platform's bodiless 401,
    a request that arrives without a principal (authentication relaxed to "allow unauthenticated", or a path it
    did not cover) instead of serving it as the shared anonymous owner. Without App Service Authentication (or
    without trusting its headers) every non-public route needs a key, as before.
    """
    keyless = behind_app_service_authentication(os.environ if environ is None else environ)
    for route in ROUTE_TABLE:
        level = func.AuthLevel.ANONYMOUS if route.public or keyless else None
        decorate = app.route(route=route.template, methods=[route.method.upper()], auth_level=level)
        decorate(trigger(route, provider, signed_in=keyless and not route.public))
