"""Evaluate the generated Bicep's expressions in Python, from pycep-parser's tree (checkov's parser): enough
of ARM's template language for the names and app settings the tests check, nothing more.

pycep writes a reference and a string literal alike, as a Python string: a string that names something in
scope is that thing, any other is a literal (the Bicep here uses no literal that is also a name). Its
precedence differs from Bicep's for unparenthesised ``a == b ? c : d`` and ``!a && b``, which is why the
Bicep parenthesises such conditions.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
# What ARM's functions return here: an Azure public cloud subscription and resource group.
SUBSCRIPTION = {"id": "/subscriptions/00000000-0000-0000-0000-000000000000", "subscriptionId": "0" * 8}
RESOURCE_GROUP = {
    "id": f"{SUBSCRIPTION['id']}/resourceGroups/rg-test",
    "name": "rg-test",
    "location": "eastus2",
}
ENVIRONMENT = {"suffixes": {"storage": "core.windows.net"}}


def unique_string(*values: str) -> str:
    """Like ARM's uniqueString: 13 characters of lower-case letters and digits, from a hash of the values."""
    digest = hashlib.sha256("|".join(values).encode()).digest()
    return base64.b32encode(digest).decode().lower()[:13]


@cache
def bicep_parser() -> BicepParser:
    """One parser for the session: building pycep's grammar takes seconds, parsing a file far less."""
    return BicepParser()


@cache
def _parsed(text: str) -> dict[str, Any]:
    return dict(bicep_parser().parse(text=text))


def parse(path: Path) -> dict[str, Any]:
    """pycep's tree of a Bicep file; a file of the same text is parsed once (each caller gets a copy)."""
    return copy.deepcopy(_parsed(path.read_text(encoding="utf-8")))


class Evaluator:
    def __init__(self, folder: Path, scope: Mapping[str, Any]) -> None:
        self.folder = folder
        self.scope = dict(scope)

    def path(self, base: Any, accessor: Any) -> Any:
        """``base`` then the names of a right-nested property_accessor chain."""
        while isinstance(accessor, dict) and "operator" in accessor:
            operands = accessor["operator"]["operands"]
            base = base[operands["operand_1"]]
            accessor = operands["operand_2"]
        return base[accessor]

    def reference(self, text: str) -> Any:
        head, *rest = text.split(".")
        value = self.scope[head]
        for name in rest:
            value = value[name]
        return value

    def __call__(self, node: Any) -> Any:
        if node is None or isinstance(node, bool | int | float):
            return node
        if isinstance(node, str):
            if node.split(".")[0] in self.scope and re.fullmatch(r"[A-Za-z_][\w.]*", node):
                return self.reference(node)
            return INTERPOLATION.sub(lambda m: str(self.reference(m.group(1).strip())), node)
        if isinstance(node, list):
            return [self(item) for item in node]
        if set(node) == {"function"}:
            return self.function(node["function"])
        if set(node) == {"operator"}:
            return self.operator(node["operator"]["type"], node["operator"]["operands"])
        # A quoted key ('azd-env-name') keeps its quotes in pycep's tree.
        return {key.strip("'"): self(value) for key, value in node.items()}

    def function(self, call: Mapping[str, Any]) -> Any:
        kind = call["type"]
        args = [self(value) for value in (call.get("parameters") or {}).values() if value is not None]
        result: Any
        if kind == "load_json_content":
            result = json.loads((self.folder / args[0]).read_text(encoding="utf-8"))
        elif kind == "subscription":
            result = SUBSCRIPTION
        elif kind == "resource_group":
            result = RESOURCE_GROUP
        elif kind == "environment":
            result = ENVIRONMENT
        elif kind == "unique_string":
            result = unique_string(*args)
        elif kind == "to_lower":
            result = args[0].lower()
        elif kind == "trim":
            result = args[0].strip()
        elif kind == "replace":
            result = args[0].replace(args[1], args[2])
        elif kind == "take":
            result = args[0][: args[1]]
        elif kind == "empty":
            result = not args[0]
        elif kind == "concat":
            result = [x for arg in args for x in arg] if isinstance(args[0], list) else "".join(args)
        elif kind == "union":
            result = {k: v for arg in args for k, v in arg.items()}
        elif kind == "subscription_resource_id":
            result = f"{SUBSCRIPTION['id']}/providers/{args[0]}/{'/'.join(args[1:])}"
        else:
            raise NotImplementedError(f"Bicep function {kind}")
        name = call.get("property_name")
        return result[name] if name else result

    def operator(self, kind: str, operands: Mapping[str, Any]) -> Any:
        if kind == "conditional":
            branch = "true_value" if self(operands["condition"]) else "false_value"
            return self(operands[branch])
        if kind == "property_accessor":
            return self.path(self(operands["operand_1"]), operands["operand_2"])
        if kind == "not":
            return not self(operands["bool_value"])
        if kind == "index_accessor":
            return self(operands["operand_1"])[self(operands["operand_2"])]
        left, right = self(operands["operand_1"]), self(operands["operand_2"])
        results = {
            "equals": left == right,
            "not_equals": left != right,
            "and": bool(left and right),
            "or": bool(left or right),
        }
        if kind not in results:
            raise NotImplementedError(f"Bicep operator {kind}")
        return results[kind]


def evaluate_file(
    path: Path, parameters: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> Evaluator:
    """An evaluator whose scope holds the file's parameters (given, else their defaults) and variables."""
    tree = parse(path)
    evaluate = Evaluator(path.parent, extra or {})
    for name, parameter in tree.get("parameters", {}).items():
        if name in parameters:
            evaluate.scope[name] = parameters[name]
        elif "default" in parameter:
            evaluate.scope[name] = evaluate(parameter["default"])
    for name, variable in tree.get("variables", {}).items():  # in file order: each may use the ones above
        evaluate.scope[name] = evaluate(variable["value"])
    return evaluate
