"""A baked app for the template's benchmarks: they drive the real engine code, not a copy of it."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
CACHE_DIR = TEMPLATE_DIR / ".cache" / "benchmarks"


def bake(answers: dict[str, str] | None = None) -> Path:
    """Bake the template (defaults unless ``answers``) under .cache/ and return the app's folder."""
    from cookiecutter.main import cookiecutter

    return Path(
        cookiecutter(
            str(TEMPLATE_DIR),
            no_input=True,
            extra_context=answers or {},
            output_dir=str(CACHE_DIR),
            overwrite_if_exists=True,
        )
    )


def package_name(app_dir: Path) -> str:
    replay = json.loads((app_dir / ".cookiecutter.json").read_text(encoding="utf-8"))
    return str(replay["cookiecutter"]["package_name"])


def engine_module(app_dir: Path, dotted: str) -> ModuleType:
    """Import ``<package>.engine.<dotted>`` from a baked app."""
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    return importlib.import_module(f"{package_name(app_dir)}.engine.{dotted}")


def app_benchmark(app_dir: Path, name: str) -> ModuleType:
    """Import the baked app's ``benchmarks/<name>.py``, as ``app_benchmarks.<name>``: the template's own
    package is also called ``benchmarks``."""
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    if "app_benchmarks" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "app_benchmarks",
            app_dir / "benchmarks" / "__init__.py",
            submodule_search_locations=[str(app_dir / "benchmarks")],
        )
        assert spec and spec.loader
        package = importlib.util.module_from_spec(spec)
        sys.modules["app_benchmarks"] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"app_benchmarks.{name}")
