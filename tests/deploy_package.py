"""Build a generated app's deployment package the way ``func azure functionapp publish`` does.

What publish does (Azure Functions Core Tools, read from its source):

- It walks the app folder, skipping folders named ``.git`` or ``.vscode`` and files named
  ``.funcignore``, ``.gitignore``, ``local.settings.json`` or ``project.lock.json`` at any depth.
- Every other file is matched by its path relative to the app root ('/'-separated) against
  ``.funcignore``. That matching is *not* git's: Core Tools ports the npm package
  ``gitignore-parser``. Each pattern is anchored at the app root and matches a path that starts
  with it when a word boundary follows (``tests`` drops ``tests/x.py`` and ``tests.md`` but keeps
  ``pkg/tests/x.py`` and ``tests_x.py``); ``*`` is one or more characters other than '/', ``**``
  is one or more of any; ``!pattern`` keeps what it matches; a leading '/' is ignored.
- With a non-empty requirements.txt it builds remotely: Oryx runs, on Linux with the app's Python,
  ``pip install --prefer-binary -r requirements.txt --target .python_packages/lib/site-packages``.
  Here the same install is made from any Python with pip's cross-platform flags, which demand
  wheels (``--only-binary=:all:``): a stricter check than the remote build.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SKIPPED_FOLDERS = {".git", ".vscode"}
SKIPPED_FILES = {".funcignore", ".gitignore", "local.settings.json", "project.lock.json"}
SITE_PACKAGES = Path(".python_packages") / "lib" / "site-packages"
# Azure's Linux images have glibc 2.31 or newer; manylinux2014 is glibc 2.17.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")
REGEX_SPECIALS = re.compile(r"[-\[\]/{}()+?.\\^$|]")


def _pattern_regex(pattern: str) -> str:
    escaped = REGEX_SPECIALS.sub(lambda m: "\\" + m.group(0), pattern)
    return escaped.replace("**", "(.+)").replace("*", "([^/]+)")


def _anchored(patterns: list[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    alternatives = "|".join(f"({_pattern_regex(p)})" for p in patterns)
    return re.compile(f"^({alternatives})\\b", re.ASCII)


@dataclass(frozen=True)
class FuncIgnore:
    """``.funcignore`` as Core Tools reads it (see the module docstring)."""

    ignore: re.Pattern[str] | None
    keep: re.Pattern[str] | None

    @classmethod
    def parse(cls, text: str) -> FuncIgnore:
        ignore: list[str] = []
        keep: list[str] = []
        for raw in text.split("\n"):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            target = keep if line.startswith("!") else ignore
            target.append(line.removeprefix("!").removeprefix("/"))
        return cls(_anchored(ignore), _anchored(keep))

    def excludes(self, relative_path: str) -> bool:
        if self.keep is not None and self.keep.match(relative_path):
            return False
        return self.ignore is not None and self.ignore.match(relative_path) is not None


def published_files(app_dir: Path) -> Iterator[str]:
    """The app's files that publish uploads, as '/'-separated paths relative to ``app_dir``."""
    funcignore_path = app_dir / ".funcignore"
    funcignore = FuncIgnore.parse(
        funcignore_path.read_text(encoding="utf-8") if funcignore_path.exists() else ""
    )

    def walk(folder: Path) -> Iterator[str]:
        for entry in sorted(folder.iterdir()):
            if entry.is_dir():
                if entry.name not in SKIPPED_FOLDERS:
                    yield from walk(entry)
            elif entry.name not in SKIPPED_FILES:
                relative = entry.relative_to(app_dir).as_posix()
                if not funcignore.excludes(relative):
                    yield relative

    yield from walk(app_dir)


def build_package(app_dir: Path, package_dir: Path, python_version: str) -> subprocess.CompletedProcess[str]:
    """Copy the published files to ``package_dir`` and install requirements.txt beside them."""
    for relative in published_files(app_dir):
        target = package_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(app_dir / relative, target)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--quiet",
        "--requirement",
        str(package_dir / "requirements.txt"),
        "--target",
        str(package_dir / SITE_PACKAGES),
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


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
