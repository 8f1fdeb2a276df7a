"""Pinned versions: a venv per (package, version) in this user's cache, never the running Python.

``pinned("uv", "0.2.29")`` returns the path of that version's executable, installing it once
into its own venv, ``<cache>/clients/uv-0.2.29``, under a file lock (safe with pytest-xdist
workers and parallel tox envs); ``pinned("requests", "2.25.1")`` the venv's ``bin/python``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock

from .. import privdir
from ..errors import ClientUnavailableError, ConfigError
from .index import DEFAULT_INDEX, check_index_url
from .preset import version_key
from .registry import PRESETS

__all__ = [
    "cache_dir",
    "cache_entries",
    "clear_cache",
    "is_pinned",
    "pinned",
    "pinned_dir",
]

# pip's wordings when the index cannot be reached at all (as opposed to "no such version").
_OFFLINE = re.compile(
    r"Failed to establish a new connection|Temporary failure in name resolution|"
    r"Name or service not known|Network is unreachable|Connection refused|"
    r"ConnectTimeoutError|Read timed out|ProxyError|No route to host",
)


def cache_dir() -> Path:
    """Where pinned clients are cached (created on first use, this user's own).

    Tests run the executables found here, so a directory another user could write is refused
    (:class:`~pytest_tlsenv.privdir.UnsafeDirectoryError`, naming it and what is wrong):
    it must be owned by this user, not a symlink, without group/other write. When the home
    cache cannot be made or written, ``<tmp>/pytest-tlsenv-cache-<uid>`` is made exclusively.
    """
    explicit = os.environ.get("TLSENV_CACHE_DIR")
    what = "the client cache"
    if explicit:
        return privdir.ensure(Path(explicit), what=f"{what} ($TLSENV_CACHE_DIR)", forbid=0o022)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    base = Path(xdg) / "pytest-tlsenv"
    try:
        privdir.ensure(base, what=what, forbid=0o022)
        if not os.access(base, os.W_OK | os.X_OK):
            raise PermissionError(base)
    except privdir.UnsafeDirectoryError:
        raise
    except OSError:
        return privdir.ensure_in_tmp(
            f"pytest-tlsenv-cache-{os.geteuid()}",
            what=f"{what} (in tmp: {base} cannot be made or written)",
            forbid=0o022,
        )
    return base


# A pinned environment is complete once this file exists (written last, before the rename).
# A directory without it (an older cache layout: pip --target, whose scripts ran the host's
# interpreter and so the host's pip) is rebuilt.
_STAMP = "tlsenv-pinned.json"

# Where another user can run a venv's interpreter from: the one running us may live under a
# home directory nobody else can enter (pyenv under /root).
_SYSTEM_PYTHON = "/usr/bin/python3"


def _others_can_run(path: str) -> bool:
    """Whether a user other than the owner can reach and execute ``path`` (every ancestor
    searchable by others, the file executable by others)."""
    real = os.path.realpath(path)
    try:
        if not os.stat(real).st_mode & stat.S_IXOTH:
            return False
        parent = os.path.dirname(real)
        while True:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
            if parent == os.path.dirname(parent):
                return True
            parent = os.path.dirname(parent)
    except OSError:
        return False


def _venv_base() -> str:
    """The interpreter pinned environments are made from: the one running us when other users
    can run it too (its stdlib included), else the system's, else ours anyway."""
    mine = getattr(sys, "_base_executable", sys.executable)
    stdlib = os.path.join(sys.base_prefix, "lib")
    if _others_can_run(mine) and _others_can_run(stdlib):
        return mine
    if _others_can_run(_SYSTEM_PYTHON):
        return _SYSTEM_PYTHON
    return mine


def _install_environ() -> dict[str, str]:
    """The environment of the install: no PIP_* variable (they add certificates, find-links and
    indexes), no pip configuration file, no PYTHONPATH to shadow what gets installed."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PIP_") and k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE")
    }
    environ["PIP_CONFIG_FILE"] = os.devnull
    return environ


def _host_pip_can_target() -> bool:
    """Whether the running interpreter has a pip with ``--python`` (22.3+): then venvs are made
    without pip of their own (0.1 s instead of ~9 s for ensurepip)."""
    try:
        key = version_key(importlib.metadata.version("pip"))
    except importlib.metadata.PackageNotFoundError:
        return False
    return key is not None and key >= (22, 3)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _default_executable(package: str) -> str | None:
    """What a preset runs of ``package`` (``python`` for the libraries), if a preset says.
    (Registered presets only: a broken entry point must not break an install.)"""
    for preset in PRESETS.values():
        if preset.installable is not None and _normalized(preset.installable[0]) == _normalized(
            package
        ):
            return preset.installable[1]
    return None


def _pinned_entry(target: Path, package: str, executable: str | None) -> Path | None:
    """The program to run in a complete pinned environment, None when there is none yet."""
    if not (target / _STAMP).is_file():
        return None
    bindir = target / "bin"
    if executable is None:
        executable = _default_executable(package)
    if executable is None:
        executable = package if (bindir / package).is_file() else "python"
    exe = bindir / executable
    if not exe.exists():
        raise RuntimeError(f"the pinned environment {target} has no bin/{executable}")
    return exe


def _check(proc: subprocess.CompletedProcess[str], package: str, version: str) -> None:
    """Raise what the install's failure means: offline, unknown version, or anything else."""
    if proc.returncode == 0:
        return
    text = proc.stderr + proc.stdout
    tail = "\n".join(text.strip().splitlines()[-5:])
    if _OFFLINE.search(text):
        raise ClientUnavailableError(
            f"cannot install {package}=={version}: package index unreachable\n{tail}"
        )
    if "No matching distribution found" in text:
        known = re.search(r"\(from versions: ([^)]*)\)", text)
        versions = known.group(1).split(", ") if known else []
        newest = ", ".join(versions[-5:]) or "none"
        raise ConfigError(
            f"{package}=={version}: no such version on the package index, or none with a "
            f"wheel for this Python (only wheels are installed; {len(versions)} versions, "
            f"the newest: {newest})"
        )
    raise RuntimeError(f"pip could not install {package}=={version}:\n{tail}")


def _relocate(staging: Path, target: Path) -> None:
    """Point the environment's scripts at ``target``: pip writes the staging path into their
    shebangs, and the staging directory is renamed. Other users may read and run it all."""
    old, new = str(staging).encode(), str(target).encode()
    for path in [*(staging / "bin").iterdir(), staging / "pyvenv.cfg"]:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1 << 16:
            continue  # the interpreter links, and binaries such as uv (no staging path inside)
        data = path.read_bytes()
        if old in data:
            path.write_bytes(data.replace(old, new))
    for root, dirs, files in os.walk(staging):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            file = os.path.join(root, name)
            if not os.path.islink(file):
                mode = os.stat(file).st_mode
                os.chmod(file, 0o755 if mode & stat.S_IXUSR else 0o644)
    os.chmod(staging, 0o755)


_INSTALLED = """
import importlib.metadata as m, json, sys
print(json.dumps(sorted(d.metadata["Name"] + "==" + d.version for d in m.distributions())))
"""


def _build(staging: Path, target: Path, package: str, version: str, index: str) -> dict[str, Any]:
    """Make the venv in ``staging`` and install ``package==version`` with its dependencies,
    from ``index`` only."""
    base = _venv_base()
    environ = _install_environ()
    python = staging / "bin" / "python"
    host_pip = _host_pip_can_target()
    venv = [base, "-m", "venv", *(["--without-pip"] if host_pip else []), str(staging)]
    made = subprocess.run(venv, capture_output=True, text=True, env=environ, timeout=300)
    if made.returncode != 0:
        raise RuntimeError(f"{' '.join(venv)} failed:\n{made.stderr.strip()}")
    pip = [sys.executable, "-m", "pip", "--python", str(python)] if host_pip else [
        str(python), "-m", "pip"
    ]  # fmt: skip
    proc = subprocess.run(
        [
            *pip,
            "install",
            # No user or site configuration, no PIP_* variable: this index and nothing else
            # (a configuration's extra indexes or find-links would mix other files in).
            "--isolated",
            "--index-url",
            index,
            "--disable-pip-version-check",
            "--no-input",
            "--no-warn-script-location",
            # Wheels only: no package's build code runs on this machine.
            "--only-binary",
            ":all:",
            "--timeout",
            "30",
            "--retries",
            "1",
            f"{package}=={version}",
        ],
        capture_output=True,
        text=True,
        env=environ,
        timeout=900,
    )
    _check(proc, package, version)
    listed = subprocess.run(
        [str(python), "-I", "-c", _INSTALLED], capture_output=True, text=True, timeout=60
    )
    installed: list[str] = json.loads(listed.stdout) if listed.returncode == 0 else []
    found = {_normalized(n): v for n, _, v in (i.partition("==") for i in installed)}
    if found.get(_normalized(package)) != version:
        raise RuntimeError(
            f"the environment for {package}=={version} holds {package} "
            f"{found.get(_normalized(package), 'not at all')} ({listed.stderr.strip()})"
        )
    _relocate(staging, target)
    stamp = {"package": package, "version": version, "python": base, "installed": installed}
    if index != DEFAULT_INDEX:
        stamp["index_url"] = index
    return stamp


def pinned_dir(package: str, version: str, index_url: str | None = None) -> Path:
    """Where ``package==version`` from ``index_url`` lives in the cache (made or not):
    ``<cache>/clients/PACKAGE-VERSION`` for the default index, under ``index-HASH/`` for
    another (the same version number on two indexes need not be the same files)."""
    index = DEFAULT_INDEX if index_url is None else check_index_url(index_url)
    base = cache_dir() / "clients"
    if index != DEFAULT_INDEX:
        base = base / f"index-{hashlib.sha256(index.encode()).hexdigest()[:12]}"
    return base / f"{package}-{version}"


def is_pinned(package: str, version: str, index_url: str | None = None) -> bool:
    """Whether ``package==version`` (from ``index_url``) is complete in the cache."""
    return (pinned_dir(package, version, index_url) / _STAMP).is_file()


def _remove_leftovers(target: Path) -> None:
    """Remove what an install killed mid-way left beside ``target`` (its staging and stale
    directories). Called under ``target``'s lock: nobody else is building it."""
    for prefix in (f".{target.name}-", f".{target.name}-stale-"):
        for path in target.parent.glob(f"{_glob_escape(prefix)}*"):
            # mkdtemp's suffix: eight of [a-z0-9_]; nothing else here is ours to remove.
            if _TMP_SUFFIX.fullmatch(path.name[len(prefix) :]) and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)


