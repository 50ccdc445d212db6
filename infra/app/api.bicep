// The router's function app: Flex Consumption, Python, running as the user-assigned identity, with
// every app setting the code reads in Azure (docs/settings-contract.md). No setting carries a key
// or a connection string: storage, Cosmos DB, Azure OpenAI and Application Insights all take the
// identity's Entra ID token. tests/test_infra.py checks this list against shared/settings.py.

@description('Name of the function app.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region of the plan and the app.')
param location string

@description('Tags applied to the plan and the app (the app also gets azd-service-name).')
param tags object = {}

@description('Service name in azure.yaml; azd deploys the code to the app tagged with it.')
param serviceName string = 'api'

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Client id of that identity (AZURE_CLIENT_ID, AzureWebJobsStorage__clientId).')
param identityClientId string

@description('Name of the host storage account (AzureWebJobsStorage: timer leases, host keys, diagnostics).')
param hostStorageAccountName string

@description('URL of the blob container holding the deployment package.')
param deploymentContainerUrl string

@description('Application Insights connection string (instrumentation key and endpoints; not a secret with local auth off).')
param applicationInsightsConnectionString string

@description('Memory of each instance in MB.')
param instanceMemoryMB int

@description('Most instances the app may scale out to.')
param maximumInstanceCount int

