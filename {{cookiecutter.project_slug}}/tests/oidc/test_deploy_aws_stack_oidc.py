"""The AWS step of `azd up` for real, as the managed identity will use it: deploy/aws_stack.py deploys
infra/aws/template.yaml through CloudFormation on the emulator (moto), trusting the identity's token;
then the app, in OIDC mode with no AWS key, assumes the stack's role through STS with the local
managed-identity endpoint's token and drains the stack's input queue.

moto's CloudFormation cannot create an AWS::IAM::OIDCProvider, so the provider is made with the IAM
API first, as another app in the account would have made it: the hook must find it and pass
ExistingOidcProviderArn (the path a real account with a provider for the tenant takes too). moto 5.2.5
has no AddClientIDToOpenIDConnectProvider either (its server answers an HTML 500 page:
test_moto_lacks_add_client_id_to_open_id_connect_provider); the test that adds an audience gives the
in-process server that action (``moto_adds_client_ids``).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.parsers import ResponseParserError

from deploy.aws_stack import (
    QUEUE_NAME_PARAMETERS,
    AzureIdentity,
    SharedProviderRefused,
    StackOutputs,
    TrustChangeRefused,
    deploy_aws_stack,
    main,
    queue_names_for,
    stack_name_for,
    stack_outputs,
    stack_parameters,
    stack_status,
    token_issuer_and_audience,
)
from {{ cookiecutter.package_name }}.engine.aws_session import boto3_session, reset_clients
from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage
from {{ cookiecutter.package_name }}.engine.runtime import drain_input_queue
from {{ cookiecutter.package_name }}.engine.settings import Settings

from ..conftest import http_post, send_params
from ..deployer import (
    delete_bucket,
    delete_retained,
    delete_stack,
    deployer_session,
    empty_bucket,
    send_bodies,
)
from .conftest import (
    CONFIGURED_USER_ASSIGNED_PRINCIPAL_ID,
    DEFAULTS,
    KEY_VARIABLES,
    record_sts_exchanges,
)
from .identity_endpoint import SYSTEM_ASSIGNED_PRINCIPAL_ID, TENANT_ID, ManagedIdentityEndpoint

pytestmark = pytest.mark.slow

REGION = "{{ cookiecutter.aws_region }}"
ANOTHER_APPS_AUDIENCE = "api://another-app"


@pytest.fixture
def deployer(sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    monkeypatch.setenv("AWS_ENDPOINT_URL", sqs_endpoint)
    return deployer_session(REGION)


@pytest.fixture
def existing_provider(deployer: boto3.Session) -> Iterator[str]:
    """The account's OIDC provider for the tenant's issuer, made by another app, listing both audiences."""
    iam = deployer.client("iam")
    issuer, audience = token_issuer_and_audience(TENANT_ID)
    arn = iam.create_open_id_connect_provider(
        Url=f"https://{issuer}", ClientIDList=[ANOTHER_APPS_AUDIENCE, audience], ThumbprintList=[]
    )["OpenIDConnectProviderArn"]
    yield arn
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)


@pytest.fixture
def stack_name(deployer: boto3.Session) -> Iterator[str]:
    name = f"deploy-test-{uuid.uuid4().hex[:8]}"
    yield name
    delete_stack(deployer, name)
    delete_retained(deployer, [""])


def the_apps_identity() -> AzureIdentity:
    """The identity the endpoint answers for with the app's settings (system- or user-assigned)."""
    if DEFAULTS.managed_identity_client_id:
        return AzureIdentity(TENANT_ID, CONFIGURED_USER_ASSIGNED_PRINCIPAL_ID)
    return AzureIdentity(TENANT_ID, SYSTEM_ASSIGNED_PRINCIPAL_ID)


