"""A Jinja filter cookiecutter loads before it renders anything (cookiecutter.json, ``_extensions``).

``project_slug`` names the folder cookiecutter creates *before* the pre-gen hook runs: a slug such as
``a/b`` would make ``a/b``, and a refusal by the hook would remove ``b`` but leave ``a`` behind. So
cookiecutter.json's ``__slug_is_one_folder`` passes the slug through ``one_folder`` while the answers are
rendered, and a slug holding a path separator is refused there, before any directory exists. Every other
rule on the slug stays in hooks/pre_gen_project.py.

``delivery_plan`` (``DeliveryPlanExtension``) gives the templates the configuration the
``delivery_latency`` answer derives (the schedule, continuous polling, the always-ready instance) from
the app's own rule, ``engine/delivery_plan.py``: the one rule, which the pre-gen hook (through
``delivery_rule``) and the app's ``costs`` command use too.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from cookiecutter.exceptions import FailedHookException
from jinja2.ext import Extension

SEPARATORS = ("/", "\\")
APP = Path(__file__).resolve().parent / "{{cookiecutter.project_slug}}"
DELIVERY_RULE = APP / "{{cookiecutter.package_name}}" / "engine" / "delivery_plan.py"


def one_folder(value: str, field: str) -> str:
    if any(separator in value for separator in SEPARATORS) or value in (".", ".."):
        # The exception cookiecutter's command line prints as a plain message (no traceback), exit code 1.
        raise FailedHookException(
            f"error: {field}: {value!r} must name one folder: lowercase letters, digits, '-' or '_', "
            "with no '/' or '\\'. Nothing was generated."
        )
    return value


class OneFolderExtension(Extension):
    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        environment.filters["one_folder"] = one_folder


@functools.cache
def delivery_rule() -> ModuleType:
    """The app's engine/delivery_plan.py, loaded from this template (it holds no Jinja)."""
    spec = importlib.util.spec_from_file_location("_template_delivery_plan", DELIVERY_RULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def delivery_plan(answers: dict[str, Any]) -> Any:
    """The ``Configuration`` the answers derive (the pre-gen hook has refused those that none meets)."""
    return delivery_rule().derive(
        answers["hosting_plan"], answers["delivery_latency"], answers["instance_memory_mb"]
    )


def delivery_bill(answers: dict[str, Any]) -> str:
    """A month of that configuration idle, under sparse traffic and under bursts: a markdown table."""
    fifo = str(answers["input_queue_name"]).endswith(".fifo")
    rule = delivery_rule()
    return "\n".join(rule.bill_rows(rule.month_of(delivery_plan(answers), fifo=fifo)))


class DeliveryPlanExtension(Extension):
    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        environment.filters["delivery_plan"] = delivery_plan
        environment.filters["delivery_bill"] = delivery_bill
