"""The update path of the app's docs/updating.md, offline: cruft create, the owner's edit, a template
change, cruft update keeping both."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from .conftest import TEMPLATE_DIR, clean_env, kept_files, run

CRUFT = str(Path(sys.executable).parent / "cruft")
NOT_TEMPLATE = shutil.ignore_patterns(".git", ".cache", ".venv", "__pycache__", ".*_cache", "*.egg-info")
SLUG, PACKAGE = "sqs-functions-app", "sqs_functions_app"
ENGINE_FILE = Path("{{cookiecutter.package_name}}", "engine", "producer.py")
ENGINE_CHANGE = "\n\nTEMPLATE_UPDATE_MARKER = 1  # a newer template's engine\n"
OWNER_EDIT = "\n\n# the owner's own line, kept through updates\n"


def git(repo: Path, *args: str) -> None:
    result = run(["git", *args], repo, GIT_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


GIT_ENV = {
    **clean_env(),
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.mark.slow
def test_cruft_update_brings_an_engine_change_in_and_keeps_the_owners_handler(tmp_path: Path) -> None:
    template = tmp_path / "template"
    shutil.copytree(TEMPLATE_DIR, template, ignore=NOT_TEMPLATE)
    git(template, "init", "-q", "-b", "main")
    commit_all(template, "template v1")

    apps = tmp_path / "apps"
    create = [CRUFT, "create", str(template), "--no-input", "--output-dir", str(apps)]
    created = run(create, tmp_path, GIT_ENV)
    assert created.returncode == 0, created.stdout + created.stderr
    app = apps / SLUG
    assert (app / ".cruft.json").exists()
    git(app, "init", "-q", "-b", "main")
    handler = app / PACKAGE / "handler.py"
    handler.write_text(handler.read_text(encoding="utf-8") + OWNER_EDIT, encoding="utf-8")
    commit_all(app, "the app, with the owner's handler")

    checked = run([CRUFT, "check"], app, GIT_ENV)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    engine_in_template = template / "{{cookiecutter.project_slug}}" / ENGINE_FILE
    engine_in_template.write_text(engine_in_template.read_text(encoding="utf-8") + ENGINE_CHANGE, "utf-8")
    commit_all(template, "template v2: an engine change")

    assert run([CRUFT, "check"], app, GIT_ENV).returncode != 0  # the app is behind the template now
    updated = run([CRUFT, "update", "-y"], app, GIT_ENV)
    assert updated.returncode == 0, updated.stdout + updated.stderr

    engine_in_app = app / PACKAGE / "engine" / "producer.py"
    assert engine_in_app.read_text(encoding="utf-8").endswith(ENGINE_CHANGE)
    assert handler.read_text(encoding="utf-8").endswith(OWNER_EDIT)
    assert not [p for p in kept_files(app) if p.suffix == ".rej"]
    assert run([CRUFT, "check"], app, GIT_ENV).returncode == 0


RULE_FILE = Path("{{cookiecutter.package_name}}", "engine", "delivery_plan.py")


@pytest.mark.slow
def test_cruft_update_bakes_with_the_newer_delivery_rule(tmp_path: Path) -> None:
    """cruft renders the app's commit and the newest in one process: the newest renders with its own rule
    (here, a new price), not the one loaded for the older commit."""
    template = tmp_path / "template"
    shutil.copytree(TEMPLATE_DIR, template, ignore=NOT_TEMPLATE)
    git(template, "init", "-q", "-b", "main")
    commit_all(template, "template v1")
    apps = tmp_path / "apps"
    created = run(
        [CRUFT, "create", str(template), "--no-input", "--output-dir", str(apps)], tmp_path, GIT_ENV
    )
    assert created.returncode == 0, created.stdout + created.stderr
    app = apps / SLUG
    git(app, "init", "-q", "-b", "main")
    commit_all(app, "the app")
    readme = app / "README.md"
    before = [line for line in readme.read_text(encoding="utf-8").splitlines() if line.startswith("| idle")]

    rule = template / "{{cookiecutter.project_slug}}" / RULE_FILE
    text = rule.read_text(encoding="utf-8")
    assert '"Flex Consumption on demand execution time", 0.000026,' in text
    rule.write_text(
        text.replace('on demand execution time", 0.000026,', 'on demand execution time", 0.000052,'), "utf-8"
    )
    commit_all(template, "template v2: Flex's price doubled")
    updated = run([CRUFT, "update", "-y"], app, GIT_ENV)
    assert updated.returncode == 0, updated.stdout + updated.stderr

    after = [line for line in readme.read_text(encoding="utf-8").splitlines() if line.startswith("| idle")]
    assert before != after, "the README's bill was rendered with the older rule"
    assert "0.000052" in (app / PACKAGE / "engine" / "delivery_plan.py").read_text(encoding="utf-8")
