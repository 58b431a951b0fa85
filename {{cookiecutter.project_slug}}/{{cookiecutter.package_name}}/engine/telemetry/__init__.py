"""The app's telemetry, through OpenTelemetry: spans that carry one message's trace from its send
to its handler, and the drain's metrics, exported where the settings say (``setup``).

Nothing here imports OpenTelemetry at module import: the modules that do (``instruments``,
``propagation``, ``sending``, ``drain``) are loaded at the first send or drain, so indexing the
app costs nothing more. The names everything goes by are in ``names``.
"""
