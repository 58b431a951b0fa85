"""The AWS half of a deployment: ``infra/aws/template.yaml`` as a CloudFormation stack, then its outputs
handed to the function app.

azd's postprovision hook runs ``python -m deploy.aws_stack`` after Azure is provisioned, with the Bicep's
outputs in the environment (with OIDC, the identity's tenant and principal IDs, which the role must trust)
and the azd environment's name (``AZURE_ENV_NAME``), which names the stack and its queues: two azd
environments in one account and region never share a stack, a queue or a role trust. (An environment
deployed before stacks were named so keeps the stack it has: ``stack_of_environment``.) The stack's name
is recorded in the azd environment (``AWS_STACK_NAME``), and later runs keep to it.
It uses the caller's own AWS login: boto3's default chain, so a profile or SSO (``AWS_PROFILE``), nothing
stored. Rerunning is idempotent: an unchanged stack is left as is. An existing stack's role keeps trusting
the identity it trusts unless ``--allow-trust-change`` says otherwise, and an OIDC provider the account
already has for the issuer is reused as it is: adding this app's audience to it needs
``--allow-shared-provider``.

The environment names the s3 source's bucket too (``<slug>-<environment>-<account>-<region>-files``), and
an existing stack keeps the name it has. The payload bucket for large messages is made when asked:
``azd env set AWS_LARGE_PAYLOAD_BUCKET create`` (every later ``azd up`` keeps asking), or
``--large-payload-bucket create`` once; unasked, a stack keeps what it has, so no deploy drops the bucket
by forgetting.

Then the stack's outputs become app settings: recorded in the azd environment (``azd env set``), so
every later ``azd provision`` sets them through the Bicep's parameters, and written to the running
function app now (``az functionapp config appsettings set``), so this ``azd up`` needs no second pass.

The app's answers to the template that matter here are in ``deploy/choices.json``, written when the app was
generated; this module is plain Python.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from .outputs import with_deployment_outputs

if TYPE_CHECKING:
    import boto3

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent / "infra" / "aws" / "template.yaml"
CHOICES: dict[str, str] = json.loads((HERE / "choices.json").read_text(encoding="utf-8"))
OIDC = CHOICES["aws_auth"] == "oidc_managed_identity"
DEFAULT_REGION = CHOICES["aws_region"]
TOKEN_AUDIENCE = CHOICES["token_audience"]
# api://AzureADTokenExchange gets a v2 token whose aud is this app ID; any other audience a v1 token.
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
FEDERATION_APP_ID = "fb60f99c-7a34-4190-8149-302f77469936"
# What a stack in these states needs before it can be created again: deleting (it never existed).
DEAD_STATES = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"}
NO_CHANGE = "No updates are to be performed"
SQS_QUEUE_NAME_MAX = 80
STACK_NAME_MAX = 128
# The template names the s3 source's bucket <prefix>-<account>-<region>-files: 29 characters leave room for
# the longest region within S3's 63 (its SourceBucketPrefix parameter).
SOURCE_BUCKET_PREFIX_MAX = 29
# The stack's LargePayloadBucket parameter: the payload bucket made, or not.
LARGE_PAYLOAD_BUCKET_CHOICES = ("create", "none")


# The stack's queue name parameters, each with the answer that names it. An existing stack keeps them
# (see deploy_aws_stack).
QUEUE_NAME_PARAMETERS = {
    "InputQueueName": "input_queue_name",
    "OutputQueueName": "output_queue_name",
    "DeadLetterQueueName": "dlq_name",
}


class DeployError(RuntimeError):
    """A deploy step failed; the message says which and what to do."""


class TrustChangeRefused(DeployError):
    """The stack's role trusts another identity than the one given, and no one said to move it."""


class SharedProviderRefused(DeployError):
    """The account's OIDC provider for the issuer lacks this app's audience, and no one said to add it."""


