"""Index a function app with the Azure Functions Python worker's own code, as the host would have it indexed.

Run by tests/test_worker_indexing.py with the Python of `.venv-worker` (requirements.txt + requirements-worker.txt),
never imported by the app's test environment:

    .venv-worker/bin/python -I -B tests/worker_index_probe.py APP_DIR OUT.json

It does what the worker's proxy does when the host starts it (`proxy_worker/dispatcher.py` in
Azure/azure-functions-python-worker: `_handle__worker_init_request`, then `_handle__functions_metadata_request`): it
calls the library worker's `worker_init_request` with a `StreamingMessage(worker_init_request=...)` and the gRPC
message classes as `properties["protos"]`, then `functions_metadata_request`. The library worker is the PyPI package
`azure-functions-runtime` (the worker's indexing code, packaged for Python 3.13+; its `loader.index_function_app`,
`loader.process_indexed_function` and `functions.Registry.add_indexed_function` are, but for the injected `protos`,
the logging and settlement-client parameters, the code of the `azure_functions_worker` 4.x that the host bundles for
3.11). Inside `worker_init_request` the worker imports `function_app.py`, finds the one `FunctionApp`, calls its
`get_functions()`, validates every function (parameters against bindings, `typing.get_type_hints`, the annotations
against the binding types, HTTP v2 / FastAPI types) and builds the `RpcFunctionMetadata` sent to the host; an error
there is the `Failure` the host would log before loading no function at all.

The message classes are the `FunctionRpc_pb2` that Microsoft ships, generated from the host's FunctionRpc.proto,
in the `azure-functions-runtime-v1` wheel (`tests/protos`); they are loaded under a private package name (the
wheel puts them in a top-level `tests` package, which this repository's `tests` would shadow) and without their
gRPC stubs (nothing is sent over gRPC here).

Writes JSON to OUT.json (stdout is left to the app and the worker's logs): the init and metadata results, and for
every function the metadata the host would receive plus what the worker registered for invocations.
"""

import asyncio
import dataclasses
import importlib
import importlib.metadata
import inspect
import json
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"  # the worker starts its HTTP v2 (streaming) server here: loopback only, and only while indexing


@dataclasses.dataclass
class WorkerRequest:
    """The request object the proxy worker hands the library worker (proxy_worker/dispatcher.py: WorkerRequest)."""

    name: str
    request: Any
    properties: dict[str, Any] | None = None


def load_protos() -> types.ModuleType:
    """The gRPC message classes, from the `tests/protos` package of the azure-functions-runtime-v1 wheel."""
    files = importlib.metadata.distribution("azure-functions-runtime-v1").files or []
    generated = next((f for f in files if str(f).replace("\\", "/").endswith("protos/FunctionRpc_pb2.py")), None)
    if generated is None:
        raise RuntimeError("FunctionRpc_pb2.py not found in azure-functions-runtime-v1 (requirements-worker.txt)")
    directory = Path(str(generated.locate())).parent
    package = types.ModuleType("_functions_rpc_protos")
    package.__path__ = [str(directory)]
    sys.modules[package.__name__] = package
    protos = types.ModuleType("protos")
    for module_name in ("FunctionRpc_pb2", "shared.NullableTypes_pb2"):  # what protos/__init__.py re-exports
        module = importlib.import_module(f"{package.__name__}.{module_name}")
        protos.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("_")})
    return protos


def type_name(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def param_type(info: Any) -> dict[str, Any] | None:
    if info is None or isinstance(info, str):
        return None if info is None else {"binding": info, "pytype": None}
    return {"binding": info.binding_name, "pytype": type_name(info.pytype)}


def describe(protos: Any, metadata: Any, registry: Any) -> dict[str, Any]:
    info = registry.get_function(metadata.function_id)
    described: dict[str, Any] = {
        "name": metadata.name,
        "function_id": metadata.function_id,
        "entry_point": metadata.entry_point,
        "script_file": metadata.script_file,
        "language": metadata.language,
        "properties": dict(metadata.properties),
        "bindings": {
            name: {
                "type": binding.type,
                "direction": protos.BindingInfo.Direction.Name(binding.direction),
            }
            for name, binding in metadata.bindings.items()
        },
        "raw_bindings": [json.loads(raw) for raw in metadata.raw_bindings],
        "registered": info is not None,
    }
    if info is not None:
        hints = typing.get_type_hints(info.func)  # the call the worker made in Registry.add_indexed_function
        described.update(
            parameters=list(inspect.signature(info.func).parameters),
            type_hints={name: type_name(hint) for name, hint in hints.items()},
            is_async=info.is_async,
            is_http_func=info.is_http_func,
            has_return=info.has_return,
            requires_context=info.requires_context,
            input_types={name: param_type(value) for name, value in info.input_types.items()},
            output_types={name: param_type(value) for name, value in info.output_types.items()},
            return_type=param_type(info.return_type),
            trigger_metadata=info.trigger_metadata,
        )
    return described


def status(protos: Any, result: Any) -> dict[str, Any]:
    return {
        "status": protos.StatusResult.Status.Name(result.status),
        "message": result.exception.message,
        "stack_trace": result.exception.stack_trace,
    }


async def index(app_dir: Path) -> dict[str, Any]:
    protos = load_protos()
    import azure_functions_runtime as library_worker  # imported after the protos, like the proxy does
    from azure_functions_runtime import handle_event

    init_request = protos.StreamingMessage(
        request_id="probe",
        worker_init_request=protos.WorkerInitRequest(
            function_app_directory=str(app_dir),
            capabilities={},
        ),
    )
    init = await library_worker.worker_init_request(
        WorkerRequest("WorkerInitRequest", init_request, {"protos": protos, "host": HOST})
    )
    result: dict[str, Any] = {
        "python": ".".join(map(str, sys.version_info[:3])),
        "worker": {
            name: importlib.metadata.version(name)
            for name in ("azure-functions-runtime", "azure-functions", "azurefunctions-extensions-base", "protobuf")
        },
        "init": status(protos, init.result) | {"capabilities": dict(init.capabilities)},
        "functions": [],
    }
    if init.result.status != protos.StatusResult.Success:
        return result
    metadata_request = protos.StreamingMessage(
        request_id="probe",
        functions_metadata_request=protos.FunctionsMetadataRequest(function_app_directory=str(app_dir)),
    )
    response = await library_worker.functions_metadata_request(WorkerRequest("WorkerMetadataRequest", metadata_request))
    result["metadata"] = status(protos, response.result) | {
        "use_default_metadata_indexing": response.use_default_metadata_indexing
    }
    result["functions"] = [
        describe(protos, metadata, handle_event._functions) for metadata in response.function_metadata_results
    ]
    return result


async def main(app_dir: Path, out: Path) -> None:
    try:
        result = await index(app_dir)
    finally:
        # The HTTP v2 server the worker started for streaming: not needed to index, stopped with the probe.
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
    out.write_text(json.dumps(result, indent=2, sort_keys=True), encoding="utf-8")


if __name__ == "__main__":
    app_directory, out_file = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    # As on the host: the app's directory is the working directory and comes first on sys.path.
    os.chdir(app_directory)
    sys.path.insert(0, str(app_directory))
    asyncio.run(main(app_directory, out_file))
