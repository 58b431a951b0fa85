# azd postprovision hook on Windows: the same as postprovision.sh.
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '..' '..')
$python = if (Test-Path '.venv/Scripts/python.exe') { '.venv/Scripts/python.exe' } else { 'python' }
& $python -c 'import boto3, azure.identity, azure.storage.blob' 2>$null
if ($LASTEXITCODE -ne 0) {
    Write-Error ("error: $python lacks boto3, azure-identity or azure-storage-blob. Create the venv first:`n" +
        "  py -{{ cookiecutter.python_version }} -m venv .venv; .venv/Scripts/pip install -r requirements-dev.txt") -ErrorAction Continue
    exit 1
}
{%- if cookiecutter.ci == "github" %}
if ($env:AZURE_DEPLOY_CLIENT_ID) {
    & $python -m deploy.github_environment
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}
{%- endif %}
& $python -m deploy.aws_stack
{%- if cookiecutter.hosting_plan != "flex_consumption" %}
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
& $python -m deploy.publish_package
{%- endif %}
exit $LASTEXITCODE
