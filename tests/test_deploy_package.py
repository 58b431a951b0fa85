"""The package every deploy path ships: the app and its dependencies, complete, indexable on its own, and
nothing else: no local secret at the root or in the package folder, whichever tool builds it."""

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
    DENIED,
    INDEX_IN_PACKAGE,
    SITE_PACKAGES,
    CoreToolsFuncIgnore,
    PublishError,
    build_package,
    build_zip,
    published_files,
    shipped_by_functions_action,
    shipped_by_git,
    zip_package,
)
from .test_plans_deploy import commands, deploy_section

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
# A developer's local secrets, at the root and in the package folder: none may ship, whatever the lists say.
KEY = "aws_secret_access_key = planted\n"
PLANTED_SECRETS = {
    ".envrc": "export AWS_SECRET_ACCESS_KEY=planted\n",
    ".env.local": KEY,
    ".aws/credentials": f"[default]\n{KEY}",
    ".secrets": KEY,
    "secrets/key.pem": "-----BEGIN RSA PRIVATE KEY-----\n",
    "id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
    ".netrc": "machine example.com password planted\n",
    ".pypirc": "[pypi]\npassword = planted\n",
    "terraform.tfstate": '{"AccountKey=planted": 1}',
    "venv/pyvenv.cfg": "home = /usr/bin\n",
    "venv/lib/site.py": "",
    "env/bin/activate": "",
    "{package}/.env": KEY,
    "{package}/.envrc": KEY,
    "{package}/.aws/credentials": KEY,
    "{package}/secrets/key.pem": "-----BEGIN PRIVATE KEY-----\n",
    "{package}/engine/id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
    "{package}/engine/.netrc": "machine example.com password planted\n",
    "{package}/functions/.pypirc": "[pypi]\npassword = planted\n",
    "{package}/terraform.tfstate": '{"AccountKey=planted": 1}',
    "{package}/local.settings.json": '{"Values": {"AzureWebJobsStorage": "AccountKey=planted"}}',
    "{package}/venv/pyvenv.cfg": "",
    "{package}/env/settings.py": "",
    "{package}/.venv/lib/site.py": "",
    "{package}/ops/credentials": KEY,
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
        for relative, text in {**PLANTED, **PLANTED_SECRETS}.items():
            planted = source / relative.format(package=baked.package)
            if not planted.exists():
                planted.parent.mkdir(parents=True, exist_ok=True)
                planted.write_text(text, encoding="utf-8")
        package = tmp_path_factory.mktemp("package")
        result = build_package(source, package, combination.answer("python_version"))
        assert result.returncode == 0, result.stdout + result.stderr
        _PACKAGES[combination.name] = package
        _SOURCES[combination.name] = source
    return _PACKAGES[combination.name]


_SOURCES: dict[str, Path] = {}


def planted_source(
    combination: Combination, cookies_session: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The bake's folder with every planted file in it, as a developer's folder is."""
    package_of(combination, cookies_session, tmp_path_factory)
    return _SOURCES[combination.name]


def secrets_in(files: list[str], package: str) -> list[str]:
    planted = {relative.format(package=package) for relative in PLANTED_SECRETS}
    return sorted(f for f in files if f in planted or any(f.startswith(f"{p}/") for p in planted))


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
    assert secrets_in(files, baked.package) == []
    leaks = [f for f in files if SECRETS.search((package / f).read_text(encoding="utf-8", errors="replace"))]
    assert leaks == []

    site_packages = package / SITE_PACKAGES
    installed = {p.name.split("-")[0].lower() for p in site_packages.glob("*.dist-info")}
    required = {"azure_functions", "boto3", "botocore", "pydantic", "azure_data_tables", "azure_identity"}
    assert required <= installed
    assert not (site_packages / "stale_module.py").exists()

    zipped = zip_package(package, package.parent / f"{package.name}.zip")
    with zipfile.ZipFile(zipped) as archive:
        names = archive.namelist()
    assert {"function_app.py", "host.json"} <= set(names)  # at the root, as the host reads it
    assert f"{baked.package}/__init__.py" in names
    assert secrets_in(names, baked.package) == []
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


def test_the_source_zip_and_every_flex_tool_ship_the_allowlist_and_no_planted_secret(
    cookies_session: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Flex Consumption: azd and Azure/functions-action read .funcignore (gitignore syntax) in the folder as
    # a developer has it; publish_package --zip-only --source-only builds from the allowlist.
    combination = MATRIX[0]
    assert combination.answer("hosting_plan") == "flex_consumption"
    source = planted_source(combination, cookies_session, tmp_path_factory)
    package = _bake(cookies_session, combination).package
    allowlist = sorted(published_files(source))
    assert {"function_app.py", "host.json", "requirements.txt", f"{package}/__init__.py"} <= set(allowlist)
    assert secrets_in(allowlist, package) == []

    scratch = tmp_path_factory.mktemp("funcignore")
    assert shipped_by_git(source, scratch) == allowlist
    assert shipped_by_functions_action(source) == allowlist

    version = combination.answer("python_version")
    zipped = build_zip(source, scratch / "source.zip", version, dependencies=False)
    with zipfile.ZipFile(zipped) as archive:
        assert sorted(archive.namelist()) == allowlist


def test_funcignore_denies_what_publish_package_denies_in_the_same_order(baked: Baked) -> None:
    # One list, written twice: publish_package.DENIED and the .funcignore lines after the allowlist.
    lines = [
        line.strip()
        for line in (baked.path / ".funcignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[-len(DENIED) :] == list(DENIED)
    assert lines[0] == "*", "an allowlist: everything out, then what ships"


def test_core_tools_would_ship_the_package_folders_secrets_so_flex_docs_avoid_func(baked: Baked) -> None:
    # Why the docs send Flex owners to azd, the workflow or --source-only, never to
    # `func azure functionapp publish`: in Core Tools' reading a `!` line beats every denial.
    funcignore = CoreToolsFuncIgnore.parse((baked.path / ".funcignore").read_text(encoding="utf-8"))
    assert not funcignore.excludes(f"{baked.package}/.env")
    assert funcignore.excludes(".env") and funcignore.excludes("tests/test_x.py")
    shown = commands(deploy_section(baked))
    assert [line for line in shown if "func azure functionapp publish" in line] == []


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
        ("*.md", "README.md", True),
        ("*.md", "docs/README.md", False),  # '*' never crosses '/'
        ("**/__pycache__", "pkg/__pycache__/m.pyc", True),
        ("**/__pycache__", "__pycache__/m.pyc", False),  # '**' is one or more characters
        ("tests\n!tests/keep.py", "tests/keep.py", False),
        ("!tests/keep.py\ntests", "tests/keep.py", False),  # a keep wins wherever it stands
        ("# tests\n\n", "tests/x.py", False),
    ],
)
def test_core_tools_funcignore_port_matches_its_documented_behaviour(
    pattern: str, path: str, excluded: bool
) -> None:
    assert CoreToolsFuncIgnore.parse(pattern).excludes(path) is excluded


def test_the_allowlist_walk_skips_denied_names_and_refuses_links(tmp_path: Path) -> None:
    for relative in (
        "pkg/m.py",
        "pkg/.env",
        "pkg/sub/ID_RSA",
        "pkg/ops/local_dev/emulator.py",
        "pkg/__pycache__/m.cpython-312.pyc",
        "host.json",
        "notes.txt",
        ".env",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("", encoding="utf-8")
    assert list(published_files(tmp_path, "pkg")) == ["host.json", "pkg/m.py"]
    (tmp_path / "pkg" / "home").symlink_to(Path.home())
    with pytest.raises(PublishError, match="pkg/home is a symbolic link"):
        list(published_files(tmp_path, "pkg"))
