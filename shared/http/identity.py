"""Who is calling: the App Service Authentication principal when trusted and present, else the anonymous owner."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from fastapi import Request

from shared.config import Settings
from shared.domain.ids import ANONYMOUS_OWNER, owner_key
from shared.http.errors import ApiError

# A principal id as identity providers issue it (an object id, an email, ...): hashed by owner_key before use.
PRINCIPAL_PATTERN = re.compile(r"^[^\x00-\x1f/]{1,256}$")


@dataclass(frozen=True)
class Caller:
    owner: str
    principal_id: str | None
    roles: frozenset[str]
    is_admin: bool


_ROLE_CLAIMS = ("roles", "role", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")


def caller_of(request: Request, settings: Settings) -> Caller:
    """Who is calling: the App Service Authentication principal when trusted and present, else anonymous.

    These headers are only trustworthy behind App Service Authentication, which strips any the client sent;
    `TRUST_PRINCIPAL_HEADERS=false` ignores them entirely.
    """
    principal_id = request.headers.get("x-ms-client-principal-id") if settings.trust_principal_headers else None
    if not principal_id:
        return Caller(ANONYMOUS_OWNER, None, frozenset(), False)
    principal_id = principal_id.strip()
    if not principal_id or len(principal_id) > 256 or any(ord(ch) < 32 for ch in principal_id):
        raise ApiError(400, "invalid_principal", "X-MS-CLIENT-PRINCIPAL-ID is not a valid principal id.")
    roles: set[str] = set()
    encoded = request.headers.get("x-ms-client-principal")
    if encoded:
        try:
            principal = json.loads(base64.b64decode(encoded + "=" * (-len(encoded) % 4)))
            role_type = principal.get("role_typ") or "roles"
            for claim in principal.get("claims") or []:
                if claim.get("typ") in (role_type, *_ROLE_CLAIMS) and isinstance(claim.get("val"), str):
                    roles.add(claim["val"])
        except (binascii.Error, ValueError, AttributeError, TypeError, RecursionError):
            raise ApiError(400, "invalid_principal", "X-MS-CLIENT-PRINCIPAL is not valid base64 JSON.") from None
    return Caller(owner_key(principal_id), principal_id, frozenset(roles), settings.admin_role in roles)
