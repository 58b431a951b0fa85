"""Jinja filters that give the templates what the ``delivery_latency`` answer derives (``_extensions``).

The rule is the app's own, ``engine/delivery_plan.py``, in one place: the templates render the settings
table, the Bicep and the docs with it (``delivery_plan``, ``delivery_bill``), the pre-gen hook refuses
answers with it (it imports ``delivery_rule`` from ``template_folder``), and the app's ``costs`` command
prints its bill.

``cruft update`` renders the app's template commit and the newest one in one process, from one folder:
a module of Jinja extensions is imported once for both. So the rule is loaded afresh whenever its file
changed (keyed by its content), and this module is new: an older commit's ``local_extensions.py`` is
already imported by the time the newer one renders.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from jinja2.ext import Extension

TEMPLATE = Path(__file__).resolve().parent
DELIVERY_RULE = (
    TEMPLATE
    / "{{cookiecutter.project_slug}}"
    / "{{cookiecutter.package_name}}"
    / "engine"
    / "delivery_plan.py"
)
_LOADED: dict[str, ModuleType] = {}


def delivery_rule() -> ModuleType:
    """The template's engine/delivery_plan.py (it holds no Jinja), loaded once per version of it."""
    source = DELIVERY_RULE.read_bytes()
    key = hashlib.sha256(source).hexdigest()[:16]
    if key not in _LOADED:
        name = f"_template_delivery_plan_{key}"
        spec = importlib.util.spec_from_file_location(name, DELIVERY_RULE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        _LOADED[key] = module
    return _LOADED[key]


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


def template_folder(_: object) -> str:
    """This template's folder, for the pre-gen hook (cruft passes it no ``_repo_dir``)."""
    return str(TEMPLATE)


class DeliveryPlanExtension(Extension):
    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        environment.filters["delivery_plan"] = delivery_plan
        environment.filters["delivery_bill"] = delivery_bill
        environment.filters["template_folder"] = template_folder
