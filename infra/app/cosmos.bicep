// The router's metadata store: one Cosmos DB for NoSQL database with the three containers the code
// reads (shared/storage/). Names, partition keys and indexing policies here must equal the code's;
// tests/test_infra.py compares them.

@description('Name of the Cosmos DB account.')
param name string

@description('Azure region of the account.')
param location string

@description('Tags applied to the account.')
param tags object = {}

@description('Name of the database.')
param databaseName string

@description('Days an untouched turn or session record lives before Cosmos DB deletes it (container default TTL).')
@minValue(1)
@maxValue(3650)
param retentionDays int

@description('Days an audit event lives before Cosmos DB deletes it.')
@minValue(1)
@maxValue(3650)
param auditRetentionDays int

@description('True: serverless account. False: provisioned autoscale throughput.')
param serverless bool

@description('Autoscale maximum RU/s of the database when serverless is false.')
@minValue(1000)
param autoscaleMaxThroughput int

var secondsPerDay = 86400

// Cosmos DB TTL counts from an item's last write, so a session record lives while its conversation
// is active; a turn record is written once and expires retentionDays after that turn.
//
// Indexing: only the paths the code's queries filter or sort on, the rest excluded (every indexed path
// costs RUs on each write). These policies equal shared/storage/indexing.py, which also creates the local
// containers; tests/test_infra.py compares the two.
var containers = {
  turns: {
    name: 'turns'
    partitionKeyPath: '/sessionId'
    defaultTtl: retentionDays * secondsPerDay
    indexingPolicy: {
      indexingMode: 'consistent'
      automatic: true
      includedPaths: [
        { path: '/sessionId/?' }
        { path: '/userId/?' }
        { path: '/type/?' }
        { path: '/turn/?' }
        { path: '/completed_at/?' }
      ]
      excludedPaths: [
        { path: '/*' }
      ]
    }
  }
  sessions: {
    name: 'sessions'
    partitionKeyPath: '/userId'
    defaultTtl: retentionDays * secondsPerDay
    indexingPolicy: {
      indexingMode: 'consistent'
      automatic: true
      includedPaths: [
        { path: '/userId/?' }
        { path: '/type/?' }
        { path: '/sortKey/?' }
        { path: '/last_active/?' }
        { path: '/transcript_hash/?' }
        { path: '/replay_hash/?' }
      ]
      excludedPaths: [
        { path: '/*' }
      ]
    }
  }
  audit: {
    name: 'audit'
    partitionKeyPath: '/sessionId'
    defaultTtl: auditRetentionDays * secondsPerDay
    indexingPolicy: {
      indexingMode: 'consistent'
      automatic: true
      includedPaths: [
        { path: '/sessionId/?' }
        { path: '/userId/?' }
        { path: '/type/?' }
      ]
      excludedPaths: [
        { path: '/*' }
      ]
    }
  }
}

module cosmos '../core/database/cosmos-nosql.bicep' = {
  name: 'cosmos-nosql'
  params: {
    name: name
    location: location
    tags: tags
    databaseName: databaseName
    containers: [
      containers.turns
      containers.sessions
      containers.audit
    ]
    serverless: serverless
    autoscaleMaxThroughput: autoscaleMaxThroughput
  }
}

output accountName string = cosmos.outputs.name
output endpoint string = cosmos.outputs.endpoint
output databaseName string = cosmos.outputs.databaseName
output turnsContainerName string = containers.turns.name
output sessionsContainerName string = containers.sessions.name
output auditContainerName string = containers.audit.name
