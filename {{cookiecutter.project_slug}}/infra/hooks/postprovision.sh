#!/bin/sh
# azd postprovision hook: {% if cookiecutter.ci == "github" %}with GITHUB_REPOSITORY set, the GitHub environment locked to main
# and the deploy workflow's variables (deploy/github_environment.py); {% endif %}the AWS stack, with the identity azd just provisioned (deploy/aws_stack.py){% if cookiecutter.hosting_plan != "flex_consumption" %},
# then the code: the package zip uploaded with your identity, and the app restarted on it
# (deploy/publish_package.py){% endif %}.
# azd exports the Bicep's outputs (AZURE_IDENTITY_PRINCIPAL_ID, AZURE_FUNCTION_APP_NAME, ...) to this shell.
set -eu

cd "$(dirname "$0")/../.."
if [ -x .venv/bin/python ]; then
  python=.venv/bin/python
else
  python=python3
fi
if ! "$python" -c "import boto3, azure.identity, azure.storage.blob" 2>/dev/null; then
  echo "error: $python lacks boto3, azure-identity or azure-storage-blob. Create the venv first:" >&2
  echo "  python{{ cookiecutter.python_version }} -m venv .venv && .venv/bin/pip install -r requirements-dev.txt" >&2
  exit 1
fi
{%- if cookiecutter.ci == "github" %}
if [ -n "${AZURE_DEPLOY_CLIENT_ID:-}" ]; then
  # The deploy identity trusts a GitHub environment: lock it to main first (deploy/github_environment.py).
  "$python" -m deploy.github_environment
fi
{%- endif %}
{%- if cookiecutter.hosting_plan == "flex_consumption" %}
exec "$python" -m deploy.aws_stack
{%- else %}
"$python" -m deploy.aws_stack
exec "$python" -m deploy.publish_package
{%- endif %}
