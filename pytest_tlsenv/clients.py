"""Clients under test: presets for known clients, and pinned versions in a cache.

Presets (:data:`PRESETS`): how to detect a client and its version, how to point it at a
scenario's origin, store and proxy (which trust variables it honours, which explicit flags it
needs to be hermetic), as a ready argv (CLIs) or callable (in-process libraries).
``tlsenv.client("curl")`` uses them. Register your own with :func:`register` (e.g. from a
conftest or a plugin's ``pytest_configure``).

Pinned versions: never installed into the running Python.

``pinned("uv", "0.2.29")`` returns the path of that version's executable, installing it once
into its own venv, ``<cache>/clients/uv-0.2.29``, under a file lock (safe with pytest-xdist
workers and parallel tox envs); ``pinned("requests", "2.25.1")`` the venv's ``bin/python``.
Every installable preset takes a version (``tlsenv.client("pip", version="24.0")``): a CLI
runs from its venv, a library preset runs out of process through the venv's interpreter, the
same request as in-process. The cache is ``$TLSENV_CACHE_DIR``, else
``$XDG_CACHE_HOME/pytest-tlsenv``, else ``~/.cache/pytest-tlsenv``; it must be this user's own
(:func:`cache_dir`).
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import os
import platform
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from . import privdir
from .env import TRUST_MODES
from .errors import ClientUnavailableError, ConfigError, NotApplicableError
from .versions import version_of

if TYPE_CHECKING:
    from typing import TypeAlias

    from ._types import EnvView
    from .outcome import Outcome, Verdict

    # A TLSEnv as seen from below it in the layers (_types.py).
    TLSEnv: TypeAlias = EnvView[Outcome, Verdict]

__all__ = [
    "PRESETS",
    "Client",
    "Preset",
    "Wiring",
    "applicable",
    "cache_dir",
    "get_preset",
    "library_of",
    "make_client",
    "openssl_defaults",
    "pinned",
    "presets",
    "register",
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
        key = _version_key(importlib.metadata.version("pip"))
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


def _build(staging: Path, target: Path, package: str, version: str) -> dict[str, Any]:
    """Make the venv in ``staging`` and install ``package==version`` with its dependencies."""
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
    return {"package": package, "version": version, "python": base, "installed": installed}


def pinned(package: str, version: str, executable: str | None = None) -> Path:
    """A program of ``package==version`` in its own environment, installed into the cache once.

    Each (package, version) gets a venv (``<cache>/clients/PACKAGE-VERSION``) holding that
    version and its dependencies, from wheels only, installed from the package index with no
    pip configuration or PIP_* variable of this machine. The answer is ``bin/EXECUTABLE`` when
    given; else what the package's preset runs (``bin/python`` for the libraries: requests,
    httpx, urllib3, aiohttp), else ``bin/PACKAGE`` when the package has it (pip, uv), else
    ``bin/python``, whose imports see the pinned version. Safe with pytest-xdist workers and
    parallel tox envs (a file lock; built aside, then renamed into place).

    Raises :class:`ClientUnavailableError` when the package index cannot be reached (tests
    skip on that, and only on that), :class:`ConfigError` for a version the index does not
    have; any other install failure is a plain RuntimeError.
    """
    target = cache_dir() / "clients" / f"{package}-{version}"
    found = _pinned_entry(target, package, executable)
    if found is not None:
        return found
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=600):
        found = _pinned_entry(target, package, executable)
        if found is not None:
            return found
        staging = Path(tempfile.mkdtemp(prefix=f".{package}-{version}-", dir=target.parent))
        stale: Path | None = None
        try:
            stamp = _build(staging, target, package, version)
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


# -- presets: how to point a known client at a scenario ---------------------------------------


@dataclass(frozen=True)
class Client:
    """A client made ready for one TLSEnv: an argv (a CLI) or a callable (in-process).

    ``env`` holds the variables of its trust mode (``trust``): in ``env`` mode the ones users
    of that client set (REQUESTS_CA_BUNDLE for requests, which ignores SSL_CERT_FILE), the
    other trust variables unset. :meth:`run` runs it through ``tlsenv.run``/``tlsenv.call`` in
    that mode. ``label`` names the variant: ``curl`` (env), ``curl (system)``,
    ``curl --cacert`` (flags).
    """

    preset: str
    tlsenv: TLSEnv
    argv: tuple[str, ...] | None = None
    fn: Callable[[], Any] | None = None
    env: Mapping[str, str | None] = field(default_factory=dict)
    version: str | None = None
    trust: str = "env"
    label: str = ""

    def run(self, *, timeout: float | None = None) -> Outcome:
        """Run the client in its TLSEnv (in its trust mode) and return the Outcome."""
        if self.argv is not None:
            return self.tlsenv.run(list(self.argv), env=self.env, timeout=timeout, trust=self.trust)
        assert self.fn is not None
        return self.tlsenv.call(self.fn, env=self.env, timeout=timeout, trust=self.trust)


#: Where a trust variable or flag gets its value: the store variable it copies
#: (SSL_CERT_FILE or SSL_CERT_DIR, as the scenario has them, env faults included), or
#: EITHER: the layout's bundle when it has one, else its cert dir (for clients with one
#: variable that takes a file or a hashed directory, such as REQUESTS_CA_BUNDLE).
FILE = "SSL_CERT_FILE"
DIR = "SSL_CERT_DIR"
EITHER = "SSL_CERT_FILE|SSL_CERT_DIR"

#: What OpenSSL-based clients read, each variable its own source.
OPENSSL_ENV: Mapping[str, str] = {FILE: FILE, DIR: DIR}

#: Every variable a trust mode sets or unsets for a preset (beside the ones it sets, these are
#: unset: a requests user sets REQUESTS_CA_BUNDLE, not SSL_CERT_FILE as well).
WIRED_VARIABLES = (
    FILE,
    DIR,
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
)


@dataclass(frozen=True)
class Wiring:
    """How one preset gets a scenario's store in one trust mode.

    ``env``: the variables to set (None unsets); ``values``: flag or variable -> the path it
    takes (what the scenario's SSL_CERT_FILE/SSL_CERT_DIR name, faults included);
    ``sources``: the store variables the client's trust comes from (for applicability).
    """

    trust: str
    env: Mapping[str, str | None]
    values: Mapping[str, str]
    sources: frozenset[str]

    def flag_words(self, *, joined: bool = False) -> list[str]:
        """The flags mode's options as argv words (``--cacert X`` or ``--flag=X``); none in
        the other modes."""
        words: list[str] = []
        for flag, path in self.values.items() if self.trust == "flags" else ():
            words += [f"{flag}={path}"] if joined else [flag, path]
        return words


@dataclass(frozen=True)
class Preset:
    """How to detect a client, point it at a scenario's origin/store/proxy, and run it.

    ``honours`` lists the trust variables the client reads (highest first), as measured here;
    ``honours_before`` the older versions' lists, as ``(first version that differs, list)``
    pairs, oldest first (see :meth:`honours_for`). ``build(tlsenv, version, wiring)``
    returns a ready :class:`Client`; :meth:`wiring` decides, per trust mode, which variables
    (``env_vars``) or options (``flags``) the client gets, or which compiled-in paths it reads
    (``system``), and whether the scenario applies at all.
    """

    name: str
    description: str
    honours: tuple[str, ...]
    detect: Callable[[], str | None]
    #: ``build(tlsenv, version, wiring)`` (or ``build(tlsenv, version)`` for a preset that
    #: knows nothing of trust modes: it gets the env mode's variables).
    build: Callable[..., Client]
    in_process: bool = False
    # (PyPI package, executable) for pinned(); "python" for a library run out of process.
    installable: tuple[str, str] | None = None
    honours_before: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: ``trust="env"``: variable -> source (:data:`FILE`, :data:`DIR` or :data:`EITHER`);
    #: the variables users of this client set. Empty: the client reads none (wget).
    env_vars: Mapping[str, str] = field(default_factory=lambda: dict(OPENSSL_ENV))
    #: ``trust="flags"``: option -> source, in argv order. Empty: no such mode.
    flags: Mapping[str, str] = field(default_factory=dict)
    #: ``trust="system"``: the compiled-in trust paths the client reads with no variable set
    #: (absolute; a function, so it can ask the host's OpenSSL). None: it never reads the
    #: system store (certifi, node's bundled store).
    system: Callable[[], tuple[str, ...]] | None = None

    def honours_for(self, version: str | None) -> tuple[str, ...]:
        """What version ``version`` honours: the list of the first ``honours_before`` pair
        whose version is above it, else :attr:`honours` (also for an unknown version)."""
        key = _version_key(version)
        if key is not None:
            for since, honours in self.honours_before:  # oldest first
                if key < (_version_key(since) or ()):
                    return honours
        return self.honours

    def label(self, trust: str) -> str:
        """The variant's name in a trust mode: ``curl``, ``curl (system)``, ``curl --cacert``."""
        if trust == "flags" and self.flags:
            return f"{self.name} {next(iter(self.flags))}"
        return self.name if trust == "env" else f"{self.name} ({trust})"

    def wiring(self, env: TLSEnv, trust: str) -> Wiring:
        """How this client gets ``env``'s store in mode ``trust``, or NotApplicableError."""
        unset: dict[str, str | None] = dict.fromkeys(WIRED_VARIABLES)
        if trust == "system":
            return Wiring(trust, unset, {}, self._system_sources(env))
        table = self.env_vars if trust == "env" else self.flags
        if not table:
            how = "reads no trust variable" if trust == "env" else "has no trust option"
            other = "flags" if trust == "env" and self.flags else "system"
            raise NotApplicableError(
                f"{self.name} {how}: trust={trust!r} cannot apply (use trust={other!r})"
            )
        present = env.store.env
        healthy = env.store.layout.variables(env.store.root)
        values: dict[str, str] = {}
        sources: set[str] = set()
        for name, source in table.items():
            if source == EITHER:
                source = FILE if FILE in healthy else DIR
            value = present.get(source)
            if value is not None:
                values[name] = value
                sources.add(source)
        if not values:
            raise NotApplicableError(
                f"layout {env.store.layout.name!r} has nothing {self.name}'s "
                f"{', '.join(table)} can name (it has {', '.join(present) or 'no variable'})"
            )
        wired = {**unset, **values} if trust == "env" else unset
        return Wiring(trust, wired, values, frozenset(sources))

    def _system_sources(self, env: TLSEnv) -> frozenset[str]:
        layout = env.store.layout
        if self.system is None:
            raise NotApplicableError(
                f"{self.name} never reads the system trust store (its own bundle): "
                "trust='system' cannot apply"
            )
        read = set(self.system())
        sources = set()
        if any(f"/{rel}" in read for rel in (layout.bundle, layout.cert_file) if rel):
            sources.add(FILE)
        if layout.cert_dir and f"/{layout.cert_dir}" in read:
            sources.add(DIR)
        if not sources:
            where = ", ".join(f"/{p}" for p in (layout.bundle, layout.cert_dir) if p)
            raise NotApplicableError(
                f"{self.name} was built to read {', '.join(sorted(read))}; layout "
                f"{layout.name!r} keeps its trust at {where}: trust='system' cannot apply"
            )
        return frozenset(sources)


def applicable(env: TLSEnv, wiring: Wiring, client: str) -> None:
    """Raise NotApplicableError when no fault of ``env`` reaches a source ``wiring`` reads.

    A scenario without faults (server, proxy) applies to every client; with faults, at least
    one of them must break something this client, in this mode, trusts.
    """
    if not env.applied:
        return
    variables = wiring.trust != "system"
    if any(a.reaches_any(set(wiring.sources), variables=variables) for a in env.applied):
        return
    faults = ", ".join(a.fault for a in env.applied)
    reads = " and ".join(sorted(wiring.sources)) or "nothing of the store"
    raise NotApplicableError(
        f"{faults} cannot reach {client} with trust={wiring.trust!r}: it reads only what "
        f"{reads} names there"
        + ("" if variables else " by its compiled-in paths, and no variable is set")
    )


@cache
def openssl_defaults() -> tuple[str, ...]:
    """The host OpenSSL's compiled-in default file and dir, resolved (Debian: /usr/lib/ssl
    links to /etc/ssl/certs/ca-certificates.crt and /etc/ssl/certs)."""
    import ssl

    paths = ssl.get_default_verify_paths()
    return tuple(os.path.realpath(p) for p in (paths.openssl_cafile, paths.openssl_capath) if p)


#: GnuTLS (wget) and libcurl-gnutls (git) on Debian: the system bundle and the hashed dir.
_GNUTLS_DEFAULTS = ("/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs")

#: openssl-probe's candidates (rustls-native-certs: uv with native roots).
_OPENSSL_PROBE = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
    "/etc/ssl/certs",
    "/etc/pki/tls/certs",
)


