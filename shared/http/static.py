"""The dashboard's packaged files (shared/http/dashboard/), served as they are: never data, never a name not listed.

`PAGE` and the `ASSETS` whitelist are every file that can be served (a test checks they are exactly the folder's
content). Every answer carries a strict Content-Security-Policy (no inline script or style, nothing from another
origin) and `X-Content-Type-Options: nosniff`; `Cache-Control: no-cache` with a weak ETag (a deploy is seen at once,
an unchanged file costs a 304), gzipped when the client accepts it (compressed once per process).
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response

FOLDER = Path(__file__).resolve().parent / "dashboard"
PAGE = "index.html"
_JS = "text/javascript; charset=utf-8"
# Every file the asset route serves, with its content type.
ASSETS: dict[str, str] = {
    "app.js": _JS,
    "api.js": _JS,
    "charts.js": _JS,
    "dom.js": _JS,
    "overview.js": _JS,
    "sessions.js": _JS,
    "transcript.js": _JS,
    "dashboard.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
CONTENT_TYPES = {PAGE: "text/html; charset=utf-8", **ASSETS}
# The media types the OpenAPI document lists for the asset route.
ASSET_MEDIA_TYPES = tuple(sorted({content_type.split(";")[0] for content_type in ASSETS.values()}))

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    gzipped: bytes
    content_type: str
    etag: str


@cache
def static_file(name: str) -> StaticFile:
    """A packaged file (`PAGE` or one of `ASSETS`), read and compressed once per process (deterministic gzip: no
    name, no time). Any other name is a KeyError: nothing outside the table is ever read."""
    content_type = CONTENT_TYPES[name]
    body = (FOLDER / name).read_bytes()
    return StaticFile(
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        content_type=content_type,
        # Weak: one tag for the plain and the gzipped bytes of a file (the same representation).
        etag='W/"' + hashlib.sha256(body).hexdigest()[:32] + '"',
    )


def _accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def serve(request: Request, name: str) -> Response:
    """The file as the request asks for it: 304 when its ETag matches, gzipped when accepted."""
    file = static_file(name)
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache", "ETag": file.etag, "Vary": "Accept-Encoding"}
    match = request.headers.get("if-none-match", "")
    if match and (match.strip() == "*" or file.etag in (tag.strip() for tag in match.split(","))):
        return Response(status_code=304, headers=headers)
    body = file.body
    if _accepts_gzip(request):
        body = file.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=file.content_type, headers=headers)
