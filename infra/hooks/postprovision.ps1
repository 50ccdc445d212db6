# azd postprovision hook (Windows, PowerShell 7): point a local run (`func start`) at the resources
# azd just provisioned by writing local.settings.json (git-ignored) at the project root.
# Same behaviour as postprovision.sh (keep the two in step):
#   - endpoints and names come from the azd environment (`azd env get-values`: main.bicep outputs
#     plus the values set with `azd env set`); no key is written: local runs authenticate with the
#     developer's Azure CLI sign-in (principalId got the data roles during provisioning);
#   - AzureWebJobsStorage stays on Azurite (UseDevelopmentStorage=true);
#   - settings already in the file that this hook does not manage are kept; the emulator-only
#     settings STORAGE_CONNECTION_STRING, COSMOS_KEY and COSMOS_CREATE_RESOURCES are removed.
# Run it again by hand with `azd hooks run postprovision`.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$root = Resolve-Path (Join-Path $PSScriptRoot '..' '..')
$target = Join-Path $root 'local.settings.json'

# azd passes the environment's values to hooks; asking azd also works when the script is run by hand.
$envValues = @{}
foreach ($item in [System.Environment]::GetEnvironmentVariables().GetEnumerator()) {
    $envValues[$item.Key] = $item.Value
}
if (Get-Command azd -ErrorAction SilentlyContinue) {
    $azdValues = azd env get-values --output json | Out-String | ConvertFrom-Json -AsHashtable
    if ($LASTEXITCODE -ne 0) { throw 'postprovision: azd env get-values failed' }
    foreach ($key in $azdValues.Keys) { $envValues[$key] = $azdValues[$key] }
}

# Always set from the provisioned resources (main.bicep outputs).
$resourceKeys = @(
    'STORAGE_BLOB_ENDPOINT', 'SNAPSHOT_CONTAINER', 'COSMOS_ENDPOINT', 'COSMOS_DATABASE',
    'COSMOS_TURNS_CONTAINER', 'COSMOS_SESSIONS_CONTAINER', 'COSMOS_AUDIT_CONTAINER'
)
# Remote model backends: set when the azd environment has a value, else left as they are.
# LOCAL_MODEL_* is not among them: "local" means next to the runtime, which differs here.
$backendKeys = @(
    'CLOUD_MODEL_ENDPOINT', 'CLOUD_MODEL_NAME', 'FOUNDRY_MODEL_ENDPOINT', 'FOUNDRY_MODEL_NAME',
    'APIM_MODEL_ENDPOINT', 'APIM_MODEL_NAME'
)
$emulatorOnlyKeys = @('STORAGE_CONNECTION_STRING', 'COSMOS_KEY', 'COSMOS_CREATE_RESOURCES')

$missing = @($resourceKeys | Where-Object { -not $envValues[$_] })
if ($missing.Count -gt 0) {
    throw "postprovision: the azd environment lacks $($missing -join ', '); run ``azd provision`` first"
}

$settings = [ordered]@{}
if (Test-Path $target) {
    $settings = Get-Content -Raw $target | ConvertFrom-Json -AsHashtable
}
$values = @{}
if ($settings.Contains('Values') -and $settings['Values']) { $values = $settings['Values'] }

foreach ($key in $emulatorOnlyKeys) { $values.Remove($key) }
foreach ($key in $resourceKeys) { $values[$key] = [string]$envValues[$key] }
foreach ($key in $backendKeys) {
    if ($envValues[$key]) { $values[$key] = [string]$envValues[$key] }
}
if ($envValues['CLOUD_MODEL_ENDPOINT']) {
    # The provisioned Azure OpenAI account has keys disabled; a key kept from earlier would be
    # sent to it instead of the developer's token.
    $values.Remove('CLOUD_MODEL_API_KEY')
}
$values['FUNCTIONS_WORKER_RUNTIME'] = 'python'
$values['AzureWebJobsStorage'] = 'UseDevelopmentStorage=true'
$values['PYTHON_ENABLE_INIT_INDEXING'] = '1'

$sorted = [ordered]@{}
foreach ($key in ($values.Keys | Sort-Object -CaseSensitive)) { $sorted[$key] = $values[$key] }
$settings['IsEncrypted'] = $false
$settings['Values'] = $sorted

$partial = "$target.tmp"
$settings | ConvertTo-Json -Depth 10 | Set-Content -Path $partial -Encoding utf8NoBOM
Move-Item -Force -Path $partial -Destination $target
Write-Host "postprovision: wrote ${target}: no Azure keys, a local run authenticates with your ``az login`` sign-in"
