// Premium and Consumption: who may upload the app package, a zip the app runs from a blob URL. Storage
// Blob Data Contributor on the package container only: shared keys are off, so a deployer needs a data
// role, and no wider one than this container. (The app's own identity reads it: modules/roles.bicep.)

@description('Object ID of the deployer: the azd user, or the GitHub deploy identity.')
param principalId string
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string
param storageAccountName string
param containerName string

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobServices 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobServices
  name: containerName
}

resource uploadRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(container.id, principalId, storageBlobDataContributor)
  scope: container
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
  }
}
