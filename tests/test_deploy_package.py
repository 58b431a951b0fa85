"""The package `func azure functionapp publish` would deploy: complete, clean, and indexable on its own."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from .conftest import MATRIX, Baked, Combination, _bake, clean_env, python_or_skip, run
from .deploy_package import (
    INDEX_IN_PACKAGE,
    SITE_PACKAGES,
    FuncIgnore,
    build_package,
    published_files,
    zip_package,
)

# Things a developer's folder holds that must never ship; the test plants each one it lacks.
PLANTED = {
    ".venv/pyvenv.cfg": "home = /usr/bin\n",
    ".azurite/__azurite_db_blob__.json": "{}",
    "__azurite_db_queue__.json": "{}",
    "localstack/compose.yml": "services: {}\n",
    "benchmarks/planted.py": "",
    "infra/main.bicep": "",
    ".env": "AWS_SECRET_ACCESS_KEY=planted\n",
    ".git/config": "[core]\n",
    "__pycache__/function_app.cpython-311.pyc": "",
    "{package}/__pycache__/settings.cpython-311.pyc": "",
    "tests/__pycache__/conftest.cpython-311.pyc": "",
    ".python_packages/lib/site-packages/stale_module.py": "",
}
SHIPPED_AT_ROOT = {"function_app.py", "host.json", "requirements.txt"}
SECRETS = re.compile(
    r"(?:AKIA|ASIA)[0-9A-Z]{16}"  # an AWS access key ID
    r"|aws_secret_access_key\s*[=:]"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|AccountKey=|SharedAccessSignature=|DefaultEndpointsProtocol=",
    re.IGNORECASE,
)


def combination_params() -> list[Any]:
    # Both tests of one combination run on the same xdist worker, so the package is built once.
    # Slow: each builds a package of manylinux wheels from PyPI.
    return [
        pytest.param(c, id=c.name, marks=[pytest.mark.slow, pytest.mark.xdist_group(f"package-{c.name}")])
        for c in MATRIX
    ]


_PACKAGES: dict[str, Path] = {}


def package_of(
    combination: Combination, cookies_session: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    if combination.name not in _PACKAGES:
        baked = _bake(cookies_session, combination)
        source = tmp_path_factory.mktemp("app") / baked.path.name
        shutil.copytree(baked.path, source)
        for relative, text in PLANTED.items():
            planted = source / relative.format(package=baked.package)
            if not planted.exists():
                planted.parent.mkdir(parents=True, exist_ok=True)
                planted.write_text(text, encoding="utf-8")
        package = tmp_path_factory.mktemp("package")
        result = build_package(source, package, combination.answer("python_version"))
        assert result.returncode == 0, result.stdout + result.stderr
        _PACKAGES[combination.name] = package
    return _PACKAGES[combination.name]


def app_files(package: Path) -> list[str]:
    return sorted(
        p.relative_to(package).as_posix()
        for p in package.rglob("*")
        if p.is_file() and not p.relative_to(package).as_posix().startswith(".python_packages/")
    )


def size_mib(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 2**20


@pytest.mark.parametrize("combination", combination_params())
def test_the_package_ships_the_app_and_its_dependencies_and_nothing_else(
    combination: Combination,
    cookies_session: Any,
    tmp_path_factory: pytest.TempPathFactory,
    record_property: Any,
) -> None:
    package = package_of(combination, cookies_session, tmp_path_factory)
    baked: Baked = _bake(cookies_session, combination)
    files = app_files(package)

    unexpected = [f for f in files if f not in SHIPPED_AT_ROOT and not f.startswith(f"{baked.package}/")]
    assert unexpected == [], "ships files that are not the app's code: exclude them in .funcignore"
    assert set(files) >= SHIPPED_AT_ROOT
    # The package's code ships, except its local_dev tools (they need moto, a dev requirement).
    local_dev = f"{baked.package}/ops/local_dev/"
    code = [p.relative_to(baked.path).as_posix() for p in baked.files(baked.package) if p.suffix == ".py"]
    assert any(f.startswith(local_dev) for f in code)
    assert [f for f in files if f.endswith(".py") and f != "function_app.py"] == [
        f for f in code if not f.startswith(local_dev)
    ]
    assert not [f for f in files if "__pycache__" in f]
    leaks = [f for f in files if SECRETS.search((package / f).read_text(encoding="utf-8", errors="replace"))]
    assert leaks == []

    site_packages = package / SITE_PACKAGES
    installed = {p.name.split("-")[0].lower() for p in site_packages.glob("*.dist-info")}
    required = {"azure_functions", "boto3", "botocore", "pydantic", "azure_data_tables", "azure_identity"}
    assert required <= installed
    assert not (site_packages / "stale_module.py").exists()

    zipped = zip_package(package, package.parent / f"{package.name}.zip")
    with zipfile.ZipFile(zipped) as archive:
        assert {"function_app.py", "host.json"} <= set(
            archive.namelist()
        )  # at the root, as the host reads it
    record_property(
        "figure",
        f"deploy package {combination.name} (Python {combination.answer('python_version')}): "
        f"{len(files)} app files, {size_mib([package / f for f in files]) * 1024:.0f} KiB; "
        f"dependencies {size_mib([p for p in site_packages.rglob('*') if p.is_file()]):.1f} MiB; "
        f"zipped {zipped.stat().st_size / 2**20:.1f} MiB",
    )
    zipped.unlink()


@pytest.mark.parametrize("combination", combination_params())
def test_the_package_indexes_in_a_clean_interpreter_of_the_apps_python(
    combination: Combination, cookies_session: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    version = combination.answer("python_version")
    python = python_or_skip(version, "the package is imported with the app's own Python")
    package = package_of(combination, cookies_session, tmp_path_factory)
    baked = _bake(cookies_session, combination)
    env = {
        **clean_env(),
        "SQS_INPUT_QUEUE": "in",
        "SQS_OUTPUT_QUEUE": "out",
        "AWS_OIDC_ROLE_ARN": "arn:aws:iam::123456789012:role/package-test",
        # What the Functions host announces for a managed identity; building a client calls nothing.
        "IDENTITY_ENDPOINT": "http://127.0.0.1:9/msi/token",
        "IDENTITY_HEADER": "package-test",
    }
    args = [python, "-I", "-S", "-B", "-c", INDEX_IN_PACKAGE, str(package / SITE_PACKAGES), str(package)]
    result = run([*args, baked.package], package, env)
    assert result.returncode == 0, result.stderr[-5000:]
    index = json.loads(result.stdout)

    assert index["registers"] == 1
    assert set(index["functions"]) == {
        "drain_input_queue_on_timer",
        "drain_input_queue_on_token",
        "send_message",
        "send_message_batch",
    }
    assert {"boto3", "botocore.config"} <= set(index["third_party_imports"])
    # The drain tokens' writer, in every combination: imported from the package, as in Azure.
    assert {"azure.storage.queue", "azure.identity"} <= set(index["third_party_imports"])
    assert index["sqs_client"] == "sqs"
    assert index["modules_from_outside_the_package"] == []


# .funcignore semantics, as Core Tools' parser behaves (cases from its documented behaviour).
@pytest.mark.parametrize(
    ("pattern", "path", "excluded"),
    [
        ("tests", "tests/test_x.py", True),
        ("tests", "tests", True),
        ("tests", "tests.md", True),  # a word boundary follows
        ("tests", "tests_extra.py", False),  # no word boundary
        ("tests", "pkg/tests/x.py", False),  # anchored at the root
        ("/tests", "tests/x.py", True),
        (".git*", ".github/workflows/ci.yml", True),
        (".git*", ".gitignore", True),
        ("*.md", "README.md", True),
        ("*.md", "docs/README.md", False),  # '*' never crosses '/'
        ("**/__pycache__", "pkg/__pycache__/m.pyc", True),
        ("**/__pycache__", "__pycache__/m.pyc", False),  # '**' is one or more characters
        ("__pycache__", "__pycache__/m.pyc", True),
        ("__azurite_db*", "__azurite_db_blob__.json", True),
        ("tests\n!tests/keep.py", "tests/keep.py", False),
        ("tests\n!tests/keep.py", "tests/other.py", True),
        ("# tests\n\n", "tests/x.py", False),
    ],
)
def test_funcignore_matches_like_core_tools(pattern: str, path: str, excluded: bool) -> None:
    assert FuncIgnore.parse(pattern).excludes(path) is excluded


def test_publish_walk_skips_what_core_tools_always_skips(tmp_path: Path) -> None:
    for relative in (".git/HEAD", "pkg/.vscode/x.json", "pkg/local.settings.json", ".gitignore", "pkg/m.py"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("", encoding="utf-8")
    assert list(published_files(tmp_path)) == ["pkg/m.py"]
