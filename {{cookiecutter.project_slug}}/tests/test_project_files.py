"""``kept_files``: what walks the project sees what git keeps, and not a venv, a cache or ``.git/``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .project_files import git_listing, gitignore_walk, kept_files

PROJECT = Path(__file__).parents[1]

# A tree with what a project gathers besides its code, and .gitignore rules of every kind.
TREE = {
    "app.py": "",
    "pkg/__init__.py": "",
    "pkg/__pycache__/__init__.cpython-313.pyc": "",
    ".venv/lib/python3.13/site-packages/vendored.py": "\ufeffimport this\n",
    ".venv/pyvenv.cfg": "",
    ".mypy_cache/3.13/cache.json": "{}",
    ".python_packages/lib/site-packages/x.py": "",
    "local.settings.json": "{}",
    "notes.log": "",
    "keep.log": "",
    "data/raw.csv": "",
    "docs/data/table.md": "",
    "docs/.gitignore": "draft-*.md\n!draft-final.md\n",
    "docs/draft-1.md": "",
    "docs/draft-final.md": "",
    "docs/guide.md": "",
    ".git/HEAD": "ref: refs/heads/main\n",
}
# Folders by name and anchored, files by pattern, and a pattern that a later one overrides.
GITIGNORE = """__pycache__/
.venv/
.mypy_cache/
.python_packages
local.settings.json
*.log
!keep.log
/data
"""
KEPT = {
    ".gitignore",
    "app.py",
    "pkg/__init__.py",
    "keep.log",
    "docs/data/table.md",
    "docs/.gitignore",
    "docs/draft-final.md",
    "docs/guide.md",
}


def make_tree(root: Path) -> Path:
    for name, text in {**TREE, ".gitignore": GITIGNORE}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def relative(root: Path, files: list[Path]) -> set[str]:
    return {p.relative_to(root.resolve()).as_posix() for p in files}


def test_outside_git_the_gitignore_files_decide(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    assert relative(root, kept_files(root)) == KEPT


@pytest.mark.skipif(shutil.which("git") is None, reason="git answers only where it is installed")
def test_the_gitignore_walk_agrees_with_git(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    shutil.rmtree(root / ".git")
    subprocess.run(["git", "init", "-q", str(root)], check=True)  # noqa: S607
    (root / "app.py").write_text("tracked\n", encoding="utf-8")
    listed = git_listing(root)
    assert listed is not None
    assert relative(root, listed) == KEPT == relative(root, gitignore_walk(root))


def test_the_project_walk_skips_the_venv_and_caches() -> None:
    files = relative(PROJECT, kept_files(PROJECT))
    assert "tests/test_project_files.py" in files
    parts = {part for name in files for part in name.split("/")}
    assert not parts & {".venv", "__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
