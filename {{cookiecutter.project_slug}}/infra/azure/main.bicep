{%- set oidc = cookiecutter.aws_auth == "oidc_managed_identity" -%}
{%- set flex = cookiecutter.hosting_plan == "flex_consumption" -%}
// The Azure side of {{ cookiecutter.project_slug }}: identity, storage reached with that identity (no keys),
// monitoring, and the {{ cookiecutter.hosting_plan }} function app with every app setting. `azd up` deploys it (azure.yaml),
// or `az deployment group create` (README, "Deploy"). Parameter defaults are the template answers.
targetScope = 'resourceGroup'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: part of every resource name.')
param environmentName string

@minLength(1)
@description('Azure region of every resource.')
param location string = resourceGroup().location

@allowed(['3.11', '3.12', '3.13'])
@description('Python version of the function app.')
param pythonVersion string = '{{ cookiecutter.python_version }}'
{%- if flex %}

@allowed([512, 2048, 4096])
@description('Memory of each Flex Consumption instance, in MB: billed per GB-second while executions run.')
param instanceMemoryMB int = 2048

@minValue(1)
@maxValue(1000)
@description('Most Flex Consumption instances the app scales out to: a cap on cost (the platform default is 100).')
param maximumInstanceCount int = 40
{%- endif %}
{%- if cookiecutter.azure_identity == "existing_user_assigned" %}

@description('Resource ID of the existing user-assigned identity the app runs as.')
param existingIdentityId string = '{{ cookiecutter.existing_identity_id }}'
{%- endif %}
{%- if oidc %}

@description('AWS role the identity assumes: the AWS stack\'s RoleArn output, which the postprovision hook sets.')
param awsRoleArn string = '{{ cookiecutter.aws_role_arn }}'
{%- endif %}

@minLength(1)
@description('Queue the trigger drains: the AWS stack\'s InputQueueUrl output once known, else the answered name.')
param sqsInputQueue string = {{ cookiecutter.input_queue_name | tojson | replace('"', "'") }}

@minLength(1)
@description('Queue the send functions write to: the stack\'s OutputQueueUrl output, else the answered name.')
param sqsOutputQueue string = {{ cookiecutter.output_queue_name | tojson | replace('"', "'") }}

@minLength(1)
@description('Dead-letter queue of the input queue: the stack\'s DeadLetterQueueUrl output, else the answered name.')
param sqsDlq string = {{ cookiecutter.dlq_name | tojson | replace('"', "'") }}

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
{%- if cookiecutter.ci == "github" %}

@description('GitHub repository (owner/name) whose deploy workflow may deploy the app; empty: no deploy identity.')
param githubRepository string = ''

@description('Branch whose workflow runs may deploy.')
param githubBranch string = 'main'
{%- endif %}

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = '${abbrs.functionApp}${environmentName}-${resourceToken}'

// The app's settings: the answers (app-settings.json), then what the AWS stack's outputs decide.
var appSettings = concat(loadJsonContent('app-settings.json'), [
  { name: 'SQS_INPUT_QUEUE', value: sqsInputQueue }
  { name: 'SQS_OUTPUT_QUEUE', value: sqsOutputQueue }
  { name: 'SQS_DLQ', value: sqsDlq }
{%- if oidc %}
  { name: 'AWS_OIDC_ROLE_ARN', value: awsRoleArn }
{%- endif %}
])

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
{%- if cookiecutter.azure_identity == "user_assigned" %}
    name: '${abbrs.managedIdentity}${environmentName}-${resourceToken}'
    location: location
    tags: tags
{%- elif cookiecutter.azure_identity == "existing_user_assigned" %}
    existingIdentityId: existingIdentityId
{%- endif %}
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: '${abbrs.storageAccount}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: '${abbrs.logAnalyticsWorkspace}${environmentName}-${resourceToken}'
    applicationInsightsName: '${abbrs.applicationInsights}${environmentName}-${resourceToken}'
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
    planName: '${abbrs.appServicePlan}${environmentName}-${resourceToken}'
    location: location
    tags: tags
    pythonVersion: pythonVersion
{%- if flex %}
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
{%- endif %}
{%- if cookiecutter.azure_identity != "system_assigned" %}
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
{%- endif %}
    storageAccountName: storage.outputs.name
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    appSettings: appSettings
  }
}

// What the identity may do, each role for one reason (modules/roles.bicep says which).
module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
{%- if cookiecutter.azure_identity == "system_assigned" %}
    principalId: functionApp.outputs.systemAssignedPrincipalId
{%- else %}
    principalId: identity.outputs.principalId
{%- endif %}
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}
{%- if cookiecutter.ci == "github" %}

// The identity .github/workflows/deploy.yml logs in as, trusted for one repository and branch: no secret.
module githubDeploy 'modules/github-deploy.bicep' = if (!empty(githubRepository)) {
  name: 'github-deploy'
  params: {
    name: '${abbrs.managedIdentity}deploy-${environmentName}-${resourceToken}'
    location: location
    tags: tags
    githubRepository: githubRepository
    githubBranch: githubBranch
    functionAppName: functionApp.outputs.name
  }
}
{%- endif %}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = functionApp.outputs.url
{%- if cookiecutter.azure_identity == "system_assigned" %}
output AZURE_IDENTITY_CLIENT_ID string = ''
output AZURE_IDENTITY_PRINCIPAL_ID string = functionApp.outputs.systemAssignedPrincipalId
{%- else %}
output AZURE_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
{%- endif %}
output AZURE_IDENTITY_TENANT_ID string = tenant().tenantId
{%- if cookiecutter.ci == "github" %}
output AZURE_DEPLOY_CLIENT_ID string = empty(githubRepository) ? '' : githubDeploy.outputs.clientId
{%- endif %}
