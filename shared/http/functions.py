"""The function app's HTTP triggers, one per route of the table, and the wrapper every request goes through.

The wrapper reads the settings (a bad one is a 503 naming it), matches and validates the path parameters,
runs the handler under the request's span, and turns every failure into one of our JSON errors.

The triggers take and return FastAPI types (azurefunctions-extensions-http-fastapi) so chat can stream
Server-Sent Events; this needs `PYTHON_ENABLE_INIT_INDEXING=1` and host 4.34.1+. The Python worker indexes
each trigger by its function's name and signature: the parameter is `req`, annotated with the extension's
`Request` and `Response` types, resolvable at run time (this module does not postpone annotations).
"""

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

from shared.config import get_settings
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


async def dispatch(route: Route, request: Request, provider: Provider) -> Response:
    """Run the route's handler on the request; every failure becomes one of our JSON errors."""
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


def trigger(route: Route, provider: Provider):  # type: ignore[no-untyped-def]  # the worker reads the inner signature
    """The function the Functions host calls for `route`, named after its handler."""

    async def function(req: Request) -> Response:
        return await dispatch(route, req, provider)

    function.__name__ = function.__qualname__ = route.function_name
    function.__doc__ = route.summary
    return function


def register_routes(app: func.FunctionApp, provider: Provider) -> None:
    """An HTTP trigger per route of the table; health and the OpenAPI document need no function key."""
    for route in ROUTE_TABLE:
        level = func.AuthLevel.ANONYMOUS if route.public else None
        decorate = app.route(route=route.template, methods=[route.method.upper()], auth_level=level)
        decorate(trigger(route, provider))