def stack_name_for(environment: str) -> str:
    """``<project slug>-<azd environment>`` (the slug alone without one), as CloudFormation spells names."""
    name = f"{CHOICES['project_slug']}-{environment}" if environment else CHOICES["project_slug"]
    name = re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-")
    if not name[:1].isalpha():
        name = f"app-{name}"
    return name[:STACK_NAME_MAX]


def queue_names_for(environment: str) -> dict[str, str]:
    """The queue name parameters: the answered names, each with ``-<environment>`` before any ``.fifo``.

    SQS names are unique per account and region, and CloudFormation will not take over a queue another
    stack made: a second environment with the same names would fail, or worse, share the queues.
    """
    answered = {parameter: CHOICES[answer] for parameter, answer in QUEUE_NAME_PARAMETERS.items()}
    if not environment:
        return answered
    suffix = "-" + re.sub(r"[^A-Za-z0-9_-]+", "-", environment).strip("-")
    names = {}
    for parameter, name in answered.items():
        fifo = ".fifo" if name.endswith(".fifo") else ""
        stem = name.removesuffix(".fifo")[: SQS_QUEUE_NAME_MAX - len(fifo) - len(suffix)]
        names[parameter] = f"{stem}{suffix}{fifo}"
    return names


def source_bucket_prefix_for(environment: str) -> str:
    """``<project slug>-<azd environment>`` as S3 spells names, the start of the s3 source's bucket name.

    Bucket names are unique across all of S3: the template adds the account and the region, and the
    environment keeps two environments of one account and region apart. A prefix too long keeps its start
    and ends in a digest of the whole, so two long environment names never meet.
    """
    prefix = re.sub(r"[^a-z0-9-]+", "-", f"{CHOICES['project_slug']}-{environment}".lower()).strip("-")
    if len(prefix) <= SOURCE_BUCKET_PREFIX_MAX:
        return prefix
    digest = hashlib.sha256(prefix.encode()).hexdigest()[:6]
    return f"{prefix[: SOURCE_BUCKET_PREFIX_MAX - len(digest) - 1].rstrip('-')}-{digest}"


@dataclass(frozen=True)
class StackOutputs:
    input_queue_url: str
    output_queue_url: str
    dlq_url: str
    role_arn: str = ""
    operator_role_arn: str = ""
    large_payload_bucket: str = ""

    @classmethod
    def from_stack(cls, outputs: Mapping[str, str]) -> StackOutputs:
        return cls(
            input_queue_url=outputs["InputQueueUrl"],
            output_queue_url=outputs["OutputQueueUrl"],
            dlq_url=outputs["DeadLetterQueueUrl"],
            role_arn=outputs.get("RoleArn", ""),
            operator_role_arn=outputs.get("OperatorRoleArn", ""),
            large_payload_bucket=outputs.get("LargePayloadBucketName", ""),
        )

    def app_settings(self) -> dict[str, str]:
        """The function app's settings these outputs decide."""
        settings = {
            "SQS_INPUT_QUEUE": self.input_queue_url,
            "SQS_OUTPUT_QUEUE": self.output_queue_url,
            "SQS_DLQ": self.dlq_url,
            # Empty without the stack's payload bucket: large payloads off.
            "SQS_LARGE_PAYLOAD_BUCKET": self.large_payload_bucket,
        }
        if self.role_arn:
            settings["AWS_OIDC_ROLE_ARN"] = self.role_arn
        return settings

    def azd_environment(self) -> dict[str, str]:
        """The same, under the names main.parameters.json hands to the Bicep."""
        values = {
            "AWS_STACK_INPUT_QUEUE_URL": self.input_queue_url,
            "AWS_STACK_OUTPUT_QUEUE_URL": self.output_queue_url,
            "AWS_STACK_DLQ_URL": self.dlq_url,
            "AWS_STACK_LARGE_PAYLOAD_BUCKET": self.large_payload_bucket,
        }
        if self.role_arn:
            values["AWS_STACK_ROLE_ARN"] = self.role_arn
        return values


@dataclass(frozen=True)
class AzureIdentity:
    """Whom the role trusts: the managed identity's tenant and principal (object) ID, the token's sub."""

    tenant_id: str
    principal_id: str


