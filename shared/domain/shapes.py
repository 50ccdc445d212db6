"""Checks of untrusted JSON shapes (an import's payload), with errors that name the exact place.

Each check raises `InvalidImport(where, reason)` with a path such as `data[3].role`; values the caller sent
are never echoed except small printable ones (a role, a type name).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.domain.errors import InvalidImport


def json_value(text: str) -> Any:
    """A setting's JSON text parsed; ValueError saying where it is malformed (the loader adds the setting's name)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON: {exc.msg} at position {exc.pos}") from None


def kind_of(value: object) -> str:
    """A JSON type name for error messages (the value itself is not echoed)."""
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "a list"
        case dict():
            return "an object"
    return type(value).__name__


def shown(value: object) -> str:
    """A short, safe rendering of a small value the caller sent (a role, a type name)."""
    if isinstance(value, str) and len(value) <= 32 and value.isprintable():
        return repr(value)
    return kind_of(value)


def as_object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidImport(where, f"must be an object, got {kind_of(value)}")
    return value


def as_list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidImport(where, f"must be a list, got {kind_of(value)}")
    return value


def optional_str(container: Mapping[str, Any], key: str, where: str) -> str | None:
    value = container.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidImport(f"{where}.{key}", f"must be a string or null, got {kind_of(value)}")
    return value


def required_str(container: Mapping[str, Any], key: str, where: str) -> str:
    value = container.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidImport(f"{where}.{key}", f"must be a non-empty string, got {kind_of(value)}")
    return value
