"""Cold start: how long the Functions host's Python worker takes to import and index this app.

Compares ``function_app`` with a bare app as ``func init --model V2`` writes it (one HTTP
function, importing only azure-functions). Each sample is a fresh interpreter that imports
``function_app`` (timed with perf_counter inside the process, so interpreter start-up is
excluded) and then indexes it with ``get_functions()``, as the worker does at start-up.
pip compiles the dependencies' bytecode when it installs them; one warm-up run compiles the app's.

    python benchmarks/cold_start.py [--runs 21]

It also lists the heavy libraries (boto3, botocore, azure-identity, pydantic, OpenTelemetry...) and the
app's own modules that the import pulls in: there should be none, they load at a function's first invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

APP_ROOT = Path(__file__).resolve().parents[1]
HEAVY_MODULES = (
    "boto3",
    "botocore",
    "azure.identity",
    "azure.core",
    "azure.data.tables",
    "pydantic",
    "msal",
    "requests",
    "urllib3",
    "opentelemetry",
    "azure.monitor",
    # The app's own that load at a function's first call: the consumer, the watchdog and what it reads.
    "{{ cookiecutter.package_name }}.engine.consumer",
    "{{ cookiecutter.package_name }}.engine.scale_out.watchdog",
    "{{ cookiecutter.package_name }}.engine.schedule",
    "{{ cookiecutter.package_name }}.engine.storage_account",
)

BARE_APP = """import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="http_trigger")
def http_trigger(req: func.HttpRequest) -> func.HttpResponse:
    name = req.params.get("name")
    return func.HttpResponse(f"Hello, {name}." if name else "Hello.")
"""

SAMPLE = """
import json, sys, time
start = time.perf_counter()
import function_app
imported = time.perf_counter()
import azure.functions as func
[app] = [v for v in vars(function_app).values() if isinstance(v, func.FunctionRegister)]
functions = app.get_functions()
indexed = time.perf_counter()
heavy = sorted(m for m in json.loads(sys.argv[1]) if m in sys.modules)
print(json.dumps({"import_ms": (imported - start) * 1e3, "index_ms": (indexed - start) * 1e3,
                  "functions": len(functions), "heavy": heavy}))
"""


@dataclass(frozen=True)
class Sample:
    import_ms: float
    index_ms: float
    functions: int
    heavy: list[str]


def sample(app_dir: Path) -> Sample:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, "-c", SAMPLE, json.dumps(HEAVY_MODULES)]
    result = subprocess.run(command, cwd=app_dir, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    return Sample(**json.loads(result.stdout))


def describe(name: str, samples: list[Sample]) -> dict[str, float]:
    imports = [s.import_ms for s in samples]
    figures = {
        "import": statistics.median(imports),
        "import+index": statistics.median(s.index_ms for s in samples),
    }
    print(
        f"{name:<14} import {figures['import']:6.1f} ms (min {min(imports):6.1f}, max {max(imports):6.1f})"
        f"   import+index {figures['import+index']:6.1f} ms   functions {samples[0].functions}"
        f"   heavy modules loaded: {', '.join(samples[0].heavy) or 'none'}"
    )
    return figures


DEFERRED = """
import importlib.util, json, time
start = time.perf_counter()
import boto3
boto3.client("sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
sqs = time.perf_counter()
identity_ms = None
if importlib.util.find_spec("azure.identity"):
    import azure.identity
    identity_ms = (time.perf_counter() - sqs) * 1e3
loaded = time.perf_counter()
import {{ cookiecutter.package_name }}.handler
handler = time.perf_counter()
import azure.data.tables
tables = time.perf_counter()
import {{ cookiecutter.package_name }}.engine.telemetry.drain
import {{ cookiecutter.package_name }}.engine.telemetry.sending
otel_api = time.perf_counter()
import opentelemetry.sdk.trace, opentelemetry.sdk.metrics
import opentelemetry.exporter.otlp.proto.http.trace_exporter
import opentelemetry.exporter.otlp.proto.http.metric_exporter
otlp = time.perf_counter()
import azure.monitor.opentelemetry
distro = time.perf_counter()
print(json.dumps({"boto3_sqs_client_ms": (sqs - start) * 1e3, "azure_identity_ms": identity_ms,
                  "handler_ms": (handler - loaded) * 1e3, "tables_ms": (tables - handler) * 1e3,
                  "otel_api_ms": (otel_api - tables) * 1e3, "otlp_sdk_ms": (otlp - otel_api) * 1e3,
                  "distro_ms": (distro - otlp) * 1e3}))
"""


def deferred_costs(runs: int) -> None:
    """What the lazy imports keep out of start-up: the first invocation pays it instead."""
    samples = [
        json.loads(
            subprocess.run(  # noqa: S603
                [sys.executable, "-c", DEFERRED], cwd=APP_ROOT, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    client_ms = statistics.median(s["boto3_sqs_client_ms"] for s in samples)
    line = f"deferred to the first invocation: boto3 + SQS client {client_ms:.0f} ms"
    if samples[0]["azure_identity_ms"] is not None:
        line += f", azure-identity {statistics.median(s['azure_identity_ms'] for s in samples):.0f} ms"
    handler_ms = statistics.median(s["handler_ms"] for s in samples)
    line += f"; handler (pydantic and the model) {handler_ms:.0f} ms"
    line += f", azure-data-tables {statistics.median(s['tables_ms'] for s in samples):.0f} ms"
    print(line)
    # Telemetry: the API at every first invocation; the SDK and an exporter only when one is configured.
    print(
        f"deferred telemetry: OpenTelemetry API and the app's telemetry "
        f"{statistics.median(s['otel_api_ms'] for s in samples):.0f} ms; with OTEL_EXPORTER_OTLP_ENDPOINT, "
        f"SDK + OTLP exporters {statistics.median(s['otlp_sdk_ms'] for s in samples):.0f} ms more; with "
        f"APPLICATIONINSIGHTS_CONNECTION_STRING, the Azure Monitor distro "
        f"{statistics.median(s['distro_ms'] for s in samples):.0f} ms more"
    )


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="fresh processes per app (default 21)")
    runs = parser.parse_args().runs
    print(f"Python {platform.python_version()}, {platform.system()}, {cpu_model()} x {os.cpu_count()}")
    print(f"median of {runs} fresh processes each, after one warm-up run\n")
    with tempfile.TemporaryDirectory(prefix="bare-func-app-") as bare:
        bare_dir = Path(bare)
        (bare_dir / "function_app.py").write_text(BARE_APP, encoding="utf-8")
        apps = {"bare func init": bare_dir, "this app": APP_ROOT}
        for app_dir in apps.values():
            sample(app_dir)  # warm-up: compiles bytecode
        samples: dict[str, list[Sample]] = {name: [] for name in apps}
        for _ in range(runs):  # interleaved, so drift in machine load hits both alike
            for name, app_dir in apps.items():
                samples[name].append(sample(app_dir))
        figures = {name: describe(name, s) for name, s in samples.items()}
    print()
    for measure in ("import", "import+index"):
        ratio = figures["this app"][measure] / figures["bare func init"][measure]
        print(f"{measure}: this app / bare app = {ratio:.2f}")
    # Each pair ran back to back: on a machine others load, the ratio within a pair moves less.
    pairs = zip(samples["this app"], samples["bare func init"], strict=True)
    paired = statistics.median(app.import_ms / bare.import_ms for app, bare in pairs)
    print(f"import, paired: median of this app / bare app in each pair = {paired:.2f}")
    deferred_costs(max(3, runs // 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
