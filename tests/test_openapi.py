"""The OpenAPI document: it describes exactly the routes the function app registers, it is valid OpenAPI 3.1,
and its request schemas accept and refuse what the handlers do. (Every live answer in the API tests is also
validated against it: see `tests/api_helpers.py`.)"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator
from pydantic import ValidationError

from shared.domain.ids import ID_PATTERN
from shared.domain.routing import ROUTES
from shared.http import models as api
from shared.http.routes import ROUTE_TABLE as OPERATIONS
from shared.http.routes import document
from tests.api_helpers import assert_conforms, component_errors, documented_operation
from tools.devserver import http_functions

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def registered_operations() -> set[tuple[str, str]]:
    return {(method.lower(), "/" + route) for route, methods, _ in http_functions() for method in methods}


def documented_operations() -> set[tuple[str, str]]:
    return {(method, path) for path, item in document()["paths"].items() for method in item if method in METHODS}


def test_the_function_app_routes_and_the_document_operations_are_the_same_set() -> None:
    registered = registered_operations()
    assert registered, "no HTTP function found on function_app.app"
    assert registered == documented_operations()
    assert documented_operations() == {(op.method, op.path) for op in OPERATIONS}


def test_the_document_is_valid_openapi_3_1() -> None:
    spec = document()
    assert spec["openapi"].startswith("3.1.")
    errors = [error.message for error in OpenAPIV31SpecValidator(spec).iter_errors()]
    assert errors == []


def test_operation_ids_are_unique_and_every_path_parameter_is_declared() -> None:
    ids = [operation["operationId"] for item in document()["paths"].values() for operation in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in document()["paths"].items():
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"\{(\w+)\}", path)), (path, operation["operationId"])


def test_every_error_is_documented_as_the_error_body_and_protected_routes_need_a_key() -> None:
    for path, item in document()["paths"].items():
        for operation in item.values():
            for status, response in operation["responses"].items():
                if int(status) >= 400 and status != "401":
                    schema = response["content"]["application/json"]["schema"]
                    refs = [schema.get("$ref")] + [option["$ref"] for option in schema.get("anyOf", [])]
                    # The OpenAI-compatible routes answer errors in OpenAI's shape, so its SDKs raise typed errors.
                    body = "OpenAIErrorResponse" if path.startswith("/v1/") else "ErrorResponse"
                    assert f"#/components/schemas/{body}" in refs, (path, status)
            assert "500" in operation["responses"], path
            public = path in ("/health", "/openapi.json", "/dashboard", "/dashboard/assets/{name}")
            assert ("security" in operation) is not public, path


def test_the_session_id_parameter_and_the_route_enum_are_the_ones_the_code_checks() -> None:
    schemas = document()["components"]["schemas"]
    chat = schemas["ChatRequest"]
    assert chat["additionalProperties"] is False and chat["required"] == ["message"]
    assert chat["properties"]["route"]["enum"] == list(ROUTES)
    session_id = chat["properties"]["session_id"]["anyOf"][0]
    assert session_id["pattern"] == ID_PATTERN.pattern
    for item in document()["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "session_id":
                    assert parameter["schema"]["pattern"] == ID_PATTERN.pattern


@pytest.mark.parametrize(
    "body",
    [
        {"message": "hi"},
        {"message": "hi", "session_id": "abc-123", "route": "cloud", "stream": True},
        {"message": "hi", "route": "mars"},
        {"message": "hi", "session_id": "../x"},
        {"message": "hi", "colour": "blue"},
        {"message": ""},
        {"message": 3},
        {"message": "hi", "stream": "yes"},
        {},
    ],
)
def test_the_chat_request_schema_accepts_and_refuses_what_the_handler_does(body: dict[str, Any]) -> None:
    try:
        api.ChatRequest.model_validate(body)
        handler_accepts = True
    except ValidationError:
        handler_accepts = False
    assert (component_errors("ChatRequest", body) == []) is handler_accepts


def fake_response(method: str, path: str, status: int, body: Any) -> httpx.Response:
    request = httpx.Request(method, f"http://testserver/api{path}")
    return httpx.Response(status, json=body, request=request)


def test_the_conformance_check_refuses_a_wrong_body_an_undocumented_status_and_a_stray_route() -> None:
    """The check every API test's client runs must be able to fail, or those tests prove nothing about the document."""
    good = {"error": {"code": "session_not_found", "message": "No such session."}}
    assert_conforms(fake_response("GET", "/sessions/abc", 404, good))
    with pytest.raises(AssertionError, match="required property"):
        assert_conforms(fake_response("GET", "/sessions/abc", 200, {"session_id": "abc"}))
    with pytest.raises(AssertionError, match="not documented"):
        assert_conforms(fake_response("GET", "/sessions/abc", 418, good))
    with pytest.raises(AssertionError, match="undocumented route"):
        assert_conforms(fake_response("GET", "/nowhere", 200, {}))
    with pytest.raises(AssertionError, match="without a body"):
        assert_conforms(fake_response("DELETE", "/sessions/abc", 204, {"deleted": True}))


def test_requests_are_matched_to_their_operation_with_literal_segments_first() -> None:
    assert documented_operation("GET", "/api/sessions/abc")["operationId"] == "getSession"  # type: ignore[index]
    assert documented_operation("POST", "/api/sessions/abc/resume")["operationId"] == "resumeSession"  # type: ignore[index]
    assert documented_operation("PUT", "/api/sessions/abc") is None
    paths = document()["paths"]
    for literal in (p for p in paths if p.startswith("/sessions/") and "{" not in p):
        for method, operation in paths[literal].items():
            assert documented_operation(method, f"/api{literal}") == operation
