"""The Premium and Consumption deploy path, keylessly: deploy/publish_package.py uploads the package with
the deployer's identity (DefaultAzureCredential), and the app's identity reads it back from the URL that
WEBSITE_RUN_FROM_PACKAGE names, as the platform does with WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID.

Azurite serves HTTPS and accepts Entra ID bearer tokens; the managed-identity endpoint on 127.0.0.1
issues them. Only the container is made with Azurite's key, as the Bicep makes it in Azure.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.storage.blob import BlobClient, ContainerClient

from deploy.publish_package import PROJECT_DIR, PublishError, published_files, upload_package, zip_package
from {{ cookiecutter.package_name }}.ops.local_dev.azurite import ACCOUNT_NAME, Azurite

from .conftest import USER_ASSIGNED_CLIENT_ID
from .identity_endpoint import ManagedIdentityEndpoint
from .test_token_queue_identity import STORAGE_RESOURCE, azurite_with_entra_id

# Azurite, the identity endpoint and the deploy step: not the inner loop.
pytestmark = pytest.mark.slow

__all__ = ["azurite_with_entra_id"]  # the module-scoped fixture, shared with the token queue's tests


def published_zip(folder: Path) -> Path:
    """What publish ships of this project (.funcignore respected), zipped as the deploy step zips it;
    its dependencies are left out here (tests/deploy_package.py at the template builds them)."""
    package = folder / "package"
    for relative in published_files(PROJECT_DIR):
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_DIR / relative, package / relative)
    return zip_package(package, folder / "function-app.zip")


def test_the_package_goes_up_with_the_deployers_identity_and_the_app_reads_it_back(
    azurite_with_entra_id: tuple[Azurite, Path],
    identity_endpoint: ManagedIdentityEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    storage, cert = azurite_with_entra_id
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # trust the loopback certificate, as Azure's is
    ContainerClient.from_connection_string(
        storage.connection_string, "app-package", connection_verify=str(cert)
    ).create_container()
    package_url = f"{storage.endpoints['blob']}/{ACCOUNT_NAME}/app-package/function-app.zip"

    with DefaultAzureCredential() as deployer:  # here the endpoint's identity; az or azd's login in use
        upload_package(published_zip(tmp_path), package_url, deployer)
    asked = [r for r in identity_endpoint.requests if r.token]
    assert {r.resource for r in asked} == {STORAGE_RESOURCE}

    with ManagedIdentityCredential(client_id=USER_ASSIGNED_CLIENT_ID) as app_identity:
        data = BlobClient.from_blob_url(package_url, credential=app_identity).download_blob().readall()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        assert {"function_app.py", "host.json", "requirements.txt"} <= names
        assert archive.read("function_app.py") == (PROJECT_DIR / "function_app.py").read_bytes()
    assert not [n for n in names if n.startswith(("tests/", "deploy/", "infra/", "local.settings"))]
    assert {r.client_id for r in identity_endpoint.requests if r.token} == {None, USER_ASSIGNED_CLIENT_ID}

    # Nothing is public: without a token the package is refused.
    with pytest.raises(HttpResponseError):
        BlobClient.from_blob_url(package_url).download_blob().readall()


class WrongAudience:
    """A credential whose tokens storage refuses (issued for another resource), counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.credential = ManagedIdentityCredential()

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        return self.credential.get_token("https://management.azure.com/.default", **kwargs)


def test_a_refused_upload_is_retried_then_reported_with_the_role_it_needs(
    azurite_with_entra_id: tuple[Azurite, Path],
    identity_endpoint: ManagedIdentityEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    storage, cert = azurite_with_entra_id
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    package_url = f"{storage.endpoints['blob']}/{ACCOUNT_NAME}/app-package/refused.zip"
    refused = WrongAudience()
    with pytest.raises(PublishError, match="Storage Blob Data Contributor"):
        upload_package(published_zip(tmp_path), package_url, refused, attempts=2, wait_seconds=0)
    # Storage answered 403 (as for a role not yet applied): one retry, then the report.
    assert capsys.readouterr().out.count("Not allowed to write the package yet") == 1
    assert refused.calls >= 1
