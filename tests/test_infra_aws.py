"""infra/aws/template.yaml in every bake: cfn-lint clean; the role trusts one identity's token for one
audience, under the issuer's own condition keys; the policy grants the app's calls on its queues only."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str

from .conftest import BIN, Baked, Combination, _bake, clean_env, combinations, load_hook, run

TEMPLATE = "infra/aws/template.yaml"
FEDERATION_APP_ID = "fb60f99c-7a34-4190-8149-302f77469936"
TENANT = "8a2b7c1e-3d4f-4a5b-9c6d-7e8f9a0b1c2d"
PRINCIPAL = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
QUEUES = {"InputQueue", "OutputQueue", "DeadLetterQueue"}
# The message sources: each a resource (or two) under a condition on MessageSource.
SOURCES = {"SourceTopic", "SourceSubscription", "SourceBucket", "SourceRule"}
ALARMS = {
    "DeadLetterQueueAlarm",
    "OldestMessageAgeAlarm",
    "AlarmTopicKey",
    "AlarmTopic",
    "AlarmEmailSubscription",
}


def load(baked: Baked) -> dict[str, Any]:
    template, problems = decode_str((baked.path / TEMPLATE).read_text(encoding="utf-8"))
    assert problems == []
    return dict(template)


def resolve(node: Any, parameters: dict[str, Any], conditions: dict[str, bool]) -> Any:
    """The intrinsic functions the template uses, evaluated; a resource reference becomes '<Name>'."""
    if isinstance(node, list):
        return [resolve(item, parameters, conditions) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        [(function, argument)] = node.items()
        if function == "Ref":
            return parameters.get(argument, f"<{argument}>")
        if function == "Fn::GetAtt":
            return f"<{'.'.join(argument)}>"
        if function == "Fn::If":
            condition, when_true, when_false = argument
            return resolve(when_true if conditions[condition] else when_false, parameters, conditions)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            values = {**parameters, **{k: resolve(v, parameters, conditions) for k, v in variables.items()}}
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(values.get(m[1], f"<{m[1]}>")), text)
    return {key: resolve(value, parameters, conditions) for key, value in node.items()}


def test_cfn_lint_is_clean(baked: Baked) -> None:
    result = run([str(BIN / "cfn-lint"), TEMPLATE], baked.path, clean_env())
    assert result.returncode == 0, result.stdout + result.stderr


def test_oidc_parts_are_there_only_in_oidc_bakes(baked: Baked) -> None:
    template = load(baked)
    oidc = baked.combination.answer("aws_auth") == "oidc_managed_identity"
    common = {
        "InputQueueName",
        "InputQueueType",
        "OutputQueueName",
        "OutputQueueType",
        "DeadLetterQueueName",
        "MaxReceiveCount",
        "OldestMessageAgeAlarmSeconds",
        "AlarmEmail",
        "MaximumMessageSize",
        "MessageSource",
        "SourceBucketPrefix",
        "EventSource",
        "LargePayloadBucket",
    }
    federation = {
        "AzureTenantId",
        "ManagedIdentityPrincipalId",
        "TokenIssuerForm",
        "TokenAudience",
        "ExistingOidcProviderArn",
        "RoleMaxSessionDurationSeconds",
    }
    assert set(template["Parameters"]) == common | (federation if oidc else set())
    resources = (
        QUEUES
        | ALARMS
        | SOURCES
        | {"QueueAccessPolicy", "TlsOnlyQueuePolicy", "OperatorPolicy", "OperatorRole", "PayloadBucket"}
    )
    assert set(template["Resources"]) == resources | (
        {"EntraIdOidcProvider", "FunctionAppRole"} if oidc else set()
    )
    assert ("RoleArn" in template["Outputs"]) == oidc
    assert "OperatorRoleArn" in template["Outputs"]
    if not oidc:
        text = (baked.path / TEMPLATE).read_text(encoding="utf-8")
        assert "AssumeRoleWithWebIdentity" not in text
        assert "Azure" not in text


def test_parameter_defaults_are_the_answers(baked: Baked) -> None:
    parameters = load(baked)["Parameters"]
    answer = baked.combination.answer
    context = baked.context
    assert parameters["InputQueueName"]["Default"] == context["input_queue_name"]
    assert parameters["OutputQueueName"]["Default"] == context["output_queue_name"]
    assert parameters["DeadLetterQueueName"]["Default"] == context["dlq_name"]
    assert parameters["MaxReceiveCount"]["Default"] == int(answer("max_receive_count"))
    if answer("aws_auth") == "oidc_managed_identity":
        v2 = answer("token_audience") == "api://AzureADTokenExchange"
        assert parameters["TokenIssuerForm"]["Default"] == ("v2" if v2 else "v1")
        assert parameters["TokenAudience"]["Default"] == (
            FEDERATION_APP_ID if v2 else answer("token_audience")
        )


def default_conditions(template: dict[str, Any]) -> dict[str, bool]:
    types = {name: p.get("Default") for name, p in template["Parameters"].items()}
    return {
        "InputIsFifo": types["InputQueueType"] == "fifo",
        "OutputIsFifo": types["OutputQueueType"] == "fifo",
    }


def test_queues_match_the_answers_and_redrive_to_the_dlq(baked: Baked) -> None:
    template = load(baked)
    resources = template["Resources"]
    fifo = {
        "InputQueue": baked.context["input_queue_name"].endswith(".fifo"),
        "DeadLetterQueue": baked.context["dlq_name"].endswith(".fifo"),
        "OutputQueue": baked.context["output_queue_name"].endswith(".fifo"),
    }
    conditions = default_conditions(template)
    for name, is_fifo in fifo.items():
        properties = resolve(resources[name]["Properties"], {"AWS::NoValue": None}, conditions)
        assert (properties["FifoQueue"], properties["ContentBasedDeduplication"]) == (
            (True, True) if is_fifo else (None, None)
        )
    assert resources["InputQueue"]["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "MaxReceiveCount"},
    }


def test_the_input_queue_and_dlq_outlive_the_stack(baked: Baked) -> None:
    resources = load(baked)["Resources"]
    for name in ("InputQueue", "DeadLetterQueue"):
        assert resources[name]["DeletionPolicy"] == "Retain", name
        assert resources[name]["UpdateReplacePolicy"] == "Retain", name


def test_only_the_input_queue_may_dead_letter_into_the_dlq(baked: Baked) -> None:
    dlq = load(baked)["Resources"]["DeadLetterQueue"]["Properties"]
    policy = resolve(dlq["RedriveAllowPolicy"], {"InputQueueName": "in"}, {})
    assert policy == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": ["arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:in"],
    }


def test_every_queue_refuses_calls_without_tls(baked: Baked) -> None:
    policy = load(baked)["Resources"]["TlsOnlyQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": q} for q in ("InputQueue", "OutputQueue", "DeadLetterQueue")]
    statement, *sources = policy["PolicyDocument"]["Statement"]
    assert [s["Fn::If"][0] for s in sources] == ["FromSns", "FromS3", "FromEventBridge"]
    assert statement["Effect"] == "Deny"
    assert (statement["Principal"], statement["Action"]) == ("*", "sqs:*")
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {r["Fn::GetAtt"][0] for r in statement["Resource"]} == QUEUES


def grants(document: dict[str, Any], conditions: dict[str, bool] | None = None) -> dict[str, set[str]]:
    """{queue or '*': actions} of an Allow-only policy document (its conditional statements as
    ``conditions`` say, by default the payload bucket's absent)."""
    granted: dict[str, set[str]] = {}
    chosen = resolve(
        document["Statement"], {"AWS::NoValue": None}, conditions or {"CreatePayloadBucket": False}
    )
    for statement in [s for s in chosen if s is not None]:
        assert statement["Effect"] == "Allow"
        assert set(statement) == {"Sid", "Effect", "Action", "Resource"}
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for resource in resources:
            # A queue by its name ("<InputQueue.Arn>" once resolved); anything else as written.
            whole_arn = resource.startswith("<") and resource.endswith(".Arn>")
            key = resource[1:].split(".")[0] if whole_arn else resource
            granted.setdefault(key, set()).update(actions)
    return granted


LOOKUP = {"sqs:GetQueueUrl", "sqs:GetQueueAttributes"}
OPERATOR_ONLY = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:PurgeQueue",
    "sqs:StartMessageMoveTask",
    "sqs:ListMessageMoveTasks",
    "sqs:CancelMessageMoveTask",
}


