"""A Jinja filter cookiecutter loads before it renders anything (cookiecutter.json, ``_extensions``).

``project_slug`` names the folder cookiecutter creates *before* the pre-gen hook runs: a slug such as
``a/b`` would make ``a/b``, and a refusal by the hook would remove ``b`` but leave ``a`` behind. So
cookiecutter.json's ``__slug_is_one_folder`` passes the slug through ``one_folder`` while the answers are
rendered, and a slug holding a path separator is refused there, before any directory exists. Every other
rule on the slug stays in hooks/pre_gen_project.py.
"""

from __future__ import annotations

from typing import Any

from cookiecutter.exceptions import FailedHookException
from jinja2.ext import Extension

SEPARATORS = ("/", "\\")


def one_folder(value: str, field: str) -> str:
    if any(separator in value for separator in SEPARATORS) or value in (".", ".."):
        # The exception cookiecutter's command line prints as a plain message (no traceback), exit code 1.
        raise FailedHookException(
            f"error: {field}: {value!r} must name one folder: lowercase letters, digits, '-' or '_', "
            "with no '/' or '\\'. Nothing was generated."
        )
    return value


class OneFolderExtension(Extension):
    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        environment.filters["one_folder"] = one_folder
