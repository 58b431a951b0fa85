{%- set plan = {"flex_consumption": ("FC1", "FlexConsumption", "functionapp", "Flex Consumption"), "premium": ("EP1", "ElasticPremium", "elastic", "Elastic Premium"), "consumption": ("Y1", "Dynamic", "functionapp", "Linux Consumption")}[cookiecutter.hosting_plan] -%}
// The Linux function app on its plan, running as its managed identity: HTTPS and TLS 1.2 only, FTP(S) and
// basic publishing credentials off, storage and Application Insights reached with the identity.
//
// Where the code comes from, keylessly:
// - Flex Consumption deploys into the blob container of functionAppConfig, with the identity.
// - Premium and Linux Consumption run the zip at WEBSITE_RUN_FROM_PACKAGE, a blob URL in the package's own
//   storage account, fetched with the identity named by WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID, which
//   may only read it (main.bicep, package-access.bicep). No Azure
//   Files content share: it would need an account key ("Create an app without Azure Files", Azure Functions
//   storage considerations). deploy/publish_package.py uploads the zip.

param name string
param planName string
param location string
param tags object
@allowed(['flex_consumption', 'premium', 'consumption'])
param hostingPlan string
param pythonVersion string
param instanceMemoryMB int
param maximumInstanceCount int
@description('Flex Consumption: always-ready instances of the drain timer, a function scaled on its own.')
param timerAlwaysReadyInstances int
@description('Blob container of the deployment package (Flex: its deployment storage; the others: the package account\'s).')
param deploymentContainerUrl string
@description('Premium and Consumption: the package blob in that container.')
param packageBlobName string
@description('Resource ID of the user-assigned identity the app runs as; empty: its system-assigned one.')
param identityId string
param identityClientId string
param storageAccountName string
param applicationInsightsConnectionString string

@description('The app\'s own settings, as name and value (app-settings.json and the AWS stack\'s outputs).')
param appSettings array

var flex = (hostingPlan == 'flex_consumption')
var premium = (hostingPlan == 'premium')
var systemAssigned = empty(identityId)
var packageUrl = flex ? '' : '${deploymentContainerUrl}/${packageBlobName}'

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy needs always-ready or always-on instances on {{ plan[3] }}, each billed; the drain is a singleton timer that resumes where it stopped
  name: planName
  location: location
  tags: tags
  kind: '{{ plan[2] }}'
  sku: {
    name: '{{ plan[0] }}'
    tier: '{{ plan[1] }}'
  }
  properties: union({ reserved: true }, premium ? { maximumElasticWorkerCount: 20 } : {})
}

var storageSuffix = environment().suffixes.storage
// The host's storage connection, by identity: service URIs plus the credential, no key.
var hostStorageSettings = concat([
  { name: 'AzureWebJobsStorage__blobServiceUri', value: 'https://${storageAccountName}.blob.${storageSuffix}' }
  { name: 'AzureWebJobsStorage__queueServiceUri', value: 'https://${storageAccountName}.queue.${storageSuffix}' }
  { name: 'AzureWebJobsStorage__tableServiceUri', value: 'https://${storageAccountName}.table.${storageSuffix}' }
  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
], systemAssigned ? [] : [
  { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
])
var monitoringSettings = [
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: applicationInsightsConnectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: systemAssigned ? 'Authorization=AAD' : 'ClientId=${identityClientId};Authorization=AAD' }
]
// Flex takes the runtime from functionAppConfig and refuses FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION.
// The others run the package at a blob URL, fetched with the app's identity ('SystemAssigned' names the
// system-assigned one); no remote build, which cannot apply to a package run from a URL.
var platformSettings = flex ? [] : [
  { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
  { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'python' }
  { name: 'WEBSITE_RUN_FROM_PACKAGE', value: packageUrl }
  { name: 'WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID', value: systemAssigned ? 'SystemAssigned' : identityId }
]

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the HTTP send functions are the app's API (function keys guard them, unless the answers chose anonymous); a private endpoint is the deployer's choice
  // checkov:skip=CKV_AZURE_17: client certificates would break the callers of the HTTP functions, which authenticate with function keys
  // checkov:skip=CKV_AZURE_212: a second always-running instance doubles the idle cost of a singleton drain that resumes where it stopped
  // checkov:skip=CKV_AZURE_213: the host has no health endpoint of its own to probe; Flex and Consumption run no health checks, and Premium restarts a failed host
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
{%- if cookiecutter.azure_identity == "system_assigned" %}
    type: 'SystemAssigned'
{%- else %}
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
{%- endif %}
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    clientAffinityEnabled: false
    keyVaultReferenceIdentity: systemAssigned ? 'SystemAssigned' : identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
{%- if cookiecutter.hosting_plan != "flex_consumption" %}
      linuxFxVersion: 'Python|${pythonVersion}'
{%- endif %}
      appSettings: concat(appSettings, hostStorageSettings, monitoringSettings, platformSettings)
    }
{%- if cookiecutter.hosting_plan == "flex_consumption" %}
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: systemAssigned ? {
            type: 'SystemAssignedIdentity'
          } : {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        // Only HTTP, Blob (Event Grid) and Durable functions share scale groups; a timer is its own,
        // named 'function:<name>' (functions/sqs_trigger.py names it).
        alwaysReady: (timerAlwaysReadyInstances == 0) ? [] : [
          {
            name: 'function:drain_input_queue_on_timer'
            instanceCount: timerAlwaysReadyInstances
          }
        ]
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
{%- endif %}
  }
}

// Deployments authenticate with Entra ID (azd, az, the GitHub workflow), never with basic credentials.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output url string = 'https://${functionApp.properties.defaultHostName}'
output packageUrl string = packageUrl
// Only evaluated for a system-assigned identity (ARM's if() evaluates the branch it takes).
output systemAssignedPrincipalId string = systemAssigned ? functionApp.identity.principalId : ''