def _version_key(version: str | None) -> tuple[int, ...] | None:
    """``"0.2.28"`` -> ``(0, 2, 28)``; None when it does not start with a number."""
    m = re.match(r"\d+(?:\.\d+)*", version or "")
    return tuple(int(x) for x in m.group(0).split(".")) if m else None


def _version_of(argv: Sequence[str], pattern: str) -> Callable[[], str | None]:
    """A preset's detector: None when ``argv[0]`` is not installed, else the ``pattern``
    group in its version line, or "unknown" (installed, but its version cannot be read)."""

    def detect() -> str | None:
        if shutil.which(argv[0]) is None:
            return None
        m = re.search(pattern, version_of(argv[0], *argv[1:]) or "")
        return m.group(1) if m else "unknown"

    return detect


def _module_version(module: str) -> Callable[[], str | None]:
    def detect() -> str | None:
        try:
            return importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            return None

    return detect


def _get(url: str, fetch: Callable[..., bytes], *args: Any) -> Callable[[], bytes]:
    return lambda: fetch(url, *args)


def _context(cafile: str | None = None, capath: str | None = None) -> Any:
    """``ssl.create_default_context()``, or with explicit locations (the flags mode)."""
    import ssl

    if cafile is None and capath is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=cafile, capath=capath)


