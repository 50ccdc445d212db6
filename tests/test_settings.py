"""Settings: one typed object from the environment; bad or missing values fail at start, naming the variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config import SETTINGS_SPEC, Settings, SettingsError
from shared.domain.routing import learned

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = {
    "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
    "COSMOS_ENDPOINT": "https://127.0.0.1:8081/",
    "COSMOS_KEY": "a2V5",
}


def test_defaults_apply_when_only_required_settings_are_given() -> None:
    settings = Settings.from_env(MINIMAL)
    assert settings.snapshot_container == "conversations"
    assert settings.cosmos_database == "llmrouter"
    # No threshold set: the router version's own (learned-v1's, chosen when it was trained).
    assert settings.router.version == "learned-v1" and settings.router.local_threshold is None
    # (The value moves with each retraining: it is the one shipped in learned-v1.json.)
    assert settings.router.threshold() == learned.default_threshold() and 0.0 < learned.default_threshold() < 1.0
    assert settings.router.fallback_order == ("cloud", "foundry", "apim", "local")
    assert settings.configured_backends == ()
    assert settings.cosmos_create_resources is True  # a key means the local emulator
    assert settings.trust_principal_headers is False  # identity headers are only trusted when asked


@pytest.mark.parametrize(
    ("missing", "named"),
    [("COSMOS_ENDPOINT", "COSMOS_ENDPOINT"), ("STORAGE_CONNECTION_STRING", "STORAGE_BLOB_ENDPOINT")],
)
def test_missing_required_setting_names_the_variable(missing: str, named: str) -> None:
    env = {key: value for key, value in MINIMAL.items() if key != missing}
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONTEXT_MAX_MESSAGES", "many"),
        ("CONTEXT_MAX_MESSAGES", "0"),
        ("ROUTER_LOCAL_THRESHOLD", "1.5"),
        ("ROUTER_FALLBACK_ORDER", "cloud,mars"),
        ("ROUTER_STRONG_ORDER", "cloud,cloud"),
        ("TRUST_PRINCIPAL_HEADERS", "maybe"),
        ("PRICE_TABLE", "{not json"),
        ("PRICE_TABLE", "null"),
        ("PRICE_TABLE", '{"moon": {"input": 1, "output": 1}}'),
        ("PRICE_TABLE", '{"cloud": {"input": "cheap", "output": 1}}'),
        ("PRICE_TABLE", '{"cloud": {"input": -1, "output": 1}}'),
        ("SNAPSHOT_CONTAINER", "Bad_Name"),
        ("COSMOS_ENDPOINT", "not-a-url"),
        ("LOCAL_MODEL_ENDPOINT", "ftp://x"),
    ],
)
def test_malformed_setting_fails_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({**MINIMAL, name: value})


def test_backend_needs_a_model_name_when_its_endpoint_is_set() -> None:
    with pytest.raises(SettingsError, match="LOCAL_MODEL_NAME"):
        Settings.from_env({**MINIMAL, "LOCAL_MODEL_ENDPOINT": "http://localhost:11434/v1"})


def test_a_backend_is_configured_exactly_when_its_endpoint_is_set() -> None:
    settings = Settings.from_env(
        {
            **MINIMAL,
            "CLOUD_MODEL_ENDPOINT": "https://contoso.openai.azure.com/",
            "CLOUD_MODEL_NAME": "gpt-4o-mini",
            "APIM_MODEL_ENDPOINT": "https://gw.azure-api.net/openai",
            "APIM_MODEL_NAME": "gpt-4o",
            "APIM_MODEL_API_KEY": "sub-key",
            "FOUNDRY_MODEL_NAME": "phi-4",  # a name without an endpoint does not turn a backend on
        }
    )
    assert settings.configured_backends == ("cloud", "apim")
    assert settings.backends["cloud"].is_azure and settings.backends["cloud"].api_key is None
    assert "sub-key" not in repr(settings)  # keys never show up in reprs or logs of the settings


def test_price_lookup_prefers_backend_and_model_over_backend() -> None:
    table = {"cloud": {"input": 1, "output": 2}, "cloud:gpt-4o": {"input": 5, "output": 15}}
    settings = Settings.from_env({**MINIMAL, "PRICE_TABLE": json.dumps(table)})
    assert settings.price("cloud", "gpt-4o").input_per_million == 5  # type: ignore[union-attr]
    assert settings.price("cloud", "gpt-4o-mini").output_per_million == 2  # type: ignore[union-attr]
    assert settings.price("local", "llama3.2") is None


def test_every_setting_is_documented_in_the_readme_and_the_sample() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sample = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    for spec in SETTINGS_SPEC:
        assert f"`{spec.name}`" in readme, f"{spec.name} is missing from the README configuration table"
        assert spec.name in sample, f"{spec.name} is missing from local.settings.sample.json"


def test_keys_and_connection_strings_are_marked_local_only() -> None:
    for spec in SETTINGS_SPEC:
        if spec.name.endswith(("_KEY", "CONNECTION_STRING")) and spec.name != "APPLICATIONINSIGHTS_CONNECTION_STRING":
            assert spec.azure == "local", f"{spec.name} holds a secret and must never be set in Azure"
