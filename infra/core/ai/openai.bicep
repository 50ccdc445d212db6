// An Azure OpenAI account (keys disabled, Entra ID only) with one model deployment.

@description('Name of the Azure OpenAI account; also its custom subdomain (https://<name>.openai.azure.com/).')
@minLength(2)
@maxLength(64)
param name string

@description('Azure region of the account (the model and deployment type must be offered there).')
param location string

@description('Tags applied to the account.')
param tags object = {}

@description('Name of the model deployment (what clients pass as the model).')
param deploymentName string

@description('Model to deploy, e.g. gpt-4o-mini.')
param modelName string

@description('Version of the model, e.g. 2024-07-18.')
param modelVersion string

@description('Deployment type, e.g. GlobalStandard (pay per token, Microsoft picks the data zone).')
param deploymentSkuName string = 'GlobalStandard'

@description('Deployment capacity in thousands of tokens per minute.')
@minValue(1)
param capacity int

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  // checkov:skip=CKV_AZURE_134: public endpoint by design (no VNet; the function app reaches it over it); keys are disabled so every call needs an Entra ID token with the OpenAI User role
  // checkov:skip=CKV_AZURE_238: the account calls no other resource (no customer-managed key, no data sources), so an identity of its own would hold no role
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
    }
  }
}

resource deployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: deploymentName
  sku: {
    name: deploymentSkuName
    capacity: capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
    // Stay on the pinned version until Azure retires it, then move to the new default.
    versionUpgradeOption: 'OnceCurrentVersionExpired'
  }
}

output id string = account.id
output name string = account.name
output endpoint string = account.properties.endpoint
output deploymentName string = deployment.name
