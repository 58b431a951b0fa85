"""The Azure deployment's outputs, for the deploy commands run without azd (README, "Deploy")."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path


def deployment_outputs(path: str) -> dict[str, str]:
    """`az deployment group show --query properties.outputs` saved as JSON: {name: {type, value}}.

    Names are matched in upper case: ARM may hand them back in another case than the Bicep declares.
    """
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    return {name.upper(): str(output.get("value", "")) for name, output in document.items()}


def with_deployment_outputs(
    argv: Sequence[str] | None, environ: Mapping[str, str]
) -> tuple[argparse.ArgumentParser, Mapping[str, str]]:
    """The ``--deployment-outputs FILE`` option, and ``environ`` with that file's outputs over it.

    Read before the other options, whose defaults come from those outputs as azd would set them.
    """
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--deployment-outputs", metavar="FILE", help="the Azure deployment's outputs, as JSON")
    known, _ = early.parse_known_args(argv)
    if known.deployment_outputs:
        environ = {**environ, **deployment_outputs(known.deployment_outputs)}
    return early, environ
