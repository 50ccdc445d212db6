"""Helpers for the HTTP API tests: clients that check every answer against the OpenAPI document, an SSE
parser, principal headers, and direct reads of Blob Storage and Cosmos DB.

Every client made here validates each JSON response it receives against the schema the OpenAPI document gives
for that (method, path, status), so a test that exercises a route also proves the document tells the truth
about it; an undocumented status fails the request that produced it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from shared.http.routes import document

SSE_TYPE = "text/event-stream"


# ---- OpenAPI conformance -----------------------------------------------------------------------------------------


@cache
def _path_patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    patterns = []
    for path in document()["paths"]:
        regex = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path))
        patterns.append((re.compile(f"^/api{regex}/?$"), path))
    return tuple(patterns)


def documented_operation(method: str, url_path: str) -> dict[str, Any] | None:
    """The OpenAPI operation object that serves this request, or None when the document has none.

    A literal segment wins over a template (`/sessions/import` over `/sessions/{session_id}`), as in the host.
    """
    matching = sorted((path.count("{"), path) for pattern, path in _path_patterns() if pattern.match(url_path))
    for _, path in matching:
        operation = document()["paths"][path].get(method.lower())
        if operation is not None:
            return operation
    return None


def schema_errors(schema: Mapping[str, Any], instance: Any) -> list[str]:
    """Validation errors of `instance` against a schema that may `$ref` the document's component schemas."""
    root = {**schema, "components": document()["components"]}
    validator = Draft202012Validator(root)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


def component_errors(name: str, instance: Any) -> list[str]:
    return schema_errors({"$ref": f"#/components/schemas/{name}"}, instance)


def assert_conforms(response: httpx.Response) -> None:
    """The response is what the document promises for its operation and status (JSON bodies are validated)."""
    request = response.request
    where = f"{request.method} {request.url.path} -> {response.status_code}"
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    operation = documented_operation(request.method, request.url.path)
    if operation is None:
        # Not an operation of ours (unknown path or wrong method): still one of our JSON errors.
        assert response.status_code in (404, 405), f"{where}: undocumented route answered"
        assert content_type == "application/json", f"{where}: {content_type}"
        errors = component_errors("ErrorResponse", response.json())
        assert not errors, f"{where}: {errors}"
        return
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{where}: status not documented (has {sorted(operation['responses'])})"
    content = documented.get("content")
    if content is None:
        assert not response.content, f"{where}: documented without a body, but one was sent"
        return
    assert content_type in content, f"{where}: {content_type!r} not among documented {sorted(content)}"
    if content_type == SSE_TYPE:
        return  # the stream's events are checked by the streaming tests (each `done` is a ChatResponse)
    if content_type != "application/json":
        return  # a file (the dashboard's page and assets): its type is the documented one, its bytes are not JSON
    errors = schema_errors(content[content_type]["schema"], response.json())
    assert not errors, f"{where}: {errors}"


def _check(response: httpx.Response) -> None:
    if response.headers.get("content-type", "").startswith(SSE_TYPE):
        assert_conforms(response)  # does not read the body: the test consumes the stream
        return
    response.read()
    assert_conforms(response)


async def _acheck(response: httpx.Response) -> None:
    if not response.headers.get("content-type", "").startswith(SSE_TYPE):
        await response.aread()
    assert_conforms(response)


def client(base_url: str, headers: Mapping[str, str] | None = None) -> httpx.Client:
    """A client on the live API whose every answer is checked against the OpenAPI document."""
    return httpx.Client(base_url=base_url, headers=dict(headers or {}), timeout=30, event_hooks={"response": [_check]})


