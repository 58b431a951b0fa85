"""Run a generated app in the real Azure Functions Python worker library, as the Functions host would.

``func start`` cannot be installed here, but its Python side can: ``azure-functions-runtime`` is
the worker library that runs v2 apps on Python 3.13+. This file plays the host. It sends the
host's protobuf messages (WorkerInit -> FunctionsMetadata -> FunctionLoad -> Invocation) straight
to the library's handlers, without the gRPC channel, and decodes the answers. Indexing, type
checks, binding converters and response encoding are all the library's own code.

Two halves:

- test side, standard library only (the template's tests import it on any Python):
  ``ensure_venv`` builds a cached Python 3.13 venv; ``run_scenario`` runs steps in it.
- worker side, run as a script by that venv: ``python worker_harness.py APP SCENARIO OUT``.

Facts it relies on (azure-functions-runtime 1.3.0):

- The library indexes the app in ``worker_init_request``: import errors and bad bindings fail
  *init*; metadata then lists no function and load acknowledges any id.
- It imports ``function_app`` by module name, so the app root goes first on ``sys.path``.
- The FunctionRpc stubs ship as a top-level ``tests/protos`` package in the
  ``azure-functions-runtime-v1`` wheel; they are loaded under a private name so the app's own
  ``tests`` package is neither shadowed nor imported.
- ``%Setting%`` tokens in bindings are resolved by the host, not the worker: so here.
- The library advertises ``RpcHttpBodyOnly`` and ``RawHttpBodyBytes``: the host then sends the
  body as bytes, only when there is one, with lower-case header names.
- A queue trigger gets the message body as a string, already decoded as host.json's
  ``extensions.queues.messageEncoding`` says (base64 by default), with its metadata (``Id``,
  ``DequeueCount``, times, ``PopReceipt``) beside it; the harness reads the message from the real
  Storage queue (Azurite), with the app's own azure-storage-queue.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

WORKER_PINS = (
    "azure-functions-runtime==1.3.0",
    "azure-functions-runtime-v1==1.2.0",  # only for its FunctionRpc protobuf stubs
    "azurefunctions-extensions-base==1.2.0",
    "grpcio==1.70.0",  # what the 3.13 worker ships with (grpcio~=1.70.0, protobuf~=5.29.0)
    "protobuf==5.29.6",
)
PROTOS_MODULE = "_harness_functionrpc_protos"
READY_MARKER = ".ready"


class HarnessError(RuntimeError):
    """The harness, not the worker, could not do what a step asked."""


# --------------------------------------------------------------------------------------------
# Test side
# --------------------------------------------------------------------------------------------
def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def ensure_venv(cache_dir: Path, python: str, requirements: Path) -> Path:
    """The python of a venv with the worker pins and the app's requirements, built once per key.

    One pip run resolves both, so the app's own pins (azure-functions, boto3) hold as they do on
    the host. A lock makes parallel test workers wait for one build instead of racing.
    """
    import fcntl
    import shutil

    requirements_text = requirements.read_text(encoding="utf-8")
    key_source = "\n".join([*WORKER_PINS, requirements_text, os.path.realpath(python)])
    venv = cache_dir / f"worker-venv-{hashlib.sha256(key_source.encode()).hexdigest()[:16]}"
    venv_python = venv / "bin" / "python"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / READY_MARKER).exists():
            return venv_python
        shutil.rmtree(venv, ignore_errors=True)  # half-built by an interrupted run
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        pip = [str(venv_python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        # The app's hash-locked requirements.txt first, every hash checked: a file with hashes puts pip in
        # hash-checking mode, so the worker's pins (no hashes) go in a second run, which must leave the
        # lock's versions as they are (pip's own check below).
        subprocess.run([*pip, "--require-hashes", "-r", str(requirements)], check=True)
        subprocess.run([*pip, *WORKER_PINS], check=True)
        frozen = subprocess.run(
            [str(venv_python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True
        ).stdout
        installed = {_canonical(n): v for n, _, v in (line.partition("==") for line in frozen.splitlines())}
        locked = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$", requirements_text, re.MULTILINE)
        moved = [
            f"{n}=={v} (now {installed.get(_canonical(n))})"
            for n, v in locked
            if installed.get(_canonical(n)) != v
        ]
        if moved:
            raise HarnessError(f"the worker's pins moved the app's locked versions: {moved}")
        (venv / READY_MARKER).write_text(key_source, encoding="utf-8")
    return venv_python


def run_scenario(
    venv_python: Path, app_dir: Path, steps: Sequence[Mapping[str, Any]], env: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Run ``steps`` against ``app_dir`` in a fresh worker process; ``env`` is its app settings."""
    with tempfile.TemporaryDirectory(prefix="worker-harness-") as tmp:
        scenario, out = Path(tmp) / "scenario.json", Path(tmp) / "result.json"
        scenario.write_text(json.dumps(list(steps)), encoding="utf-8")
        process = subprocess.run(
            [str(venv_python), "-I", __file__, str(app_dir), str(scenario), str(out)],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if process.returncode != 0 or not out.exists():
            raise HarnessError(f"harness exited {process.returncode}\n{process.stderr[-5000:]}")
        results: list[dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))
    return results


