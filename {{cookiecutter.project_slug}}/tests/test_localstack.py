"""localstack/: the compose file agrees with local.settings.json, and its ready hook creates the queues."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import yaml

from {{ cookiecutter.package_name }}.engine.queues import queue_arn
from {{ cookiecutter.package_name }}.ops.local_dev.emulator import AZURITE_COMMAND

from .conftest import CONFIGURED_QUEUES, unique

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = PROJECT / "localstack" / "compose.yaml"
HOOK = PROJECT / "localstack" / "init" / "ready.d" / "create_queues.py"
PACKAGE = "{{ cookiecutter.package_name }}"
AZURITE_PORTS = {10000, 10001, 10002}  # blob, queue, table: what UseDevelopmentStorage=true means
PINNED_TAG = re.compile(r"^\d+(\.\d+)+$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def local_settings() -> dict[str, str]:
    values = json.loads((PROJECT / "local.settings.json").read_text(encoding="utf-8"))["Values"]
    assert isinstance(values, dict)
    return values


def published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each port binding."""
    bindings = []
    for binding in service["ports"]:
        host, host_port, container_port = str(binding).split(":")
        bindings.append((host, int(host_port), int(container_port)))
    return bindings


def test_the_compose_file_runs_localstack_and_azurite_on_pinned_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"localstack", "azurite"}
    images = {name: service["image"].rsplit(":", 1) for name, service in services.items()}
    assert images["localstack"][0] == "localstack/localstack"
    assert images["azurite"][0] == "mcr.microsoft.com/azure-storage/azurite"
    for name, (_, tag) in images.items():
        assert PINNED_TAG.match(tag), f"{name} image tag {tag!r} is not a pinned version"


def test_the_readme_and_the_npx_command_use_the_same_pinned_versions(compose: dict[str, Any]) -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    tags = {name: service["image"].rsplit(":", 1)[1] for name, service in compose["services"].items()}
    assert f"azurite@{tags['azurite']} " in AZURITE_COMMAND
    for tag in tags.values():
        assert f"`{tag}`" in readme


def test_every_port_is_bound_to_loopback_only(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        assert {host for host, _, _ in published(service)} == {"127.0.0.1"}


def test_both_services_have_health_checks(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        check = service["healthcheck"]
        assert check["test"][0] == "CMD"
        assert check["retries"] >= 1
    # LocalStack counts as healthy only once the ready hook has succeeded.
    assert "/_localstack/init/ready" in compose["services"]["localstack"]["healthcheck"]["test"][-1]


def test_localstack_runs_sqs_with_path_urls_and_demands_an_auth_token(compose: dict[str, Any]) -> None:
    environment = compose["services"]["localstack"]["environment"]
    assert environment["SERVICES"] == "sqs,sts,iam"
    assert environment["SQS_ENDPOINT_STRATEGY"] == "path"
    # Compose refuses to start without the token, and its message says where to get one.
    guard = re.fullmatch(r"\$\{LOCALSTACK_AUTH_TOKEN:\?([^}]+)\}", environment["LOCALSTACK_AUTH_TOKEN"])
    assert guard, environment["LOCALSTACK_AUTH_TOKEN"]
    assert "https://app.localstack.cloud/" in guard.group(1)
    assert "localstack/.env" in guard.group(1)


def test_the_ports_match_local_settings(compose: dict[str, Any], local_settings: dict[str, str]) -> None:
    endpoint = urlsplit(local_settings["AWS_ENDPOINT_URL"])
    assert (endpoint.scheme, endpoint.hostname) == ("http", "localhost")
    assert [(port, inside) for _, port, inside in published(compose["services"]["localstack"])] == [
        (endpoint.port, 4566)
    ]
    assert local_settings["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    azurite = published(compose["services"]["azurite"])
    assert {port for _, port, _ in azurite} == {inside for _, _, inside in azurite} == AZURITE_PORTS


def test_the_settings_name_queues_and_carry_localstack_credentials(local_settings: dict[str, str]) -> None:
    # Names, not URLs: GetQueueUrl resolves them in LocalStack's account (000000000000) as in moto's.
    for key in ("SQS_INPUT_QUEUE", "SQS_OUTPUT_QUEUE", "SQS_DLQ"):
        assert "/" not in local_settings[key]
    assert (local_settings["AWS_ACCESS_KEY_ID"], local_settings["AWS_SECRET_ACCESS_KEY"]) == ("test", "test")
    assert local_settings["AWS_AUTH_MODE"] == "default_chain"


def test_the_ready_hook_gets_the_app_package_and_its_settings_read_only(compose: dict[str, Any]) -> None:
    service = compose["services"]["localstack"]
    app_dir = service["environment"]["APP_DIR"]
    mounts = {}
    for volume in service["volumes"]:
        source, target, mode = volume.split(":")
        mounts[target] = ((COMPOSE_FILE.parent / source).resolve(), mode)
    assert mounts == {
        "/etc/localstack/init/ready.d": (HOOK.parent, "ro"),
        f"{app_dir}/{PACKAGE}": (PROJECT / PACKAGE, "ro"),
        f"{app_dir}/local.settings.json": (PROJECT / "local.settings.json", "ro"),
    }


def test_the_ready_hook_creates_the_queues_as_localstack_runs_it(sqs_endpoint: str, tmp_path: Path) -> None:
    # LocalStack exec()s a ready.d Python file in its own interpreter; do the same, with the
    # compose file's mounts laid out in a folder (queue names made unique) and moto or LocalStack.
    app_dir = tmp_path / "app"
    shutil.copytree(PROJECT / PACKAGE, app_dir / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    document = json.loads((PROJECT / "local.settings.json").read_text(encoding="utf-8"))
    names = {key: unique(name, uuid.uuid4().hex[:8]) for key, name in CONFIGURED_QUEUES.items()}
    document["Values"] |= names
    (app_dir / "local.settings.json").write_text(json.dumps(document), encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SQS_"))}
    environment |= {"APP_DIR": str(app_dir), "APP_SQS_ENDPOINT_URL": sqs_endpoint}

    result = subprocess.run(
        [sys.executable, "-c", f"exec(open({str(HOOK)!r}, 'rb').read(), dict())"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    client = boto3.client(
        "sqs",
        endpoint_url=sqs_endpoint,
        region_name=document["Values"]["AWS_REGION"],
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    urls = {key: client.get_queue_url(QueueName=name)["QueueUrl"] for key, name in names.items()}
    try:
        policy = client.get_queue_attributes(
            QueueUrl=urls["SQS_INPUT_QUEUE"], AttributeNames=["RedrivePolicy"]
        )
        redrive = json.loads(policy["Attributes"]["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == queue_arn(client, urls["SQS_DLQ"])
        assert int(redrive["maxReceiveCount"]) == int(document["Values"]["SQS_MAX_RECEIVE_COUNT"])
    finally:
        for url in urls.values():
            client.delete_queue(QueueUrl=url)
