#!/bin/sh
# azd postprovision hook: the AWS stack, with the identity azd just provisioned (deploy/aws_stack.py).
# azd exports the Bicep's outputs (AZURE_IDENTITY_PRINCIPAL_ID, AZURE_FUNCTION_APP_NAME, ...) to this shell.
set -eu

cd "$(dirname "$0")/../.."
if [ -x .venv/bin/python ]; then
  python=.venv/bin/python
else
  python=python3
fi
if ! "$python" -c "import boto3" 2>/dev/null; then
  echo "error: $python has no boto3. Create the venv first:" >&2
  echo "  python{{ cookiecutter.python_version }} -m venv .venv && .venv/bin/pip install -r requirements-dev.txt" >&2
  exit 1
fi
exec "$python" -m deploy.aws_stack
