"""The ``go`` preset's client: a net/http GET shipped as Go source, compiled once per Go version.

:func:`go_client` returns the path of ``tlsenv-go-get`` built by the ``go`` on PATH from
``tlsenv_go_get.go`` (beside this module), into ``<cache>/go/go<VERSION>-<source hash>/``.
It builds offline and hermetically (``GOTOOLCHAIN=local CGO_ENABLED=0 GOPROXY=off``, no Go
configuration of the host: ``GOENV=off``, no ``GOFLAGS``), under a file lock, aside and then
renamed into place, so pytest-xdist workers and parallel sessions build it once between them.
Every build is appended to ``<cache>/go/builds.jsonl`` (:func:`go_builds`): that is how a test
sees "compiled once per version" without timing anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

from filelock import FileLock

from ..errors import ClientUnavailableError
from ..versions import version_of
from .pinning import cache_dir

__all__ = ["GO_SOURCE", "go_builds", "go_client", "go_version"]

#: The client's source, shipped in the package.
GO_SOURCE = Path(__file__).with_name("tlsenv_go_get.go")

_BINARY = "tlsenv-go-get"
_LOG = "builds.jsonl"


def go_version() -> str | None:
    """The version of the ``go`` on PATH (``"1.19.8"``), None when there is none, "unknown"
    when it does not say."""
    if shutil.which("go") is None:
        return None
    m = re.search(r"go version go(\S+)", version_of("go") or "")
    return m.group(1) if m else "unknown"


@cache
def _source_hash() -> str:
    return hashlib.sha256(GO_SOURCE.read_bytes()).hexdigest()[:12]


def _go_dir() -> Path:
    return cache_dir() / "go"


def go_builds() -> list[dict[str, Any]]:
    """Every build of the client this cache has seen, oldest first: ``{"go": VERSION,
    "source": HASH, "pid": PID, "seconds": S}`` each."""
    try:
        text = (_go_dir() / _LOG).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _build_environ(home: Path, gocache: Path) -> dict[str, str]:
    """Only what the build needs: none of the host's Go settings (GOFLAGS, GOPROXY, a go.env
    file), no network (GOPROXY=off: the client imports the standard library only), no C
    toolchain (CGO_ENABLED=0), never a downloaded toolchain (GOTOOLCHAIN=local)."""
    go = shutil.which("go")
    assert go is not None
    path = os.pathsep.join(dict.fromkeys([os.path.dirname(go), "/usr/bin", "/bin"]))
    return {
        "PATH": path,
        "HOME": str(home),
        "LC_ALL": "C",
        "GOCACHE": str(gocache),
        "GOPATH": str(home / "gopath"),
        "GOENV": "off",
        "GOFLAGS": "",
        "GOTOOLCHAIN": "local",
        "GOTELEMETRY": "off",
        "GOWORK": "off",
        "GOPROXY": "off",
        "GOSUMDB": "off",
        "CGO_ENABLED": "0",
    }


def go_client() -> Path:
    """The compiled client for the ``go`` on PATH, built into the cache on first use.

    Raises :class:`ClientUnavailableError` without go, RuntimeError when go cannot build it
    (with go's own words).
    """
    version = go_version()
    if version is None:
        raise ClientUnavailableError("client 'go' is not installed on this machine (no go on PATH)")
    target = _go_dir() / f"go{version}-{_source_hash()}"
    binary = target / _BINARY
    if binary.is_file():
        return binary
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=900):
        if binary.is_file():  # another worker built it while we waited
            return binary
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            source = staging / "main.go"
            shutil.copyfile(GO_SOURCE, source)
            start = time.perf_counter()
            proc = subprocess.run(
                ["go", "build", "-o", str(staging / _BINARY), str(source)],
                cwd=staging,
                env=_build_environ(staging, target.parent / "gocache"),
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=900,
                check=False,
            )
            seconds = round(time.perf_counter() - start, 3)
            if proc.returncode != 0:
                tail = "\n".join((proc.stderr + proc.stdout).strip().splitlines()[-10:])
                raise RuntimeError(f"go {version} could not build {GO_SOURCE.name}:\n{tail}")
            for leftover in ("main.go", "gopath"):
                path = staging / leftover
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                elif path.exists():
                    path.unlink()
            # Others may run it (a test's user="nobody"), nobody may change it.
            os.chmod(staging / _BINARY, 0o755)
            os.chmod(staging, 0o755)
            staging.rename(target)
            entry: dict[str, Any] = {"go": version, "source": _source_hash(), "pid": os.getpid()}
            entry["seconds"] = seconds
            with open(target.parent / _LOG, "a") as log:
                log.write(json.dumps(entry) + "\n")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return binary