def token_issuer_and_audience(tenant_id: str, audience: str = TOKEN_AUDIENCE) -> tuple[str, str]:
    """The token's iss (without https://, as IAM names providers) and aud for ``audience``."""
    if audience == FEDERATION_AUDIENCE:
        return f"login.microsoftonline.com/{tenant_id}/v2.0", FEDERATION_APP_ID
    return f"sts.windows.net/{tenant_id}/", audience


def existing_oidc_provider(
    iam: Any, issuer: str, audience: str, *, allow_shared_provider: bool = False
) -> str:
    """The ARN of this account's OIDC provider for ``issuer``; '' if none.

    An account holds one provider per issuer URL, so a second stack cannot create it: it reuses it. A
    provider this stack did not create belongs to the account: adding ``audience`` to it widens what every
    role trusting it accepts, so a provider that lacks it is refused unless ``allow_shared_provider``.
    """
    for provider in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]:
        arn = provider["Arn"]
        details = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
        if details["Url"].removeprefix("https://").rstrip("/") == issuer.rstrip("/"):
            if audience not in details.get("ClientIDList", []):
                if not allow_shared_provider:
                    raise SharedProviderRefused(
                        f"the account's OIDC provider {arn} for {issuer} (not made by this stack) does not "
                        f"list the audience {audience}. Adding it lets every role that trusts this provider "
                        f"accept tokens for {audience} too, unless each checks its own aud: check them, then "
                        "rerun with --allow-shared-provider (or add it yourself: aws iam "
                        "add-client-id-to-open-id-connect-provider)."
                    )
                iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID=audience)
                print(f"Added the audience {audience} to the account's OIDC provider {arn}.")
            return str(arn)
    return ""


