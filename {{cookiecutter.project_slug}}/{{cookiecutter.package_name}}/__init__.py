"""{{ cookiecutter.project_name | python_text }}.

Yours: ``handler.py`` (what one message means) and ``functions/`` (the Azure Functions).
The template's: ``engine/`` (update it with cruft, don't edit) and ``ops/`` (the CLI, local tools).
"""
