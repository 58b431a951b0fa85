// The identity the GitHub deploy workflow logs in as (azure/login with OpenID Connect). GitHub's token is
// trusted for one repository's deployment environment through a federated credential: nothing to store.

param name string
param location string
param tags object

@description('owner/name of the GitHub repository.')
param githubRepository string

@description('GitHub deployment environment of the deploy job (.github/workflows/deploy.yml).')
param githubEnvironment string = 'production'

param functionAppName string

resource deployIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

// A credential's name takes letters, digits, '-' and '_' only; an environment's name may hold others: hash it.
var trustKey = uniqueString(githubRepository, githubEnvironment)
var trustName = 'github-${trustKey}'

resource githubTrust 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = {
  parent: deployIdentity
  name: trustName
  properties: {
    issuer: 'https://token.actions.githubusercontent.com'
    // Only a job that names this environment (deploy.yml's deploy job) carries this subject; any workflow
    // on the default branch carries `ref:refs/heads/main`, so that subject is not trusted. The subject names
    // no branch: azd's postprovision hook locks the environment to main (deploy/github_environment.py).
    subject: 'repo:${githubRepository}:environment:${githubEnvironment}'
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
