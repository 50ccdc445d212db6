"""The Azure Functions Python worker loads (indexes) function_app.py, with the routes the local dev server serves.

The dev server (tools/devserver.py) only reads `app.get_functions()`; the worker in Azure does much more before a
single function loads: it imports function_app.py, finds the one FunctionApp, validates each function's parameters
against its bindings, resolves its annotations with `typing.get_type_hints` (where `from __future__ import
annotations`, wrappers and names imported only for type checkers break), checks them against the binding types
(with the FastAPI extension: its Request/Response, or HTTP streaming is off), and builds the metadata the host then
validates. One error there and the host loads no function at all, which nothing local showed until now.

So this test runs the worker's own indexing code on the real module: tests/worker_index_probe.py, in a subprocess
with the Python of `.venv-worker` (requirements.txt + requirements-worker.txt, built by `make setup`; the worker is
never installed into `.venv`), drives `azure_functions_runtime.worker_init_request` and `functions_metadata_request`
as the worker's proxy does, and returns the `RpcFunctionMetadata` the host would receive plus what the worker
registered. The checks that the host (C#, not installable here) makes on that metadata are mirrored below, each
naming the host code it mirrors. Nothing reads function_app.py's text: one decorated function per route or a loop
over a route table both come out the same.

The mutation tests index small generated apps (and one copy of the real app with a broken function appended) to
prove that each check can fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
WORKER_PYTHON = REPO / ".venv-worker" / "bin" / "python"
PROBE = Path(__file__).with_name("worker_index_probe.py")

# What function_app.py must serve: (method, route) -> auth level. Literal on purpose, so that a route that goes
# missing (or appears, or changes method or key) fails here, whatever the app's code looks like. Function names are
# not pinned (a route-table refactor may derive them); they are checked for validity and uniqueness instead.
EXPECTED_HTTP = {
    ("POST", "chat"): "FUNCTION",
    ("POST", "sessions/{session_id}/resume"): "FUNCTION",
    ("GET", "sessions"): "FUNCTION",
    ("GET", "sessions/{session_id}"): "FUNCTION",
    ("DELETE", "sessions/{session_id}"): "FUNCTION",
    ("GET", "sessions/{session_id}/analytics"): "FUNCTION",
    ("POST", "sessions/import"): "FUNCTION",
    ("GET", "sessions/{session_id}/export"): "FUNCTION",
    ("POST", "sessions/{session_id}/fork"): "FUNCTION",
    ("GET", "analytics"): "FUNCTION",
    ("GET", "sessions/{session_id}/audit"): "FUNCTION",
    ("GET", "users/me/usage"): "FUNCTION",
    ("DELETE", "users/me"): "FUNCTION",
    ("DELETE", "users/{user_id}"): "FUNCTION",
    ("POST", "manage/reconcile"): "FUNCTION",
    ("POST", "sessions/{session_id}/turns/{turn}/feedback"): "FUNCTION",
    ("GET", "v1/models"): "FUNCTION",
    ("POST", "v1/chat/completions"): "FUNCTION",
    ("GET", "health"): "ANONYMOUS",
    ("GET", "openapi.json"): "ANONYMOUS",
    ("GET", "dashboard"): "ANONYMOUS",
    ("GET", "dashboard/assets/{name}"): "ANONYMOUS",
}
# Behind App Service Authentication (the platform's WEBSITE_AUTH_ENABLED, and TRUST_PRINCIPAL_HEADERS, which the Bicep
# sets with it) the sign-in is what lets a request in: no route needs a key (shared.http.functions.register_routes).
APP_SERVICE_AUTHENTICATION = {"WEBSITE_AUTH_ENABLED": "True", "TRUST_PRINCIPAL_HEADERS": "true"}
EXPECTED_TIMER = {
    "type": "timerTrigger",
    "direction": "IN",
    "name": "timer",
    "schedule": "%RETENTION_SCHEDULE%",
    "runOnStartup": False,
    "useMonitor": True,
}

# ---- the host's checks on the metadata the worker sends (Azure/azure-functions-host, src/WebJobs.Script) --------
# Utility.FunctionNameValidationRegex (Utility.IsValidFunctionName, used when the host takes the worker's metadata).
FUNCTION_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,127}$(?<!^host$)", re.IGNORECASE)
# Utility.BindingNameValidationRegex / FunctionDescriptorProvider.ValidateBinding: no underscore in a binding name.
BINDING_NAME = re.compile(r"^([a-zA-Z][a-zA-Z0-9]{0,127}|\$return)$")
# Host/ScriptHost.cs ValidateHttpFunction: `route.Trim('/').ToLowerInvariant().StartsWith("admin" or "runtime")`
# is "The specified route conflicts with one or more built in routes." (a prefix of the string, not a segment).
RESERVED_ROUTE_PREFIXES = ("admin", "runtime")


def index(app_dir: Path, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Index the function app in `app_dir` with the worker (see tests/worker_index_probe.py), in this process's
    environment without the settings that decide the auth levels, plus `environ`."""
    if not WORKER_PYTHON.exists():
        pytest.fail(
            f"{WORKER_PYTHON} is missing: run `make setup` (it builds .venv-worker from requirements-worker.txt)"
        )
    env = {name: value for name, value in os.environ.items() if name not in APP_SERVICE_AUTHENTICATION}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "index.json"
        done = subprocess.run(
            [str(WORKER_PYTHON), "-I", "-B", str(PROBE), str(app_dir), str(out)],
            capture_output=True,
            text=True,
            timeout=180,
            env={**env, **(environ or {})},
        )
        if done.returncode != 0 or not out.exists():
            pytest.fail(f"the worker probe crashed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        return dict(json.loads(out.read_text(encoding="utf-8")))


def trigger_of(function: dict[str, Any]) -> dict[str, Any]:
    triggers = [b for b in function["raw_bindings"] if str(b["type"]).endswith("Trigger")]
    assert len(triggers) == 1, (function["name"], function["raw_bindings"])
    return triggers[0]


def http_functions(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in result["functions"] if trigger_of(f)["type"] == "httpTrigger"]


def http_routes(result: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(method, route) -> auth level of every HTTP function the worker indexed."""
    routes: dict[tuple[str, str], str] = {}
    for function in http_functions(result):
        trigger = trigger_of(function)
        for method in trigger.get("methods") or ["*"]:
            key = (str(method).upper(), str(trigger.get("route") or function["name"]))
            assert key not in routes, f"{key} is bound twice"
            routes[key] = str(trigger["authLevel"]).upper()
    return routes


def host_problems(result: dict[str, Any]) -> list[str]:
    """What the Functions host would refuse in the worker's metadata (the checks named above)."""
    problems = []
    names = Counter(f["name"].lower() for f in result["functions"])  # the host compares names OrdinalIgnoreCase
    problems += [f"host: function name {name!r} is not unique" for name, count in names.items() if count > 1]
    seen: list[tuple[str, str, set[str]]] = []
    for function in result["functions"]:
        name = function["name"]
        if not FUNCTION_NAME.match(name):
            problems.append(f"host: invalid function name {name!r}")
        for binding in function["raw_bindings"]:
            if not BINDING_NAME.match(binding["name"]):
                problems.append(f"host: {name}: invalid binding name {binding['name']!r}")
        trigger = trigger_of(function)
        if trigger["type"] != "httpTrigger":
            continue
        route = str(trigger.get("route") or name).strip("/")
        if route.lower().startswith(RESERVED_ROUTE_PREFIXES):
            problems.append(f"host: {name}: route {route!r} conflicts with the host's built-in routes")
        methods = {str(m).upper() for m in trigger.get("methods") or []}
        for other_name, other_route, other_methods in seen:  # ScriptHost.HttpRoutesConflict
            if route.lower() == other_route.lower() and (not methods or not other_methods or methods & other_methods):
                problems.append(f"host: {name}: route {route!r} conflicts with the route of {other_name}")
        seen.append((name, route, methods))
    return problems


def worker_problems(result: dict[str, Any], request_type: str, response_type: str) -> list[str]:
    """Whether the worker indexed the app, and indexed every function the way our app needs it."""
    init = result["init"]
    if init["status"] != "Success":
        return [f"worker: the app does not load: {init['message']}"]
    problems = []
    if result["metadata"]["status"] != "Success" or result["metadata"]["use_default_metadata_indexing"]:
        problems.append(f"worker: no function metadata: {result['metadata']}")
    if "HttpUri" not in init["capabilities"] or "RequiresRouteParameters" not in init["capabilities"]:
        problems.append("app: HTTP streaming is off (the worker found no FastAPI Request/Response in use)")
    if not result["functions"]:
        problems.append("worker: no function indexed")
    for function in result["functions"]:
        name = function["name"]
        if not function["registered"] or function["properties"].get("worker_indexed") != "True":
            problems.append(f"worker: {name} is not registered for invocations")
            continue
        # Binding names are parameter names: the worker's Registry.validate_function_params refuses any difference,
        # and invokes the function with keyword arguments named after the bindings.
        bound = {b["name"] for b in function["raw_bindings"] if b["direction"] == "IN"}
        if bound != set(function["parameters"]):
            problems.append(f"worker: {name}: bindings {sorted(bound)} != parameters {function['parameters']}")
        unannotated = (set(function["parameters"]) | {"return"}) - set(function["type_hints"])
        if unannotated:
            problems.append(f"app: {name}: no annotation for {sorted(unannotated)}")
        if trigger_of(function)["type"] != "httpTrigger":
            continue
        trigger = trigger_of(function)
        outputs = [b for b in function["raw_bindings"] if b["direction"] == "OUT"]
        if [(b["name"], b["type"]) for b in outputs] != [("$return", "http")]:
            problems.append(f"app: {name}: the HTTP output is not one `http` binding on $return: {outputs}")
        if not trigger.get("methods"):
            problems.append(f"app: {name}: no methods (the host would bind every method)")
        if function["input_types"].get(trigger["name"], {}).get("pytype") != request_type:
            problems.append(
                f"app: {name}: the request is not the FastAPI extension's Request: {function['input_types']}"
            )
        if (function["return_type"] or {}).get("pytype") != response_type:
            problems.append(f"app: {name}: the return is not the extension's Response: {function['return_type']}")
        if not function["is_async"]:
            problems.append(f"app: {name}: not async (it would run in the worker's thread pool)")
    return problems


def qualified(cls: type) -> str:
    """A type as the probe names it (the worker's Request is FastAPI's, which is Starlette's: names differ)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def fastapi_types() -> tuple[str, str]:
    """The qualified names of the FastAPI extension's Request and Response."""
    from azurefunctions.extensions.http.fastapi import Request, Response

    return qualified(Request), qualified(Response)


def all_problems(result: dict[str, Any]) -> list[str]:
    problems = worker_problems(result, *fastapi_types())
    return problems + (host_problems(result) if result["init"]["status"] == "Success" else [])


# ---- the real function_app.py ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def indexed() -> dict[str, Any]:
    return index(REPO)


def test_the_worker_indexes_the_function_app_on_python_3_11(indexed: dict[str, Any]) -> None:
    assert indexed["python"].startswith("3.11."), indexed["python"]  # the version we deploy (infra, pyproject)
    assert indexed["init"]["status"] == "Success", indexed["init"]["message"] + "\n" + indexed["init"]["stack_trace"]
    assert all_problems(indexed) == []
    assert {f["script_file"] for f in indexed["functions"]} == {"function_app.py"}


def test_every_route_method_and_auth_level_is_the_expected_one(indexed: dict[str, Any]) -> None:
    assert http_routes(indexed) == EXPECTED_HTTP


def test_behind_app_service_authentication_no_route_needs_a_key() -> None:
    result = index(REPO, APP_SERVICE_AUTHENTICATION)
    assert all_problems(result) == []
    assert http_routes(result) == {key: "ANONYMOUS" for key in EXPECTED_HTTP}


def test_every_http_function_binds_its_one_parameter_and_returns_http(indexed: dict[str, Any]) -> None:
    request_type, response_type = fastapi_types()
    assert http_functions(indexed), indexed["init"]["message"]
    for function in http_functions(indexed):
        trigger = trigger_of(function)
        assert function["parameters"] == [trigger["name"]], function["name"]
        assert function["bindings"] == {
            trigger["name"]: {"type": "httpTrigger", "direction": "in"},
            "$return": {"type": "http", "direction": "out"},
        }
        assert trigger["direction"] == "IN"
        assert function["input_types"] == {trigger["name"]: {"binding": "httpTrigger", "pytype": request_type}}
        assert function["return_type"] == {"binding": "http", "pytype": response_type}
        assert function["trigger_metadata"] == {"type": "httpTrigger", "param_name": trigger["name"]}
        assert function["type_hints"] == {trigger["name"]: request_type, "return": response_type}


def test_the_worker_indexes_exactly_what_the_dev_server_serves(indexed: dict[str, Any]) -> None:
    from shared.http.routes import document
    from tools.devserver import http_functions as served

    served_routes = {(method, route) for route, methods, _ in served() for method in methods}
    assert set(http_routes(indexed)) == served_routes
    # The keys the host will ask for are the ones the OpenAPI document promises: public means no security.
    public = {
        (method.upper(), path.lstrip("/"))
        for path, item in document()["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "security" not in operation
    }
    assert {key for key, auth in http_routes(indexed).items() if auth == "ANONYMOUS"} == public


def test_the_retention_timer_is_indexed_with_its_schedule_setting(indexed: dict[str, Any]) -> None:
    import azure.functions as func

    from shared.config import SETTINGS_SPEC

    timers = [f for f in indexed["functions"] if trigger_of(f)["type"] == "timerTrigger"]
    assert len(timers) == 1, [f["name"] for f in timers]
    timer = timers[0]
    assert timer["raw_bindings"] == [EXPECTED_TIMER]
    assert timer["parameters"] == [EXPECTED_TIMER["name"]]
    assert timer["bindings"] == {EXPECTED_TIMER["name"]: {"type": "timerTrigger", "direction": "in"}}
    assert timer["input_types"] == {"timer": {"binding": "timerTrigger", "pytype": qualified(func.TimerRequest)}}
    assert timer["return_type"] is None and not timer["has_return"] and timer["is_async"]
    # %NAME% is an app setting the host resolves when it loads the function: the deployment must set it.
    setting = str(EXPECTED_TIMER["schedule"]).strip("%")
    assert [spec.azure for spec in SETTINGS_SPEC if spec.name == setting] == ["bicep"]
    assert len(indexed["functions"]) == len(http_functions(indexed)) + 1, "a function that is neither HTTP nor timer"


# ---- mutation tests: each check can fail -------------------------------------------------------------------------

IMPORTS = """
import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response
"""
APP = """
app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
"""
PING = """
@app.route(route="ping", methods=["GET"])
async def ping(req: Request) -> Response:
    return Response("pong")
"""
TIMER = """
@app.timer_trigger(schedule="%SCHEDULE%", arg_name="timer", run_on_startup=False)
async def tick(timer: func.TimerRequest) -> None:
    return None
"""
WRAPPER = """
def wrapped(f):
    {wraps}
    async def inner(*args, **kwargs):
        return await f(*args, **kwargs)
    return inner
"""
WRAPPED_PING = """
@app.route(route="ping", methods=["GET"])
@wrapped
async def ping(req: Request) -> Response:
    return Response("pong")
"""
PONG = """
@app.route(route="{route}", methods=["GET", "POST"])
{decorator}
async def pong(req: Request) -> Response:
    return Response("")
"""

# name: (the generated function_app.py, the start of the problem expected or None for a sound app)
MUTANTS: dict[str, tuple[str, str | None]] = {
    "sound app": (IMPORTS + APP + PING + TIMER, None),
    "future annotations, names resolvable": ("from __future__ import annotations\n" + IMPORTS + APP + PING, None),
    "wrapper with functools.wraps": (
        "import functools\n" + IMPORTS + WRAPPER.format(wraps="@functools.wraps(f)") + APP + WRAPPED_PING,
        None,
    ),
    "parameter named unlike its binding": (
        IMPORTS + APP + PING.replace("(req: Request)", "(request: Request)"),
        "worker: the app does not load: FunctionLoadError: cannot load the ping function: the following parameters",
    ),
    "future annotations, a name imported only for type checkers": (
        "from __future__ import annotations\nimport typing\nimport azure.functions as func\n"
        "import azurefunctions.extensions.http.fastapi\n"
        "if typing.TYPE_CHECKING:\n    from azurefunctions.extensions.http.fastapi import Request, Response\n"
        + APP
        + PING.replace('Response("pong")', "azurefunctions.extensions.http.fastapi.Response('pong')"),
        "worker: the app does not load: NameError: name 'Request' is not defined",
    ),
    "wrapper without functools.wraps": (
        IMPORTS + WRAPPER.format(wraps="") + APP + WRAPPED_PING,
        "worker: the app does not load: FunctionLoadError: cannot load the inner function",
    ),
    "HttpRequest under the FastAPI extension": (
        IMPORTS + APP + PING.replace("(req: Request)", "(req: func.HttpRequest)"),
        "worker: the app does not load: FunctionLoadError: cannot load the ping function: binding type",
    ),
    "no FastAPI extension": (
        "import azure.functions as func\n"
        + APP
        + PING.replace("(req: Request) -> Response", "(req: func.HttpRequest) -> func.HttpResponse").replace(
            'Response("pong")', 'func.HttpResponse("pong")'
        ),
        "app: HTTP streaming is off",
    ),
    "the FunctionApp under two module-level names": (
        IMPORTS + APP + "api = app\n" + PING,
        "worker: the app does not load: ValueError: More than one FunctionApp",
    ),
    "two functions with one name": (
        IMPORTS + APP + PING + PONG.format(route="pong", decorator='@app.function_name("ping")'),
        "worker: the app does not load: ValueError: Function ping does not have a unique function name",
    ),
    "route under admin": (
        IMPORTS + APP + PING.replace('route="ping"', 'route="admin/ping"'),
        "host: ping: route 'admin/ping' conflicts with the host's built-in routes",
    ),
    "route starting with runtime": (
        IMPORTS + APP + PING.replace('route="ping"', 'route="runtimes"'),
        "host: ping: route 'runtimes' conflicts with the host's built-in routes",
    ),
    "same route and method twice": (
        IMPORTS + APP + PING + PONG.format(route="ping", decorator=""),
        "host: pong: route 'ping' conflicts with the route of ping",
    ),
    "binding name with an underscore": (
        IMPORTS
        + APP
        + PING.replace('methods=["GET"]', 'methods=["GET"], trigger_arg_name="http_req"').replace(
            "(req: Request)", "(http_req: Request)"
        ),
        "host: ping: invalid binding name 'http_req'",
    ),
    "function without annotations": (
        IMPORTS + APP + PING.replace("(req: Request) -> Response", "(req)"),
        "app: ping: no annotation for ['req', 'return']",
    ),
}


@pytest.mark.parametrize("case", list(MUTANTS))
def test_a_broken_app_is_caught_and_a_sound_one_passes(case: str, tmp_path: Path) -> None:
    source, expected = MUTANTS[case]
    (tmp_path / "function_app.py").write_text(source, encoding="utf-8")
    problems = all_problems(index(tmp_path))
    if expected is None:
        assert problems == []
    else:
        assert any(problem.startswith(expected) for problem in problems), problems


def test_one_broken_function_appended_to_the_real_app_stops_every_function_loading(tmp_path: Path) -> None:
    # A copy of the real app (its `shared` package linked), with one function whose parameter is not its binding's
    # name appended. Appended, not edited: this does not depend on how function_app.py is written. (Registered from
    # inside a function: a second module-level name for the FunctionApp would itself stop the worker, see MUTANTS.)
    (tmp_path / "shared").symlink_to(REPO / "shared", target_is_directory=True)
    shutil.copy(REPO / "function_app.py", tmp_path / "function_app.py")
    with (tmp_path / "function_app.py").open("a", encoding="utf-8") as source:
        source.write(
            "\n\nimport azure.functions as _func\nimport azurefunctions.extensions.http.fastapi as _fastapi\n\n\n"
            "def _register_extra() -> None:\n"
            "    app_ = next(v for v in list(globals().values()) if isinstance(v, _func.FunctionApp))\n\n"
            '    @app_.route(route="extra", methods=["GET"])\n'
            "    async def extra(request: _fastapi.Request) -> _fastapi.Response:\n"
            "        return _fastapi.Response('')\n\n\n"
            "_register_extra()\n"
        )
    result = index(tmp_path)
    assert result["init"]["status"] == "Failure"
    assert "cannot load the extra function" in result["init"]["message"]
    assert result["functions"] == []  # not one of the real app's functions would load