def test_the_hook_deploys_the_trust_and_the_app_drains_the_stacks_queue_as_the_identity(
    deployer: boto3.Session,
    existing_provider: str,
    stack_name: str,
    identity_endpoint: ManagedIdentityEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    identity = the_apps_identity()

    outputs = deploy_aws_stack(deployer, stack_name, identity)

    stack = deployer.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters["AzureTenantId"] == identity.tenant_id
    assert parameters["ManagedIdentityPrincipalId"] == identity.principal_id
    # The account's provider is reused, the other app's audience kept.
    assert parameters["ExistingOidcProviderArn"] == existing_provider
    _, audience = token_issuer_and_audience(TENANT_ID)
    provider = deployer.client("iam").get_open_id_connect_provider(OpenIDConnectProviderArn=existing_provider)
    assert sorted(provider["ClientIDList"]) == sorted([ANOTHER_APPS_AUDIENCE, audience])
    assert parameters["TokenAudience"] == audience
    # A rerun keeps the provider the stack was created with and changes nothing.
    assert deploy_aws_stack(deployer, stack_name, identity) == outputs
    role_name = outputs.role_arn.rsplit("/", 1)[-1]
    trust = deployer.client("iam").get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Federated": existing_provider}

    bodies = [json.dumps({"id": str(n), "action": "ship"}) for n in range(3)]
    send_bodies(deployer, outputs.input_queue_url, bodies)
    # The app as the hook leaves it: the stack's outputs as settings, OIDC mode, no AWS key anywhere.
    for name in (*KEY_VARIABLES, "AWS_OIDC_AUDIENCE", "AZURE_MANAGED_IDENTITY_CLIENT_ID", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in outputs.app_settings().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_AUTH_MODE", "oidc_managed_identity")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("SQS_WAIT_TIME_SECONDS", "1")
    reset_clients()
    handled: list[str] = []
    lock = threading.Lock()

    def handler(message: SqsMessage) -> None:
        with lock:
            handled.append(message.body)

    try:
        settings = Settings.from_env()
        exchanges = record_sts_exchanges(boto3_session(settings.auth_mode, settings.region))
        summary = drain_input_queue(settings, handler=handler)
    finally:
        reset_clients()

    assert sorted(handled) == sorted(bodies)
    assert summary.deleted == len(bodies)
    # The credentials came from STS, for the stack's role, in exchange for the endpoint's token.
    [exchange] = exchanges
    assert exchange.sent["RoleArn"] == outputs.role_arn
    assert exchange.sent["WebIdentityToken"] == identity_endpoint.requests[-1].token


@pytest.mark.usefixtures("hook_without_azd")
def test_the_hook_command_deploys_and_says_what_is_left_without_azd_or_az(
    deployer: boto3.Session,
    existing_provider: str,
    stack_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    identity = the_apps_identity()
    ids = ["--tenant-id", identity.tenant_id, "--principal-id", identity.principal_id]

    assert main(["--stack-name", stack_name, "--region", REGION, *ids], {}) == 0

    printed = capsys.readouterr()
    assert "AWS_OIDC_ROLE_ARN=arn:aws:iam::" in printed.out
    assert "The function app does not have these settings yet" in printed.err


def trusted_principal(deployer: boto3.Session, stack_name: str) -> str:
    """The principal the stack's role is declared to trust (its ManagedIdentityPrincipalId).

    Read from the stack: moto 5.2.5's CloudFormation rewrites no role's trust policy on an update (its
    IAM role update takes only the description), where AWS's does; the first create is checked on the role.
    """
    stack = deployer.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    return str(parameters["ManagedIdentityPrincipalId"])


def role_trusts(deployer: boto3.Session, outputs: StackOutputs) -> str:
    role = deployer.client("iam").get_role(RoleName=outputs.role_arn.rsplit("/", 1)[-1])["Role"]
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    [sub] = [v for k, v in statement["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    return str(sub)


@pytest.mark.usefixtures("hook_without_azd")
def test_the_hook_refuses_to_move_the_stacks_trust_to_another_identity_unless_told(
    deployer: boto3.Session,
    existing_provider: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    environment = f"trust{uuid.uuid4().hex[:6]}"
    stack = f"deploy-test-{environment}"
    first = the_apps_identity()
    other = AzureIdentity(TENANT_ID, str(uuid.uuid4()))
    command = ["--stack-name", stack, "--environment", environment, "--region", REGION]
    command += ["--tenant-id", other.tenant_id, "--principal-id", other.principal_id]
    outputs = deploy_aws_stack(deployer, stack, first, environment=environment)
    try:
        assert role_trusts(deployer, outputs) == trusted_principal(deployer, stack) == first.principal_id

        with pytest.raises(TrustChangeRefused) as refused:
            deploy_aws_stack(deployer, stack, other, environment=environment)
        message = str(refused.value)
        assert f"trusts principal {first.principal_id}" in message
        assert f"trust principal {other.principal_id}" in message
        assert "--allow-trust-change" in message
        assert trusted_principal(deployer, stack) == first.principal_id
        capsys.readouterr()
        assert main(command, {}) == 1
        assert "rerun with --allow-trust-change" in capsys.readouterr().err
        assert trusted_principal(deployer, stack) == first.principal_id

        # Told to: the role now trusts the other identity, and only it.
        assert main([*command, "--allow-trust-change"], {}) == 0
        assert trusted_principal(deployer, stack) == other.principal_id
        assert deploy_aws_stack(deployer, stack, other, environment=environment) == outputs
    finally:
        delete_stack(deployer, stack)
        sqs = deployer.client("sqs")
        for url in (outputs.input_queue_url, outputs.dlq_url):  # kept by DeletionPolicy: Retain
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=url.rsplit("/", 1)[-1])["QueueUrl"])


@pytest.mark.usefixtures("hook_without_azd")
def test_an_environment_on_the_earlier_stack_keeps_it_its_queues_and_its_trust(
    deployer: boto3.Session,
    existing_provider: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    environment = f"dev{uuid.uuid4().hex[:6]}"
    earlier, per_environment = stack_name_for(""), stack_name_for(environment)
    identity, other = the_apps_identity(), AzureIdentity(TENANT_ID, str(uuid.uuid4()))
    cloudformation = deployer.client("cloudformation")
    try:
        # As the template deployed every environment before: the slug's stack, the answered queue names.
        before = deploy_aws_stack(deployer, earlier, identity)
        recorded = {"AZURE_ENV_NAME": environment, "AWS_STACK_INPUT_QUEUE_URL": before.input_queue_url}

        ids = ["--tenant-id", identity.tenant_id, "--principal-id", identity.principal_id]
        assert main(["--region", REGION, *ids], recorded) == 0

        printed = capsys.readouterr().out
        assert f"updating it, not making {per_environment}" in printed
        assert f"SQS_INPUT_QUEUE={before.input_queue_url}\n" in printed
        assert f"AWS_OIDC_ROLE_ARN={before.role_arn}" in printed
        assert stack_status(cloudformation, per_environment) is None
        parameters = stack_parameters(cloudformation, earlier)
        assert {name: parameters[name] for name in QUEUE_NAME_PARAMETERS} == queue_names_for("")
        assert parameters["ExistingOidcProviderArn"] == existing_provider

        # Another environment that shared the stack, with an identity of its own: refused, trust kept.
        other_ids = ["--tenant-id", other.tenant_id, "--principal-id", other.principal_id]
        assert main(["--region", REGION, *other_ids], {**recorded, "AZURE_ENV_NAME": f"{environment}b"}) == 1
        assert "rerun with --allow-trust-change" in capsys.readouterr().err
        assert trusted_principal(deployer, earlier) == identity.principal_id
    finally:
        for name in (earlier, per_environment):
            delete_stack(deployer, name)
        delete_retained(deployer, [""])


@pytest.mark.usefixtures("hook_without_azd")
def test_the_payload_bucket_when_asked_reaches_the_app_which_offloads_to_it_as_the_identity(
    deployer: boto3.Session,
    existing_provider: str,
    identity_endpoint: ManagedIdentityEndpoint,
    functions: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = f"big{uuid.uuid4().hex[:6]}"
    stack = stack_name_for(environment)
    identity = the_apps_identity()
    ids = ["--tenant-id", identity.tenant_id, "--principal-id", identity.principal_id]
    bucket = ""
    try:
        # Asked for in the azd environment (`azd env set AWS_LARGE_PAYLOAD_BUCKET create`).
        asked = {"AZURE_ENV_NAME": environment, "AWS_LARGE_PAYLOAD_BUCKET": "create"}
        assert main(["--region", REGION, *ids], asked) == 0
        outputs = StackOutputs.from_stack(stack_outputs(deployer.client("cloudformation"), stack))
        bucket = outputs.large_payload_bucket
        assert bucket
        assert deploy_aws_stack(deployer, stack, identity, environment=environment) == outputs  # kept

        # The app as the hook leaves it, OIDC and no AWS key: a body past the limit goes through the bucket.
        for name in (*KEY_VARIABLES, "AWS_OIDC_AUDIENCE", "AZURE_MANAGED_IDENTITY_CLIENT_ID", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        for name, value in outputs.app_settings().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("SQS_OUTPUT_QUEUE", outputs.input_queue_url)  # the send comes back to the drain
        monkeypatch.setenv("AWS_AUTH_MODE", "oidc_managed_identity")
        monkeypatch.setenv("AWS_REGION", REGION)
        monkeypatch.setenv("SQS_WAIT_TIME_SECONDS", "1")
        reset_clients()
        body = json.dumps({"id": "large", "blob": "x" * Settings.from_env().max_message_bytes})
        handled: list[str] = []
        try:
            response = functions["send_message"](
                http_post("messages", body.encode(), send_params(outputs.input_queue_url))
            )
            assert response.status_code == 202, response.get_body()
            stored = deployer.client("s3").list_objects_v2(Bucket=bucket)["KeyCount"]
            drain_input_queue(Settings.from_env(), handler=lambda message: handled.append(message.body))
        finally:
            reset_clients()
        assert (stored, handled) == (1, [body])
        assert identity_endpoint.requests  # the credentials came from the identity's token
    finally:
        empty_bucket(deployer, bucket)  # a stack deletes only an empty bucket
        delete_stack(deployer, stack)
        delete_bucket(deployer, bucket)
        delete_retained(deployer, [environment])


@pytest.fixture
def provider_of_another_app(deployer: boto3.Session) -> Iterator[str]:
    """The account's OIDC provider for the tenant's issuer, made by another app, listing its audience only."""
    iam = deployer.client("iam")
    issuer, _ = token_issuer_and_audience(TENANT_ID)
    arn = iam.create_open_id_connect_provider(
        Url=f"https://{issuer}", ClientIDList=[ANOTHER_APPS_AUDIENCE], ThumbprintList=[]
    )["OpenIDConnectProviderArn"]
    yield arn
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)


@pytest.fixture
def moto_adds_client_ids(sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """AddClientIDToOpenIDConnectProvider for the embedded moto server (in this process), as AWS documents
    it: the client ID appended to the provider's list, idempotently; an unknown provider is NoSuchEntity."""
    from moto.core.responses import EmptyResult
    from moto.iam.responses import IamResponse

    def add_client_id_to_open_id_connect_provider(self: IamResponse) -> EmptyResult:
        provider = self.backend.get_open_id_connect_provider(self._get_param("OpenIDConnectProviderArn"))
        client_id = self._get_param("ClientID")
        if client_id not in provider.client_id_list:
            provider.client_id_list.append(client_id)
        return EmptyResult()

    if not hasattr(IamResponse, "add_client_id_to_open_id_connect_provider"):
        monkeypatch.setattr(
            IamResponse,
            "add_client_id_to_open_id_connect_provider",
            add_client_id_to_open_id_connect_provider,
            raising=False,
        )


def test_moto_lacks_add_client_id_to_open_id_connect_provider(
    deployer: boto3.Session, provider_of_another_app: str
) -> None:
    # The emulator's gap that moto_adds_client_ids fills (moto 5.2.5, the version requirements-dev pins):
    # its server fails the unknown action with an HTML 500 page.
    with pytest.raises(ResponseParserError, match="500 Internal Server Error"):
        deployer.client("iam").add_client_id_to_open_id_connect_provider(
            OpenIDConnectProviderArn=provider_of_another_app, ClientID="api://probe"
        )


@pytest.mark.usefixtures("hook_without_azd", "moto_adds_client_ids")
def test_the_hook_adds_no_audience_to_a_provider_it_did_not_make_unless_told(
    deployer: boto3.Session, provider_of_another_app: str, capsys: pytest.CaptureFixture[str]
) -> None:
    environment = f"shared{uuid.uuid4().hex[:6]}"
    stack = f"deploy-test-{environment}"
    identity = the_apps_identity()
    _, audience = token_issuer_and_audience(TENANT_ID)
    command = ["--stack-name", stack, "--environment", environment, "--region", REGION]
    command += ["--tenant-id", identity.tenant_id, "--principal-id", identity.principal_id]
    iam, cloudformation = deployer.client("iam"), deployer.client("cloudformation")

    def audiences() -> list[str]:
        provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=provider_of_another_app)
        return sorted(provider["ClientIDList"])

    try:
        with pytest.raises(SharedProviderRefused, match="--allow-shared-provider"):
            deploy_aws_stack(deployer, stack, identity, environment=environment)
        assert main(command, {}) == 1
        message = capsys.readouterr().err
        assert f"does not list the audience {audience}" in message
        assert "--allow-shared-provider" in message
        assert audiences() == [ANOTHER_APPS_AUDIENCE]
        assert stack_status(cloudformation, stack) is None

        # Told to: the audience is added, and the stack trusts the shared provider.
        assert main([*command, "--allow-shared-provider"], {}) == 0
        assert audiences() == sorted([ANOTHER_APPS_AUDIENCE, audience])
        assert stack_parameters(cloudformation, stack)["ExistingOidcProviderArn"] == provider_of_another_app
        assert f"Added the audience {audience}" in capsys.readouterr().out
    finally:
        delete_stack(deployer, stack)
        delete_retained(deployer, [environment])
