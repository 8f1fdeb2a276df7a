"""Clients under test: pinned versions installed into a cache, never into the running Python.

``pinned("uv", "0.2.29")`` returns the path of that version's executable, installing it once
with ``pip install --target`` into ``<cache>/clients/uv-0.2.29`` under a file lock (safe with
pytest-xdist workers and parallel tox envs). The cache is ``$TLSENV_CACHE_DIR``, else
``$XDG_CACHE_HOME/pytest-tlsenv``, else ``~/.cache/pytest-tlsenv``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from filelock import FileLock

from .errors import ClientUnavailableError

__all__ = ["cache_dir", "pinned"]

# pip's wordings when the index cannot be reached at all (as opposed to "no such version").
_OFFLINE = re.compile(
    r"Failed to establish a new connection|Temporary failure in name resolution|"
    r"Name or service not known|Network is unreachable|Connection refused|"
    r"ConnectTimeoutError|Read timed out|ProxyError|No route to host",
)


def cache_dir() -> Path:
    """Where pinned clients are cached (created on first use, writable by this user)."""
    explicit = os.environ.get("TLSENV_CACHE_DIR")
    if explicit:
        base = Path(explicit)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = Path(xdg) / "pytest-tlsenv"
    try:
        base.mkdir(parents=True, exist_ok=True)
        if not os.access(base, os.W_OK | os.X_OK):
            raise PermissionError(base)
    except OSError:
        base = Path(tempfile.gettempdir()) / f"pytest-tlsenv-cache-{os.geteuid()}"
        base.mkdir(mode=0o700, exist_ok=True)
    return base


def pinned(package: str, version: str, executable: str | None = None) -> Path:
    """The executable of ``package==version``, installed into the cache if needed.

    Raises :class:`ClientUnavailableError` when the package index cannot be reached (tests
    skip on that, and only on that); any other install failure is a plain RuntimeError.
    """
    executable = executable or package
    target = cache_dir() / "clients" / f"{package}-{version}"
    exe = target / "bin" / executable
    if exe.exists():
        return exe
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=600):
        if exe.exists():
            return exe
        staging = Path(tempfile.mkdtemp(prefix=f".{package}-{version}-", dir=target.parent))
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--no-deps",
                    "--timeout",
                    "30",
                    "--retries",
                    "1",
                    "--target",
                    str(staging),
                    f"{package}=={version}",
                ],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if proc.returncode != 0:
                text = proc.stderr + proc.stdout
                tail = "\n".join(text.strip().splitlines()[-5:])
                if _OFFLINE.search(text):
                    raise ClientUnavailableError(
                        f"cannot install {package}=={version}: package index unreachable\n{tail}"
                    )
                raise RuntimeError(f"pip could not install {package}=={version}:\n{tail}")
            if not (staging / "bin" / executable).exists():
                raise RuntimeError(
                    f"{package}=={version} installed no bin/{executable} in {staging}"
                )
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return exe
