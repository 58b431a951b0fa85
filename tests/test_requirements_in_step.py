"""The template's dev environment can run every generated app's own tests: it holds what they require."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .conftest import Baked

REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_names(path: Path) -> list[str]:
    names: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            names += requirement_names(path.parent / line[3:].strip())
            continue
        match = REQUIREMENT_NAME.match(line)
        if match:
            names.append(match.group(1))
    return names


def test_every_generated_requirement_is_installed_here(baked: Baked) -> None:
    missing = []
    for name in requirement_names(baked.path / "requirements-dev.txt"):
        try:
            version(name)
        except PackageNotFoundError:
            missing.append(name)
    assert missing == []
