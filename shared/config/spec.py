"""Every setting the service reads, by name, with its default and where it is set.

`SETTINGS_SPEC` is the single list of names: the four backends' settings, generated here, and the rest, read
from the data file `settings.toml` beside this module. The README table, `local.settings.sample.json` and the
Bicep app settings are checked against it (tools/settings_docs.py and the tests), so a name cannot drift
between them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shared.domain.backends import BACKENDS

Where = Literal["bicep", "optional", "local"]


@dataclass(frozen=True)
class SettingSpec:
    name: str
    default: str | None
    description: str
    # "bicep": the deployment must set it; "optional": the deployment may set it;
    # "local": only for local runs against the emulators, never in Azure (keys, connection strings).
    azure: Where


def _backend_specs() -> list[SettingSpec]:
    specs: list[SettingSpec] = []
    labels = {
        "local": "local OpenAI-compatible model (Ollama, Foundry Local, vLLM)",
        "cloud": "cloud model (Azure OpenAI or OpenAI)",
        "foundry": "Microsoft Foundry model",
        "apim": "API Management gateway in front of a model",
    }
    for backend in BACKENDS:
        prefix = f"{backend.upper()}_MODEL_"
        specs += [
            SettingSpec(
                prefix + "ENDPOINT", None, f"Base URL of the {labels[backend]}; the backend is on when set.", "optional"
            ),
            SettingSpec(
                prefix + "NAME", None, f"Model (or Azure deployment) name of the {backend} backend.", "optional"
            ),
            SettingSpec(
                prefix + "API_KEY",
                None,
                f"API key of the {backend} backend. Azure endpoints without a key use Entra ID"
                + ("; APIM sends it as Ocp-Apim-Subscription-Key." if backend == "apim" else "."),
                "local",
            ),
            SettingSpec(
                prefix + "CONTEXT_TOKENS",
                None,
                f"Context window of the {backend} model in tokens; requests are fitted to it less the answer's "
                "reserve (MODEL_MAX_OUTPUT_TOKENS, else 1024 or a quarter of the window). Unset: CONTEXT_MAX_* only.",
                "optional",
            ),
        ]
    return specs


def _file_specs() -> list[SettingSpec]:
    with (Path(__file__).parent / "settings.toml").open("rb") as file:
        table = tomllib.load(file)
    return [
        SettingSpec(item["name"], item.get("default"), item["description"], item["azure"]) for item in table["setting"]
    ]


SETTINGS_SPEC: tuple[SettingSpec, ...] = (*_backend_specs(), *_file_specs())
SPEC_BY_NAME = {spec.name: spec for spec in SETTINGS_SPEC}
