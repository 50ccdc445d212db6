"""Typed reads of the environment: each falls back to the spec's default and names the variable on error."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

from shared.config.spec import SPEC_BY_NAME
from shared.domain.backends import BACKENDS
from shared.domain.pricing import Price
from shared.domain.shapes import json_value


class SettingsError(ValueError):
    """A required setting is missing or a setting has a malformed value; the message names it."""


class Env:
    """Typed reads of the environment, each falling back to the spec default and naming the variable on error."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str) -> str | None:
        raw = self._environ.get(name)
        if raw is not None and raw.strip():
            return raw.strip()
        return SPEC_BY_NAME[name].default

    def url(self, name: str, *, required: bool = False) -> str:
        value = self.text(name)
        if not value:
            if required:
                raise SettingsError(f"{name} is required")
            return ""
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
        return value

    def integer(self, name: str, *, minimum: int, maximum: int | None = None) -> int:
        value = self.text(name)
        try:
            number = int(value or "")
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {value!r}") from None
        if number < minimum or (maximum is not None and number > maximum):
            raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {number}")
        return number

    def number(self, name: str, *, minimum: float, maximum: float) -> float:
        value = self.text(name)
        try:
            number = float(value or "")
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {value!r}") from None
        if not minimum <= number <= maximum:
            raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {number}")
        return number

    def optional_number(self, name: str, *, minimum: float, maximum: float) -> float | None:
        return self.number(name, minimum=minimum, maximum=maximum) if self.text(name) else None

    def flag(self, name: str) -> bool:
        value = (self.text(name) or "").lower()
        if value in ("true", "1", "yes"):
            return True
        if value in ("false", "0", "no", ""):
            return False
        raise SettingsError(f"{name} must be true or false, got {value!r}")

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = self.text(name) or ""
        if value not in allowed:
            raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def backend_list(self, name: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in (self.text(name) or "").split(",") if item.strip())
        unknown = [item for item in items if item not in BACKENDS]
        if unknown or len(set(items)) != len(items):
            raise SettingsError(f"{name} must list distinct backends from {', '.join(BACKENDS)}, got {items!r}")
        return items

    def container_name(self, name: str) -> str:
        value = self.text(name) or ""
        if not re.fullmatch(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]", value):
            raise SettingsError(f"{name} is not a valid blob container name: {value!r}")
        return value

    def price_table(self, name: str) -> dict[str, Price]:
        table = {} if self.text(name) is None else self.parsed(name, json_value)
        if not isinstance(table, dict):  # `null` included, as before `parsed` read it
            raise SettingsError(f"{name} must be a JSON object of backend or backend:model keys")
        prices: dict[str, Price] = {}
        for key, entry in table.items():
            backend = key.split(":", 1)[0]
            if backend not in BACKENDS:
                raise SettingsError(f"{name} key {key!r} must start with one of {', '.join(BACKENDS)}")
            if not isinstance(entry, dict) or not {"input", "output"} <= entry.keys():
                raise SettingsError(f"{name}[{key!r}] must be an object with numeric 'input' and 'output'")
            try:
                prices[key] = Price(float(entry["input"]), float(entry["output"]))
            except (TypeError, ValueError):
                raise SettingsError(f"{name}[{key!r}] prices must be numbers") from None
            if prices[key].input_per_million < 0 or prices[key].output_per_million < 0:
                raise SettingsError(f"{name}[{key!r}] prices must not be negative")
        return prices

    def parsed(self, name: str, parse: Callable[[str], Any]) -> Any:
        """The value as `parse` (a pure parser that raises ValueError) reads it; None when unset."""
        raw = self.text(name)
        if raw is None:
            return None
        try:
            return parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{name} {exc}") from None

    def checked(self, name: str, parse: Callable[[str], Any]) -> str | None:
        """The raw value, after `parse` accepted it."""
        self.parsed(name, parse)
        return self.text(name)

    def pii_redact_before_model(self) -> bool:
        # Masking what a cloud model is sent while storing the original would store a conversation the model
        # never saw (and leave earlier turns unmasked in the history it is sent): the setting builds on storage.
        if self.flag("PII_REDACT_BEFORE_MODEL") and not self.flag("PII_REDACTION"):
            raise SettingsError("PII_REDACT_BEFORE_MODEL=true needs PII_REDACTION=true")
        return self.flag("PII_REDACT_BEFORE_MODEL")


def parse_authentication_string(text: str | None) -> tuple[bool, str | None]:
    """(use Entra ID, client id) from `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` ('Authorization=AAD;ClientId=...').

    Raises ValueError naming what is wrong; the settings loader adds the variable's name.
    """
    if not text:
        return False, None
    pairs: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"must be key=value pairs separated by ';', got {part.strip()!r}")
        pairs[key.strip().lower()] = value.strip()
    unknown = set(pairs) - {"authorization", "clientid"}
    if unknown:
        raise ValueError(f"has unknown keys {sorted(unknown)}; expected Authorization=AAD and optionally ClientId")
    if pairs.get("authorization") != "AAD":
        raise ValueError("must contain Authorization=AAD (Entra ID is the only supported authentication)")
    return True, pairs.get("clientid")
