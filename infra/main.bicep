// Hybrid LLM router: everything `azd up` provisions, in one resource group.
//   identity    user-assigned; the function app runs as it and every data role is granted to it
//   monitoring  Log Analytics + Application Insights (local auth off, telemetry signed by identity)
//   storage     two accounts, both key-less: "host" for the Functions runtime (deployment package,
//               AzureWebJobsStorage) and "data" for conversation snapshots, so user data never
//               shares an account, a role assignment or a lifecycle with runtime internals
//   cosmos      Cosmos DB for NoSQL, serverless by default: turns, sessions, audit
//   openai      optional Azure OpenAI account + model deployment for the cloud backend
//   api         Flex Consumption plan + Python function app with identity-based app settings
//   rbac        the roles the identity (and optionally the deploying user) needs
targetScope = 'subscription'

@description('Name of the azd environment; prefixes the resource group and seeds resource names.')
@minLength(1)
@maxLength(64)
param environmentName string

@description('Azure region of every resource (the region must offer Flex Consumption).')
@minLength(1)
param location string

@description('Object id of the deploying user or CI principal, granted data access for local runs; empty grants nothing.')
param principalId string = ''

@description('Type of principalId: User for a developer, ServicePrincipal for CI.')
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Memory of each function app instance in MB.')
@allowed([
  512
  2048
  4096
])
param functionInstanceMemoryMB int = 2048

@description('Most instances the function app scales out to; bounds the bill under load.')
@minValue(1)
@maxValue(1000)
param functionMaximumInstanceCount int = 100

// A chat turn mostly waits for its model, so one Python worker serves several at once; Flex Consumption's own
// default for Python is 1, an instance per turn in flight. 16 is from `python -m bench --only concurrency` for the
// default 2,048 MB instance (about one vCPU): p95 within 3% of one turn at a time's, about half a core left for
// long conversations. The README ("Deploy") has the figures and when to change it.
@description('Most HTTP requests (chat turns) one function app instance serves at once before Flex Consumption adds an instance; sized for functionInstanceMemoryMB.')
@minValue(1)
@maxValue(1000)
param functionHttpPerInstanceConcurrency int = 16

@description('Blob container for conversation snapshots.')
@minLength(3)
@maxLength(63)
param snapshotContainerName string = 'conversations'

@description('Cosmos DB database name.')
param cosmosDatabaseName string = 'llmrouter'

@description('True: Cosmos DB serverless (pay per request, nothing when idle). False: provisioned autoscale throughput.')
param cosmosServerless bool = true

@description('Autoscale maximum RU/s of the database when cosmosServerless is false (billed hourly at 10% of it or more).')
@minValue(1000)
@maxValue(1000000)
param cosmosAutoscaleMaxThroughput int = 1000

@description('Days after which an idle conversation is deleted (retention job), also the TTL of turn and session records.')
@minValue(1)
@maxValue(3650)
param retentionDays int = 30

@description('Days audit events are kept (TTL of the audit container).')
@minValue(1)
@maxValue(3650)
param auditRetentionDays int = 365

@description('NCRONTAB schedule (six fields, UTC) of the retention job.')
param retentionSchedule string = '0 0 3 * * *'

@description('Create an Azure OpenAI account and model deployment for the cloud backend (billed per token only).')
param deployAzureOpenAI bool = true

@description('Region of the Azure OpenAI account when the model is not offered in location; empty uses location.')
param openAiLocation string = ''

@description('Model deployed for the cloud backend.')
param openAiModelName string = 'gpt-4o-mini'

@description('Version of that model.')
param openAiModelVersion string = '2024-07-18'

@description('Deployment type of the model (GlobalStandard: pay per token, Azure picks the region that serves it).')
@allowed([
  'GlobalStandard'
  'DataZoneStandard'
  'Standard'
])
param openAiDeploymentSku string = 'GlobalStandard'

@description('Capacity of the model deployment in thousands of tokens per minute (needs that much quota).')
@minValue(1)
param openAiDeploymentCapacity int = 30

@description('Local backend endpoint (OpenAI-compatible, reachable from Azure); empty leaves it unset.')
param localModelEndpoint string = ''

@description('Local backend model name; empty leaves it unset.')
param localModelName string = ''

@description('Microsoft Foundry model endpoint; empty leaves it unset.')
param foundryModelEndpoint string = ''

@description('Microsoft Foundry model name; empty leaves it unset.')
param foundryModelName string = ''

@description('API Management gateway endpoint; empty leaves it unset.')
param apimModelEndpoint string = ''

@description('Model name behind the API Management gateway; empty leaves it unset.')
param apimModelName string = ''

