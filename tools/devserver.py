"""Serve the function app's HTTP functions on uvicorn, without Azure Functions Core Tools.

The routes, methods and handler objects are read from `function_app.app` (nothing is retyped), and mounted
at `/api/<route>` like the Functions host does. Function keys are not checked here (the host checks them in
Azure). `make run` uses `--emulators` to start Azurite (data kept under `.data/azurite`) and the Cosmos DB
emulator (in memory), and `--fake-models` to stand in a local and a cloud model when none is configured.

    python -m tools.devserver [--port 7071] [--emulators] [--fake-models]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
logger = logging.getLogger("devserver")


def http_functions() -> list[tuple[str, list[str], Callable[[Any], Awaitable[Response]]]]:
    """(route, methods, user function) of every HTTP-triggered function registered on the app."""
    return list(_http_functions())


@functools.cache
def _http_functions() -> tuple[tuple[str, list[str], Callable[[Any], Awaitable[Response]]], ...]:
    # Cached: `FunctionApp.get_functions()` remembers the names it has seen and raises "does not have a unique
    # function name" when called a second time in one process (a second server or a test reading the routes).
    from function_app import app

    found = []
    for function in app.get_functions():
        trigger = function.get_trigger()
        if trigger is None or trigger.get_binding_name() != "httpTrigger":
            continue
        methods = [str(getattr(method, "value", method)).upper() for method in (trigger.methods or ["GET"])]
        found.append((trigger.route or function.get_function_name(), methods, function.get_user_function()))
    return tuple(found)


def _endpoint(
    by_method: dict[str, Callable[[Any], Awaitable[Response]]],
) -> Callable[[Request], Awaitable[Response]]:
    # One endpoint per path, dispatching on the method: a 405 then names every method of the path in Allow.
    async def endpoint(request: Request) -> Response:
        user_function = by_method.get(request.method) or by_method["GET"]  # Starlette adds HEAD to GET routes
        return await user_function(request)

    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = {404: "No such route.", 405: f"{request.method} is not allowed here."}.get(exc.status_code, exc.detail)
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


def create_app(*, reconcile_on_start: bool = False) -> Starlette:
    """The Starlette app. `reconcile_on_start` rebuilds Cosmos metadata from the Blob snapshots first: the
    Cosmos emulator starts empty on every run while Azurite keeps its data, and Blob is the source of truth."""
    from shared.app import close_services, get_services

    routes: dict[str, list[tuple[list[str], Callable[[Any], Awaitable[Response]]]]] = {}
    for route, methods, user_function in http_functions():
        routes.setdefault(route, []).append((methods, user_function))

    starlette_routes = []
    # Literal routes first, as the Functions host prefers them: `sessions/import` before `sessions/{session_id}`,
    # so a wrong method on it answers 405 naming its own methods, not the template's. (Stable: ties keep order.)
    for route, handlers in sorted(routes.items(), key=lambda item: item[0].count("{")):
        by_method = {method: user_function for methods, user_function in handlers for method in methods}
        starlette_routes.append(Route(f"/api/{route}", _endpoint(by_method), methods=list(by_method)))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if reconcile_on_start:
            report = await (await get_services()).reconcile.all()
            logger.info("metadata rebuilt from Blob: %s", report)
        yield
        await close_services()

    return Starlette(routes=starlette_routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error})


@contextlib.contextmanager
def emulators() -> Iterator[dict[str, str]]:
    from tools.emulators import Azurite, CosmosEmulator

    azurite_port = int(os.environ.get("AZURITE_PORT", "10000"))
    cosmos_port = int(os.environ.get("COSMOS_EMULATOR_PORT", "8081"))
    with Azurite(azurite_port, location=ROOT / ".data" / "azurite") as azurite, CosmosEmulator(cosmos_port) as cosmos:
        yield {
            "STORAGE_CONNECTION_STRING": azurite.connection_string,
            "COSMOS_ENDPOINT": cosmos.endpoint,
            "COSMOS_KEY": cosmos.key,
        }


@contextlib.contextmanager
def fake_models() -> Iterator[dict[str, str]]:
    from tools.fake_model import FakeModelServer

    with (
        FakeModelServer("local", models=("llama3.2",)) as local,
        FakeModelServer("cloud", models=("gpt-4o-mini",)) as cloud,
    ):
        yield {
            "LOCAL_MODEL_ENDPOINT": local.base_url,
            "LOCAL_MODEL_NAME": "llama3.2",
            "CLOUD_MODEL_ENDPOINT": cloud.base_url,
            "CLOUD_MODEL_NAME": "gpt-4o-mini",
            "CLOUD_MODEL_API_KEY": "fake-key",
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "7071")))
    parser.add_argument("--emulators", action="store_true", help="start Azurite and the Cosmos DB emulator")
    parser.add_argument(
        "--fake-models", action="store_true", help="start fake local and cloud models unless a *_MODEL_ENDPOINT is set"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("azure", "httpx", "agent_framework"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    import signal

    import uvicorn

    # uvicorn re-raises the signal that stopped it; make SIGTERM unwind (and stop the emulators) like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    reconcile = False
    with contextlib.ExitStack() as stack:
        if args.emulators and not (os.environ.get("COSMOS_ENDPOINT") or os.environ.get("STORAGE_CONNECTION_STRING")):
            env = stack.enter_context(emulators())
            os.environ.update(env)
            reconcile = True
            logger.info(
                "emulators up: Azurite %s, Cosmos %s",
                env["STORAGE_CONNECTION_STRING"].split("BlobEndpoint=")[1],
                env["COSMOS_ENDPOINT"],
            )
        # Locally nothing sits in front of the server, so the identity headers stand in for App Service
        # Authentication (api.http uses them); in Azure the setting is off unless authentication is on.
        os.environ.setdefault("TRUST_PRINCIPAL_HEADERS", "true")
        configured = any(os.environ.get(f"{name}_MODEL_ENDPOINT") for name in ("LOCAL", "CLOUD", "FOUNDRY", "APIM"))
        if args.fake_models and not configured:
            env = stack.enter_context(fake_models())
            os.environ.update(env)
            logger.info(
                "no model configured: fake local (%s) and cloud (%s) models stand in",
                env["LOCAL_MODEL_ENDPOINT"],
                env["CLOUD_MODEL_ENDPOINT"],
            )
        logger.info("serving the function app at http://%s:%d/api", args.host, args.port)
        uvicorn.run(create_app(reconcile_on_start=reconcile), host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