@description('Most HTTP requests (chat turns) one instance serves at once.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int

@description('Blob endpoint of the snapshot storage account, e.g. https://<account>.blob.core.windows.net/.')
param snapshotBlobEndpoint string

@description('Blob container of the conversation snapshots.')
param snapshotContainerName string

@description('Cosmos DB account endpoint.')
param cosmosEndpoint string

@description('Cosmos DB database name.')
param cosmosDatabaseName string

@description('Cosmos DB container of turn records.')
param cosmosTurnsContainerName string

@description('Cosmos DB container of session summaries.')
param cosmosSessionsContainerName string

@description('Cosmos DB container of audit events.')
param cosmosAuditContainerName string

@description('Days after which an idle conversation is deleted by the retention job.')
param retentionDays int

@description('NCRONTAB schedule of the retention job (six fields, UTC).')
param retentionSchedule string

@description('Days an audit event is kept (the per-item ttl the app writes; the container TTL matches).')
param auditRetentionDays int

@description('Cloud backend endpoint (Azure OpenAI or OpenAI-compatible); empty leaves CLOUD_MODEL_ENDPOINT unset.')
param cloudModelEndpoint string = ''

@description('Cloud backend model or deployment name; empty leaves CLOUD_MODEL_NAME unset.')
param cloudModelName string = ''

@description('Local backend endpoint; empty leaves LOCAL_MODEL_ENDPOINT unset.')
param localModelEndpoint string = ''

@description('Local backend model name; empty leaves LOCAL_MODEL_NAME unset.')
param localModelName string = ''

@description('Microsoft Foundry backend endpoint; empty leaves FOUNDRY_MODEL_ENDPOINT unset.')
param foundryModelEndpoint string = ''

@description('Microsoft Foundry backend model name; empty leaves FOUNDRY_MODEL_NAME unset.')
param foundryModelName string = ''

@description('API Management backend endpoint; empty leaves APIM_MODEL_ENDPOINT unset.')
param apimModelEndpoint string = ''

@description('API Management backend model name; empty leaves APIM_MODEL_NAME unset.')
param apimModelName string = ''

@description('Client id of an Entra ID app registration for App Service Authentication; empty leaves authentication off.')
param authClientId string = ''

// The Python version the code is tested with; tests/test_infra.py compares it with the interpreter
// running the tests, so a runtime upgrade is a deliberate change in both places.
var pythonVersion = '3.11'

// X-MS-CLIENT-PRINCIPAL* headers are only trustworthy when App Service Authentication is on: the
// platform then strips any such header a caller sends. Without it a caller holding a function key
// could claim to be any user, so the setting follows the authentication switch.
var authEnabled = !empty(authClientId)

// The routes function_app.py serves without a function key (AuthLevel.ANONYMOUS); authentication must
// not block them either (the health probe, the OpenAPI description, the dashboard's static files: the page
// then sends the browser to sign in itself). tests/test_infra.py compares them.
var anonymousPaths = [
  '/api/health'
  '/api/openapi.json'
  '/api/dashboard'
  '/api/dashboard/assets/*'
]

var baseSettings = {
  // Host storage through the identity (no AzureWebJobsStorage connection string).
  AzureWebJobsStorage__accountName: hostStorageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // Telemetry signed with the identity's token (the component refuses unauthenticated ingestion).
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // The code's ManagedIdentityCredential picks the user-assigned identity by this id.
  AZURE_CLIENT_ID: identityClientId
  PYTHON_ENABLE_INIT_INDEXING: '1'
  STORAGE_BLOB_ENDPOINT: snapshotBlobEndpoint
  SNAPSHOT_CONTAINER: snapshotContainerName
  COSMOS_ENDPOINT: cosmosEndpoint
  COSMOS_DATABASE: cosmosDatabaseName
  COSMOS_TURNS_CONTAINER: cosmosTurnsContainerName
  COSMOS_SESSIONS_CONTAINER: cosmosSessionsContainerName
  COSMOS_AUDIT_CONTAINER: cosmosAuditContainerName
  RETENTION_DAYS: string(retentionDays)
  RETENTION_SCHEDULE: retentionSchedule
  AUDIT_RETENTION_DAYS: string(auditRetentionDays)
  TRUST_PRINCIPAL_HEADERS: authEnabled ? 'true' : 'false'
}

// Model backends: each setting only when it has a value, so the code sees "unset", not "".
var cloudEndpointSetting = empty(cloudModelEndpoint) ? {} : { CLOUD_MODEL_ENDPOINT: cloudModelEndpoint }
var cloudNameSetting = empty(cloudModelName) ? {} : { CLOUD_MODEL_NAME: cloudModelName }
var localEndpointSetting = empty(localModelEndpoint) ? {} : { LOCAL_MODEL_ENDPOINT: localModelEndpoint }
var localNameSetting = empty(localModelName) ? {} : { LOCAL_MODEL_NAME: localModelName }
var foundryEndpointSetting = empty(foundryModelEndpoint) ? {} : { FOUNDRY_MODEL_ENDPOINT: foundryModelEndpoint }
var foundryNameSetting = empty(foundryModelName) ? {} : { FOUNDRY_MODEL_NAME: foundryModelName }
var apimEndpointSetting = empty(apimModelEndpoint) ? {} : { APIM_MODEL_ENDPOINT: apimModelEndpoint }
var apimNameSetting = empty(apimModelName) ? {} : { APIM_MODEL_NAME: apimModelName }
var cloudAndLocalSettings = union(cloudEndpointSetting, cloudNameSetting, localEndpointSetting, localNameSetting)
var foundryAndApimSettings = union(foundryEndpointSetting, foundryNameSetting, apimEndpointSetting, apimNameSetting)

var appSettings = union(baseSettings, cloudAndLocalSettings, foundryAndApimSettings)

module functionApp '../core/host/functions-flex-consumption.bicep' = {
  name: 'function-app'
  params: {
    planName: planName
    name: name
    location: location
    planTags: tags
    tags: union(tags, { 'azd-service-name': serviceName })
    identityId: identityId
    deploymentContainerUrl: deploymentContainerUrl
    runtimeName: 'python'
    runtimeVersion: pythonVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    appSettings: appSettings
  }
}

module authentication '../core/host/app-service-auth.bicep' = if (authEnabled) {
  name: 'app-service-auth'
  params: {
    appName: functionApp.outputs.name
    clientId: authClientId
    excludedPaths: anonymousPaths
  }
}

output name string = functionApp.outputs.name
output uri string = 'https://${functionApp.outputs.defaultHostName}'
output authEnabled bool = authEnabled