def _urllib_fetch(url: str, cafile: str | None = None, capath: str | None = None) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, context=_context(cafile, capath), timeout=10) as r:
        data: bytes = r.read()
        return data


def _requests_fetch(url: str, verify: str | None = None) -> bytes:
    import requests

    with requests.Session() as s:
        r = s.get(url, timeout=10, verify=True if verify is None else verify)
        r.raise_for_status()
        return r.content


def _httpx_fetch(url: str, cafile: str | None = None, capath: str | None = None) -> bytes:
    import httpx

    explicit = {"verify": _context(cafile, capath)} if cafile or capath else {}
    # trust_env: SSL_CERT_FILE/SSL_CERT_DIR, proxies.
    with httpx.Client(timeout=10, **explicit) as c:
        r = c.get(url)
        r.raise_for_status()
        return r.content


def _urllib3_fetch(url: str, cafile: str | None = None, capath: str | None = None) -> bytes:
    import urllib3

    proxy = os.environ.get("HTTPS_PROXY")
    explicit: dict[str, Any] = {}
    if cafile is not None:
        explicit["ca_certs"] = cafile
    if capath is not None:
        explicit["ca_cert_dir"] = capath
    # urllib3 reads no proxy variable itself; the preset honours the scenario's proxy.
    with (
        urllib3.ProxyManager(proxy, **explicit) if proxy else urllib3.PoolManager(**explicit)
    ) as pool:
        r = pool.request("GET", url, timeout=10, retries=False)
        if r.status >= 400:
            raise urllib3.exceptions.HTTPError(f"HTTP {r.status}")
        return r.data


