"""One HTTP call as a handler sees it: the request, its validated path parameters, its body and caller, and
the process's services (built on first use, so a bad body is refused before storage is even reached)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel

from shared.config import Settings
from shared.http.body import read_body, validate
from shared.http.errors import ApiError
from shared.http.identity import Caller, caller_of
from shared.services.audit import Audited
from shared.services.container import Services

M = TypeVar("M", bound=BaseModel)
Provider = Callable[[], Awaitable[Services]]


@dataclass
class Call:
    request: Request
    settings: Settings
    params: Mapping[str, str]
    provider: Provider

    def param(self, name: str) -> str:
        return self.params[name]

    @functools.cached_property
    def caller(self) -> Caller:
        return caller_of(self.request, self.settings)

    async def services(self) -> Services:
        return await self.provider()

    @contextlib.asynccontextmanager
    async def audited(self, *, action: str, session_id: str | None) -> AsyncIterator[Audited]:
        """The caller's `action` on a session, audited with the outcome of the block (see `AuditLog.audited`).
        The caller is read before the services are reached, so a bad principal is refused first."""
        owner = self.caller.owner
        services = await self.services()
        async with services.audit.audited(owner, session_id, action) as note:
            yield note

    async def body(self, model: type[M], *, optional: bool = False, limit: int | None = None) -> M:
        """The JSON body validated as `model`; with `optional`, no body reads as `{}`."""
        data = await read_body(self.request, limit=limit or self.settings.request_max_bytes, optional=optional)
        return validate(model, {} if data is None else data)

    def require_admin(self) -> Caller:
        if not self.caller.is_admin:
            raise forbidden(self.settings)
        return self.caller


def forbidden(settings: Settings) -> ApiError:
    return ApiError(403, "forbidden", f"This needs the '{settings.admin_role}' role.")
