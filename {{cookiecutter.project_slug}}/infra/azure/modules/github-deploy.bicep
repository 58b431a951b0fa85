// The identity the GitHub deploy workflow logs in as (azure/login with OpenID Connect). GitHub's token is
// trusted for one repository and branch through a federated credential: nothing to store as a secret.

param name string
param location string
param tags object

@description('owner/name of the GitHub repository.')
param githubRepository string

param githubBranch string
param functionAppName string

resource deployIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

// A credential's name takes letters, digits, '-' and '_' only; a branch may hold '/' or '.': hash it.
var trustKey = uniqueString(githubRepository, githubBranch)
var trustName = 'github-${trustKey}'

resource githubTrust 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = {
  parent: deployIdentity
  name: trustName
  properties: {
    issuer: 'https://token.actions.githubusercontent.com'
    // A workflow_run on the default branch, or a push to it, carries this subject.
    subject: 'repo:${githubRepository}:ref:refs/heads/${githubBranch}'
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

// Website Contributor on this app only: enough to deploy its code, nothing else in the subscription.
var websiteContributor = 'de139f84-1756-47ae-9be6-808fbbe84772'

resource deployRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(functionApp.id, deployIdentity.id, websiteContributor)
  scope: functionApp
  properties: {
    principalId: deployIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', websiteContributor)
  }
}

output clientId string = deployIdentity.properties.clientId
output principalId string = deployIdentity.properties.principalId
