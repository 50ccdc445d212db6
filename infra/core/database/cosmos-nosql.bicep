// An Azure Cosmos DB for NoSQL account with one database and its containers.
// Keys are disabled (disableLocalAuth): clients authenticate with Entra ID and data-plane RBAC, and
// control-plane writes through keys are refused too (disableKeyBasedMetadataWriteAccess), so
// databases and containers exist only because this template creates them.

@description('Name of the Cosmos DB account (3-44 lowercase letters, digits and hyphens, globally unique).')
@minLength(3)
@maxLength(44)
param name string

@description('Azure region of the account (single region, no failover).')
param location string

@description('Tags applied to the account.')
param tags object = {}

@description('Name of the SQL (NoSQL) database.')
param databaseName string

@description('Containers to create: [{ name: string, partitionKeyPath: string, defaultTtl: int (seconds, -1 = no expiry), indexingPolicy: object }].')
param containers array

@description('True: serverless (billed per request, nothing when idle). False: provisioned autoscale throughput shared by the database.')
param serverless bool = true

@description('Upper bound of the database autoscale throughput in RU/s when serverless is false (autoscale runs between 10% of it and it).')
@minValue(1000)
@maxValue(1000000)
param autoscaleMaxThroughput int = 1000

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  // checkov:skip=CKV_AZURE_101: public endpoint by design (no VNet; Flex Consumption without VNet integration reaches it over it); keys are disabled so every request needs an Entra ID token and a data-plane role
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    capabilities: serverless ? [{ name: 'EnableServerless' }] : []
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
    enableAutomaticFailover: false
    enableMultipleWriteLocations: false
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
    // Serverless accounts take no throughput settings; provisioned ones share autoscale RU/s
    // across the database's containers.
    options: serverless ? {} : { autoscaleSettings: { maxThroughput: autoscaleMaxThroughput } }
  }
}

resource sqlContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = [
  for container in containers: {
    parent: database
    name: container.name
    properties: {
      resource: {
        id: container.name
        partitionKey: {
          paths: [
            container.partitionKeyPath
          ]
          kind: 'Hash'
          version: 2
        }
        defaultTtl: container.defaultTtl
        indexingPolicy: container.indexingPolicy
      }
    }
  }
]

output id string = account.id
output name string = account.name
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
