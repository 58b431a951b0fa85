"""Azurite, Azure Storage's emulator, from npm: blob, queue and table services on 127.0.0.1.

The Functions host needs storage for every trigger but HTTP (``AzureWebJobsStorage``);
the app's own storage code (drain tokens, idempotency records) talks to the same account.
Tests start a private Azurite on free ports, in memory, and stop it afterwards.

Azurite is installed once per user from the npm registry, pinned, into
``$XDG_CACHE_HOME/azurite-<version>`` (``AZURITE_BIN`` names another executable).
It needs Node.js 20 or later.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

AZURITE_VERSION = "3.37.0"
LOOPBACK = "127.0.0.1"
SERVICES = ("blob", "queue", "table")
# Azurite's one account and its published development key (the same for every Azurite user).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at (https?://\S+)")


class AzuriteUnavailable(RuntimeError):
    """Azurite cannot be installed or started; the message says what to do."""


@dataclass
class Azurite:
    process: subprocess.Popen[str]
    endpoints: dict[str, str] = field(default_factory=dict)
    # What it printed: its start-up lines, then its access log, a line per request (tests count them).
    log: list[str] = field(default_factory=list)

    @property
    def connection_string(self) -> str:
        """What ``AzureWebJobsStorage`` holds locally; ``UseDevelopmentStorage=true`` means the same
        on Azurite's default ports (10000-10002)."""
        parts = ["DefaultEndpointsProtocol=http", f"AccountName={ACCOUNT_NAME}", f"AccountKey={ACCOUNT_KEY}"]
        parts += [f"{name.capitalize()}Endpoint={url}/{ACCOUNT_NAME}" for name, url in self.endpoints.items()]
        return ";".join(parts)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                # On SIGTERM Azurite waits for clients' keep-alive connections to close; its data is
                # in memory, so there is nothing to save by waiting longer.
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def azurite_executable() -> str:
    """The pinned Azurite's executable, installing it from npm on first use."""
    named = os.environ.get("AZURITE_BIN")
    if named:
        return named
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / f"azurite-{AZURITE_VERSION}"
    executable = cache / "node_modules" / ".bin" / "azurite"
    if executable.exists():
        return str(executable)
    npm = shutil.which("npm")
    if npm is None:
        raise AzuriteUnavailable("npm is not on PATH: install Node.js 20+ (Azurite comes from npm)")
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".install.lock"):  # test workers may install at once
        if not executable.exists():
            quiet = ["--no-save", "--no-package-lock", "--no-audit", "--no-fund", "--loglevel=error"]
            result = subprocess.run(  # noqa: S603 (npm from PATH, fixed arguments)
                [npm, "install", "--prefix", str(cache), *quiet, f"azurite@{AZURITE_VERSION}"],
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
            if result.returncode != 0 or not executable.exists():
                reason = result.stderr[-2000:]
                raise AzuriteUnavailable(f"npm install azurite@{AZURITE_VERSION} failed: {reason}")
    return str(executable)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl  # POSIX; imported here so the module loads anywhere

    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def start_azurite(
    *, port: int = 0, start_timeout_seconds: float = 60.0, https: tuple[Path, Path] | None = None
) -> Azurite:
    """Azurite's three services on 127.0.0.1, in memory. ``port`` 0 gives each a free port;
    another ``port`` puts blob, queue and table on it and the next two (10000: the defaults).

    ``https`` (a PEM certificate and its key) serves HTTPS and also accepts Entra ID bearer tokens,
    as storage does for a managed identity (Azurite checks their issuer, audience and expiry only).
    """
    args = [azurite_executable(), "--inMemoryPersistence", "--extentMemoryLimit", "256"]
    args.append("--skipApiVersionCheck")  # newer SDKs send API versions Azurite may not know yet
    if https:
        args += ["--oauth", "basic", "--cert", str(https[0]), "--key", str(https[1])]
    for offset, service in enumerate(SERVICES):
        args += [f"--{service}Host", LOOPBACK, f"--{service}Port", str(port + offset if port else 0)]
    process = subprocess.Popen(  # noqa: S603 (the pinned Azurite, fixed arguments)
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    azurite = Azurite(process)
    ready = threading.Event()
    output = azurite.log

    def read_output() -> None:
        for line in process.stdout or ():  # read to the end, so Azurite never blocks on a full pipe
            output.append(line)
            match = LISTENING.search(line)
            if match:
                azurite.endpoints[match.group(1).lower()] = match.group(2)
                if len(azurite.endpoints) == len(SERVICES):
                    ready.set()
        ready.set()

    threading.Thread(target=read_output, name="azurite-output", daemon=True).start()
    deadline = time.monotonic() + start_timeout_seconds
    while not ready.wait(0.1) and time.monotonic() < deadline:
        pass
    if len(azurite.endpoints) < len(SERVICES):
        azurite.stop()
        raise AzuriteUnavailable(f"Azurite did not start: {''.join(output)[-2000:]}")
    # Services in the order SERVICES names them, whatever order they reported in.
    azurite.endpoints = {name: azurite.endpoints[name] for name in SERVICES}
    return azurite
