"""Reading a request's JSON body: size, media type and encoding checked before parsing, then validation
against a pydantic model with an error that names the field."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from shared.domain.backends import ROUTES
from shared.domain.ids import ID_PATTERN
from shared.http.errors import ApiError

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, *, limit: int, optional: bool = False) -> Any:
    """The JSON body, with the size, type and encoding checked before it is parsed."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "malformed_request", "Content-Length is not a number.")
        if int(declared) > limit:
            raise ApiError(413, "body_too_large", f"Request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"Request body is larger than {limit} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if optional:
            return None
        raise ApiError(400, "malformed_request", "A JSON body is required.")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/json", "") and not content_type.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_request", "Body is not valid UTF-8.") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise ApiError(400, "malformed_request", "Body is nested too deeply.") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "malformed_request", f"Body is not valid JSON: {exc.msg} at position {exc.pos}.") from None
    except ValueError:  # valid JSON Python refuses to convert: an integer of more than 4300 digits
        raise ApiError(400, "malformed_request", "Body holds a number too long to read.") from None
    if data is None:  # `null` is not "no body": an optional body, when sent, is an object like any other
        raise ApiError(400, "malformed_request", "Body must be a JSON object.")
    if _SURROGATE_ESCAPE.search(text) and not _encodable(data):
        # `"\ud800"` is valid JSON but no character: it would fail later, when stored or sent to a model.
        raise ApiError(400, "malformed_request", "Body holds an unpaired UTF-16 surrogate escape.")
    return data


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _encodable(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_request", "Body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        kind = first["type"]
        if kind == "extra_forbidden":
            message = f"Unknown field '{field}'."
        elif kind == "literal_error":
            choices = ", ".join(ROUTES) if field == "route" else first.get("ctx", {}).get("expected", "")
            message = f"{field} must be one of {choices}."
        elif kind == "string_pattern_mismatch":
            message = f"{field} must match {ID_PATTERN.pattern}."
        else:
            message = f"{field}: {first['msg']}."
        raise ApiError(422, "invalid_request", message, field) from None
