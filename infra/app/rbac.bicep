// Data-plane roles, each scoped to the one resource it is needed on. The function app's identity gets
// what the host and the code need in Azure; the deploying user (principalId, optional) gets the data
// roles a local run against the provisioned resources needs (its AzureWebJobsStorage stays on Azurite).
// Names are guid(scope, principal, role) so re-running the deployment updates nothing.

@description('Principal id of the function app\'s user-assigned identity.')
param appPrincipalId string

@description('Principal id of the deploying user or CI principal; empty grants nothing.')
param userPrincipalId string = ''

@description('Type of userPrincipalId.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param userPrincipalType string = 'User'

@description('Name of the host storage account (AzureWebJobsStorage and the deployment package).')
param hostStorageAccountName string

@description('Name of the storage account holding the conversation snapshots.')
param snapshotStorageAccountName string

@description('Name of the Cosmos DB account.')
param cosmosAccountName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Name of the Azure OpenAI account; empty when none was created.')
param openAiAccountName string = ''

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  cognitiveServicesOpenAIUser: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'
}

// Cosmos DB data-plane roles live in the account, not in Azure RBAC.
var cosmosBuiltInDataContributor = '00000000-0000-0000-0000-000000000002'

var grantUser = !empty(userPrincipalId)
var hasOpenAi = !empty(openAiAccountName)

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

resource snapshotStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: snapshotStorageAccountName
}

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' existing = {
  name: cosmosAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Only referenced by the role assignments below, which are deployed only when the account exists;
// the placeholder name keeps the reference well-formed otherwise.
resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: hasOpenAi ? openAiAccountName : 'none'
}

// --- Function app identity -------------------------------------------------------------------

// Storage Blob Data Owner on the host storage: Flex Consumption reads the deployment package with
// the identity, and the host keeps timer-trigger schedule state, singleton leases and function keys
// in blobs there, creating containers and leasing blobs (Owner, not Contributor, is what the
// Functions docs require for AzureWebJobsStorage through an identity).
resource appHostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, appPrincipalId, roles.storageBlobDataOwner)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Table Data Contributor on the host storage: the host writes its diagnostic events
// (AZFD* events shown in the portal) to a table in AzureWebJobsStorage. No queue role: the app has
// only HTTP and timer triggers, and neither uses host queues (blob triggers and Durable Functions
// would).
resource appHostTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, appPrincipalId, roles.storageTableDataContributor)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Data Contributor on the snapshot account: the code reads, writes (with ETags) and
// deletes conversation snapshots; it needs no lease or ACL rights, so not Owner.
resource appSnapshotBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(snapshotStorage.id, appPrincipalId, roles.storageBlobDataContributor)
  scope: snapshotStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Cosmos DB Built-in Data Contributor on the account: the code reads, writes and queries items in
// the three containers (the account's keys are disabled, so this is the only way in).
resource appCosmosDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: cosmos
  name: guid(cosmos.id, appPrincipalId, cosmosBuiltInDataContributor)
  properties: {
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${cosmosBuiltInDataContributor}'
    principalId: appPrincipalId
    scope: cosmos.id
  }
}

// Monitoring Metrics Publisher on Application Insights: with local auth disabled the component
// accepts telemetry only with a token of a principal holding this role.
resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Cognitive Services OpenAI User on the Azure OpenAI account: call chat completions on its
// deployments, nothing more (no deployment or key management).
resource appOpenAiUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasOpenAi) {
  name: guid(openAi.id, appPrincipalId, roles.cognitiveServicesOpenAIUser)
  scope: openAi
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.cognitiveServicesOpenAIUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// --- Deploying user (local runs against the cloud resources) ---------------------------------

// Storage Blob Data Contributor on the snapshot account: same data access as the app.
resource userSnapshotBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantUser) {
  name: guid(snapshotStorage.id, userPrincipalId, roles.storageBlobDataContributor)
  scope: snapshotStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

// Cosmos DB Built-in Data Contributor on the account: same data access as the app (also lets the
// developer inspect items in Data Explorer).
resource userCosmosDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = if (grantUser) {
  parent: cosmos
  name: guid(cosmos.id, userPrincipalId, cosmosBuiltInDataContributor)
  properties: {
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${cosmosBuiltInDataContributor}'
    principalId: userPrincipalId
    scope: cosmos.id
  }
}

// Cognitive Services OpenAI User on the Azure OpenAI account: same model access as the app.
resource userOpenAiUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantUser && hasOpenAi) {
  name: guid(openAi.id, userPrincipalId, roles.cognitiveServicesOpenAIUser)
  scope: openAi
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.cognitiveServicesOpenAIUser)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}
