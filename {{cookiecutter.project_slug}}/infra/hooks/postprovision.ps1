# azd postprovision hook on Windows: the same as postprovision.sh.
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '..' '..')
$python = if (Test-Path '.venv/Scripts/python.exe') { '.venv/Scripts/python.exe' } else { 'python' }
& $python -m deploy.aws_stack
exit $LASTEXITCODE
