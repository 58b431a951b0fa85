"""Fixes for moto's CloudFormation and EventBridge, applied where the embedded emulator starts (emulator.py),
where they differ from AWS in what deploy/aws_stack.py, infra/aws/template.yaml and its message sources meet:

- **AWS::NoValue in a list.** CloudFormation drops the item; moto 5.2.5 keeps a null. The template grants
  the payload bucket's objects in a statement that exists only with ``LargePayloadBucket=create``
  (``!If [CreatePayloadBucket, {...}, !Ref AWS::NoValue]`` in the runtime policy's ``Statement`` list):
  moto hands IAM a null statement and refuses every stack ("Syntax errors in policy"). Fix: the nulls
  dropped from lists.
- **UsePreviousValue of a defaulted parameter.** CloudFormation keeps the value the stack has; moto looks
  it up among the values given at create only, and answers HTTP 500 (a KeyError) when the stack took the
  parameter's default, as a stack does when the deploy leaves ``LargePayloadBucket`` unasked. Fix: the
  stack's value, default or given.
- **An EventBridge event without its account.** A rule's target receives the whole event; moto's default
  input template for a target leaves out ``account``, so the event an SQS target gets is no EventBridge
  event (engine/envelopes.py requires the field, as AWS always sends it). Fix: the template with it.

tests/test_emulator_fidelity.py proves each on an unpatched moto.

Like moto_sqs_fixes, this patches moto's private internals, proven on ``PROVEN_MOTO_VERSION`` only.
"""

from __future__ import annotations

import functools
import inspect
from importlib.metadata import version
from typing import Any

from .moto_sqs_fixes import PROVEN_MOTO_VERSION, UnprovenMotoError

_APPLIED = "_app_service_fixes"
CLEAN_JSON_PARAMETERS = ["resource_json", "resources_map"]


def fix_moto_services() -> None:
    """Idempotent; moto is imported here, when an emulator starts (it is a dev dependency)."""
    from moto.cloudformation import parsing

    if getattr(parsing, _APPLIED, False):
        return
    installed = version("moto")
    evaluate: Any = getattr(parsing, "clean_json", None)
    if installed != PROVEN_MOTO_VERSION or not callable(evaluate):
        raise UnprovenMotoError(
            f"moto {installed} is not moto {PROVEN_MOTO_VERSION}, which the patches in "
            "local_dev/moto_service_fixes.py are proven on: install "
            f"moto[server]=={PROVEN_MOTO_VERSION}"
        )
    if list(inspect.signature(evaluate).parameters) != CLEAN_JSON_PARAMETERS:
        raise UnprovenMotoError(f"moto {installed}'s clean_json{tuple(CLEAN_JSON_PARAMETERS)} has moved")

    @functools.wraps(evaluate)
    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        # moto's clean_json calls itself by its module name: this replacement sees every nested list.
        if isinstance(resource_json, list):
            items = (clean_json(item, resources_map) for item in resource_json)
            return [item for item in items if item is not None]
        return evaluate(resource_json, resources_map)

    setattr(parsing, "clean_json", clean_json)  # noqa: B010
    _fix_use_previous_value()
    _fix_event_account()
    setattr(parsing, _APPLIED, True)


def _fix_use_previous_value() -> None:
    from moto.cloudformation import models

    backend: Any = models.CloudFormationBackend
    if not callable(getattr(backend, "_resolve_update_parameters", None)):
        raise UnprovenMotoError(f"moto {version('moto')}'s _resolve_update_parameters has moved")

    def _resolve_update_parameters(self: Any, instance: Any, incoming_params: list[dict[str, Any]]) -> Any:
        values = dict(instance.parameters or {})
        if isinstance(instance, models.Stack):  # a stack set has no defaults of its own
            for key, value in instance.stack_parameters.items():  # every parameter, defaults included
                values.setdefault(key, ",".join(map(str, value)) if isinstance(value, list) else str(value))
        resolved = {p["ParameterKey"]: p["ParameterValue"] for p in incoming_params if "ParameterValue" in p}
        resolved |= {
            p["ParameterKey"]: values[p["ParameterKey"]]
            for p in incoming_params
            if p.get("UsePreviousValue", False)
        }
        return resolved

    backend._resolve_update_parameters = _resolve_update_parameters


def _fix_event_account() -> None:
    from moto.events.utils import EventTemplateParser

    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' in template:
        return
    paths = EventTemplateParser.DEFAULT_EVENT_INPUT_PATHS_MAP
    if '"source": "<source>", ' not in template or "account" not in paths:
        raise UnprovenMotoError(f"moto {version('moto')}'s EventBridge input template has moved")
    EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
        '"source": "<source>", ', '"source": "<source>", "account": "<account>", '
    )
