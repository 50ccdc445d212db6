// A Linux function app on its own Flex Consumption (FC1) plan, running as a user-assigned identity.
// The host pulls its deployment package from a blob container with that identity. App settings come
// in as one object; Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION
// (the runtime comes from functionAppConfig.runtime), so callers must not pass them.

@description('Name of the Flex Consumption plan.')
param planName string

@description('Name of the function app.')
param name string

@description('Azure region of the plan and the app.')
param location string

@description('Tags applied to the plan.')
param planTags object = {}

@description('Tags applied to the function app (azd finds the app by its azd-service-name tag).')
param tags object = {}

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Blob container URL holding the deployment package, e.g. https://<account>.blob.core.windows.net/<container>.')
param deploymentContainerUrl string

@description('Language worker of the app (functionAppConfig.runtime.name).')
@allowed([
  'python'
  'node'
  'dotnet-isolated'
  'java'
  'powershell'
])
param runtimeName string

@description('Language version of the app (functionAppConfig.runtime.version), e.g. 3.11.')
param runtimeVersion string

@description('Memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the app may scale out to (bounds cost under load).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Most HTTP requests one instance serves at once (functionAppConfig.scaleAndConcurrency.triggers.http.perInstanceConcurrency); more waiting requests make the platform add instances. Python apps default to 1 when it is not set.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int

@description('App settings (name to value). No secrets: every connection is identity-based.')
param appSettings object

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy is offered in a subset of regions only and needs always-ready instances, which bill while idle
  name: planName
  location: location
  tags: planTags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: a public HTTP API by design; every route but /api/health and /api/openapi.json needs a function key, and App Service Authentication can be turned on (authClientId)
  // checkov:skip=CKV_AZURE_17: callers authenticate with function keys or Entra ID tokens; requiring TLS client certificates would lock out ordinary HTTP clients
  // checkov:skip=CKV_AZURE_212: numberOfWorkers is an App Service plan setting; Flex Consumption adds and removes instances per demand (up to maximumInstanceCount)
  // checkov:skip=CKV_AZURE_213: App Service health check evicts unhealthy instances of a dedicated plan; Flex Consumption manages its instances itself, and /api/health serves external probes
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      ftpsState: 'Disabled'
      appSettings: [
        for setting in items(appSettings): {
          name: setting.key
          value: setting.value
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: runtimeName
        version: runtimeVersion
      }
    }
  }
}

output id string = functionApp.id
output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