# --------------------------------------------------------------------------------------------
# Worker side (Python 3.13 venv)
# --------------------------------------------------------------------------------------------
SETTING_TOKEN = re.compile(r"%([^%\s]+)%")


def load_protos() -> Any:
    """azure-functions-runtime-v1's ``tests/protos``, imported under a private name."""
    import importlib.util
    from importlib.metadata import distribution

    folder = Path(str(distribution("azure-functions-runtime-v1").locate_file("tests/protos")))
    spec = importlib.util.spec_from_file_location(
        PROTOS_MODULE, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise HarnessError(f"no FunctionRpc stubs in {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[PROTOS_MODULE] = module  # before exec: the stubs import their siblings relatively
    spec.loader.exec_module(module)
    return module


class RecordCollector(logging.Handler):
    """Keeps every log line of the worker and the app, to hand back per invocation."""

    def __init__(self, records: list[str]) -> None:
        super().__init__(logging.INFO)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}")


class WorkerHarness:
    """The host's side of the conversation with one app; one app per process (the library keeps
    global state)."""

    def __init__(self, app_dir: Path) -> None:
        import asyncio

        self.app_dir = app_dir.resolve()
        # As the host starts the worker: cwd and script root are the app; the app imports by name.
        os.environ.setdefault("AzureWebJobsScriptRoot", str(self.app_dir))
        os.environ.setdefault("FUNCTIONS_WORKER_RUNTIME", "python")
        os.chdir(self.app_dir)
        sys.path.insert(0, str(self.app_dir))
        self.protos = load_protos()
        self.pb = self.protos.FunctionRpc_pb2
        import azure_functions_runtime

        self.worker = azure_functions_runtime
        self.loop = asyncio.new_event_loop()  # one loop for every call: sync functions run in its executor
        asyncio.set_event_loop(self.loop)
        self.capabilities: dict[str, str] = {}
        self.functions: dict[str, dict[str, Any]] = {}
        self.records: list[str] = []
        logging.getLogger().addHandler(RecordCollector(self.records))
        logging.getLogger().setLevel(logging.INFO)

    def _call(self, handler: str, properties: dict[str, Any] | None = None, **message: Any) -> Any:
        from types import SimpleNamespace

        request = SimpleNamespace(
            name=handler,
            request=self.pb.StreamingMessage(request_id=os.urandom(8).hex(), **message),
            properties=properties,
        )
        return self.loop.run_until_complete(getattr(self.worker, handler)(request))

    def _status(self, result: Any) -> dict[str, Any]:
        failed = result.status != self.pb.StatusResult.Success
        return {
            "status": self.pb.StatusResult.Status.Name(result.status),
            "exception": result.exception.message if failed else None,
        }

    def init(self) -> dict[str, Any]:
        self.worker.start_threadpool_executor()  # what the host-facing proxy worker does first
        request = self.pb.WorkerInitRequest(
            host_version="4.0.0-template-tests",
            worker_directory=str(Path(self.worker.__file__).parent),
            function_app_directory=str(self.app_dir),
        )
        response = self._call(
            "worker_init_request", {"protos": self.protos, "host": "127.0.0.1"}, worker_init_request=request
        )
        self.capabilities = dict(response.capabilities)
        return {**self._status(response.result), "capabilities": self.capabilities}

    def metadata(self) -> dict[str, Any]:
        request = self.pb.FunctionsMetadataRequest(function_app_directory=str(self.app_dir))
        response = self._call("functions_metadata_request", functions_metadata_request=request)
        self.functions = {}
        for meta in response.function_metadata_results:
            bindings = [json.loads(raw) for raw in meta.raw_bindings]
            unresolved = sorted(
                {m for raw in meta.raw_bindings for m in SETTING_TOKEN.findall(raw) if m not in os.environ}
            )
            self.functions[meta.name] = {
                "function_id": meta.function_id,
                "bindings": bindings,
                "unresolved_settings": unresolved,
                "meta": meta,
            }
        return {
            **self._status(response.result),
            "functions": {
                name: {k: v for k, v in f.items() if k != "meta"} for name, f in self.functions.items()
            },
        }

    def load_all(self) -> dict[str, Any]:
        statuses = {}
        for name, function in self.functions.items():
            request = self.pb.FunctionLoadRequest(
                function_id=function["function_id"], metadata=function["meta"]
            )
            statuses[name] = self._status(
                self._call("function_load_request", function_load_request=request).result
            )
        return {
            "status": "Success" if all(s["exception"] is None for s in statuses.values()) else "Failure",
            "functions": statuses,
        }

    def _trigger(self, name: str, trigger_type: str) -> dict[str, Any]:
        if name not in self.functions:
            raise HarnessError(f"{name!r} is not indexed; indexed: {sorted(self.functions)}")
        function = self.functions[name]
        if function["unresolved_settings"]:
            raise HarnessError(f"{name}: app settings {function['unresolved_settings']} are not set")
        trigger = next(b for b in function["bindings"] if b["type"].endswith("Trigger"))
        if trigger["type"] != trigger_type:
            raise HarnessError(f"{name} has a {trigger['type']}, not a {trigger_type}")
        return dict(trigger)

    def invoke(
        self, name: str, arg_name: str, data: Any, trigger_metadata: Mapping[str, Any]
    ) -> dict[str, Any]:
        first_record = len(self.records)
        request = self.pb.InvocationRequest(
            invocation_id=os.urandom(16).hex(),
            function_id=self.functions[name]["function_id"],
            input_data=[self.pb.ParameterBinding(name=arg_name, data=data)],
            trigger_metadata=dict(trigger_metadata),
        )
        response = self._call("invocation_request", invocation_request=request)
        result = {**self._status(response.result), "logs": self.records[first_record:]}
        if response.return_value.WhichOneof("data") == "http":
            http = response.return_value.http
            result["http"] = {
                "status_code": int(http.status_code),
                "headers": dict(http.headers),
                "body": http.body.bytes.decode()
                if http.body.WhichOneof("data") == "bytes"
                else http.body.string,
            }
        return result

    def invoke_timer(self, name: str, past_due: bool = False) -> dict[str, Any]:
        from datetime import UTC, datetime, timedelta

        trigger = self._trigger(name, "timerTrigger")
        now = datetime.now(UTC)
        timer_info = {
            "Schedule": {"AdjustForDST": True},
            "ScheduleStatus": {
                "Last": (now - timedelta(minutes=1)).isoformat(),
                "Next": (now + timedelta(minutes=1)).isoformat(),
                "LastUpdated": now.isoformat(),
            },
            "IsPastDue": past_due,
        }
        typed = self.pb.TypedData
        sys_metadata = {"MethodName": name, "UtcNow": now.isoformat(), "RandGuid": os.urandom(16).hex()}
        return self.invoke(
            name,
            trigger["name"],
            typed(json=json.dumps(timer_info)),
            {"sys": typed(json=json.dumps(sys_metadata))},
        )

    def invoke_http(
        self, name: str, method: str, body: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        from urllib.parse import urlencode

        trigger = self._trigger(name, "httpTrigger")
        if (
            self.capabilities.get("RpcHttpBodyOnly") != "true"
            or self.capabilities.get("RawHttpBodyBytes") != "true"
        ):
            raise HarnessError(f"the worker's HTTP capabilities changed: {self.capabilities}")
        if method.upper() not in [m.upper() for m in trigger.get("methods") or [method]]:
            raise HarnessError(f"{name} does not accept {method}; the host would answer 405")
        raw = body.encode()
        lower_headers = {k.lower(): v for k, v in headers.items()}
        if raw:
            lower_headers["content-length"] = str(len(raw))
        path = "/".join(part for part in (self._route_prefix(), trigger["route"]) if part)
        http = self.pb.RpcHttp(
            method=method.upper(),
            url=f"http://localhost:7071/{path}" + (f"?{urlencode(query)}" if query else ""),
            headers=lower_headers,
            query={k: v for k, v in query.items() if v},
        )
        if raw:
            http.body.CopyFrom(self.pb.TypedData(bytes=raw))
        return self.invoke(name, trigger["name"], self.pb.TypedData(http=http), {})

    def invoke_queue(self, name: str) -> dict[str, Any]:
        """Invoke ``name`` with the next message of its trigger's Storage queue, as the host does.

        The queue and account come from the binding (``queueName``, ``connection``: a connection
        string here, Azurite). The body is decoded as host.json's ``messageEncoding`` says (base64
        unless "none"). On success the message is deleted; on failure it stays, or goes to
        ``<queue>-poison`` once its dequeue count reaches ``maxDequeueCount``.
        """
        import base64

        from azure.storage.queue import QueueClient

        trigger = self._trigger(name, "queueTrigger")
        queue_name = SETTING_TOKEN.sub(lambda m: os.environ[m.group(1)], trigger["queueName"])
        connection = os.environ[trigger.get("connection") or "AzureWebJobsStorage"]
        queue = QueueClient.from_connection_string(connection, queue_name)
        message = queue.receive_message(visibility_timeout=600)
        if message is None:
            raise HarnessError(f"no message on queue {queue_name!r} for {name}")
        settings = self._queue_settings()
        body = (
            message.content.encode()
            if settings.get("messageEncoding", "base64").lower() == "none"
            else base64.b64decode(message.content)
        )
        typed = self.pb.TypedData
        metadata = {
            "Id": typed(string=message.id),
            "DequeueCount": typed(json=str(message.dequeue_count)),
            "InsertionTime": typed(json=json.dumps(message.inserted_on.isoformat())),
            "ExpirationTime": typed(json=json.dumps(message.expires_on.isoformat())),
            "NextVisibleTime": typed(json=json.dumps(message.next_visible_on.isoformat())),
            "PopReceipt": typed(string=message.pop_receipt),
            "QueueTrigger": typed(string=body.decode("utf-8", errors="replace")),
        }
        result = self.invoke(name, trigger["name"], typed(string=body.decode("utf-8")), metadata)
        if result["exception"] is None:
            queue.delete_message(message)
            result["token_queue"] = "deleted"
        elif message.dequeue_count >= int(settings.get("maxDequeueCount", 5)):
            QueueClient.from_connection_string(connection, f"{queue_name}-poison").send_message(
                message.content
            )
            queue.delete_message(message)
            result["token_queue"] = "poisoned"
        else:
            result["token_queue"] = "kept"
        return result

    def _queue_settings(self) -> dict[str, Any]:
        host = json.loads((self.app_dir / "host.json").read_text(encoding="utf-8"))
        return dict(host.get("extensions", {}).get("queues", {}))

    def _route_prefix(self) -> str:
        host = json.loads((self.app_dir / "host.json").read_text(encoding="utf-8"))
        return str(host.get("extensions", {}).get("http", {}).get("routePrefix", "api")).strip("/")

    def close(self) -> None:
        self.worker.stop_threadpool_executor()
        self.loop.close()


def run_steps(app_dir: Path, steps: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    harness = WorkerHarness(app_dir)
    results: list[dict[str, Any]] = []
    try:
        for step in steps:
            op = step["op"]
            if op in ("init", "metadata", "load_all"):
                result = getattr(harness, op)()
            elif op == "invoke_timer":
                result = harness.invoke_timer(step["function"], step.get("past_due", False))
            elif op == "invoke_queue":
                result = harness.invoke_queue(step["function"])
            elif op == "sleep_until":  # the host idle: a stopped timer, a message's delay
                time.sleep(max(0.0, float(step["at"]) - time.time()))
                result = {}
            elif op == "invoke_http":
                result = harness.invoke_http(
                    step["function"],
                    step.get("method", "POST"),
                    step.get("body", ""),
                    step.get("query", {}),
                    step.get("headers", {}),
                )
            else:
                raise HarnessError(f"unknown op {op!r}")
            results.append({"op": op, **result})
    finally:
        harness.close()
    return results


def main(app_dir: str, scenario: str, out: str) -> int:
    steps = json.loads(Path(scenario).read_text(encoding="utf-8"))
    # The app's print()s must not mix with our output: fd 1 goes to stderr while it runs.
    os.dup2(2, 1)
    results = run_steps(Path(app_dir), steps)
    Path(out).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
