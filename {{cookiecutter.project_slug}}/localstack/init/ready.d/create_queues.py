"""LocalStack ready hook: create the app's queues with the app's own queue setup code.

LocalStack runs this file with exec() in its own Python, which has boto3. The setup runs in
a child process of that interpreter, so the app's modules never load into LocalStack:
``python -m <package> create-queues`` reads the mounted local.settings.json (queue names, region,
maxReceiveCount) and calls ``queues.ensure_queues``, as the embedded emulator and the tests
do. A failure marks this hook ERROR, and the compose health check stays unhealthy.
"""

import os
import subprocess
import sys
from pathlib import Path

app_dir = Path(os.environ.get("APP_DIR", "/opt/app"))
# LocalStack's test keys: the queues land in account 000000000000, where `func start` looks.
environment = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_AUTH_MODE": "default_chain"}
subprocess.run(  # noqa: S603 - fixed arguments, no shell
    [
        sys.executable,
        "-m",
        "{{ cookiecutter.package_name }}",
        "create-queues",
        "--settings",
        str(app_dir / "local.settings.json"),
        "--endpoint-url",
        os.environ.get("APP_SQS_ENDPOINT_URL", "http://localhost:4566"),
    ],
    cwd=app_dir,
    env={**os.environ, **environment},
    check=True,
)
