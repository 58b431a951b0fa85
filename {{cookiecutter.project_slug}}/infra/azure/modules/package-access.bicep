// Premium and Consumption: who may touch the app package, a zip the app runs from a blob URL in the package's
// own storage account. One role on the package container, nothing wider: shared keys are off, so every reader
// and writer needs a data role. The deployer (the azd user, the GitHub deploy identity) writes the package:
// Storage Blob Data Contributor. The app's identity only reads it: Storage Blob Data Reader, so code running
// in the app cannot replace the code it runs (its Storage Blob Data Owner is on the host's account only).

@description('Object ID of the principal: the app\'s identity, the azd user, or the GitHub deploy identity.')
param principalId string
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string
@allowed(['read', 'write'])
@description('read: the app fetching its package; write: a deployer uploading it.')
param access string
param storageAccountName string
param containerName string

var roleIds = {
  read: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1' // Storage Blob Data Reader
  write: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
}
var roleId = roleIds[access]

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

resource packageRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(container.id, principalId, roleId)
  scope: container
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
  }
}
