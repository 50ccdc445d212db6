"""Which storage failures are worth a retry (the HTTP layer answers them 503 with Retry-After)."""

from __future__ import annotations

from azure.core.exceptions import AzureError


def is_transient(exc: BaseException) -> bool:
    """No answer at all, or a status that means "later" (not 403 RBAC, not a 404 or 412 bug)."""
    if not isinstance(exc, AzureError):
        return False
    status = getattr(exc, "status_code", None)
    return status is None or status in (408, 429, 500, 502, 503, 504)