def _aiohttp_fetch(url: str, cafile: str | None = None, capath: str | None = None) -> bytes:
    import asyncio

    import aiohttp

    # aiohttp builds its default SSL context once, at import, from the environment of that
    # moment: later SSL_CERT_FILE changes are invisible to it. An explicit context per request
    # measures what a fresh process would do.
    ctx = _context(cafile, capath)

    async def go() -> bytes:
        async with (
            aiohttp.ClientSession(trust_env=True) as s,
            s.get(url, ssl=ctx, timeout=aiohttp.ClientTimeout(total=10)) as r,
        ):
            r.raise_for_status()
            body: bytes = await r.read()
            return body

    return asyncio.run(go())


# The in-process fetchers, by preset: a pinned library preset runs the same function's source
# in the pinned environment's interpreter.
_FETCHERS: dict[str, Callable[[str], bytes]] = {
    "requests": _requests_fetch,
    "httpx": _httpx_fetch,
    "urllib3": _urllib3_fetch,
    "aiohttp": _aiohttp_fetch,
}

_FETCH_MARKER = "# pytest-tlsenv: pinned library fetch"

# Run as ``python -c SCRIPT LIBRARY URL``. First line on stderr: the library's own version, as
# the interpreter imported it (the evidence that the pin is what ran). Then the fetch; the
# body goes to stdout. A refusal or network failure is one line and exit 1, worded as the
# in-process verdicts decide (the exception chain); anything else escapes as a traceback.
_FETCH_MAIN = """
def _tlsenv_main():
    import importlib, socket, ssl, sys, urllib.error

    library, url = sys.argv[1], sys.argv[2]
    module = importlib.import_module(library)
    where = os.path.dirname(module.__file__ or "?")
    version = getattr(module, "__version__", "?")
    print(f"{library} {version} from {where} (python {sys.version.split()[0]})",
          file=sys.stderr, flush=True)
    try:
        body = _tlsenv_fetch(url)
    except Exception as exc:
        seen, todo, chain = set(), [exc], []
        while todo:
            e = todo.pop()
            if id(e) in seen:
                continue
            seen.add(id(e))
            chain.append(e)
            wrapped = [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
            todo.extend(w for w in wrapped if isinstance(w, BaseException))
        for e in chain:
            if isinstance(e, ssl.SSLCertVerificationError) or (
                isinstance(e, ssl.SSLError) and e.reason == "CERTIFICATE_VERIFY_FAILED"
            ):
                print(f"{type(e).__name__}: {e}", file=sys.stderr)
                sys.exit(1)
        network = (ssl.SSLError, ConnectionError, TimeoutError, socket.gaierror,
                   socket.herror, urllib.error.URLError, EOFError)
        modules = ("requests", "urllib3", "httpx", "httpcore", "aiohttp", "http.client")
        if isinstance(exc, network) or any(
            (c.__module__ or "").split(".")[0] in modules or c.__module__ in modules
            for c in type(exc).__mro__ if c.__module__ != "builtins"
        ):
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
            sys.exit(1)
        raise
    sys.stdout.buffer.write(body)


_tlsenv_main()
"""


