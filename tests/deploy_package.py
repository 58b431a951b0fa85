"""Build a generated app's deployment package, and read its ``.funcignore`` as each Flex deploy tool does.

The building is the generated app's own ``deploy/publish_package.py`` (it holds no Jinja, so it is loaded
here straight from the template): the Premium and Consumption deploy path ships exactly what these tests
check, from its allowlist (``published_files``), whatever ``.funcignore`` says. ``build_package`` installs
requirements.txt from any Python with pip's cross-platform flags, which demand wheels
(``--only-binary=:all:``): a stricter check than a remote build.

Flex Consumption is deployed by azd or Azure/functions-action, which read ``.funcignore`` in gitignore
syntax (azd: github.com/denormal/go-gitignore while it walks, skipping an excluded folder whole;
functions-action: the npm package ``ignore`` on every path, deleting what it ignores). ``shipped_by_git``
and ``shipped_by_functions_action`` evaluate the file with git's own matcher and with that npm package.

``func azure functionapp publish`` reads ``.funcignore`` otherwise (``CoreToolsFuncIgnore``): a port of the
npm package ``gitignore-parser`` in which a ``!`` line wins over every other line, so an allowlist cannot
deny anything inside a folder it lists. The docs do not send Flex owners to it.
"""

from __future__ import annotations

import fcntl
import importlib
import importlib.util
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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
published_files = publish_package.published_files
DENIED = publish_package.DENIED
PublishError = publish_package.PublishError
build_zip = publish_package.build_zip
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


# --- .funcignore as the deploy tools read it -------------------------------------------------------------


def shipped_by_git(app_dir: Path, scratch: Path) -> list[str]:
    """The files a gitignore reader ships from ``app_dir`` with ``.funcignore`` as its only rules: git's own
    matcher, over ``app_dir`` as the work tree of an empty repository in ``scratch`` (no other ignore file
    read; git skips an excluded folder whole, as azd's walk does)."""
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(scratch), "PATH": "/usr/bin:/bin"}
    repository = scratch / "funcignore.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repository)], check=True, env=env)
    git = ["git", f"--git-dir={repository}", f"--work-tree={app_dir}"]
    listed = subprocess.run(
        [*git, "ls-files", "--others", f"--exclude-from={app_dir / '.funcignore'}", "-z"],
        cwd=app_dir,
        capture_output=True,
        check=True,
        env=env,
    ).stdout.decode()
    return sorted(p for p in listed.split("\0") if p)


# The npm package Azure/functions-action reads .funcignore with (its package.json: "ignore": "^5.3.1").
IGNORE_PACKAGE = "ignore@5.3.2"
NODE_CACHE = TEMPLATE_DIR / ".cache" / "funcignore-node"
# functions-action's FuncIgnore.removeFilesFromFuncIgnore: every path under the folder (folders too, without a
# trailing '/'), removed when ignore().ignores(path) says so; a file goes with any removed folder above it.
FUNCTIONS_ACTION_WALK = r"""
const fs = require("fs"), path = require("path");
const ignore = require(process.argv[1]);  // node -e: the arguments start at 1
const root = process.argv[2];
const text = fs.readFileSync(path.join(root, ".funcignore")).toString();
const rules = text.split("\n").filter(l => l.trim() !== "");
const ig = ignore().add(rules);
const shipped = [];
function walk(folder, removed) {
  for (const name of fs.readdirSync(folder).sort()) {
    const full = path.join(folder, name), relative = path.relative(root, full).split(path.sep).join("/");
    const gone = removed || ig.ignores(relative);
    if (fs.lstatSync(full).isDirectory()) walk(full, gone);
    else if (!gone) shipped.push(relative);
  }
}
walk(root, false);
console.log(JSON.stringify(shipped));
"""


def ignore_package() -> Path:
    """The npm package ``ignore``, installed once under .cache/ (a lock makes parallel workers wait)."""
    NODE_CACHE.mkdir(parents=True, exist_ok=True)
    module = NODE_CACHE / "node_modules" / "ignore"
    with (NODE_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (NODE_CACHE / ".ready").exists():
            subprocess.run(
                ["npm", "install", "--silent", "--no-save", "--prefix", str(NODE_CACHE), IGNORE_PACKAGE],
                check=True,
                capture_output=True,
                timeout=300,
            )
            (NODE_CACHE / ".ready").write_text(IGNORE_PACKAGE, encoding="utf-8")
    return module


def shipped_by_functions_action(app_dir: Path) -> list[str]:
    result = subprocess.run(
        ["node", "-e", FUNCTIONS_ACTION_WALK, str(ignore_package()), str(app_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return sorted(json.loads(result.stdout))


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
class CoreToolsFuncIgnore:
    """``.funcignore`` as ``func azure functionapp publish`` reads it (Core Tools' GitIgnoreParser, a port of
    the npm package ``gitignore-parser``): each pattern is anchored at the app root and matches a path that
    starts with it when a word boundary follows (``tests`` drops ``tests/x.py`` and ``tests.md``, keeps
    ``pkg/tests/x.py``); ``*`` is one or more characters other than '/', ``**`` one or more of any; a leading
    '/' is ignored; a path that any ``!pattern`` matches is kept, whatever the order."""

    ignore: re.Pattern[str] | None
    keep: re.Pattern[str] | None

    @classmethod
    def parse(cls, text: str) -> CoreToolsFuncIgnore:
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