def async_client(base_url: str, headers: Mapping[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url, headers=dict(headers or {}), timeout=30, event_hooks={"response": [_acheck]}
    )


def conforming(api: httpx.Client) -> httpx.Client:
    """Add the document check to the shared `api` fixture's client."""
    api.event_hooks = {"response": [_check]}
    return api


# ---- identity ----------------------------------------------------------------------------------------------------


def principal(user_id: str, roles: Iterable[str] = ()) -> dict[str, str]:
    """The headers App Service Authentication adds for a signed-in user."""
    claims = [{"typ": "roles", "val": role} for role in roles]
    blob = {"auth_typ": "aad", "name_typ": "name", "role_typ": "roles", "claims": claims}
    encoded = base64.b64encode(json.dumps(blob).encode()).decode()
    return {"X-MS-CLIENT-PRINCIPAL-ID": user_id, "X-MS-CLIENT-PRINCIPAL": encoded}


# ---- Server-Sent Events ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    name: str
    data: Any


def parse_sse(lines: Iterable[str]) -> Iterator[Event]:
    """Events per the SSE spec: `event:`/`data:` fields, multi-line data joined by newlines, comments ignored,
    dispatched on a blank line; a missing event name means "message". Data is decoded as JSON."""
    name = ""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield Event(name or "message", json.loads("\n".join(data)))
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    if data:
        yield Event(name or "message", json.loads("\n".join(data)))


def stream_chat(api: httpx.Client, body: Mapping[str, Any], **kwargs: Any) -> tuple[httpx.Response, list[Event]]:
    """POST /chat asking for SSE; the response (closed) and every event in order."""
    headers = {"Accept": SSE_TYPE, **kwargs.pop("headers", {})}
    with api.stream("POST", "/chat", json=body, headers=headers, **kwargs) as response:
        if not response.headers.get("content-type", "").startswith(SSE_TYPE):
            response.read()
            return response, []
        events = list(parse_sse(response.iter_lines()))
    return response, events


# ---- the stores, read directly -----------------------------------------------------------------------------------


async def stored_blobs(env: Mapping[str, str]) -> list[str]:
    """Names of every blob in the test's snapshot container, read with the Storage SDK (not our code)."""
    from azure.storage.blob.aio import ContainerClient

    async with ContainerClient.from_connection_string(
        env["STORAGE_CONNECTION_STRING"], env["SNAPSHOT_CONTAINER"]
    ) as container:
        if not await container.exists():
            return []
        return [blob.name async for blob in container.list_blobs()]


async def stored_documents(env: Mapping[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Every document of the turns and sessions containers, read with the Cosmos SDK (not our code)."""
    from azure.cosmos.aio import CosmosClient
    from azure.cosmos.exceptions import CosmosResourceNotFoundError

    found: dict[str, list[dict[str, Any]]] = {}
    async with CosmosClient(env["COSMOS_ENDPOINT"], credential=env["COSMOS_KEY"]) as cosmos:
        database = cosmos.get_database_client(env["COSMOS_DATABASE"])
        for name in ("turns", "sessions"):
            container = database.get_container_client(name)
            try:
                found[name] = [item async for item in container.read_all_items()]
            except CosmosResourceNotFoundError:
                found[name] = []
    return found


async def drop_container(env: Mapping[str, str], name: str) -> None:
    """Delete one Cosmos container with the SDK (not our code): a store that fails for that container only."""
    from azure.cosmos.aio import CosmosClient

    async with CosmosClient(env["COSMOS_ENDPOINT"], credential=env["COSMOS_KEY"]) as cosmos:
        await cosmos.get_database_client(env["COSMOS_DATABASE"]).delete_container(name)


# ---- the example requests file (tests/api.http) -----------------------------------------------------------------


@dataclass(frozen=True)
class HttpFileRequest:
    title: str
    name: str | None
    method: str
    url: str
    headers: dict[str, str]
    body: str


def parse_http_file(text: str) -> tuple[dict[str, str], list[HttpFileRequest]]:
    """File variables and requests of a REST Client `.http` file (`###` separators, `# @name`, `@var = value`)."""
    variables: dict[str, str] = {}
    requests: list[HttpFileRequest] = []
    for index, block in enumerate(re.split(r"^###", text, flags=re.MULTILINE)):
        lines = block.splitlines()
        # Text before the first separator has no title; after one, the rest of the `###` line is the title.
        title, lines = ("", lines) if index == 0 else (lines[0].strip(), lines[1:])
        name = None
        request_line: str | None = None
        headers: dict[str, str] = {}
        body: list[str] = []
        in_body = False
        for line in lines:
            if in_body:
                body.append(line)
                continue
            stripped = line.strip()
            if request_line is None:
                if match := re.match(r"^#\s*@name\s+(\S+)", stripped):
                    name = match.group(1)
                elif match := re.match(r"^@(\w+)\s*=\s*(.*)$", stripped):
                    variables[match.group(1)] = match.group(2).strip()
                elif stripped and not stripped.startswith(("#", "//")):
                    request_line = stripped
                continue
            if not stripped:
                in_body = True
            else:
                key, _, value = stripped.partition(":")
                headers[key.strip()] = value.strip()
        if request_line is not None:
            method, url, *_ = request_line.split()
            requests.append(HttpFileRequest(title, name, method, url, headers, "\n".join(body).strip()))
    return variables, requests


def resolve_http_variables(text: str, variables: Mapping[str, str], responses: Mapping[str, httpx.Response]) -> str:
    """Substitute `{{var}}` and REST Client request references `{{name.response.body.$.field}}`."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1).strip()
        if reference := re.fullmatch(r"(\w+)\.response\.body\.\$\.(\w+)", key):
            return str(responses[reference.group(1)].json()[reference.group(2)])
        return resolve_http_variables(variables[key], variables, responses)

    return re.sub(r"\{\{(.+?)\}\}", value, text)