def _fetch_script(fetch: Callable[[str], bytes]) -> str:
    """Source of a standalone script doing what ``fetch`` does (its own source, verbatim)."""
    return "\n".join(
        [
            _FETCH_MARKER,
            "import os",
            "from typing import Any",
            inspect.getsource(_context),  # the fetchers' shared helper
            inspect.getsource(fetch),
            f"_tlsenv_fetch = {fetch.__name__}",
            _FETCH_MAIN,
        ]
    )


def library_of(argv: Sequence[str]) -> str | None:
    """The library a pinned library preset's command runs (``requests``), else None."""
    if len(argv) >= 4 and argv[1] == "-c" and str(argv[2]).startswith(_FETCH_MARKER):
        return str(argv[3])
    return None


_NODE_GET = r"""
const https = require('https'), http = require('http'), tls = require('tls');
const target = new URL(process.argv[1]);
const proxy = process.env.HTTPS_PROXY ? new URL(process.env.HTTPS_PROXY) : null;
function get(socket) {
  const opts = {host: target.hostname, port: target.port, path: target.pathname,
                servername: target.hostname, timeout: 10000};
  if (socket) opts.createConnection = () => tls.connect({socket, servername: target.hostname});
  https.get(opts, res => {
    res.on('data', d => process.stdout.write(d));
    res.on('end', () => process.exit(res.statusCode < 400 ? 0 : 22));
  }).on('error', e => { console.error(e.code || '', e.message); process.exit(1); });
}
if (!proxy) { get(null); } else {
  // node 20 ignores HTTPS_PROXY: perform the CONNECT ourselves so proxy scenarios mean something.
  const cred = decodeURIComponent(proxy.username) + ':' + decodeURIComponent(proxy.password);
  const auth = proxy.username ?
    {'Proxy-Authorization': 'Basic ' + Buffer.from(cred).toString('base64')} : {};
  http.request({host: proxy.hostname, port: proxy.port, method: 'CONNECT',
                path: `${target.hostname}:${target.port}`, headers: auth})
    .on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        console.error('proxy CONNECT', res.statusCode); process.exit(1);
      }
      get(socket);
    }).on('error', e => { console.error(e.code || '', e.message); process.exit(1); }).end();
}
"""

# In-process "flags": the explicit arguments a program passes (cafile=/capath= to
# ssl.create_default_context, verify= to requests...), named like options in labels.
_CA_ARGS: Mapping[str, str] = {"cafile=": FILE, "capath=": DIR}


def _ca_args(w: Wiring) -> tuple[str | None, str | None]:
    if w.trust != "flags":
        return None, None
    return w.values.get("cafile=", w.values.get("ca_certs=")), w.values.get(
        "capath=", w.values.get("ca_cert_dir=")
    )


