"""Where telemetry goes, decided by the app settings once, at the first invocation (never at indexing).

- ``APPLICATIONINSIGHTS_CONNECTION_STRING``: the ``azure-monitor-opentelemetry`` distro exports
  traces and metrics to Application Insights. When ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING``
  says ``Authorization=AAD`` (as the Bicep sets it) it sends with the app's managed identity.
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the per-signal ``..._TRACES_ENDPOINT`` / ``..._METRICS_ENDPOINT``):
  OTLP over HTTP (protobuf) to any collector; with the above, to both.
- Neither: nothing is configured; the OpenTelemetry API's no-op providers cost next to nothing,
  and the drain reads no queue depths.

A provider someone else installed first (the Functions worker's own set-up, a test) is left in place.
``OTEL_SDK_DISABLED=true`` turns it all off; ``OTEL_TRACES_EXPORTER=none`` or ``OTEL_METRICS_EXPORTER=none``
turns off one signal.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from ..settings import APP_NAME

logger = logging.getLogger(__name__)

OTLP_ENDPOINTS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)
# The distro's instrumentations, all off: botocore's HTTP calls (urllib3) would add a dependency
# per SQS request, 20 s long polls included; the app's own spans say what happened.
AZURE_MONITOR_INSTRUMENTATIONS = (
    "azure_sdk",
    "django",
    "fastapi",
    "flask",
    "httpx",
    "psycopg2",
    "requests",
    "urllib",
    "urllib3",
)

_lock = threading.Lock()
_destination: list[str] = []


def configure(environ: Mapping[str, str] | None = None) -> str:
    """Sets up the exporters the settings ask for, once per process; returns where telemetry goes."""
    with _lock:
        if not _destination:
            _destination.append(_configure(os.environ if environ is None else environ))
            logger.info("telemetry: %s", _destination[0])
        return _destination[0]


def exporting() -> bool:
    """Whether metrics go anywhere: a real meter provider is installed (by us or before us)."""
    from opentelemetry import metrics

    return type(metrics.get_meter_provider()).__name__ not in ("_ProxyMeterProvider", "NoOpMeterProvider")


def _installed_already() -> bool:
    from opentelemetry import trace

    return exporting() or not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def _configure(env: Mapping[str, str]) -> str:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "off (OTEL_SDK_DISABLED)"
    if _installed_already():
        return "providers installed before the app's"
    app_insights = env.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip()
    otlp = any(env.get(name, "").strip() for name in OTLP_ENDPOINTS)
    if app_insights:
        _azure_monitor(env, app_insights, otlp)
        return "Application Insights" + (" and OTLP" if otlp else "")
    if otlp:
        _otlp(env)
        return "OTLP"
    return "none (no exporter configured)"


def _signal_on(env: Mapping[str, str], signal: str) -> bool:
    return env.get(f"OTEL_{signal}_EXPORTER", "").strip().lower() != "none"


def _resource(env: Mapping[str, str]) -> Any:
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "").strip() or APP_NAME})


def _otlp_parts(env: Mapping[str, str]) -> tuple[list[Any], list[Any]]:
    """A span processor and a metric reader exporting over OTLP/HTTP, as far as the signals are on."""
    processors: list[Any] = []
    readers: list[Any] = []
    if _signal_on(env, "TRACES"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        processors.append(BatchSpanProcessor(OTLPSpanExporter()))
    if _signal_on(env, "METRICS"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    return processors, readers


def _otlp(env: Mapping[str, str]) -> None:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    resource = _resource(env)
    processors, readers = _otlp_parts(env)
    # Both providers flush at exit (shutdown_on_exit), so a CLI command's telemetry is not lost.
    if processors:
        tracer_provider = TracerProvider(resource=resource)
        for processor in processors:
            tracer_provider.add_span_processor(processor)
        trace.set_tracer_provider(tracer_provider)
    if readers:
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))


def _azure_monitor(env: Mapping[str, str], connection_string: str, otlp: bool) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor

    # The host already sends the worker's logs to Application Insights: the distro's would be
    # duplicates. OTEL_LOGS_EXPORTER (read by the distro) can say otherwise.
    os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")
    processors, readers = _otlp_parts(env) if otlp else ([], [])
    configure_azure_monitor(
        connection_string=connection_string,
        credential=_credential(env),
        resource=_resource(env),
        enable_live_metrics=False,
        enable_performance_counters=False,
        instrumentation_options={name: {"enabled": False} for name in AZURE_MONITOR_INSTRUMENTATIONS},
        span_processors=processors,
        metric_readers=readers,
    )


def _credential(env: Mapping[str, str]) -> Any:
    """The managed identity, when the authentication string asks for Entra ID (local auth is off)."""
    authentication = env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "")
    parts = dict(part.split("=", 1) for part in authentication.split(";") if "=" in part)
    if parts.get("Authorization", "").strip().upper() != "AAD":
        return None
    # Set by the Bicep in every bake (a settings-table row only where AWS uses the identity too).
    client_id = (env.get("AZURE_MANAGED_IDENTITY_CLIENT_ID") or "").strip()
    client_id = client_id or parts.get("ClientId", "").strip()
    from ..managed_identity import managed_identity_credential  # the process's one cached credential

    return managed_identity_credential(client_id or None)
