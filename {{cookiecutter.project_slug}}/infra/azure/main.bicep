// The Azure side of {{ cookiecutter.project_slug }}: identity, storage reached with that identity (no keys),
// monitoring, and the function app with every app setting. `azd up` deploys it (azure.yaml), or
// `az deployment group create` (README, "Deploy"). Parameter defaults are the template answers; the
// choices are Bicep parameters and conditions, so one file reads the same for every answer.
targetScope = 'resourceGroup'

// azd allows 1-64 letters, digits and - _ . ( ); each resource name takes a cleaned, shortened copy
// (environmentSlug) that every naming rule accepts. The azd-env-name tag keeps the name as given.
@minLength(1)
@maxLength(64)
@description('Name of the azd environment: part of every resource name.')
param environmentName string

@minLength(1)
@description('Azure region of every resource.')
param location string = resourceGroup().location

@allowed(['flex_consumption', 'premium', 'consumption'])
@description('Hosting plan: Flex Consumption FC1, Elastic Premium EP1 or Linux Consumption Y1.')
param hostingPlan string = '{{ cookiecutter.hosting_plan }}'

// Linux Consumption runs Python 3.12 at most.
@allowed(['3.11', '3.12'{% if cookiecutter.hosting_plan != "consumption" %}, '3.13'{% endif %}])
@description('Python version of the function app.')
param pythonVersion string = '{{ cookiecutter.python_version }}'

@allowed([512, 2048, 4096])
@description('Flex Consumption only: memory of each instance, in MB, billed per GB-second while executions run.')
param instanceMemoryMB int = {{ cookiecutter.instance_memory_mb }}

// What the delivery_latency answer derives (engine/delivery_plan.py): an instance that bills a baseline
// every second, cheaper than on-demand execution where the drain polls most of the time.
@allowed([0, 1])
@description('Flex Consumption only: always-ready instances of the drain timer\'s function (0: on demand).')
param timerAlwaysReadyInstances int = {{ (cookiecutter | delivery_plan).always_ready }}

@minValue(1)
@maxValue(1000)
@description('Flex Consumption only: most instances the app scales out to, a cap on cost (the platform default is 100).')
param maximumInstanceCount int = 40

@allowed(['user_assigned', 'existing_user_assigned', 'system_assigned'])
@description('Which managed identity the app runs as.')
param identityKind string = '{{ cookiecutter.azure_identity }}'

@description('existing_user_assigned only: resource ID of the identity the app runs as.')
param existingIdentityId string = {{ cookiecutter.existing_identity_id | bicep_string }}
{%- if cookiecutter.aws_auth == "oidc_managed_identity" %}

@description('AWS role the identity assumes: the AWS stack\'s RoleArn output, which the postprovision hook sets.')
param awsRoleArn string = {{ cookiecutter.aws_role_arn | bicep_string }}
{%- endif %}

// The queues: the AWS stack's outputs once the postprovision hook has recorded them, else the answered names.
@minLength(1)
@description('Queue the trigger drains: the AWS stack\'s InputQueueUrl output once known, else the answered name.')
param sqsInputQueue string = {{ cookiecutter.input_queue_name | bicep_string }}

@minLength(1)
@description('Queue the send functions write to: the stack\'s OutputQueueUrl output, else the answered name.')
param sqsOutputQueue string = {{ cookiecutter.output_queue_name | bicep_string }}

@minLength(1)
@description('Dead-letter queue of the input queue: the stack\'s DeadLetterQueueUrl output, else the answered name.')
param sqsDlq string = {{ cookiecutter.dlq_name | bicep_string }}

@description('S3 bucket of payloads past the queue\'s size limit: the stack\'s LargePayloadBucketName output; empty: none.')
param sqsLargePayloadBucket string = ''

@description('Premium and Consumption: object ID of who runs the deploy step (azd: the signed-in principal), given Storage Blob Data Contributor on the package container; empty: nobody.')
param deployerPrincipalId string = ''

@allowed(['User', 'ServicePrincipal', 'Group'])
param deployerPrincipalType string = 'User'

@description('Address the alerts mail (it gets a confirmation first); empty: add receivers to the action group.')
param alertEmail string = ''

@allowed(['PT10M', 'PT15M', 'PT30M', 'PT45M', 'PT1H', 'PT2H', 'PT6H'])
@description('No successful drain invocation for this long fires the dead man\'s switch: several schedule periods.')
param drainSilenceWindow string = 'PT15M'

@minValue(1)
@maxValue(100)
@description('Percent of messages failing in 15 minutes above which the handler failure alert fires.')
param handlerFailurePercent int = 10

@minValue(1)
@description('Fewest messages in those 15 minutes for the failure ratio to count.')
param handlerFailureMinimumMessages int = 20

@description('GitHub repository (owner/name) whose deploy workflow may deploy the app; empty: no deploy identity.')
param githubRepository string = ''

@description('GitHub deployment environment whose jobs may deploy (deploy.yml\'s deploy job).')
param githubEnvironment string = 'production'

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
// Letters, digits and '-' only, at most 32 characters: every name below fits its resource's rule with it.
var environmentSlug = take(replace(replace(replace(replace(toLower(trim(environmentName)), '_', '-'), '.', '-'), '(', '-'), ')', '-'), 32)
var flex = (hostingPlan == 'flex_consumption')
var systemAssigned = (identityKind == 'system_assigned')
var githubDeploys = (!empty(githubRepository))

