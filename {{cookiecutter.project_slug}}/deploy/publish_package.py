"""Deploy the code to a Premium or Linux Consumption app, keylessly: build the package, upload it to the
package container with your own identity, and restart the app on it.

Why not ``azd deploy``, ``func azure functionapp publish`` or ``Azure/functions-action``: on Linux
Consumption they hand the package to the platform through a key-bearing ``AzureWebJobsStorage``
connection string, and this app's storage has no keys (provisioning succeeds, then the host loads 0
functions: azure-functions-host#9397); an Elastic Premium app without an Azure Files content share (which
would need a key too) runs only from an external package URL. So the Bicep points ``WEBSITE_RUN_FROM_PACKAGE``
at a blob in the package container, fetched with the app's identity
(``WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID``), and this module replaces that blob:

1. build, from an allowlist: ``function_app.py``, ``host.json``, ``requirements.txt`` and the package
   folder (less its local tools), never a dotfile, key, credential or virtual environment at any depth
   (``DENIED``), whatever ``.funcignore`` or ``.gitignore`` say; plus ``requirements.txt`` installed into
   ``.python_packages/lib/site-packages`` as wheels for the app's Python on manylinux (pip's cross-platform
   flags and ``--only-binary=:all:``, hashes required, so any machine builds it and no sdist runs code);
2. upload the zip to the package URL with ``DefaultAzureCredential`` (your ``az``/``azd`` login, or the
   GitHub workflow's): the Bicep gives that principal Storage Blob Data Contributor on the container;
3. restart the app and sync its triggers (``az functionapp restart``, ``az rest``), as the platform asks
   when a package changes in place at the same URL.

azd's postprovision hook runs ``python -m deploy.publish_package`` with the Bicep's outputs in the
environment; without azd, pass ``--deployment-outputs`` (README, "Deploy"). ``--zip-only PATH`` builds the
zip and stops; with ``--source-only`` it holds the app's files alone, for a Flex Consumption app's remote
build (``az functionapp deployment source config-zip --build-remote true``). This folder (``deploy/``) is not
in the allowlist: it never ships.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING

from .outputs import with_deployment_outputs

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

PROJECT_DIR = Path(__file__).resolve().parents[1]
# The package holds what the app needs to run, and nothing else: these files at the root, the app's package
# folder, and the installed dependencies. .funcignore says the same to azd and Azure/functions-action (Flex).
APP_FILES = ("function_app.py", "host.json", "requirements.txt")
# Inside the package folder: its local tools stay behind (they need moto, a development requirement).
LOCAL_ONLY = ("ops/local_dev",)
# Never shipped, at any depth, whatever the lists above say: a file or folder whose name matches one of these
# (case-insensitively) is left out with everything under it. Dotfiles (.env*, .envrc, .aws/, .netrc,
# .pypirc, .secrets, .venv/, .git/), keys and credentials, Terraform state, virtual environments, caches.
DENIED = (
    ".*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "credentials",
    "credentials.json",
    "secrets",
    "secrets.json",
    "secrets.toml",
    "secrets.yaml",
    "secrets.yml",
    "*.tfstate",
    "*.tfstate.*",
    "*.tfvars",
    "local.settings.json",
    "venv",
    "env",
    "__pycache__",
    "*.py[cod]",
)
SITE_PACKAGES = Path(".python_packages") / "lib" / "site-packages"
# Azure's Linux images have glibc 2.31 or newer; manylinux2014 is glibc 2.17.
# pip does not widen manylinux_2_28 to older tags by itself: name each glibc floor the host accepts.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
# Every entry gets this time, so the same files make the same zip.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
SYNC_TRIGGERS_API_VERSION = "2024-04-01"


class PublishError(RuntimeError):
    """A publish step failed; the message says which and what to do."""


def denied(name: str) -> bool:
    """A file or folder name that never ships (``DENIED``)."""
    return any(fnmatch.fnmatchcase(name.lower(), pattern) for pattern in DENIED)


def app_package_name(app_dir: Path) -> str:
    """The app's package folder: the answer recorded in ``deploy/choices.json``."""
    choices = json.loads((app_dir / "deploy" / "choices.json").read_text(encoding="utf-8"))
    return str(choices["package_name"])


