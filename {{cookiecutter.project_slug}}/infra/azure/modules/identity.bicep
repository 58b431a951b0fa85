{%- if cookiecutter.azure_identity == "user_assigned" -%}
// The user-assigned identity the app runs as: created first, so its principal ID exists before any code runs
// and the AWS trust can name it.

param name string
param location string
param tags object
@description('Only for an existing identity.')
#pragma disable-next-line no-unused-params
param existingIdentityId string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
{%- elif cookiecutter.azure_identity == "existing_user_assigned" -%}
// The existing user-assigned identity the app runs as (answered by its resource ID); this deployment
// only reads it.

@description('Only for an identity this deployment creates.')
#pragma disable-next-line no-unused-params
param name string
#pragma disable-next-line no-unused-params
param location string
#pragma disable-next-line no-unused-params
param tags object
param existingIdentityId string

// /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>
var parts = split(existingIdentityId, '/')

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: parts[8]
  scope: resourceGroup(parts[2], parts[4])
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
{%- else -%}
// The app runs as its system-assigned identity: function-app.bicep turns it on and outputs its principal ID.
// Nothing to create here; this module stays so main.bicep reads the same for every identity choice.

#pragma disable-next-line no-unused-params
param name string
#pragma disable-next-line no-unused-params
param location string
#pragma disable-next-line no-unused-params
param tags object
#pragma disable-next-line no-unused-params
param existingIdentityId string

output id string = ''
output clientId string = ''
output principalId string = ''
{%- endif %}
