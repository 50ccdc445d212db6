#!/bin/sh
# azd postprovision hook (macOS/Linux): point a local run (`func start`) at the resources azd just
# provisioned by writing local.settings.json (git-ignored) at the project root.
#
#   - endpoints and names come from the azd environment (`azd env get-values`: main.bicep outputs
#     plus the values set with `azd env set`); no key is written: local runs authenticate with the
#     developer's Azure CLI sign-in (principalId got the data roles during provisioning);
#   - AzureWebJobsStorage stays on Azurite (UseDevelopmentStorage=true): the host's own storage is
#     not shared with the deployed app;
#   - settings already in the file that this hook does not manage (LOCAL_MODEL_*, API keys of
#     third-party backends, tuning knobs) are kept; the emulator-only settings STORAGE_CONNECTION_STRING,
#     COSMOS_KEY and COSMOS_CREATE_RESOURCES are removed, since with them the code would use the
#     emulators' keys against Azure.
# Run it again by hand with `azd hooks run postprovision`.
set -eu

root=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)

if [ -x "$root/.venv/bin/python" ]; then
  python="$root/.venv/bin/python"
elif command -v python3 >/dev/null 2>&1; then
  python=python3
else
  echo "postprovision: python3 not found; cannot write local.settings.json" >&2
  exit 1
fi

# azd passes the environment's values to hooks; asking azd also works when the script is run by hand.
if command -v azd >/dev/null 2>&1; then
  azd_values=$(azd env get-values --output json)
else
  azd_values='{}'
fi

"$python" - "$root/local.settings.json" "$azd_values" <<'PY'
import json
import os
import sys
from pathlib import Path

target = Path(sys.argv[1])
env = {**os.environ, **json.loads(sys.argv[2])}

# Always set from the provisioned resources (main.bicep outputs).
RESOURCE_KEYS = (
    "STORAGE_BLOB_ENDPOINT",
    "SNAPSHOT_CONTAINER",
    "COSMOS_ENDPOINT",
    "COSMOS_DATABASE",
    "COSMOS_TURNS_CONTAINER",
    "COSMOS_SESSIONS_CONTAINER",
    "COSMOS_AUDIT_CONTAINER",
)
# Remote model backends: set when the azd environment has a value, else left as they are.
# LOCAL_MODEL_* is not among them: "local" means next to the runtime, which differs here.
BACKEND_KEYS = (
    "CLOUD_MODEL_ENDPOINT",
    "CLOUD_MODEL_NAME",
    "FOUNDRY_MODEL_ENDPOINT",
    "FOUNDRY_MODEL_NAME",
    "APIM_MODEL_ENDPOINT",
    "APIM_MODEL_NAME",
)
EMULATOR_ONLY_KEYS = ("STORAGE_CONNECTION_STRING", "COSMOS_KEY", "COSMOS_CREATE_RESOURCES")

missing = [key for key in RESOURCE_KEYS if not env.get(key)]
if missing:
    sys.exit(f"postprovision: the azd environment lacks {', '.join(missing)}; run `azd provision` first")

settings = json.loads(target.read_text(encoding="utf-8")) if target.exists() else {}
values = settings.get("Values") or {}
for key in EMULATOR_ONLY_KEYS:
    values.pop(key, None)
values.update({key: env[key] for key in RESOURCE_KEYS})
values.update({key: env[key] for key in BACKEND_KEYS if env.get(key)})
if env.get("CLOUD_MODEL_ENDPOINT"):
    # The provisioned Azure OpenAI account has keys disabled; a key kept from earlier would be
    # sent to it instead of the developer's token.
    values.pop("CLOUD_MODEL_API_KEY", None)
values.update(
    {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "PYTHON_ENABLE_INIT_INDEXING": "1",
    }
)
settings["IsEncrypted"] = False
settings["Values"] = dict(sorted(values.items()))

# The file may hold API keys of third-party backends: readable by its owner only.
partial = target.with_name(target.name + ".tmp")
fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w", encoding="utf-8") as out:
    json.dump(settings, out, indent=2)
    out.write("\n")
os.replace(partial, target)
print(f"postprovision: wrote {target}: no Azure keys, a local run authenticates with your `az login` sign-in")
PY
