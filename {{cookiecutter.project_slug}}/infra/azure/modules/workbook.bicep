// The drain's workbook on Application Insights: its charts are in ../workbook.json (docs/monitoring.md).

param applicationInsightsName string
param location string
param tags object
param displayName string

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name is a GUID; this one is stable per app, so a redeploy updates it.
  name: guid(applicationInsights.id, 'sqs-drain-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsights.id
    serializedData: loadTextContent('../workbook.json')
    version: 'Notebook/1.0'
  }
}

output id string = workbook.id
