"""Little Jinja where it is hardest to read (issue 17, item 8): no file in the generated app's infra/,
deploy/ or .github/ holds more than 10 ``{%``, and deploy/aws_stack.py is plain Python that reads its
choices from the generated deploy/choices.json."""

from __future__ import annotations

import ast
import json

import pytest

from .conftest import TEMPLATE_DIR, Baked, kept_files

PROJECT = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
JINJA_LIMIT = 10
JINJA_FOLDERS = ("infra/aws", "infra/azure", "infra/hooks", "deploy", ".github")


@pytest.mark.parametrize("folder", JINJA_FOLDERS)
def test_no_file_holds_more_than_ten_jinja_statements(folder: str) -> None:
    root = PROJECT / folder
    files = kept_files(root)
    assert files
    counts = {str(p.relative_to(PROJECT)): p.read_text(encoding="utf-8").count("{%") for p in files}
    assert {name: n for name, n in counts.items() if n > JINJA_LIMIT} == {}, counts


def test_the_aws_step_is_plain_python() -> None:
    source = (PROJECT / "deploy" / "aws_stack.py").read_text(encoding="utf-8")
    assert not any(mark in source for mark in ("{{", "{%", "{#"))
    ast.parse(source)


def test_the_aws_steps_choices_are_the_answers(baked: Baked) -> None:
    choices = json.loads((baked.path / "deploy" / "choices.json").read_text(encoding="utf-8"))
    assert choices == {key: baked.context[key] for key in choices}
    assert set(choices) >= {"project_slug", "aws_region", "aws_auth", "token_audience", "input_queue_name"}
