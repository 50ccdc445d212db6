"""What one route is: method, path template, handler, and what the OpenAPI document says about it.

The route table (`routes.py`) is a tuple of these; the function app's triggers, the dev server, path
parameters and `openapi.json` all derive from it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel

from shared.domain.ids import ID_PATTERN
from shared.http.call import Call
from shared.http.identity import PRINCIPAL_PATTERN
from shared.http.static import ASSETS

Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class PathParameter:
    pattern: re.Pattern[str]
    description: str | None = None
    schema: Mapping[str, Any] | None = None  # for the OpenAPI document; default: a string with the pattern


# Every path parameter any route uses, with the pattern it must match (422 naming it otherwise).
PATH_PARAMETERS: dict[str, PathParameter] = {
    "user_id": PathParameter(PRINCIPAL_PATTERN, "The user's principal id (X-MS-CLIENT-PRINCIPAL-ID)."),
    "session_id": PathParameter(ID_PATTERN),
    # Any number names a turn; one the session does not have (0 included) is a 404, as a missing session is.
    "turn": PathParameter(
        re.compile(r"^[0-9]{1,9}$"),
        "The turn's number (1 is the first).",
        {"type": "integer", "minimum": 0, "maximum": 999_999_999},
    ),
    # A file name; one the dashboard's whitelist does not hold is a 404, as a missing file is.
    "name": PathParameter(
        re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"),
        "One of the dashboard's packaged files.",
        {"type": "string", "enum": sorted(ASSETS)},
    ),
}


@dataclass(frozen=True)
class Route:
    method: str  # lower case, as OpenAPI writes it
    path: str  # relative to /api, e.g. "/sessions/{session_id}"
    handler: Handler
    operation_id: str
    summary: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    success: int = 200
    errors: tuple[int, ...] = ()
    request_optional: bool = False
    streams: bool = False
    public: bool = False  # anonymous in Azure (no function key)
    query: tuple[dict[str, Any], ...] = ()
    # Error statuses answered with the success model instead of an error (health's 503 "degraded" report).
    report_statuses: tuple[int, ...] = ()
    openai: bool = False  # an OpenAI-compatible route: errors in OpenAI's shape, documented with its schema
    response_headers: tuple[tuple[str, str], ...] = ()  # (name, description) of headers on every answer
    # A success body that is a file, not JSON (the dashboard): its media types; and the statuses answered without
    # a body (304 Not Modified, a redirect), with what each means.
    files: tuple[str, ...] = ()
    bodiless: tuple[tuple[int, str], ...] = ()

    @property
    def template(self) -> str:
        """The Functions route template: the path without its leading slash."""
        return self.path.lstrip("/")

    @property
    def function_name(self) -> str:
        """The Azure Functions function name: the handler's name."""
        return self.handler.__name__

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(re.findall(r"\{(\w+)\}", self.path))

    def match(self, url_path: str) -> dict[str, str] | None:
        """The raw path parameters when `url_path` (`/api/...`) is this route's, else None."""
        pattern = "^/api" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]*)", re.escape(self.path)) + "/?$"
        found = re.match(pattern, url_path)
        return found.groupdict() if found else None