def stack_status(cloudformation: Any, stack_name: str) -> str | None:
    try:
        return str(cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"])
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise


def stack_alive(cloudformation: Any, stack_name: str) -> bool:
    """The stack exists and can be updated (a first create that rolled back can only be deleted)."""
    return stack_status(cloudformation, stack_name) not in (None, *DEAD_STATES)


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def stack_parameters(cloudformation: Any, stack_name: str) -> dict[str, str]:
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {p["ParameterKey"]: str(p.get("ParameterValue", "")) for p in stack.get("Parameters", [])}


def check_trust_unchanged(
    cloudformation: Any, stack_name: str, identity: AzureIdentity, *, allow_trust_change: bool
) -> None:
    """Refuse to point an existing stack's role at another identity, unless ``allow_trust_change``.

    A deploy run with another azd environment's outputs, or a mistyped ID, would otherwise hand this
    stack's queues to another identity, and lock the identity that uses them now out.
    """
    current = stack_parameters(cloudformation, stack_name)
    trusted = AzureIdentity(current.get("AzureTenantId", ""), current.get("ManagedIdentityPrincipalId", ""))
    if trusted == identity or allow_trust_change:
        return
    raise TrustChangeRefused(
        f"stack {stack_name}'s role trusts principal {trusted.principal_id} of tenant {trusted.tenant_id}; "
        f"this deploy would make it trust principal {identity.principal_id} of tenant {identity.tenant_id} "
        "instead, and the app running as the first would lose its queues. If that is what you mean, rerun "
        "with --allow-trust-change; if not, check the azd environment (AZURE_ENV_NAME) and the IDs given."
    )


def failure_reason(cloudformation: Any, stack_name: str) -> str:
    """The first resource failure of the stack's last operation, as CloudFormation tells it."""
    events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
    failed = [e for e in events if str(e.get("ResourceStatus", "")).endswith("_FAILED")]
    if not failed:
        return "no resource failure recorded"
    first = failed[-1]
    return f"{first['LogicalResourceId']}: {first.get('ResourceStatusReason', '?')}"


def deploy_stack(
    session: boto3.Session,
    stack_name: str,
    parameters: Mapping[str, str],
    *,
    keep_previous: Sequence[str] = (),
    template_body: str | None = None,
) -> StackOutputs:
    """Create or update the stack with ``parameters`` and wait; its outputs. Unchanged: left as is.

    ``keep_previous`` names parameters an existing stack keeps (UsePreviousValue) instead.
    """
    cloudformation = session.client("cloudformation")
    body = template_body if template_body is not None else TEMPLATE.read_text(encoding="utf-8")
    status = stack_status(cloudformation, stack_name)
    if status in DEAD_STATES:
        # A first create that rolled back leaves a stack that can only be deleted.
        cloudformation.delete_stack(StackName=stack_name)
        _wait(cloudformation, "stack_delete_complete", stack_name)
        status = None
    common = {"StackName": stack_name, "TemplateBody": body, "Capabilities": ["CAPABILITY_IAM"]}
    if status is None:
        cloudformation.create_stack(**common, Parameters=_parameters(parameters))
        _wait(cloudformation, "stack_create_complete", stack_name)
    else:
        given = {k: v for k, v in parameters.items() if k not in keep_previous}
        try:
            cloudformation.update_stack(**common, Parameters=_parameters(given, keep_previous))
        except ClientError as error:
            if NO_CHANGE not in str(error):
                raise DeployError(f"CloudFormation refused to update stack {stack_name}: {error}") from error
        else:
            _wait(cloudformation, "stack_update_complete", stack_name)
    return StackOutputs.from_stack(stack_outputs(cloudformation, stack_name))


def _parameters(values: Mapping[str, str], keep_previous: Sequence[str] = ()) -> list[dict[str, Any]]:
    given: list[dict[str, Any]] = [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]
    return given + [{"ParameterKey": k, "UsePreviousValue": True} for k in keep_previous]


def _wait(cloudformation: Any, waiter: str, stack_name: str) -> None:
    try:
        # Up to 30 minutes, polling every 5 s: IAM and SQS resources usually settle in one or two.
        cloudformation.get_waiter(waiter).wait(
            StackName=stack_name, WaiterConfig={"Delay": 5, "MaxAttempts": 360}
        )
    except WaiterError as error:
        reason = failure_reason(cloudformation, stack_name)
        step = waiter.removeprefix("stack_")
        raise DeployError(f"stack {stack_name} did not reach {step}: {reason}") from error


def deploy_aws_stack(
    session: boto3.Session,
    stack_name: str,
    identity: AzureIdentity | None = None,
    *,
    environment: str = "",
    large_payload_bucket: str = "",
    allow_trust_change: bool = False,
    allow_shared_provider: bool = False,
    parameters: Mapping[str, str] | None = None,
) -> StackOutputs:
    """The stack for this app, its queues and the s3 source's bucket named for ``environment`` when it is
    made; with OIDC, trusting ``identity``'s token (reusing the account's OIDC provider for the issuer, if
    it has one: see ``existing_oidc_provider`` for when that needs ``allow_shared_provider``).

    ``large_payload_bucket``: ``create`` or ``none``, the stack's payload bucket; empty: as the stack has it
    (none for a new stack), so a deploy that does not ask never removes the bucket. ``parameters``: the
    template's other parameters (MessageSource, AlarmEmail...), as given; the template's defaults otherwise.
    """
    parameters = {**(parameters or {}), **queue_names_for(environment)}
    parameters["SourceBucketPrefix"] = source_bucket_prefix_for(environment)
    if large_payload_bucket:
        if large_payload_bucket not in LARGE_PAYLOAD_BUCKET_CHOICES:
            raise DeployError(f"large payload bucket {large_payload_bucket!r}: create or none")
        parameters["LargePayloadBucket"] = large_payload_bucket
    if OIDC and identity is None:
        raise DeployError("the app assumes its role with OIDC: the identity to trust is needed")
    cloudformation = session.client("cloudformation")
    exists = stack_alive(cloudformation, stack_name)
    # A queue keeps the name it was made with: a new name would replace it, its messages left behind; and so
    # does the source bucket (a new one would leave the files its producers upload unannounced).
    keep_previous = list(QUEUE_NAME_PARAMETERS) if exists else []
    previous = stack_parameters(cloudformation, stack_name) if exists else {}
    kept = ["SourceBucketPrefix"] if large_payload_bucket else ["SourceBucketPrefix", "LargePayloadBucket"]
    keep_previous += [name for name in kept if name in previous]
    if OIDC and identity is not None:
        parameters["AzureTenantId"] = identity.tenant_id
        parameters["ManagedIdentityPrincipalId"] = identity.principal_id
        if exists:
            check_trust_unchanged(cloudformation, stack_name, identity, allow_trust_change=allow_trust_change)
            # The stack may own the provider: keep whatever it was created with.
            keep_previous.append("ExistingOidcProviderArn")
        else:
            issuer, audience = token_issuer_and_audience(identity.tenant_id)
            iam = session.client("iam")
            parameters["ExistingOidcProviderArn"] = existing_oidc_provider(
                iam, issuer, audience, allow_shared_provider=allow_shared_provider
            )
    return deploy_stack(session, stack_name, parameters, keep_previous=keep_previous)


def stack_of_environment(cloudformation: Any, stack_name: str, recorded_input_queue_url: str) -> str:
    """``stack_name``, unless this azd environment was deployed before stacks were named per environment.

    Then every environment deployed one stack, named with the slug alone, with the answered queue names.
    An environment whose recorded input queue (``AWS_STACK_INPUT_QUEUE_URL``) is that stack's keeps
    deploying there: a new stack would start with empty queues, while the producers still send to the old
    ones and the backlog waits there (docs/updating.md).
    """
    earlier = stack_name_for("")
    if not recorded_input_queue_url or earlier == stack_name or stack_alive(cloudformation, stack_name):
        return stack_name
    if not stack_alive(cloudformation, earlier):
        return stack_name
    recorded_there = stack_outputs(cloudformation, earlier).get("InputQueueUrl") == recorded_input_queue_url
    return earlier if recorded_there else stack_name


def record_in_azd_environment(values: Mapping[str, str]) -> bool:
    """``azd env set`` each value, so later provisions pass them to the Bicep. False: no azd here."""
    azd = shutil.which("azd")
    if azd is None:
        return False
    for name, value in values.items():
        subprocess.run([azd, "env", "set", name, value], check=True)  # noqa: S603
    return True


def publish_app_settings(function_app: str, resource_group: str, settings: Mapping[str, str]) -> bool:
    """Write ``settings`` into the running function app. False: no Azure CLI here."""
    az = shutil.which("az")
    if az is None:
        return False
    pairs = [f"{name}={value}" for name, value in settings.items()]
    command = [az, "functionapp", "config", "appsettings", "set", "--name", function_app]
    command += ["--resource-group", resource_group, "--output", "none", "--settings", *pairs]
    subprocess.run(command, check=True)  # noqa: S603
    return True


def arguments(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    early, environ = with_deployment_outputs(argv, environ)
    parser = argparse.ArgumentParser(
        prog="python -m deploy.aws_stack", description=__doc__.splitlines()[0], parents=[early]
    )
    parser.add_argument("--print-app-name", action="store_true", help="print the function app's name, only")
    env = environ.get
    parser.add_argument(
        "--environment",
        default=env("AZURE_ENV_NAME", ""),
        help="the azd environment, which names the stack and the queues (default: AZURE_ENV_NAME)",
    )
    parser.add_argument("--stack-name", default=env("AWS_STACK_NAME", ""), help="default: <slug>-<env>")
    parser.add_argument("--region", default=env("AWS_REGION", DEFAULT_REGION))
    if OIDC:
        parser.add_argument("--tenant-id", default=env("AZURE_IDENTITY_TENANT_ID", ""))
        parser.add_argument("--principal-id", default=env("AZURE_IDENTITY_PRINCIPAL_ID", ""))
        parser.add_argument(
            "--allow-trust-change",
            action="store_true",
            help="let an existing stack's role trust another identity than the one it trusts now",
        )
        parser.add_argument(
            "--allow-shared-provider",
            action="store_true",
            help="add this app's audience to the account's OIDC provider for the issuer (not this stack's)",
        )
    parser.add_argument(
        "--large-payload-bucket",
        choices=LARGE_PAYLOAD_BUCKET_CHOICES,
        default=env("AWS_LARGE_PAYLOAD_BUCKET", ""),
        help="create: a bucket for payloads past the queues' size limit (SQS_LARGE_PAYLOAD_BUCKET); none: "
        "none; unset: as the stack has it (default: AWS_LARGE_PAYLOAD_BUCKET, an azd environment value)",
    )
    parser.add_argument("--function-app", default=env("AZURE_FUNCTION_APP_NAME", ""))
    parser.add_argument("--resource-group", default=env("AZURE_RESOURCE_GROUP", ""))
    args = parser.parse_args(argv)
    if args.large_payload_bucket not in ("", *LARGE_PAYLOAD_BUCKET_CHOICES):
        parser.error(f"AWS_LARGE_PAYLOAD_BUCKET={args.large_payload_bucket}: create, none or unset")
    args.stack_name_given = bool(args.stack_name)
    args.stack_name = args.stack_name or stack_name_for(args.environment)
    args.recorded_input_queue_url = env("AWS_STACK_INPUT_QUEUE_URL", "")
    return args


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    import boto3

    args = arguments(argv, os.environ if environ is None else environ)
    if args.print_app_name:
        print(args.function_app)
        return 0 if args.function_app else 2
    identity = None
    if OIDC:
        if not (args.tenant_id and args.principal_id):
            print(
                "error: the identity's tenant and principal IDs are unknown: run this after the Azure side "
                "is provisioned (azd sets AZURE_IDENTITY_TENANT_ID and AZURE_IDENTITY_PRINCIPAL_ID), or pass "
                "--tenant-id and --principal-id (the Bicep's outputs of the same names).",
                file=sys.stderr,
            )
            return 2
        identity = AzureIdentity(args.tenant_id, args.principal_id)
    session = boto3.Session(region_name=args.region)
    try:
        if not args.stack_name_given:
            cloudformation = session.client("cloudformation")
            stack_name = stack_of_environment(cloudformation, args.stack_name, args.recorded_input_queue_url)
            if stack_name != args.stack_name:
                print(
                    f"This environment's queues are stack {stack_name}'s, made before stacks were named per "
                    f"environment: updating it, not making {args.stack_name} (docs/updating.md)."
                )
                args.stack_name = stack_name
        outputs = deploy_aws_stack(
            session,
            args.stack_name,
            identity,
            environment=args.environment,
            large_payload_bucket=args.large_payload_bucket,
            allow_trust_change=bool(getattr(args, "allow_trust_change", False)),
            allow_shared_provider=bool(getattr(args, "allow_shared_provider", False)),
        )
    except (TrustChangeRefused, SharedProviderRefused) as error:
        print(f"error: AWS stack {args.stack_name} in {args.region}: {error}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError, DeployError) as error:
        print(f"error: AWS stack {args.stack_name} in {args.region}: {error}", file=sys.stderr)
        print("Check your AWS login (aws sts get-caller-identity); README, Deploy.", file=sys.stderr)
        return 1
    settings = outputs.app_settings()
    print(f"AWS stack {args.stack_name} in {args.region} is up to date:")
    for name, value in settings.items():
        print(f"  {name}={value}")
    if outputs.operator_role_arn:
        print(f"Operators assume {outputs.operator_role_arn} (README, Operating the queues).")
    recorded = record_in_azd_environment({**outputs.azd_environment(), "AWS_STACK_NAME": args.stack_name})
    published = bool(args.function_app and args.resource_group) and publish_app_settings(
        args.function_app, args.resource_group, settings
    )
    if not published:
        where = "azd provision" if recorded else "az functionapp config appsettings set"
        print(f"The function app does not have these settings yet: set them with {where}.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
