// Alerts on Application Insights: a dead man's switch on the drain timer, and the handler's failure ratio.
// Both notify one action group (e-mail when an address is given; add receivers to it for chat or paging).

param applicationInsightsName string
param location string
param tags object

@description('Address the action group mails; empty: the group has no receiver until you add one.')
param alertEmail string

@description('Name of the timer function that drains the queue (functions/sqs_trigger.py).')
param drainFunctionName string

@description('Window without a successful drain invocation before the dead man\'s switch fires.')
param drainSilenceWindow string

@description('Percent of handled messages that failed, over the window, above which the failure alert fires.')
param handlerFailurePercent int

@description('Fewest messages in the window for the failure ratio to count (one failure of one is not a trend).')
param handlerFailureMinimumMessages int

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${applicationInsightsName}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'sqsdrain'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'owner'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// The Functions host logs each invocation in `requests` (never sampled: host.json excludes Request), so
// this watches the timer itself, whether or not the app's own telemetry is exported.
resource drainSilence 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'no-drain-pass-${applicationInsightsName}'
  location: location
  tags: tags
  properties: {
    displayName: 'No successful drain pass'
    description: 'The drain timer has not completed successfully within ${drainSilenceWindow}: the app is stopped, failing to start, or every pass fails (SQS errors, undeletable messages). docs/monitoring.md says where to look.'
    severity: 1
    enabled: true
    scopes: [applicationInsights.id]
    evaluationFrequency: 'PT5M'
    windowSize: drainSilenceWindow
    criteria: {
      allOf: [
        {
          query: 'requests | where name == "${drainFunctionName}" and success == true'
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [actionGroup.id]
    }
  }
}

// The drain's counters (engine/telemetry/names.py), summed over the window.
resource handlerFailures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'handler-failures-${applicationInsightsName}'
  location: location
  tags: tags
  properties: {
    displayName: 'Handler failure ratio'
    description: 'More than ${handlerFailurePercent}% of the messages handled in 15 minutes failed (at least ${handlerFailureMinimumMessages} messages). Failed messages are retried, then dead-lettered: see the workbook\'s failures by error type.'
    severity: 2
    enabled: true
    scopes: [applicationInsights.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'customMetrics | where name in ("sqs.drain.messages.handled", "sqs.drain.messages.failed") | summarize handled = sumif(valueSum, name == "sqs.drain.messages.handled"), failed = sumif(valueSum, name == "sqs.drain.messages.failed") | where handled + failed >= ${handlerFailureMinimumMessages} | extend failure_percent = 100.0 * failed / (handled + failed)'
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'failure_percent'
          operator: 'GreaterThan'
          threshold: handlerFailurePercent
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [actionGroup.id]
    }
  }
}

output actionGroupId string = actionGroup.id
