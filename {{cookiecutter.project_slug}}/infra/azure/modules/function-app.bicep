{%- set flex = cookiecutter.hosting_plan == "flex_consumption" -%}
{%- set system = cookiecutter.azure_identity == "system_assigned" -%}
{%- set sku = {"flex_consumption": ("FC1", "FlexConsumption"), "premium": ("EP1", "ElasticPremium"), "consumption": ("Y1", "Dynamic")}[cookiecutter.hosting_plan] -%}
// The Linux function app on the {{ sku[0] }} plan, running as its managed identity: HTTPS and TLS 1.2 only, FTP(S) and
// basic publishing credentials off, storage and Application Insights reached with the identity.

param name string
param planName string
param location string
param tags object
param pythonVersion string
{%- if flex %}
param instanceMemoryMB int
param maximumInstanceCount int
param deploymentContainerUrl string
{%- endif %}
{%- if not system %}
param identityId string
param identityClientId string
{%- endif %}
param storageAccountName string
param applicationInsightsConnectionString string

@description('The app\'s own settings, as name and value (app-settings.json and the AWS stack\'s outputs).')
param appSettings array

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy needs {% if flex %}an always-ready instance count{% else %}three or more always-on instances{% endif %}; the drain is a singleton timer that resumes where it stopped
  name: planName
  location: location
  tags: tags
  kind: '{{ "functionapp" if flex else ("elastic" if cookiecutter.hosting_plan == "premium" else "functionapp") }}'
  sku: {
    name: '{{ sku[0] }}'
    tier: '{{ sku[1] }}'
  }
  properties: {
    reserved: true
{%- if cookiecutter.hosting_plan == "premium" %}
    maximumElasticWorkerCount: 20
{%- endif %}
  }
}

var storageSuffix = environment().suffixes.storage
// The host's storage connection, by identity: service URIs plus the credential, no key.
var hostStorageSettings = [
  { name: 'AzureWebJobsStorage__blobServiceUri', value: 'https://${storageAccountName}.blob.${storageSuffix}' }
  { name: 'AzureWebJobsStorage__queueServiceUri', value: 'https://${storageAccountName}.queue.${storageSuffix}' }
  { name: 'AzureWebJobsStorage__tableServiceUri', value: 'https://${storageAccountName}.table.${storageSuffix}' }
  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
{%- if not system %}
  { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
{%- endif %}
]
var monitoringSettings = [
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: applicationInsightsConnectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: '{% if system %}Authorization=AAD{% else %}ClientId=${identityClientId};Authorization=AAD{% endif %}' }
]
{%- if flex %}
// Flex takes the runtime from functionAppConfig and refuses FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION.
var platformSettings = []
{%- else %}
var platformSettings = [
  { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
  { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'python' }
  // `func azure functionapp publish` and azd build remotely from requirements.txt; the GitHub workflow
  // ships .python_packages instead and turns the build off for its own deployments.
  { name: 'SCM_DO_BUILD_DURING_DEPLOYMENT', value: 'true' }
  { name: 'ENABLE_ORYX_BUILD', value: 'true' }
]
{%- endif %}
{%- if cookiecutter.aws_auth == "oidc_managed_identity" %}
// The identity the app asks for AWS's token: the one it runs as (empty: the system-assigned one).
var identitySettings = [
  { name: 'AZURE_MANAGED_IDENTITY_CLIENT_ID', value: {% if system %}''{% else %}identityClientId{% endif %} }
]
{%- else %}
var identitySettings = []
{%- endif %}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the HTTP send functions are the app's API (function keys guard them{% if cookiecutter.http_auth_level == "anonymous" %}: here anonymous, as answered{% endif %}); a private endpoint is the deployer's choice
  // checkov:skip=CKV_AZURE_17: client certificates would break the callers of the HTTP functions, which authenticate with function keys
  // checkov:skip=CKV_AZURE_212: a second always-running instance doubles the idle cost of a singleton drain that resumes where it stopped
  // checkov:skip=CKV_AZURE_213: the host has no health endpoint of its own to probe; {% if flex or cookiecutter.hosting_plan == "consumption" %}this plan does not run health checks{% else %}the platform restarts a failed host{% endif %}
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
{%- if system %}
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
{%- if not system %}
    keyVaultReferenceIdentity: identityId
{%- endif %}
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
{%- if not flex %}
      linuxFxVersion: 'Python|${pythonVersion}'
{%- endif %}
      appSettings: concat(appSettings, identitySettings, hostStorageSettings, monitoringSettings, platformSettings)
    }
{%- if flex %}
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
{%- if system %}
            type: 'SystemAssignedIdentity'
{%- else %}
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
{%- endif %}
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
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
{%- if system %}
output systemAssignedPrincipalId string = functionApp.identity.principalId
{%- endif %}
