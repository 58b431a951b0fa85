"""The template's engine: the SQS consumer and producer, AWS and Azure credentials, queues, scale-out,
idempotency and the settings table.

Not yours to edit: update it from newer templates (docs/updating.md). Your part is ``handler.py``,
``functions/`` and the settings you add.
"""
