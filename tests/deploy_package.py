"""Build a generated app's deployment package the way ``func azure functionapp publish`` does.

The building is the generated app's own ``deploy/publish_package.py`` (it holds no Jinja, so it is loaded
here straight from the template): the Premium and Consumption deploy path ships exactly what these tests
check. What publish does (Azure Functions Core Tools, read from its source):

- It walks the app folder, skipping folders named ``.git`` or ``.vscode`` and files named
  ``.funcignore``, ``.gitignore``, ``local.settings.json`` or ``project.lock.json`` at any depth.
- Every other file is matched by its path relative to the app root against ``.funcignore``, with Core
  Tools' own (not git's) rules: see ``FuncIgnore``.
- With a non-empty requirements.txt it builds remotely: Oryx runs, on Linux with the app's Python,
  ``pip install --prefer-binary -r requirements.txt --target .python_packages/lib/site-packages``.
  ``build_package`` makes the same install from any Python with pip's cross-platform flags, which demand
  wheels (``--only-binary=:all:``): a stricter check than the remote build.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from .conftest import TEMPLATE_DIR

DEPLOY = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "deploy"


def _load_publish_package():  # type: ignore[no-untyped-def]
    """The template's deploy/ as a package of its own name (publish_package imports its siblings)."""
    spec = importlib.util.spec_from_file_location(
        "template_deploy", DEPLOY / "__init__.py", submodule_search_locations=[str(DEPLOY)]
    )
    assert spec and spec.loader
    package = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = package  # dataclasses resolve their module by name
    spec.loader.exec_module(package)
    return importlib.import_module("template_deploy.publish_package")


publish_package = _load_publish_package()
FuncIgnore = publish_package.FuncIgnore
published_files = publish_package.published_files
build_package = publish_package.build_package
zip_package = publish_package.zip_package
SITE_PACKAGES = publish_package.SITE_PACKAGES
PLATFORMS = publish_package.PLATFORMS


# Run by the app's Python version as `python -I -S -B - SITE_PACKAGES APP_ROOT PACKAGE`: no site, no
# user site, no environment paths; sys.path is the package's two folders and the standard library.
INDEX_IN_PACKAGE = r'''
import ast, importlib, json, sys
from pathlib import Path

site_packages, app_root, package = sys.argv[1:4]
standard_library = list(sys.path)
sys.path[:] = [site_packages, app_root, *standard_library]


def runtime_imports(source: str) -> set[str]:
    """Absolute imports anywhere in a module (inside functions too), minus `if TYPE_CHECKING:` blocks."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return names


import azure.functions as func
import function_app

registers = [v for v in vars(function_app).values() if isinstance(v, func.FunctionRegister)]
functions = {
    f.get_function_name(): [json.loads(b) for b in f.get_raw_bindings()] for f in registers[0].get_functions()
}
sources = [p.read_text(encoding="utf-8") for p in (Path(app_root) / package).rglob("*.py")]
third_party = sorted(
    name
    for name in set().union(*map(runtime_imports, sources))
    if name.split(".")[0] not in sys.stdlib_module_names and name.split(".")[0] != package
)
for name in third_party:  # what the functions import lazily, at their first invocation
    importlib.import_module(name)

aws_session = importlib.import_module(f"{package}.engine.aws_session")
settings = importlib.import_module(f"{package}.engine.settings")
client = aws_session.sqs_client(settings.Settings.from_env())

allowed = (site_packages, app_root, *standard_library)
outside = sorted(
    m.__file__ for m in list(sys.modules.values())
    if getattr(m, "__file__", None) and not m.__file__.startswith(allowed)
)
print(json.dumps({
    "registers": len(registers),
    "functions": functions,
    "third_party_imports": third_party,
    "sqs_client": client.meta.service_model.service_name,
    "modules_from_outside_the_package": outside,
}))
'''
