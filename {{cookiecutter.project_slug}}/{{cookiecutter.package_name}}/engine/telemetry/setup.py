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

Telemetry never stops the work: a setting that cannot be used (a connection string left as an
unresolved Key Vault reference) is one WARNING that names it, never its value, and telemetry stays
off for the process, on the API's no-op providers. Failed exports are ``export_failures``'s.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from ..settings import APP_NAME
from .export_failures import report_export_failures

logger = logging.getLogger(__name__)

APPLICATION_INSIGHTS = "APPLICATIONINSIGHTS_CONNECTION_STRING"
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
    """Sets up the exporters the settings ask for, once per process; returns where telemetry goes.

    Never raises: settings that cannot be used leave telemetry off, with one warning."""
    with _lock:
        if not _destination:
            env = os.environ if environ is None else environ
            try:
                destination = _configure(env)
            except Exception as error:
                settings = " and ".join(_destination_settings(env))
                logger.warning(
                    "telemetry off: it cannot be configured from %s (%s: %s); the drain and the sends go "
                    "on without it",
                    settings,
                    type(error).__name__,
                    _without_values(str(error), env),
                )
                destination = f"off ({settings} unusable)"
            _destination.append(destination)
            logger.info("telemetry: %s", destination)
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
    settings = _destination_settings(env)
    if not settings:
        return "none (no exporter configured)"
    app_insights = env.get(APPLICATION_INSIGHTS, "").strip()
    otlp = [name for name in settings if name in OTLP_ENDPOINTS]
    processors, readers = _otlp_parts(env) if otlp else ([], [])
    try:
        if app_insights:
            _azure_monitor(env, app_insights, processors, readers)
        else:
            _install(env, processors, readers)
    except BaseException:
        _stop_unused(processors, readers)
        raise
    report_export_failures(
        application_insights=APPLICATION_INSIGHTS if app_insights else "", otlp=" and ".join(otlp)
    )
    return " and ".join(["Application Insights"] * bool(app_insights) + ["OTLP"] * bool(otlp))


def _destination_settings(env: Mapping[str, str]) -> list[str]:
    """The settings that choose where telemetry goes, of those set."""
    return [name for name in (APPLICATION_INSIGHTS, *OTLP_ENDPOINTS) if env.get(name, "").strip()]


def _without_values(text: str, env: Mapping[str, str]) -> str:
    """``text`` with every telemetry setting's value, and the values of its ``key=value`` parts, cut out."""
    for name, value in env.items():
        if name.startswith(("APPLICATIONINSIGHTS_", "OTEL_")):
            pieces = {value, *(part.split("=", 1)[-1] for part in value.split(";"))}
            for piece in sorted((p.strip() for p in pieces), key=len, reverse=True):
                text = text.replace(piece, f"<{name}>") if len(piece) >= 4 else text
    return text


def _stop_unused(processors: list[Any], readers: list[Any]) -> None:
    """Stops the threads of the exporters that no installed provider holds."""
    from opentelemetry import trace

    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        for processor in processors:
            processor.shutdown()
    if not exporting():
        for reader in readers:
            reader.shutdown()


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


def _install(env: Mapping[str, str], processors: list[Any], readers: list[Any]) -> None:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    resource = _resource(env)
    # Both providers flush at exit (shutdown_on_exit), so a CLI command's telemetry is not lost.
    if processors:
        tracer_provider = TracerProvider(resource=resource)
        for processor in processors:
            tracer_provider.add_span_processor(processor)
        trace.set_tracer_provider(tracer_provider)
    if readers:
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))


def _azure_monitor(
    env: Mapping[str, str], connection_string: str, processors: list[Any], readers: list[Any]
) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor

    # The host already sends the worker's logs to Application Insights: the distro's would be
    # duplicates. OTEL_LOGS_EXPORTER (read by the distro) can say otherwise.
    os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")
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