def test_the_runtime_policy_grants_exactly_the_apps_calls_and_no_operator_right(baked: Baked) -> None:
    resources = load(baked)["Resources"]
    document = resources["QueueAccessPolicy"]["Properties"]["PolicyDocument"]
    # No wildcard action or resource (the payload bucket's objects, "<bucket ARN>/*", are its own test).
    text = json.dumps(document)
    assert '"*"' not in text
    assert ':*"' not in text
    granted = grants(document)
    assert granted == {
        # drain: receive, delete (batch), backoff and heartbeat (visibility)
        "InputQueue": LOOKUP | {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"},
        "OutputQueue": LOOKUP | {"sqs:SendMessage"},
        # a FIFO message that used its attempts is moved there by the consumer itself; its depth is a metric
        "DeadLetterQueue": LOOKUP | {"sqs:SendMessage"},
    }
    assert granted["DeadLetterQueue"].isdisjoint(OPERATOR_ONLY)
    assert "sqs:SendMessage" not in granted["InputQueue"]  # the app cannot feed itself


def test_operators_get_the_dead_letter_rights_in_a_role_of_their_own(baked: Baked) -> None:
    resources = load(baked)["Resources"]
    granted = grants(resources["OperatorPolicy"]["Properties"]["PolicyDocument"])
    assert granted == {
        "InputQueue": LOOKUP | {"sqs:SendMessage"},
        "OutputQueue": LOOKUP,
        "DeadLetterQueue": LOOKUP | OPERATOR_ONLY | {"sqs:ChangeMessageVisibility"},
        "*": {"cloudwatch:GetMetricData"},
    }
    role = resources["OperatorRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [{"Ref": "OperatorPolicy"}]
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    principal = resolve(statement["Principal"], {}, {})
    assert principal == {"AWS": "arn:<AWS::Partition>:iam::<AWS::AccountId>:root"}
    if "FunctionAppRole" in resources:
        assert resources["FunctionAppRole"]["Properties"]["ManagedPolicyArns"] == [
            {"Ref": "QueueAccessPolicy"}
        ]


def test_the_token_audience_pattern_is_the_hooks(baked_oidc: Baked) -> None:
    parameter = load(baked_oidc)["Parameters"]["TokenAudience"]
    assert parameter["AllowedPattern"] == load_hook("pre_gen_project").TOKEN_AUDIENCE.pattern
    assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"])


@pytest.mark.parametrize("form", ["v1", "v2"])
@pytest.mark.parametrize("existing_provider", ["", "arn:aws:iam::123456789012:oidc-provider/entra"])
def test_the_role_trusts_one_identity_for_one_audience_under_the_issuers_keys(
    baked_oidc: Baked, form: str, existing_provider: str
) -> None:
    template = load(baked_oidc)
    audience = "api://aws-federation" if form == "v1" else FEDERATION_APP_ID
    parameters = {
        "AzureTenantId": TENANT,
        "ManagedIdentityPrincipalId": PRINCIPAL,
        "TokenIssuerForm": form,
        "TokenAudience": audience,
        "ExistingOidcProviderArn": existing_provider,
    }
    conditions = {"IssuerIsV2": form == "v2", "CreateOidcProvider": not existing_provider}
    issuer = f"login.microsoftonline.com/{TENANT}/v2.0" if form == "v2" else f"sts.windows.net/{TENANT}/"
    role = template["Resources"]["FunctionAppRole"]["Properties"]
    provider = template["Resources"]["EntraIdOidcProvider"]

    [statement] = json.loads(resolve(role["AssumeRolePolicyDocument"], parameters, conditions))["Statement"]

    assert statement == {
        "Effect": "Allow",
        "Principal": {"Federated": existing_provider or "<EntraIdOidcProvider>"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{issuer}:aud": audience, f"{issuer}:sub": PRINCIPAL}},
    }
    assert provider["Condition"] == "CreateOidcProvider"
    assert resolve(provider["Properties"], parameters, conditions) == {
        "Url": f"https://{issuer}",
        "ClientIdList": [audience],
    }
    assert role["ManagedPolicyArns"] == [{"Ref": "QueueAccessPolicy"}]
    assert "Policies" not in role


def test_the_docs_deploy_this_template_by_its_parameter_and_output_names(baked: Baked) -> None:
    template = load(baked)
    readme = baked.docs()
    oidc = baked.combination.answer("aws_auth") == "oidc_managed_identity"
    assert ("# Connect to AWS without secrets" in readme) == oidc
    assert f"--template-file {TEMPLATE}" in readme
    overrides = [
        argument.split("=", 1)[0]
        for line in re.findall(r"--parameter-overrides ([^\n]+)", readme)
        for argument in line.split()
    ]
    assert set(overrides) <= set(template["Parameters"])
    assert len(overrides) == (2 if oidc else 0)
    outputs = set(re.findall(r"<(\w+) output>", readme))
    assert outputs
    assert outputs <= set(template["Outputs"])


def test_the_alarms_watch_the_dlq_and_the_oldest_message_and_notify_the_encrypted_topic(baked: Baked) -> None:
    template = load(baked)
    resources = template["Resources"]
    dlq = resources["DeadLetterQueueAlarm"]["Properties"]
    age = resources["OldestMessageAgeAlarm"]["Properties"]
    assert (dlq["Namespace"], dlq["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dlq["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}
    ]
    # Any visible message: at least one, not more than one.
    assert (dlq["ComparisonOperator"], dlq["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert (age["Namespace"], age["MetricName"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert age["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["InputQueue", "QueueName"]}}]
    assert age["ComparisonOperator"] == "GreaterThanThreshold"
    assert age["Threshold"] == {"Ref": "OldestMessageAgeAlarmSeconds"}
    parameter = template["Parameters"]["OldestMessageAgeAlarmSeconds"]
    assert parameter["MinValue"] <= parameter["Default"] <= parameter["MaxValue"]
    for alarm in (dlq, age):
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert alarm["TreatMissingData"] == "notBreaching"
    topic = resources["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = resources["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    services = [s["Principal"].get("Service") for s in key["KeyPolicy"]["Statement"]]
    assert "cloudwatch.amazonaws.com" in services
    # The e-mail subscription exists only when an address is given.
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    assert template["Conditions"]["HasAlarmEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }
    assert template["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}


def test_every_queue_takes_the_answered_message_size(baked: Baked) -> None:
    template = load(baked)
    parameter = template["Parameters"]["MaximumMessageSize"]
    assert parameter["Default"] == int(baked.combination.answer("max_message_bytes"))
    assert (parameter["MinValue"], parameter["MaxValue"]) == (1024, 1_048_576)
    for queue in QUEUES:
        assert template["Resources"][queue]["Properties"]["MaximumMessageSize"] == {
            "Ref": "MaximumMessageSize"
        }
    settings = (baked.path / baked.package / "engine" / "settings.py").read_text(encoding="utf-8")
    assert f'"SQS_MAX_MESSAGE_BYTES", {baked.combination.answer("max_message_bytes")},' in settings


def test_the_payload_bucket_gives_the_app_its_objects_only(baked: Baked) -> None:
    template = load(baked)
    document = template["Resources"]["QueueAccessPolicy"]["Properties"]["PolicyDocument"]
    granted = grants(document, {"CreatePayloadBucket": True})
    assert granted["<PayloadBucket.Arn>/*"] == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    assert not any(k.startswith("<PayloadBucket") for k in grants(document))
    bucket = template["Resources"]["PayloadBucket"]
    assert bucket["Condition"] == "CreatePayloadBucket"
    [rule] = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] > 14  # outlives the longest a message or its dead letter lives
    assert template["Outputs"]["LargePayloadBucketName"]["Value"] == {
        "Fn::If": ["CreatePayloadBucket", {"Ref": "PayloadBucket"}, ""]
    }


def created_resources(template: dict[str, Any]) -> set[str]:
    """The resources the template creates with its parameters' defaults (its conditions evaluated)."""
    defaults = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}

    def value(node: Any) -> str:
        return defaults[node["Ref"]] if isinstance(node, dict) else str(node)

    def holds(condition: Any) -> bool:
        [(function, argument)] = condition.items()
        if function == "Condition":
            return holds(template["Conditions"][argument])
        if function == "Fn::Equals":
            return value(argument[0]) == value(argument[1])
        if function == "Fn::Not":
            return not holds(argument[0])
        if function == "Fn::And":
            return all(map(holds, argument))
        assert function == "Fn::Or", function
        return any(map(holds, argument))

    return {
        name
        for name, resource in template["Resources"].items()
        if "Condition" not in resource or holds({"Condition": resource["Condition"]})
    }


def test_the_templates_variants_create_every_optional_resource(baked: Baked) -> None:
    from .infra_tools import template_variants

    # checkov leaves out a resource whose condition the defaults make false: the variants' defaults create
    # each of them (a source, the payload bucket), so that checkov sees them all (the test below).
    variants = template_variants(baked.path / TEMPLATE)
    assert set().union(*map(created_resources, variants.values())) == set(load(baked)["Resources"])


@pytest.mark.slow  # checkov
def test_checkov_passes_every_optional_resource_in_the_templates_variants(baked: Baked) -> None:
    from .infra_tools import checkov_of_template_variants, template_variants

    variants = template_variants(baked.path / TEMPLATE)
    report = checkov_of_template_variants(baked.path / TEMPLATE)
    assert report["summary"]["parsing_errors"] == 0
    results = report["results"]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in results["failed_checks"]]
    assert failed == []
    scanned = {
        (c["file_path"].strip("/").removesuffix(".json"), c["resource"].rsplit(".", 1)[-1])
        for kind in ("passed_checks", "skipped_checks")
        for c in results[kind]
    }
    assert {("sns", "SourceTopic"), ("s3", "SourceBucket")} <= scanned
    assert {(variant, "PayloadBucket") for variant in variants} <= scanned


SOURCE_PRINCIPALS = {
    "sns": "sns.amazonaws.com",
    "s3": "s3.amazonaws.com",
    "eventbridge": "events.amazonaws.com",
}


@pytest.mark.parametrize("source", ["http", "sns", "s3", "eventbridge"])
def test_only_the_chosen_source_may_send_to_the_input_queue_named_by_its_arn(
    baked: Baked, source: str
) -> None:
    template = load(baked)
    conditions = {
        "FromSns": source == "sns",
        "FromS3": source == "s3",
        "FromEventBridge": source == "eventbridge",
    }
    statements = resolve(
        template["Resources"]["TlsOnlyQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"],
        {"AWS::NoValue": None},
        conditions,
    )
    allowed = [s for s in statements if s is not None and s["Effect"] == "Allow"]
    if source == "http":
        assert allowed == []
        return
    [statement] = allowed
    assert statement["Principal"] == {"Service": SOURCE_PRINCIPALS[source]}
    assert (statement["Action"], statement["Resource"]) == ("sqs:SendMessage", "<InputQueue.Arn>")
    source_arn = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    resources = template["Resources"]
    if source == "sns":
        assert source_arn == "<SourceTopic>"
        subscription = resources["SourceSubscription"]["Properties"]
        assert subscription["RawMessageDelivery"] is False  # the handler reads SNS's envelope
    elif source == "eventbridge":
        assert source_arn == "<SourceRule.Arn>"
    else:
        bucket = resolve(resources["SourceBucket"]["Properties"]["BucketName"], {}, conditions)
        assert source_arn == f"arn:<AWS::Partition>:s3:::{bucket}"
        assert resources["SourceBucket"]["DependsOn"] == "TlsOnlyQueuePolicy"  # S3 checks the policy
        # The longest prefix the parameter allows, in the longest region: within S3's 63 characters.
        prefix = template["Parameters"]["SourceBucketPrefix"]
        assert re.fullmatch(prefix["AllowedPattern"], prefix["Default"])
        longest = {"SourceBucketPrefix": "p" * 29, "AWS::AccountId": "1" * 12}
        longest["AWS::Region"] = "ap-southeast-2"
        assert re.fullmatch(prefix["AllowedPattern"], longest["SourceBucketPrefix"])
        assert not re.fullmatch(prefix["AllowedPattern"], "p" * 30)
        assert len(resolve(resources["SourceBucket"]["Properties"]["BucketName"], longest, conditions)) == 63


# Each source with every other answer at its default (the matrix pairs each with other answers).
SOURCE_BAKES = [
    Combination(f"source-{source}", {"message_source": source, "project_name": f"Source {source}"})
    for source in ("sns", "s3", "eventbridge")
]


@pytest.fixture(scope="session", params=combinations(SOURCE_BAKES))
def baked_source(request: pytest.FixtureRequest, cookies_session: Any) -> Baked:
    return _bake(cookies_session, request.param)


def test_each_message_source_bakes_a_template_that_cfn_lint_and_checkov_pass(baked_source: Baked) -> None:
    from .infra_tools import checkov_bin

    source = baked_source.combination.answer("message_source")
    project = baked_source.path
    lint = run([str(BIN / "cfn-lint"), TEMPLATE], project, clean_env())
    assert lint.returncode == 0, lint.stdout + lint.stderr
    scan = run(
        [
            str(checkov_bin()),
            "-f",
            TEMPLATE,
            "--framework",
            "cloudformation",
            "--skip-download",
            "-o",
            "json",
        ],
        project,
        {**clean_env(), "BC_SKIP_MAPPING": "TRUE", "CHECKOV_SKIP_VERSION_CHECK": "1", "LOG_LEVEL": "ERROR"},
    )
    report = json.loads(scan.stdout)
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    assert load_template_default(project, "MessageSource") == source


def load_template_default(project: Path, parameter: str) -> Any:
    template, _ = decode_str((project / TEMPLATE).read_text(encoding="utf-8"))
    return template["Parameters"][parameter]["Default"]
