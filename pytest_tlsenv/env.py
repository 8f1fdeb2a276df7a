"""The hermetic environment every client gets.

``run`` builds a child's environment from an allow-list, never from ``os.environ``: this
machine (and many CI images) exports SSL_CERT_FILE, REQUESTS_CA_BUNDLE, PIP_CERT,
PIP_FIND_LINKS, NODE_EXTRA_CA_CERTS... and a test that inherits them measures the host.
``call`` runs in this very process, so it cannot start from nothing: it removes by prefix and
name (:func:`scrubbed`) and restores everything afterwards.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ENVIRON_LOCK",
    "TRUST_MODES",
    "Sandbox",
    "build_environ",
    "is_scrubbed",
    "scrubbed",
    "traversable_path",
]

#: How the scenario's store reaches a client. ``env`` (the default): the trust variables
#: users of that client set (SSL_CERT_FILE/SSL_CERT_DIR for OpenSSL clients,
#: REQUESTS_CA_BUNDLE for requests...). ``system``: no trust variable; the store is shown at
#: the layout's real paths in a private mount namespace. ``flags``: explicit options
#: (``curl --cacert``...), a labelled variant of a client.
TRUST_MODES = ("env", "system", "flags")

# Outer variables a child may see (besides LC_*), because they change nothing about trust.
ALLOWED = ("LANG", "LANGUAGE", "TERM", "TZ")

# What `call` removes from os.environ: prefixes, suffix patterns and exact names that change
# trust, proxies, indexes or caches.
SCRUB_PREFIXES = (
    "SSL_",
    "OPENSSL_",
    "PIP_",
    "UV_",
    "NODE_",
    "NPM_CONFIG_",
    "GIT_",
    "CURL_",
    "REQUESTS_",
    "HTTPLIB2_",
    "GRPC_",
    "NIX_SSL",
    "TOX_",
    "CONDA_",
    "HTTPX_",
    "AWS_CA",
    "CLOUDSDK_",
    "WGETRC",
)
SCRUB_CONTAINS = ("CA_BUNDLE", "CA_CERT", "_PROXY")
SCRUB_NAMES = frozenset(
    {
        "PYTHONHTTPSVERIFY",
        "SSLKEYLOGFILE",
        "CURLOPT_CAINFO",
        "NO_PROXY",
        "no_proxy",
        "all_proxy",
        "http_proxy",
        "https_proxy",
        "ftp_proxy",
        "UV_NATIVE_TLS",
        "UV_SYSTEM_CERTS",
        "JAVA_TOOL_OPTIONS",
    }
)


#: Held by whoever changes ``os.environ`` for an in-process client (``TLSEnv.call``, the
#: probe's callables): one process has one environment, so such calls go one at a time.
ENVIRON_LOCK = threading.Lock()

# The process environment as it was before the in-process call now running changed it (None
# when none runs): what a subprocess started meanwhile from another thread must start from.
_before_call: dict[str, str] | None = None


def outer_environ() -> dict[str, str]:
    """A copy of the process environment as the user set it: never the overlay of an
    in-process call that another thread is running at this moment."""
    while True:
        before = _before_call
        if before is not None:
            return dict(before)
        try:
            return dict(os.environ)
        except (KeyError, RuntimeError):
            continue  # a call began changing it while we copied: its saved copy is set now


def is_scrubbed(name: str) -> bool:
    """Whether ``call`` removes ``name`` from the environment while a client runs."""
    upper = name.upper()
    return (
        name in SCRUB_NAMES
        or upper.startswith(SCRUB_PREFIXES)
        or any(part in upper for part in SCRUB_CONTAINS)
    )


@contextlib.contextmanager
def scrubbed(overlay: Mapping[str, str | None]) -> Iterator[dict[str, str]]:
    """Within the block, ``os.environ`` lacks every scrubbed variable and carries ``overlay``.

    Values of ``None`` in ``overlay`` unset. Everything is restored on exit, even on error.
    Yields the environment as it was inside the block.
    """
    global _before_call
    saved = dict(os.environ)
    _before_call = saved  # published before the first change (see outer_environ)
    try:
        for name in [n for n in os.environ if is_scrubbed(n)]:
            del os.environ[name]
        for name, value in overlay.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield dict(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        _before_call = None


def traversable_path(path: str, *, other: bool) -> str:
    """Keep the PATH entries that exist (and, when ``other``, that any user can traverse)."""
    keep: list[str] = []
    for entry in path.split(os.pathsep):
        if not entry or entry in keep or not os.path.isdir(entry):
            continue
        if other and not _world_traversable(Path(entry)):
            continue
        keep.append(entry)
    return os.pathsep.join(keep)


def _world_traversable(path: Path) -> bool:
    path = path.resolve()
    for p in (path, *path.parents):
        try:
            if not os.stat(p).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class Sandbox:
    """A fresh HOME, XDG dirs, TMPDIR and caches for one run."""

    root: Path

    @classmethod
    def create(cls, root: Path, *, owner: tuple[int, int] | None = None) -> Sandbox:
        box = cls(root)
        for d in (box.home, box.tmp, box.cache, box.config, box.data):
            d.mkdir(parents=True, exist_ok=True)
        box.wgetrc.write_text("")
        if owner is not None:
            for d in (root, box.home, box.tmp, box.cache, box.config, box.data, box.wgetrc):
                os.chown(d, *owner)
        return box

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def wgetrc(self) -> Path:
        return self.root / "wgetrc"

    def variables(self) -> dict[str, str]:
        """HOME and friends, plus the settings that neutralise system config and caches."""
        return {
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "XDG_CACHE_HOME": str(self.cache),
            "XDG_CONFIG_HOME": str(self.config),
            "XDG_DATA_HOME": str(self.data),
            # pip: /etc/pip.conf on this kind of machine sets `cert=`; /dev/null disables every
            # config file. A fresh cache so a cache hit never hides the network.
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_CACHE_DIR": str(self.cache / "pip"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            # uv: no uv.toml / pyproject config, no interpreter downloads, a fresh cache.
            "UV_NO_CONFIG": "1",
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_CACHE_DIR": str(self.cache / "uv"),
            # wget reads /etc/wgetrc unless WGETRC names another file.
            "WGETRC": str(self.wgetrc),
            # curl reads ~/.curlrc (HOME is fresh); git reads system and global config.
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "NPM_CONFIG_USERCONFIG": os.devnull,
            "PYTHONDONTWRITEBYTECODE": "1",
        }


def build_environ(
    *,
    sandbox: Sandbox,
    scenario: Mapping[str, str],
    env: Mapping[str, str | None] | None = None,
    passenv: Iterable[str] = (),
    outer: Mapping[str, str] | None = None,
    other_user: bool = False,
) -> dict[str, str]:
    """The complete environment of a child: allow-list, sandbox, scenario, then ``env``.

    ``passenv`` names outer variables to let through unchanged; ``env`` values of ``None``
    unset a variable.
    """
    outer = outer_environ() if outer is None else outer
    result: dict[str, str] = {
        "PATH": traversable_path(outer.get("PATH", os.defpath), other=other_user),
    }
    for name, value in outer.items():
        if name in ALLOWED or name.startswith("LC_"):
            result[name] = value
    result.update(sandbox.variables())
    result.update(scenario)
    for name in passenv:
        if name in outer:
            result[name] = outer[name]
    for name, override in (env or {}).items():
        if override is None:
            result.pop(name, None)
        else:
            result[name] = override
    return result
