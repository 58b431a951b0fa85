"""The function app's code: SQS consumer and producer, AWS credentials, settings."""