def _python_ssl(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    fn = _get(env.origin.url, _urllib_fetch, *_ca_args(w))
    return Client("python-ssl", env, fn=fn, version=v)


def _requests(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    # requests ignores SSL_CERT_FILE; REQUESTS_CA_BUNDLE (env) or verify= (flags) may name a
    # bundle or a hashed dir.
    verify = w.values.get("verify=") if w.trust == "flags" else None
    fn = _get(env.origin.url, _requests_fetch, verify)
    return Client("requests", env, fn=fn, version=v)


def _httpx(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    return Client("httpx", env, fn=_get(env.origin.url, _httpx_fetch, *_ca_args(w)), version=v)


def _urllib3(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    fn = _get(env.origin.url, _urllib3_fetch, *_ca_args(w))
    return Client("urllib3", env, fn=fn, version=v)


def _aiohttp(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    fn = _get(env.origin.url, _aiohttp_fetch, *_ca_args(w))
    return Client("aiohttp", env, fn=fn, version=v)


def _curl(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    # env mode is plain `curl URL`: Debian's curl then uses only one of its variables
    # (SSL_CERT_DIR before SSL_CERT_FILE) plus its compiled-in bundle; that is shown, not hidden.
    argv = ["curl", "-fsS", "--max-time", "10", *w.flag_words()]
    return Client("curl", env, argv=(*argv, env.origin.url), version=v)


def _wget(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    # -nv, not -q: the GnuTLS verification message is the evidence (exit 5 alone is vague).
    argv = ["wget", "-nv", "-O", "-", "--tries=1", "--timeout=10"]
    argv += [*w.flag_words(joined=True), env.origin.url]
    return Client("wget", env, argv=tuple(argv), version=v)


def _openssl(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    host = env.origin.host
    argv = ["openssl", "s_client", "-connect", f"{host}:{env.origin.port}", "-servername", host]
    argv += ["-verify_return_error", "-verify_hostname", host, "-brief", "-quiet"]
    argv += w.flag_words()  # none: OpenSSL's defaults, i.e. SSL_CERT_FILE/SSL_CERT_DIR
    if env.proxy is not None:
        argv += ["-proxy", env.proxy.url.split("://", 1)[1].rstrip("/")]
    request = f"GET / HTTP/1.0\\r\\nHost: {host}\\r\\nConnection: close\\r\\n\\r\\n"
    script = f"printf '{request}' | " + " ".join(shlex.quote(a) for a in argv)
    return Client("openssl", env, argv=("sh", "-c", script), version=v)


def _node(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    # node trusts its bundled store plus NODE_EXTRA_CA_CERTS (env mode: the scenario's
    # SSL_CERT_FILE target); --use-openssl-ca would switch it to OpenSSL's store and variables.
    argv = ("node", "-e", _NODE_GET, env.origin.url)
    return Client("node", env, argv=argv, version=v)


#: The variant's command-line switch: node then verifies with OpenSSL's store (its default
#: paths, and SSL_CERT_FILE/SSL_CERT_DIR) instead of its bundled Mozilla one.
NODE_OPENSSL_SWITCH = "--use-openssl-ca"


def _node_openssl(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    # env mode: SSL_CERT_FILE/SSL_CERT_DIR, what users of --use-openssl-ca set (measured: it
    # trusts both, and NODE_EXTRA_CA_CERTS beside them, which env mode leaves unset).
    argv = ("node", NODE_OPENSSL_SWITCH, "-e", _NODE_GET, env.origin.url)
    label = f"node {NODE_OPENSSL_SWITCH}" + ("" if w.trust == "env" else f" ({w.trust})")
    return Client("node-openssl", env, argv=argv, version=v, label=label)


@cache
def _node_shared_openssl() -> bool:
    """Whether node links the host's OpenSSL (a distribution build) rather than its own."""
    try:
        out = subprocess.run(
            ["node", "-p", "process.config.variables.node_shared_openssl"],
            capture_output=True,
            text=True,
            timeout=10,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.stdout.strip() == "true"


#: Where node's own OpenSSL (the nodejs.org builds: OPENSSLDIR /etc/ssl) looks with
#: --use-openssl-ca and no variable, as measured with the probe under system paths.
_NODE_OPENSSL_DEFAULTS = ("/etc/ssl/cert.pem", "/etc/ssl/certs")


def _node_openssl_system() -> tuple[str, ...]:
    return openssl_defaults() if _node_shared_openssl() else _NODE_OPENSSL_DEFAULTS


def _git(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    config: list[str] = []
    for key, path in w.values.items() if w.trust == "flags" else ():
        config += ["-c", f"{key}={path}"]
    argv = ("git", *config, "ls-remote", f"{env.origin.url}tlsenv-probe.git")
    return Client("git", env, argv=argv, version=v)


def _pip(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    target = env.root / f"pip-target-{id(env):x}"
    argv = (
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--retries",
        "0",
        "--timeout",
        "10",
        *w.flag_words(),
        "--target",
        str(target),
        "--index-url",
        env.origin.index_url,
        "tlsenv-probe",
    )
    # env mode: PIP_CERT, as most users configure it (requests' own variables, which would
    # win over it, are unset).
    return Client("pip", env, argv=argv, version=v)


@cache
def _uv_has_system_certs(uv: str) -> bool:
    out = subprocess.run([uv, "help", "pip", "install"], capture_output=True, text=True)
    return "system-certs" in out.stdout


def _uv(env: TLSEnv, version: str | None, w: Wiring) -> Client:
    uv = str(pinned("uv", version)) if version else (shutil.which("uv") or "uv")
    # Native roots: UV_NATIVE_TLS up to 0.9, UV_SYSTEM_CERTS after (the old name still works
    # but prints a deprecation warning).
    flag = "UV_SYSTEM_CERTS" if shutil.which(uv) and _uv_has_system_certs(uv) else "UV_NATIVE_TLS"
    argv = (
        uv,
        "pip",
        "install",
        "--python",
        env.venv(),
        "--index-url",
        env.origin.index_url,
        "tlsenv-probe",
    )
    # No retries: uv 0.13 retries a refused CONNECT for ~5 s, longer than a survey's timeout.
    return Client("uv", env, argv=argv, env={flag: "1", "UV_HTTP_RETRIES": "0"}, version=version)


PRESETS: dict[str, Preset] = {}


ENTRY_POINT_GROUP = "pytest_tlsenv.presets"


def register(preset: Preset) -> Preset:
    """Add (or replace) a preset, e.g. from a conftest.py or a plugin's ``pytest_configure``.

    Installed packages can also declare presets without importing anything at startup::

        [project.entry-points."pytest_tlsenv.presets"]
        myclient = "mypkg.tlsenv:PRESET"      # a Preset, or a callable returning Presets
    """
    PRESETS[preset.name] = preset
    return preset


@cache
def _load_entry_points() -> None:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            found = obj() if callable(obj) and not isinstance(obj, Preset) else obj
            items = [found] if isinstance(found, Preset) else list(found)
        except Exception as e:  # a broken third-party preset is named in the error
            raise ConfigError(f"preset entry point {ep.name} = {ep.value} failed: {e}") from e
        for item in items:
            if not isinstance(item, Preset):
                raise ConfigError(
                    f"preset entry point {ep.name} = {ep.value} gave {item!r}, not a Preset"
                )
            register(item)


def presets() -> dict[str, Preset]:
    """Every preset: the built-in ones, registered ones, and entry-point ones (loaded once)."""
    _load_entry_points()
    return PRESETS


_OPENSSL_SYSTEM = openssl_defaults


for _p in (
    Preset(
        "python-ssl",
        "urllib + ssl.create_default_context()",
        ("SSL_CERT_FILE", "SSL_CERT_DIR"),
        lambda: platform.python_version(),
        _python_ssl,
        in_process=True,
        flags=_CA_ARGS,
        system=_OPENSSL_SYSTEM,
    ),
    Preset(
        "requests",
        "requests.Session().get",
        ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"),
        _module_version("requests"),
        _requests,
        in_process=True,
        installable=("requests", "python"),
        env_vars={"REQUESTS_CA_BUNDLE": EITHER},
        flags={"verify=": EITHER},
        system=None,  # certifi's bundle
    ),
    Preset(
        "httpx",
        "httpx.Client(trust_env=True).get",
        ("SSL_CERT_FILE", "SSL_CERT_DIR"),
        _module_version("httpx"),
        _httpx,
        in_process=True,
        installable=("httpx", "python"),
        flags=_CA_ARGS,
        system=None,  # certifi's bundle unless a variable is set
    ),
    Preset(
        "urllib3",
        "urllib3.PoolManager (ProxyManager behind a proxy)",
        ("SSL_CERT_FILE", "SSL_CERT_DIR"),
        _module_version("urllib3"),
        _urllib3,
        in_process=True,
        installable=("urllib3", "python"),
        flags={"ca_certs=": FILE, "ca_cert_dir=": DIR},
        system=_OPENSSL_SYSTEM,
    ),
    Preset(
        "aiohttp",
        "aiohttp.ClientSession(trust_env=True)",
        ("SSL_CERT_FILE", "SSL_CERT_DIR"),
        _module_version("aiohttp"),
        _aiohttp,
        in_process=True,
        installable=("aiohttp", "python"),
        flags=_CA_ARGS,
        system=_OPENSSL_SYSTEM,
    ),
    Preset(
        "curl",
        "curl -fsS URL (flags: --cacert BUNDLE --capath DIR)",
        ("CURL_CA_BUNDLE", "SSL_CERT_DIR", "SSL_CERT_FILE"),
        _version_of(["curl", "--version"], r"curl (\S+)"),
        _curl,
        flags={"--cacert": FILE, "--capath": DIR},
        system=_OPENSSL_SYSTEM,
    ),
    Preset(
        "wget",
        "wget URL (GnuTLS; no trust variable; flags: --ca-certificate --ca-directory)",
        (),
        _version_of(["wget", "--version"], r"Wget (\S+)"),
        _wget,
        env_vars={},
        flags={"--ca-certificate": FILE, "--ca-directory": DIR},
        system=lambda: _GNUTLS_DEFAULTS,
    ),
    Preset(
        "openssl",
        "openssl s_client -verify_return_error (flags: -CAfile -CApath)",
        ("SSL_CERT_FILE", "SSL_CERT_DIR"),
        _version_of(["openssl", "version"], r"OpenSSL (\S+)"),
        _openssl,
        flags={"-CAfile": FILE, "-CApath": DIR},
        system=_OPENSSL_SYSTEM,
    ),
    Preset(
        "node",
        "node https.get with NODE_EXTRA_CA_CERTS (CONNECT done by hand)",
        ("NODE_EXTRA_CA_CERTS",),
        _version_of(["node", "--version"], r"v(\S+)"),
        _node,
        env_vars={"NODE_EXTRA_CA_CERTS": FILE},
        system=None,  # its bundled Mozilla store
    ),
    Preset(
        "node-openssl",
        "node --use-openssl-ca https.get: OpenSSL's store and SSL_CERT_FILE/SSL_CERT_DIR",
        ("SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS"),
        _version_of(["node", "--version"], r"v(\S+)"),
        _node_openssl,
        env_vars=dict(OPENSSL_ENV),
        system=_node_openssl_system,
    ),
    Preset(
        "git",
        "git ls-remote with GIT_SSL_CAINFO/GIT_SSL_CAPATH",
        ("GIT_SSL_CAINFO", "GIT_SSL_CAPATH"),
        _version_of(["git", "--version"], r"git version (\S+)"),
        _git,
        env_vars={"GIT_SSL_CAINFO": FILE, "GIT_SSL_CAPATH": DIR},
        flags={"http.sslCAInfo": FILE, "http.sslCAPath": DIR},
        system=lambda: _GNUTLS_DEFAULTS,  # Debian's git: libcurl-gnutls
    ),
    Preset(
        "pip",
        "python -m pip install --target (PIP_CERT)",
        # pip sets session.verify from PIP_CERT; requests' own variables then override it.
        ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT"),
        _version_of([sys.executable, "-m", "pip", "--version"], r"pip (\S+)"),
        _pip,
        installable=("pip", "pip"),
        env_vars={"PIP_CERT": EITHER},
        flags={"--cert": EITHER},
        system=None,  # certifi before pip 24.2 (truststore after: not wired yet)
    ),
    Preset(
        "uv",
        "uv pip install --python VENV --index-url (native roots)",
        ("SSL_CERT_FILE", "SSL_CERT_DIR"),
        _version_of(["uv", "--version"], r"uv (\S+)"),
        _uv,
        installable=("uv", "uv"),
        # uv before 0.2.29 never reads SSL_CERT_DIR (probe and strace, tests/test_probe.py).
        honours_before=(("0.2.29", ("SSL_CERT_FILE",)),),
        system=lambda: _OPENSSL_PROBE,
    ),
):
    register(_p)


def get_preset(name: str) -> Preset:
    """The preset called ``name``, or a ConfigError listing the known ones."""
    known = presets()
    try:
        return known[name]
    except KeyError:
        raise ConfigError(
            f"unknown client {name!r}; known presets: {', '.join(sorted(known))}"
        ) from None


def make_client(
    env: TLSEnv, name: str, version: str | None = None, trust: str | None = None
) -> Client:
    """A ready :class:`Client` of preset ``name`` for ``env`` (pinned when ``version``), in
    trust mode ``trust`` (default: ``env.trust``).

    Raises :class:`NotApplicableError` when the scenario cannot apply to the client in that
    mode (see :meth:`Preset.wiring` and :func:`applicable`).
    """
    preset = get_preset(name)
    trust = trust or env.trust
    if trust not in TRUST_MODES:
        raise ConfigError(f"trust must be one of {', '.join(TRUST_MODES)}, got {trust!r}")
    if version is not None and preset.installable is None:
        pinnable = sorted(n for n, p in presets().items() if p.installable is not None)
        raise ConfigError(
            f"client {name!r} cannot be pinned: it is not installable from the package index "
            f"(clients that take a version: {', '.join(pinnable)})"
        )
    if version is None and preset.detect() is None:
        raise ClientUnavailableError(f"client {name!r} is not installed on this machine")
    wiring = preset.wiring(env, trust)
    applicable(env, wiring, preset.label(trust))
    from .fallback import client_variables

    overriding = client_variables(env.fallback, preset, trust, version, wiring.env)
    build: Callable[..., Client] = preset.build
    if _positional_arity(build) >= 3:
        client = build(env, version or preset.detect(), wiring)
    else:  # a third-party preset written before trust modes
        client = build(env, version or preset.detect())
    client = replace(
        client,
        env={**wiring.env, **overriding, **client.env},
        trust=trust,
        label=client.label or preset.label(trust),
    )
    if version is None:
        return client
    if client.fn is not None and trust == "flags":
        raise NotApplicableError(
            f"client {name!r} pinned: a library runs out of process, where its flags (cafile=, "
            "verify=) are not passed; use trust='env' or 'system'"
        )
    return _pin(client, preset, version)


def _positional_arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return 3
    return sum(1 for p in params if p.kind in kinds)


def _pin(client: Client, preset: Preset, version: str) -> Client:
    """``client`` running ``version`` from its pinned environment, with the same variables.

    A library preset's in-process fetch becomes ``python -c SCRIPT LIBRARY URL`` in the
    pinned interpreter; ``python -m MODULE ...`` runs the pinned interpreter; any other
    command whose program is the package's executable runs the pinned one.
    """
    assert preset.installable is not None
    package, executable = preset.installable
    url = client.tlsenv.origin.url
    if client.fn is not None:
        fetch = _FETCHERS.get(preset.name)
        if fetch is None:
            raise ConfigError(
                f"client {preset.name!r}: no out-of-process fetch known for pinning it"
            )
        python = str(pinned(package, version, "python"))
        argv: tuple[str, ...] = (python, "-c", _fetch_script(fetch), package, url)
    else:
        assert client.argv is not None
        argv = client.argv
        if len(argv) >= 3 and argv[1] == "-m" and argv[2] == executable:
            argv = (str(pinned(package, version, "python")), *argv[1:])
        elif os.path.basename(argv[0]) == executable:
            argv = (str(pinned(package, version, executable)), *argv[1:])
        else:
            raise ConfigError(f"client {preset.name!r}: its command does not run {executable}")
    return replace(client, argv=argv, fn=None, version=version)