@description('Client id of an Entra ID app registration; when set, App Service Authentication is turned on and TRUST_PRINCIPAL_HEADERS becomes true.')
param authClientId string = ''

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = '${abbrs.webSitesFunctions}api-${resourceToken}'
var deploymentContainerName = 'deploymentpackage'

resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'core/identity/user-assigned-identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}api-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'core/monitor/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module hostStorage 'core/storage/storage-account.bicep' = {
  name: 'host-storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    containerNames: [
      deploymentContainerName
    ]
  }
}

module snapshotStorage 'core/storage/storage-account.bicep' = {
  name: 'snapshot-storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}data${resourceToken}'
    location: location
    tags: tags
    containerNames: [
      snapshotContainerName
    ]
  }
}

module cosmos 'app/cosmos.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    name: '${abbrs.documentDBDatabaseAccounts}${resourceToken}'
    location: location
    tags: tags
    databaseName: cosmosDatabaseName
    retentionDays: retentionDays
    auditRetentionDays: auditRetentionDays
    serverless: cosmosServerless
    autoscaleMaxThroughput: cosmosAutoscaleMaxThroughput
  }
}

module openAi 'core/ai/openai.bicep' = if (deployAzureOpenAI) {
  name: 'openai'
  scope: rg
  params: {
    name: '${abbrs.cognitiveServicesAccounts}${resourceToken}'
    location: empty(openAiLocation) ? location : openAiLocation
    tags: tags
    deploymentName: openAiModelName
    modelName: openAiModelName
    modelVersion: openAiModelVersion
    deploymentSkuName: openAiDeploymentSku
    capacity: openAiDeploymentCapacity
  }
}

var cloudModelEndpoint = deployAzureOpenAI ? openAi.outputs.endpoint : ''
var cloudModelName = deployAzureOpenAI ? openAi.outputs.deploymentName : ''

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  // Create the app once its identity holds its roles, so the host's first start can reach its storage.
  dependsOn: [
    rbac
  ]
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    hostStorageAccountName: hostStorage.outputs.name
    deploymentContainerUrl: '${hostStorage.outputs.blobEndpoint}${deploymentContainerName}'
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    instanceMemoryMB: functionInstanceMemoryMB
    maximumInstanceCount: functionMaximumInstanceCount
    httpPerInstanceConcurrency: functionHttpPerInstanceConcurrency
    snapshotBlobEndpoint: snapshotStorage.outputs.blobEndpoint
    snapshotContainerName: snapshotContainerName
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmos.outputs.databaseName
    cosmosTurnsContainerName: cosmos.outputs.turnsContainerName
    cosmosSessionsContainerName: cosmos.outputs.sessionsContainerName
    cosmosAuditContainerName: cosmos.outputs.auditContainerName
    retentionDays: retentionDays
    retentionSchedule: retentionSchedule
    auditRetentionDays: auditRetentionDays
    cloudModelEndpoint: cloudModelEndpoint
    cloudModelName: cloudModelName
    localModelEndpoint: localModelEndpoint
    localModelName: localModelName
    foundryModelEndpoint: foundryModelEndpoint
    foundryModelName: foundryModelName
    apimModelEndpoint: apimModelEndpoint
    apimModelName: apimModelName
    authClientId: authClientId
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    hostStorageAccountName: hostStorage.outputs.name
    snapshotStorageAccountName: snapshotStorage.outputs.name
    cosmosAccountName: cosmos.outputs.accountName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    openAiAccountName: deployAzureOpenAI ? openAi.outputs.name : ''
  }
}

// azd stores these in .azure/<env>/.env; infra/hooks/postprovision.* turns them into local.settings.json.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
// Object id of the app's identity, to grant it roles on resources this template does not create
// (a Foundry project, an API Management instance).
output API_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output APP_SERVICE_AUTH_ENABLED bool = api.outputs.authEnabled
output STORAGE_BLOB_ENDPOINT string = snapshotStorage.outputs.blobEndpoint
output SNAPSHOT_CONTAINER string = snapshotContainerName
output COSMOS_ENDPOINT string = cosmos.outputs.endpoint
output COSMOS_DATABASE string = cosmos.outputs.databaseName
output COSMOS_TURNS_CONTAINER string = cosmos.outputs.turnsContainerName
output COSMOS_SESSIONS_CONTAINER string = cosmos.outputs.sessionsContainerName
output COSMOS_AUDIT_CONTAINER string = cosmos.outputs.auditContainerName
output CLOUD_MODEL_ENDPOINT string = cloudModelEndpoint
output CLOUD_MODEL_NAME string = cloudModelName
