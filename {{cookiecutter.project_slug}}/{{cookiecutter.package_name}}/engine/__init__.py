"""The template's engine: the SQS consumer and producer, AWS and Azure credentials, queues, scale-out,
idempotency and the settings table.

Don't edit it: update it from newer versions of the template with cruft (``cruft check``,
``cruft update``; docs/updating.md). Yours are ``handler.py``, ``functions/`` and the settings you
add (a row of the table in ``settings.py``).
"""
