// A StorageV2 account that accepts only Entra ID (no shared keys, no SAS, no anonymous reads),
// HTTPS with TLS 1.2, plus the blob containers it should hold.

@description('Name of the storage account (3-24 lowercase letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region of the account.')
param location string

@description('Tags applied to the account.')
param tags object = {}

@description('Names of the private blob containers to create.')
param containerNames array = []

@description('Replication of the account (locally redundant is the cheapest and enough for this app).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
])
param skuName string = 'Standard_LRS'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: public endpoint by design (no VNet in this template; Flex Consumption without VNet integration reaches storage over it); every request needs an Entra ID token since shared keys are off
  // checkov:skip=CKV_AZURE_59: same as CKV_AZURE_35, public network access stays on and access is Entra ID only; private endpoints are the documented hardening step
  // checkov:skip=CKV_AZURE_206: LRS by default to keep the idle bill minimal (host data is re-created by azd deploy, snapshots live retention days); skuName selects GRS/RAGRS
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
