"""The generated app's hash-locked requirements: one lock per offered Python, compiled from requirements.in by
the command in its header, installable with every hash checked on the platform Azure runs (manylinux x86_64),
in step with requirements.in, and the bake keeps its own version's lock as requirements.txt."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from .conftest import TEMPLATE_DIR, Baked, clean_env, load_hook, run
from .deploy_package import PLATFORMS

PROJECT = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
PYTHON_VERSIONS = load_hook("pre_gen_project").PYTHON_VERSIONS
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")
# The platform of Azure Functions' Linux workers, as deploy/publish_package.py tells pip (one list).
PLATFORM_ARGS = [arg for platform in PLATFORMS for arg in ("--platform", platform)]


def lock_of(python_version: str) -> Path:
    return PROJECT / "requirements" / f"py{python_version.replace('.', '')}.txt"


def pins(lock: Path) -> dict[str, tuple[str, int]]:
    """{normalized name: (version, number of hashes)} of a `uv pip compile --generate-hashes` output."""
    found: dict[str, tuple[str, int]] = {}
    name = ""
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            name = match.group(1).lower().replace("_", "-")
            found[name] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and name:
            version, hashes = found[name]
            found[name] = (version, hashes + 1)
        elif line and not line.startswith((" ", "#")):
            pytest.fail(f"{lock.name}: not a pinned, hashed requirement: {line!r}")
    return found


def top_level(python_version: str) -> list[Requirement]:
    requirements = []
    for line in (PROJECT / "requirements.in").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            environment = {"python_version": python_version, "platform_system": "Linux"}
            if requirement.marker is None or requirement.marker.evaluate(environment):
                requirements.append(requirement)
    return requirements


@pytest.mark.parametrize("python_version", PYTHON_VERSIONS)
def test_the_lock_pins_and_hashes_every_package_and_keeps_step_with_requirements_in(
    python_version: str,
) -> None:
    lock = lock_of(python_version)
    locked = pins(lock)
    assert len(locked) > 20  # transitive dependencies included
    assert [name for name, (_, hashes) in locked.items() if hashes == 0] == []
    out_of_step = []
    for requirement in top_level(python_version):
        name = requirement.name.lower().replace("_", "-")
        if name not in locked or Version(locked[name][0]) not in requirement.specifier:
            out_of_step.append(f"{requirement} (locked: {locked.get(name, ('none',))[0]})")
    assert out_of_step == [], f"recompile {lock.name} (its header has the command)"
    command = (
        f"uv pip compile requirements.in --generate-hashes --python-version {python_version} "
        "--python-platform x86_64-manylinux_2_28 -o requirements.txt"
    )
    assert command in lock.read_text(encoding="utf-8")


@pytest.mark.slow  # resolves every Python's lock from PyPI
def test_the_readme_lock_command_compiles_the_three_locks(tmp_path: Path) -> None:
    """The README's command (Contributing), as printed, in a copy of the app's requirements.in."""
    from .test_readme import command_after

    (tmp_path / "requirements").mkdir()
    shutil.copy(PROJECT / "requirements.in", tmp_path)
    # uv is the template's dev requirement (on PATH first); TLS as pip sees it here (a proxy's authority).
    result = run(
        ["bash", "-e", "-c", command_after("lock-command")], tmp_path, {**clean_env(), "UV_SYSTEM_CERTS": "1"}
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for python_version in PYTHON_VERSIONS:
        lock = tmp_path / "requirements" / lock_of(python_version).name
        locked = pins(lock)
        assert len(locked) > 20
        assert [name for name, (_, hashes) in locked.items() if hashes == 0] == []
        assert f"--python-version {python_version} " in lock.read_text(encoding="utf-8")


def test_each_python_gets_its_azure_functions_line() -> None:
    majors = {v: pins(lock_of(v))["azure-functions"][0].split(".")[0] for v in PYTHON_VERSIONS}
    assert majors == {v: "2" if v == "3.13" else "1" for v in PYTHON_VERSIONS}
    assert "azure-functions-worker" not in pins(lock_of("3.13"))


@pytest.mark.slow  # downloads every wheel of the lock
@pytest.mark.xdist_group("pypi")
@pytest.mark.parametrize("python_version", PYTHON_VERSIONS)
def test_the_lock_installs_with_hashes_checked_on_manylinux(python_version: str, tmp_path: Path) -> None:
    """What the deploy does for Premium and Consumption, and what a hash-checked install downloads: every
    package, dependencies included (a missing pin fails in --require-hashes mode), a wheel each."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "--only-binary=:all:",
            *PLATFORM_ARGS,
            "--implementation",
            "cp",
            "--python-version",
            python_version,
            "--dest",
            str(tmp_path),
            "-r",
            str(lock_of(python_version)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    wheels = sorted(p.name for p in tmp_path.glob("*.whl"))
    assert len(wheels) == len(pins(lock_of(python_version))), wheels


@pytest.mark.slow  # a download from PyPI
def test_a_tampered_hash_is_refused(tmp_path: Path) -> None:
    """The install above can fail: a locked pin with its hash changed."""
    six = pins(lock_of("3.13"))["six"][0]
    tampered = tmp_path / "requirements.txt"
    tampered.write_text(f"six=={six} --hash=sha256:{'0' * 64}\n", encoding="utf-8")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--quiet", "--require-hashes", "--no-deps"),
            *("--only-binary=:all:", *PLATFORM_ARGS, "--python-version", "3.13"),
            *("--dest", str(tmp_path / "d"), "-r", str(tampered)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stderr


def test_the_deploy_builds_with_the_lock_on_the_locks_platform(baked: Baked) -> None:
    # Premium and Consumption: the workflow and the azd hook build with deploy/publish_package.py.
    deploy = baked.path / ".github" / "workflows" / "deploy.yml"
    if not deploy.exists() or baked.combination.answer("hosting_plan") == "flex_consumption":
        return
    assert "python -m deploy.publish_package" in deploy.read_text(encoding="utf-8")
    source = (baked.path / "deploy" / "publish_package.py").read_text(encoding="utf-8")
    assert '"--require-hashes"' in source
    assert "manylinux_2_28_x86_64" in PLATFORMS


def test_the_bake_keeps_its_pythons_lock(baked: Baked) -> None:
    python_version = baked.combination.answer("python_version")
    kept = (baked.path / "requirements.txt").read_text(encoding="utf-8")
    assert kept == lock_of(python_version).read_text(encoding="utf-8")
    assert not (baked.path / "requirements").exists()
    assert (baked.path / "requirements.in").read_text(encoding="utf-8") == (
        PROJECT / "requirements.in"
    ).read_text(encoding="utf-8")