def published_files(app_dir: Path, package: str | None = None) -> Iterator[str]:
    """The app's files the package ships, as '/'-separated paths relative to ``app_dir``: ``APP_FILES`` and
    the ``package`` folder (default: ``app_package_name``), less ``LOCAL_ONLY`` and anything ``denied``. A
    symbolic link is refused: it could point anywhere (a key in your home folder); the package holds files."""
    package = package or app_package_name(app_dir)
    for name in APP_FILES:
        if (app_dir / name).is_symlink():
            raise PublishError(f"{name} is a symbolic link: the package holds files only, copy it in")
        if (app_dir / name).is_file():
            yield name
    left_out = {f"{package}/{path}" for path in LOCAL_ONLY}

    def walk(folder: Path) -> Iterator[str]:
        for entry in sorted(folder.iterdir()):
            relative = entry.relative_to(app_dir).as_posix()
            if denied(entry.name) or relative in left_out:
                continue
            if entry.is_symlink():
                raise PublishError(f"{relative} is a symbolic link: the package holds files only, copy it in")
            if entry.is_dir():
                yield from walk(entry)
            elif entry.is_file():
                yield relative

    if (app_dir / package).is_dir() and not (app_dir / package).is_symlink():
        yield from walk(app_dir / package)


def copy_published_files(app_dir: Path, package_dir: Path) -> None:
    """Copy ``published_files`` to ``package_dir``, in the same places."""
    for relative in published_files(app_dir):
        target = package_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(app_dir / relative, target)


def build_package(app_dir: Path, package_dir: Path, python_version: str) -> subprocess.CompletedProcess[str]:
    """Copy the published files to ``package_dir`` and install requirements.txt beside them, as wheels for
    CPython ``python_version`` on manylinux (what the app's Linux host runs)."""
    copy_published_files(app_dir, package_dir)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--quiet",
        "--require-hashes",  # requirements.txt is the hash-locked lock
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
    return subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)  # noqa: S603


def zip_package(package_dir: Path, zip_path: Path) -> Path:
    """The package folder as a zip with its files at the root, in a stable order and with fixed times."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in package_dir.rglob("*") if p.is_file()):
            entry = zipfile.ZipInfo(path.relative_to(package_dir).as_posix(), ZIP_TIME)
            entry.external_attr = (path.stat().st_mode & 0o777) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
    return zip_path


def build_zip(app_dir: Path, zip_path: Path, python_version: str, *, dependencies: bool = True) -> Path:
    """The package as a zip; without ``dependencies``, the app's files alone (a remote build adds them)."""
    with tempfile.TemporaryDirectory(prefix="package-") as folder:
        if not dependencies:
            copy_published_files(app_dir, Path(folder))
            return zip_package(Path(folder), zip_path)
        result = build_package(app_dir, Path(folder), python_version)
        if result.returncode != 0:
            raise PublishError(
                f"pip could not install requirements.txt as wheels for Python {python_version} on Linux: "
                f"{result.stderr.strip()[-2000:]}"
            )
        return zip_package(Path(folder), zip_path)


def upload_package(
    zip_path: Path,
    package_url: str,
    credential: TokenCredential,
    *,
    attempts: int = 12,
    wait_seconds: float = 15.0,
) -> None:
    """Replace the blob at ``package_url`` with the zip, authenticated as ``credential`` (no key).

    A role assigned by the provision that just ran can take minutes to apply: a 403 is retried
    ``attempts`` times, ``wait_seconds`` apart, before it is reported.
    """
    from azure.core.exceptions import AzureError, HttpResponseError
    from azure.storage.blob import BlobClient, ContentSettings

    blob = BlobClient.from_blob_url(package_url, credential=credential)
    for attempt in range(1, attempts + 1):
        try:
            with zip_path.open("rb") as data:
                blob.upload_blob(
                    data, overwrite=True, content_settings=ContentSettings(content_type="application/zip")
                )
            return
        except HttpResponseError as error:
            if error.status_code != HTTPStatus.FORBIDDEN or attempt == attempts:
                raise PublishError(_upload_failed(package_url, error)) from error
            print(
                f"Not allowed to write the package yet (a new role applies within minutes); retry {attempt}."
            )
            time.sleep(wait_seconds)
        except AzureError as error:
            raise PublishError(_upload_failed(package_url, error)) from error


