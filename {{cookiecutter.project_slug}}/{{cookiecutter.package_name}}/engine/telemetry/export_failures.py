"""A failing exporter costs one warning, never a pass or a send.

Exports run on the SDK's own threads (a batch span processor, a periodic metric reader): a span
or a point is queued in memory and the drain goes on, whether the collector answers, hangs or is
gone. What a failing exporter would cost is its logs: the OTLP exporter logs every retry of every
batch, with the endpoint in the text, and the Application Insights exporter every failed
transmission. So the records of the export path at WARNING and above become one WARNING of ours
that names the setting, never its value, said again at most hourly while exports keep failing;
the records themselves go on at DEBUG, for whoever turns it on.
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger(__name__)

# The export path's loggers, by whose setting their failures name: the exporters' own, and the SDK's
# batch processors and metric reader, which serve every exporter.
APPLICATION_INSIGHTS_LOGGERS = ("azure.monitor.opentelemetry.exporter",)
OTLP_LOGGERS = ("opentelemetry.exporter",)
SDK_EXPORT_LOGGERS = ("opentelemetry.sdk._shared_internal", "opentelemetry.sdk.metrics._internal.export")
# A lasting failure is said again this often, so a later outage is not hidden by an early blip.
WARN_AGAIN_AFTER_SECONDS = 3_600.0


class ExportFailures(logging.Filter):
    """Attached to the export path's loggers: their WARNING and ERROR records go on at DEBUG, and the
    first (then one an hour) is reported as a WARNING that names ``setting``."""

    _lock = threading.Lock()
    _warned_at: dict[str, float] = {}  # noqa: RUF012 (one record per process, shared on purpose)

    def __init__(self, setting: str) -> None:
        super().__init__()
        self.setting = setting

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        self._report()
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        # The record was made because its logger allows WARNING: it goes on only if it allows DEBUG.
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    def _report(self) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._warned_at.get(self.setting)
            if last is not None and now - last < WARN_AGAIN_AFTER_SECONDS:
                return
            self._warned_at[self.setting] = now
        logger.warning(
            "telemetry export failed (%s): the drain and the sends go on; the exporter's own messages are "
            "logged at DEBUG, and this warning comes again within the hour if exports keep failing",
            self.setting,
        )


def report_export_failures(*, application_insights: str, otlp: str) -> None:
    """Puts an ``ExportFailures`` on each export logger loaded now (configuring loaded them), naming the
    setting of its exporter: ``application_insights`` and ``otlp`` are those set, or empty."""
    either = " or ".join(filter(None, (application_insights, otlp)))
    reporters = [
        (APPLICATION_INSIGHTS_LOGGERS, application_insights),
        (OTLP_LOGGERS, otlp),
        (SDK_EXPORT_LOGGERS, either),
    ]
    loaded = list(logging.root.manager.loggerDict)
    for prefixes, setting in reporters:
        if not setting:
            continue
        failures = ExportFailures(setting)
        for name in loaded:
            export_logger = logging.getLogger(name)
            mine = any(isinstance(f, ExportFailures) for f in export_logger.filters)
            if name.startswith(prefixes) and not mine:
                export_logger.addFilter(failures)
