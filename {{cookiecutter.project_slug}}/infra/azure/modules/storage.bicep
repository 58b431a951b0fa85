{%- set flex = cookiecutter.hosting_plan == "flex_consumption" -%}
// The host's storage account (timer locks, host keys{% if flex %}, the deployment package{% endif %}): reached only with the app's
// identity. Shared keys are off, so no connection string with a key can work, or exist.

param name string
param location string
param tags object
{%- if flex %}

@description('Blob container Flex Consumption deploys the app package to.')
param deploymentContainerName string = 'app-package'
{%- endif %}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_206: host state only (locks, keys, the package a deploy re-uploads); ZRS/GRS cost more and are not in every region
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
{%- if flex %}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobServices
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}
{%- endif %}

output name string = storage.name
{%- if flex %}
output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainer.name}'
{%- endif %}