def _upload_failed(package_url: str, error: Exception) -> str:
    return (
        f"upload to {package_url} failed: {error}. Your identity needs Storage Blob Data Contributor on the "
        "package container: `azd provision` gives it to the azd user (deployerPrincipalId)."
    )


def restart_commands(az: str, function_app: str, resource_group: str) -> list[list[str]]:
    """Restart the app, then sync its triggers: what the platform asks after a package changes in place."""
    # A URL without a host is a resource ID on the current cloud's ARM endpoint, to `az rest`; it fills in
    # the {subscriptionId} token itself.
    subscription = "/subscriptions/{subscriptionId}"
    site = f"{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Web/sites/{function_app}"
    sync = f"{site}/syncfunctiontriggers?api-version={SYNC_TRIGGERS_API_VERSION}"
    return [
        [az, "functionapp", "restart", "--name", function_app, "--resource-group", resource_group],
        [az, "rest", "--method", "post", "--url", sync],
    ]


def restart_and_sync_triggers(function_app: str, resource_group: str) -> bool:
    """Run ``restart_commands`` with the Azure CLI. False: no Azure CLI here."""
    az = shutil.which("az")
    if az is None:
        return False
    for command in restart_commands(az, function_app, resource_group):
        subprocess.run([*command, "--output", "none"], check=True)  # noqa: S603
    return True


def app_python_version(project_dir: Path = PROJECT_DIR) -> str:
    """The app's Python (``requires-python = ">=X.Y"`` in pyproject.toml)."""
    pyproject = tomllib.loads((project_dir / "pyproject.toml").read_text(encoding="utf-8"))
    return str(pyproject["project"]["requires-python"]).removeprefix(">=")


def arguments(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    early, environ = with_deployment_outputs(argv, environ)
    parser = argparse.ArgumentParser(
        prog="python -m deploy.publish_package", description=(__doc__ or "").splitlines()[0], parents=[early]
    )
    env = environ.get
    parser.add_argument("--package-url", default=env("AZURE_FUNCTION_APP_PACKAGE_URL", ""))
    parser.add_argument("--function-app", default=env("AZURE_FUNCTION_APP_NAME", ""))
    parser.add_argument("--resource-group", default=env("AZURE_RESOURCE_GROUP", ""))
    parser.add_argument("--python-version", default=app_python_version())
    parser.add_argument("--zip-only", metavar="PATH", help="build the zip at PATH and stop")
    parser.add_argument(
        "--source-only",
        action="store_true",
        help="with --zip-only: the app's files, no dependencies (Flex Consumption builds them remotely)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = arguments(argv, os.environ if environ is None else environ)
    if not (args.zip_only or args.package_url):
        print(
            "error: no package URL: the Bicep's AZURE_FUNCTION_APP_PACKAGE_URL output (azd sets it; without "
            "azd pass --deployment-outputs or --package-url). It is empty on Flex Consumption, which deploys "
            "with `azd deploy` or `func azure functionapp publish` instead.",
            file=sys.stderr,
        )
        return 2
    from azure.identity import DefaultAzureCredential

    try:
        with tempfile.TemporaryDirectory(prefix="publish-") as folder:
            zip_path = Path(args.zip_only) if args.zip_only else Path(folder) / "function-app.zip"
            source_only = bool(args.zip_only and args.source_only)
            build_zip(PROJECT_DIR, zip_path, args.python_version, dependencies=not source_only)
            size = zip_path.stat().st_size / 2**20
            what = "the app's files" if source_only else f"the package for Python {args.python_version}"
            print(f"Built {what}: {zip_path.name}, {size:.1f} MiB")
            if args.zip_only:
                return 0
            with DefaultAzureCredential() as credential:
                upload_package(zip_path, args.package_url, credential)
    except PublishError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Uploaded it to {args.package_url}")
    restarted = bool(args.function_app and args.resource_group) and restart_and_sync_triggers(
        args.function_app, args.resource_group
    )
    if not restarted:
        print(
            "The app still runs its previous package: restart it, then sync its triggers "
            "(az functionapp restart; README, Deploy).",
            file=sys.stderr,
        )
        return 1
    print(f"Restarted {args.function_app} on it and synced its triggers.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
