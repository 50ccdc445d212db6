"""Configuration: the settings spec (names, defaults, where each is set), typed environment reads, and the
one frozen `Settings` object. Imports only the domain's plain values."""

from shared.config.environment import SettingsError
from shared.config.settings import (
    DEFAULT_SYSTEM_PROMPT,
    BackendSettings,
    Settings,
    get_settings,
    reset_settings_cache,
)
from shared.config.spec import SETTINGS_SPEC, SettingSpec

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "SETTINGS_SPEC",
    "BackendSettings",
    "SettingSpec",
    "Settings",
    "SettingsError",
    "get_settings",
    "reset_settings_cache",
]
