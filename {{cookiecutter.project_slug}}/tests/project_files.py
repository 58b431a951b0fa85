"""The files of a tree that git keeps: never a venv, a cache, a build output or ``.git/``.

Every test and tool that walks the project goes through ``kept_files``. In a git repository git answers
(``git ls-files --cached --others --exclude-standard``: tracked files, and new ones not ignored); a tree
git does not know (a freshly generated app) is walked with its ``.gitignore`` files read as git reads
them (pathspec's ``GitIgnoreSpec``; a deeper ``.gitignore`` overrides a higher one), and an ignored folder
is never entered. Plain Python with no template markup: the template's own tests use this file too.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pathspec

GITIGNORE = ".gitignore"


def kept_files(root: Path) -> list[Path]:
    """Every file under ``root`` that git keeps or would keep, sorted."""
    root = root.resolve()
    listed = git_listing(root)
    files = listed if listed else list(gitignore_walk(root))
    return sorted(files)


def git_listing(root: Path) -> list[Path] | None:
    """What git lists under ``root``; None where git is missing, ``root`` is in no repository, or git
    ignores all of it (a tree that git does not keep is not git's to judge)."""
    try:
        result = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607
            cwd=root,
            capture_output=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    names = [name for name in result.stdout.decode("utf-8", "surrogateescape").split("\0") if name]
    # A file deleted but not yet staged is still listed; a submodule is listed as its folder.
    files = [root / name for name in names if (root / name).is_file()]
    return files or None


def gitignore_walk(root: Path) -> list[Path]:
    """The files git would keep if ``root`` were a repository of its own."""
    specs: dict[Path, pathspec.GitIgnoreSpec] = {}
    files: list[Path] = []
    for directory, subdirectories, names in os.walk(root):
        here = Path(directory)
        ignore_file = here / GITIGNORE
        if ignore_file.is_file():
            lines = ignore_file.read_text(encoding="utf-8", errors="replace").splitlines()
            specs[here] = pathspec.GitIgnoreSpec.from_lines(lines)
        # Sorted, and pruned in place: os.walk does not enter what is removed here.
        subdirectories[:] = sorted(
            name for name in subdirectories if name != ".git" and not ignored(here / name, True, specs)
        )
        files += [here / name for name in names if not ignored(here / name, False, specs)]
    return files


def ignored(path: Path, is_dir: bool, specs: dict[Path, pathspec.GitIgnoreSpec]) -> bool:
    """Whether the ``.gitignore`` files above ``path`` ignore it: the deepest one with a matching
    pattern decides, and within a file the last matching pattern (``!`` re-includes)."""
    decision = False
    for base in sorted((b for b in specs if b in path.parents), key=lambda b: len(b.parts)):
        relative = path.relative_to(base).as_posix() + ("/" if is_dir else "")
        result = specs[base].check_file(relative)
        if result.include is not None:
            decision = bool(result.include)
    return decision
