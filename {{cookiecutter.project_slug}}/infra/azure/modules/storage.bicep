// A storage account reached only with identities: shared keys are off, so no connection string with a key can
// work, or exist. main.bicep makes two: the host's (timer locks, host keys; on Flex Consumption also the
// deployment container, which the platform writes with the app's identity), and on Premium and Consumption
// the package's, whose one container holds the zip the app runs and which the app's identity may only read.

param name string
param location string
param tags object

@description('Blob container of the app package (empty: none): Flex Consumption deploys into it; Premium and Consumption run a zip from it.')
param deploymentContainerName string = 'app-package'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_206: host state or the package, which a deploy re-creates (locks, keys, the zip); ZRS/GRS cost more and are not in every region
  // checkov:skip=CKV_AZURE_35: the function app reaches storage over its public endpoint (no VNet integration here); deny by default would stop the host
  // checkov:skip=CKV_AZURE_59: the same: without a private endpoint the host needs the public endpoint; identity-only auth guards it
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
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
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobServices 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = if (!empty(deploymentContainerName)) {
  parent: blobServices
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

output name string = storage.name
output deploymentContainerName string = deploymentContainerName
output deploymentContainerUrl string = empty(deploymentContainerName) ? '' : '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
