"""Ids: the one pattern every stored name is built from, owners' keys, new session ids."""

from __future__ import annotations

import hashlib
import re
import uuid

from shared.domain.errors import InvalidRequest

# Session ids, owner keys and every other part of a blob name or Cosmos id match this pattern.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ANONYMOUS_OWNER = "anonymous"


class InvalidId(InvalidRequest):
    """An id does not match `ID_PATTERN`; raised before any storage call."""

    def __init__(self, field_name: str, value: object) -> None:
        super().__init__(f"{field_name} must match {ID_PATTERN.pattern}", field_name)
        self.value = value


def validate_id(value: object, field_name: str = "session_id") -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise InvalidId(field_name, value)
    return value


def new_session_id() -> str:
    return uuid.uuid4().hex


def owner_key(principal_id: str) -> str:
    """The storage key of a principal: the id itself when it is a safe id, else a stable hash of it.

    Storage names and Cosmos ids are derived only from keys that match `ID_PATTERN`; identity providers
    do not promise that, so an unusual principal id is hashed rather than trusted into a blob path.
    """
    # Taken as is only when it is a safe id that cannot collide with the shared anonymous owner or with the
    # hashed form of another principal's id.
    if ID_PATTERN.fullmatch(principal_id) and principal_id != ANONYMOUS_OWNER and not principal_id.startswith("h-"):
        return principal_id
    return "h-" + hashlib.sha256(principal_id.encode("utf-8")).hexdigest()[:40]