_TMP_SUFFIX = re.compile(r"[a-z0-9_]{8}")


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def pinned(
    package: str, version: str, executable: str | None = None, *, index_url: str | None = None
) -> Path:
    """A program of ``package==version`` in its own environment, installed into the cache once.

    Each (package, version) gets a venv (``<cache>/clients/PACKAGE-VERSION``) holding that
    version and its dependencies, from wheels only, installed from the package index with no
    pip configuration or PIP_* variable of this machine. The answer is ``bin/EXECUTABLE`` when
    given; else what the package's preset runs (``bin/python`` for the libraries: requests,
    httpx, urllib3, aiohttp), else ``bin/PACKAGE`` when the package has it (pip, uv), else
    ``bin/python``, whose imports see the pinned version. Safe with pytest-xdist workers and
    parallel tox envs (a file lock; built aside, then renamed into place: an install killed
    mid-way leaves no half-written environment, and the next call removes its leftovers).
    ``index_url`` installs from another index (https, or http on loopback) and caches apart.

    Raises :class:`ClientUnavailableError` when the package index cannot be reached (tests
    skip on that, and only on that), :class:`ConfigError` for a version the index does not
    have; any other install failure is a plain RuntimeError.
    """
    index = DEFAULT_INDEX if index_url is None else check_index_url(index_url)
    target = pinned_dir(package, version, index)
    found = _pinned_entry(target, package, executable)
    if found is not None:
        return found
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=600):
        found = _pinned_entry(target, package, executable)
        if found is not None:
            return found
        _remove_leftovers(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        stale: Path | None = None
        try:
            stamp = _build(staging, target, package, version, index)
            (staging / _STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
            os.chmod(staging / _STAMP, 0o644)
            _pinned_entry(staging, package, executable)  # no such executable: nothing cached
            if target.exists() or target.is_symlink():
                stale = Path(tempfile.mkdtemp(prefix=f".{target.name}-stale-", dir=target.parent))
                target.rename(stale / "old")
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if stale is not None:
                shutil.rmtree(stale, ignore_errors=True)
    found = _pinned_entry(target, package, executable)
    assert found is not None  # the stamp was renamed into place with the rest
    return found


def cache_entries() -> list[tuple[Path, int]]:
    """Every pinned environment in the cache with its size in bytes, largest first."""
    base = cache_dir() / "clients"
    found: list[tuple[Path, int]] = []
    if not base.is_dir():
        return found
    for stamp in base.rglob(_STAMP):
        env = stamp.parent
        if env.parent != base and not env.parent.name.startswith("index-"):
            continue
        found.append((env, _size(env)))
    return sorted(found, key=lambda e: -e[1])


def _size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def clear_cache() -> tuple[int, int]:
    """Remove every pinned environment (each under its lock, so no install is cut short) and
    what killed installs left; (environments removed, bytes freed)."""
    base = cache_dir() / "clients"
    count = freed = 0
    if not base.is_dir():
        return count, freed
    for env, size in cache_entries():
        with FileLock(str(env) + ".lock", timeout=600):
            _remove_leftovers(env)
            shutil.rmtree(env, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(str(env) + ".lock")
        count, freed = count + 1, freed + size
    for leftover in sorted(base.rglob(".*")):
        if leftover.is_dir() and not leftover.is_symlink():
            freed += _size(leftover)
            shutil.rmtree(leftover, ignore_errors=True)
    for sub in base.glob("index-*"):
        with contextlib.suppress(OSError):
            for lock in sub.glob("*.lock"):
                lock.unlink()
            sub.rmdir()
    return count, freed