var identityName = '${abbrs.managedIdentity}${environmentSlug}-${resourceToken}'
var storageAccountName = '${abbrs.storageAccount}${resourceToken}'
// Premium and Consumption: the package's own account, which the app's identity may only read (package-access.bicep).
var packageStorageAccountName = '${abbrs.storageAccount}pkg${resourceToken}'
var logAnalyticsName = '${abbrs.logAnalyticsWorkspace}${environmentSlug}-${resourceToken}'
var applicationInsightsName = '${abbrs.applicationInsights}${environmentSlug}-${resourceToken}'
var functionAppName = '${abbrs.functionApp}${environmentSlug}-${resourceToken}'
var planName = '${abbrs.appServicePlan}${environmentSlug}-${resourceToken}'
var deployIdentityName = '${abbrs.managedIdentity}deploy-${environmentSlug}-${resourceToken}'
// Premium and Consumption run this blob (WEBSITE_RUN_FROM_PACKAGE); Flex deploys into the container itself.
var packageBlobName = 'function-app.zip'

// The app's settings: the answers (app-settings.json), then what the AWS stack's outputs decide.
var appSettings = concat(loadJsonContent('app-settings.json'), [
  { name: 'SQS_INPUT_QUEUE', value: sqsInputQueue }
  { name: 'SQS_OUTPUT_QUEUE', value: sqsOutputQueue }
  { name: 'SQS_DLQ', value: sqsDlq }
  { name: 'SQS_LARGE_PAYLOAD_BUCKET', value: sqsLargePayloadBucket }
{%- if cookiecutter.aws_auth == "oidc_managed_identity" %}
  { name: 'AWS_OIDC_ROLE_ARN', value: awsRoleArn }
  // The identity the app asks for AWS's token: the one it runs as (empty: the system-assigned one).
  { name: 'AZURE_MANAGED_IDENTITY_CLIENT_ID', value: identity.outputs.clientId }
{%- endif %}
])

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: identityName
    location: location
    tags: tags
    existingIdentityId: existingIdentityId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: storageAccountName
    location: location
    tags: tags
    // Flex deploys into this container with the app's identity; the other plans run a zip from packageStorage.
    deploymentContainerName: flex ? 'app-package' : ''
  }
}

// Premium and Consumption: the zip the app runs, apart from the host's state, so the app's identity (Storage
// Blob Data Owner on the host's account) cannot write it.
module packageStorage 'modules/storage.bicep' = if (!flex) {
  name: 'package-storage'
  params: {
    name: packageStorageAccountName
    location: location
    tags: tags
    deploymentContainerName: 'app-package'
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: logAnalyticsName
    applicationInsightsName: applicationInsightsName
    location: location
    tags: tags
  }
}

// Told when the drain stops or its handler fails (docs/monitoring.md); the SQS alarms are in infra/aws.
module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    location: location
    tags: tags
    alertEmail: alertEmail
    drainFunctionName: 'drain_input_queue_on_timer'
    drainSilenceWindow: drainSilenceWindow
    handlerFailurePercent: handlerFailurePercent
    handlerFailureMinimumMessages: handlerFailureMinimumMessages
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    location: location
    tags: tags
    displayName: '{{ cookiecutter.project_slug }}: SQS drain'
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  params: {
    name: functionAppName
    planName: planName
    location: location
    tags: tags
    hostingPlan: hostingPlan
    pythonVersion: pythonVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    timerAlwaysReadyInstances: timerAlwaysReadyInstances
    deploymentContainerUrl: flex ? storage.outputs.deploymentContainerUrl : packageStorage.outputs.deploymentContainerUrl
    packageBlobName: packageBlobName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    appSettings: appSettings
  }
}

// The app's identity: the system-assigned one once the app exists, else the user-assigned one.
var appPrincipalId = systemAssigned ? functionApp.outputs.systemAssignedPrincipalId : identity.outputs.principalId

// What the identity may do, each role for one reason (modules/roles.bicep says which).
module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: appPrincipalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

// Premium and Consumption: the app's identity reads its package, and nothing in the package's account more.
module appReadsPackage 'modules/package-access.bicep' = if (!flex) {
  name: 'app-reads-package'
  params: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    access: 'read'
    storageAccountName: packageStorageAccountName
    containerName: 'app-package'
  }
  dependsOn: [packageStorage]
}

// Premium and Consumption: who runs the deploy step uploads the package with their own identity.
module deployerUploads 'modules/package-access.bicep' = if ((!flex) && (!empty(deployerPrincipalId))) {
  name: 'deployer-uploads'
  params: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    access: 'write'
    storageAccountName: packageStorageAccountName
    containerName: 'app-package'
  }
  dependsOn: [packageStorage]
}

// The identity .github/workflows/deploy.yml logs in as, trusted for one repository's deployment environment: no secret.
module githubDeploy 'modules/github-deploy.bicep' = if (githubDeploys) {
  name: 'github-deploy'
  params: {
    name: deployIdentityName
    location: location
    tags: tags
    githubRepository: githubRepository
    githubEnvironment: githubEnvironment
    functionAppName: functionApp.outputs.name
  }
}

module githubUploads 'modules/package-access.bicep' = if ((!flex) && githubDeploys) {
  name: 'github-uploads'
  params: {
    principalId: githubDeploys ? githubDeploy.outputs.principalId : ''
    principalType: 'ServicePrincipal'
    access: 'write'
    storageAccountName: packageStorageAccountName
    containerName: 'app-package'
  }
  dependsOn: [packageStorage]
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = functionApp.outputs.url
// Premium and Consumption: the blob the app runs (deploy/publish_package.py uploads it); Flex: empty.
output AZURE_FUNCTION_APP_PACKAGE_URL string = functionApp.outputs.packageUrl
output AZURE_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_IDENTITY_PRINCIPAL_ID string = appPrincipalId
output AZURE_IDENTITY_TENANT_ID string = tenant().tenantId
output AZURE_SUBSCRIPTION_ID string = subscription().subscriptionId
output AZURE_DEPLOY_CLIENT_ID string = githubDeploys ? githubDeploy.outputs.clientId : ''
