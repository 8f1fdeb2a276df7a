"""Clients under test: presets for known clients, and pinned versions in a cache.

Presets (:data:`PRESETS`): how to detect a client and its version, how to point it at a
scenario's origin, store and proxy (which trust variables it honours, which explicit flags it
needs to be hermetic), as a ready argv (CLIs) or callable (in-process libraries).
``tlsenv.client("curl")`` uses them. Register your own with :func:`register` (e.g. from a
conftest or a plugin's ``pytest_configure``).

Pinned versions: never installed into the running Python.

``pinned("uv", "0.2.29")`` returns the path of that version's executable, installing it once
with ``pip install --target`` into ``<cache>/clients/uv-0.2.29`` under a file lock (safe with
pytest-xdist workers and parallel tox envs). The cache is ``$TLSENV_CACHE_DIR``, else
``$XDG_CACHE_HOME/pytest-tlsenv``, else ``~/.cache/pytest-tlsenv``; it must be this user's own
(:func:`cache_dir`).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from . import privdir
from .errors import ClientUnavailableError, ConfigError

if TYPE_CHECKING:
    from .outcome import Outcome
    from .tlsenv import TLSEnv

__all__ = [
    "PRESETS",
    "Client",
    "Preset",
    "cache_dir",
    "get_preset",
    "make_client",
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
                if "No matching distribution found" in text:
                    known = re.search(r"\(from versions: ([^)]*)\)", text)
                    versions = known.group(1).split(", ") if known else []
                    newest = ", ".join(versions[-5:]) or "none"
                    raise ConfigError(
                        f"{package}=={version}: no such version on the package index "
                        f"({len(versions)} versions, the newest: {newest})"
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


# -- presets: how to point a known client at a scenario ---------------------------------------


@dataclass(frozen=True)
class Client:
    """A client made ready for one TLSEnv: an argv (a CLI) or a callable (in-process).

    ``env`` holds the extra variables the preset needs (e.g. REQUESTS_CA_BUNDLE for requests,
    which ignores SSL_CERT_FILE). :meth:`run` runs it through ``tlsenv.run``/``tlsenv.call``.
    """

    preset: str
    tlsenv: TLSEnv
    argv: tuple[str, ...] | None = None
    fn: Callable[[], Any] | None = None
    env: Mapping[str, str | None] = field(default_factory=dict)
    version: str | None = None

    def run(self, *, timeout: float | None = None) -> Outcome:
        """Run the client in its TLSEnv and return the Outcome."""
        if self.argv is not None:
            return self.tlsenv.run(list(self.argv), env=self.env, timeout=timeout)
        assert self.fn is not None
        return self.tlsenv.call(self.fn, env=self.env, timeout=timeout)


@dataclass(frozen=True)
class Preset:
    """How to detect a client, point it at a scenario's origin/store/proxy, and run it.

    ``honours`` lists the trust variables the client reads (highest first), as measured here;
    ``honours_before`` the older versions' lists, as ``(first version that differs, list)``
    pairs, oldest first (see :meth:`honours_for`). ``build(tlsenv, version)`` returns a ready
    :class:`Client`.
    """

    name: str
    description: str
    honours: tuple[str, ...]
    detect: Callable[[], str | None]
    build: Callable[[TLSEnv, str | None], Client]
    in_process: bool = False
    installable: tuple[str, str] | None = None  # (PyPI package, executable) for pinned()
    honours_before: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def honours_for(self, version: str | None) -> tuple[str, ...]:
        """What version ``version`` honours: the list of the first ``honours_before`` pair
        whose version is above it, else :attr:`honours` (also for an unknown version)."""
        key = _version_key(version)
        if key is not None:
            for since, honours in self.honours_before:  # oldest first
                if key < (_version_key(since) or ()):
                    return honours
        return self.honours


def _version_key(version: str | None) -> tuple[int, ...] | None:
    """``"0.2.28"`` -> ``(0, 2, 28)``; None when it does not start with a number."""
    m = re.match(r"\d+(?:\.\d+)*", version or "")
    return tuple(int(x) for x in m.group(0).split(".")) if m else None


def _version_of(argv: Sequence[str], pattern: str) -> Callable[[], str | None]:
    @cache
    def detect() -> str | None:
        if shutil.which(argv[0]) is None:
            return None
        try:
            out = subprocess.run(list(argv), capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        m = re.search(pattern, out.stdout + out.stderr)
        return m.group(1) if m else "unknown"

    return detect


def _module_version(module: str) -> Callable[[], str | None]:
    def detect() -> str | None:
        try:
            return importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            return None

    return detect


def _store_flags(env: TLSEnv, file_flag: str, dir_flag: str, joined: bool = False) -> list[str]:
    """Explicit trust flags for CLIs that have them (Debian's curl is not hermetic otherwise)."""
    flags: list[str] = []
    for flag, path in ((file_flag, env.store.bundle), (dir_flag, env.store.cert_dir)):
        if path is None:
            continue
        flags += [f"{flag}={path}"] if joined else [flag, str(path)]
    return flags


def _get(url: str, fetch: Callable[[str], bytes]) -> Callable[[], bytes]:
    return lambda: fetch(url)


def _urllib_fetch(url: str) -> bytes:
    import ssl
    import urllib.request

    with urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=10) as r:
        data: bytes = r.read()
        return data


def _requests_fetch(url: str) -> bytes:
    import requests

    with requests.Session() as s:
        r = s.get(url, timeout=10)
        r.raise_for_status()
        return r.content


def _httpx_fetch(url: str) -> bytes:
    import httpx

    with httpx.Client(timeout=10) as c:  # trust_env: SSL_CERT_FILE/SSL_CERT_DIR, proxies
        r = c.get(url)
        r.raise_for_status()
        return r.content


def _urllib3_fetch(url: str) -> bytes:
    import urllib3

    proxy = os.environ.get("HTTPS_PROXY")
    # urllib3 reads no proxy variable itself; the preset honours the scenario's proxy.
    with urllib3.ProxyManager(proxy) if proxy else urllib3.PoolManager() as pool:
        r = pool.request("GET", url, timeout=10, retries=False)
        if r.status >= 400:
            raise urllib3.exceptions.HTTPError(f"HTTP {r.status}")
        return r.data


def _aiohttp_fetch(url: str) -> bytes:
    import asyncio
    import ssl

    import aiohttp

    # aiohttp builds its default SSL context once, at import, from the environment of that
    # moment: later SSL_CERT_FILE changes are invisible to it. An explicit context per request
    # measures what a fresh process would do.
    ctx = ssl.create_default_context()

    async def go() -> bytes:
        async with (
            aiohttp.ClientSession(trust_env=True) as s,
            s.get(url, ssl=ctx, timeout=aiohttp.ClientTimeout(total=10)) as r,
        ):
            r.raise_for_status()
            body: bytes = await r.read()
            return body

    return asyncio.run(go())


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


def _python_ssl(env: TLSEnv, _v: str | None) -> Client:
    return Client("python-ssl", env, fn=_get(env.origin.url, _urllib_fetch))


def _requests(env: TLSEnv, v: str | None) -> Client:
    # requests ignores SSL_CERT_FILE; REQUESTS_CA_BUNDLE may name a bundle or a hashed dir.
    ca = env.store.bundle or env.store.cert_dir
    extra = {"REQUESTS_CA_BUNDLE": str(ca)} if ca is not None else {}
    return Client("requests", env, fn=_get(env.origin.url, _requests_fetch), env=extra, version=v)


def _httpx(env: TLSEnv, v: str | None) -> Client:
    return Client("httpx", env, fn=_get(env.origin.url, _httpx_fetch), version=v)


def _urllib3(env: TLSEnv, v: str | None) -> Client:
    return Client("urllib3", env, fn=_get(env.origin.url, _urllib3_fetch), version=v)


def _aiohttp(env: TLSEnv, v: str | None) -> Client:
    return Client("aiohttp", env, fn=_get(env.origin.url, _aiohttp_fetch), version=v)


def _curl(env: TLSEnv, v: str | None) -> Client:
    argv = ["curl", "-fsS", "--max-time", "10", *_store_flags(env, "--cacert", "--capath")]
    return Client("curl", env, argv=(*argv, env.origin.url), version=v)


def _wget(env: TLSEnv, v: str | None) -> Client:
    flags = _store_flags(env, "--ca-certificate", "--ca-directory", joined=True)
    # -nv, not -q: the GnuTLS verification message is the evidence (exit 5 alone is vague).
    argv = ["wget", "-nv", "-O", "-", "--tries=1", "--timeout=10", *flags, env.origin.url]
    return Client("wget", env, argv=tuple(argv), version=v)


def _openssl(env: TLSEnv, v: str | None) -> Client:
    host = env.origin.host
    argv = ["openssl", "s_client", "-connect", f"{host}:{env.origin.port}", "-servername", host]
    argv += ["-verify_return_error", "-verify_hostname", host, "-brief", "-quiet"]
    argv += _store_flags(env, "-CAfile", "-CApath")
    if env.proxy is not None:
        argv += ["-proxy", env.proxy.url.split("://", 1)[1].rstrip("/")]
    request = f"GET / HTTP/1.0\\r\\nHost: {host}\\r\\nConnection: close\\r\\n\\r\\n"
    script = f"printf '{request}' | " + " ".join(shlex.quote(a) for a in argv)
    return Client("openssl", env, argv=("sh", "-c", script), version=v)


def _node(env: TLSEnv, v: str | None) -> Client:
    # node trusts its bundled store plus NODE_EXTRA_CA_CERTS; --use-openssl-ca switches it to
    # OpenSSL's store and variables. The preset adds the store's bundle as extra CAs.
    extra = {"NODE_EXTRA_CA_CERTS": str(env.store.bundle)} if env.store.bundle else {}
    argv = ("node", "-e", _NODE_GET, env.origin.url)
    return Client("node", env, argv=argv, env=extra, version=v)


def _git(env: TLSEnv, v: str | None) -> Client:
    extra: dict[str, str | None] = {}
    if env.store.bundle is not None:
        extra["GIT_SSL_CAINFO"] = str(env.store.bundle)
    if env.store.cert_dir is not None:
        extra["GIT_SSL_CAPATH"] = str(env.store.cert_dir)
    argv = ("git", "ls-remote", f"{env.origin.url}tlsenv-probe.git")
    return Client("git", env, argv=argv, env=extra, version=v)


def _pip(env: TLSEnv, v: str | None) -> Client:
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
        "--target",
        str(target),
        "--index-url",
        env.origin.index_url,
        "tlsenv-probe",
    )
    # pip >= 24.2 verifies with truststore (OpenSSL defaults: SSL_CERT_FILE) and certifi;
    # PIP_CERT names the store's bundle explicitly, as most users configure it.
    extra = {"PIP_CERT": str(env.store.bundle)} if env.store.bundle else {}
    return Client("pip", env, argv=argv, env=extra, version=v)


@cache
def _uv_has_system_certs(uv: str) -> bool:
    out = subprocess.run([uv, "help", "pip", "install"], capture_output=True, text=True)
    return "system-certs" in out.stdout


def _uv(env: TLSEnv, version: str | None) -> Client:
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


for _p in (
    Preset(
        "python-ssl",
        "urllib + ssl.create_default_context()",
        ("SSL_CERT_FILE", "SSL_CERT_DIR"),
        lambda: platform.python_version(),
        _python_ssl,
        in_process=True,
    ),
    Preset(
        "requests",
        "requests.Session().get",
        ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"),
        _module_version("requests"),
        _requests,
        in_process=True,
    ),
    Preset(
        "httpx",
        "httpx.Client(trust_env=True).get",
        ("SSL_CERT_FILE", "SSL_CERT_DIR"),
        _module_version("httpx"),
        _httpx,
        in_process=True,
    ),
    Preset(
        "urllib3",
        "urllib3.PoolManager (ProxyManager behind a proxy)",
        ("SSL_CERT_FILE", "SSL_CERT_DIR"),
        _module_version("urllib3"),
        _urllib3,
        in_process=True,
    ),
    Preset(
        "aiohttp",
        "aiohttp.ClientSession(trust_env=True)",
        ("SSL_CERT_FILE", "SSL_CERT_DIR"),
        _module_version("aiohttp"),
        _aiohttp,
        in_process=True,
    ),
    Preset(
        "curl",
        "curl -fsS --cacert BUNDLE --capath DIR",
        ("CURL_CA_BUNDLE", "SSL_CERT_DIR", "SSL_CERT_FILE"),
        _version_of(["curl", "--version"], r"curl (\S+)"),
        _curl,
    ),
    Preset(
        "wget",
        "wget --ca-certificate --ca-directory (GnuTLS)",
        (),
        _version_of(["wget", "--version"], r"Wget (\S+)"),
        _wget,
    ),
    Preset(
        "openssl",
        "openssl s_client -verify_return_error -CAfile -CApath",
        ("SSL_CERT_FILE", "SSL_CERT_DIR"),
        _version_of(["openssl", "version"], r"OpenSSL (\S+)"),
        _openssl,
    ),
    Preset(
        "node",
        "node https.get with NODE_EXTRA_CA_CERTS (CONNECT done by hand)",
        ("NODE_EXTRA_CA_CERTS",),
        _version_of(["node", "--version"], r"v(\S+)"),
        _node,
    ),
    Preset(
        "git",
        "git ls-remote with GIT_SSL_CAINFO/GIT_SSL_CAPATH",
        ("GIT_SSL_CAINFO", "GIT_SSL_CAPATH"),
        _version_of(["git", "--version"], r"git version (\S+)"),
        _git,
    ),
    Preset(
        "pip",
        "python -m pip install --target (PIP_CERT)",
        # pip sets session.verify from PIP_CERT; requests' own variables then override it.
        ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT"),
        _version_of([sys.executable, "-m", "pip", "--version"], r"pip (\S+)"),
        _pip,
        installable=("pip", "pip"),
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


def make_client(env: TLSEnv, name: str, version: str | None = None) -> Client:
    """A ready :class:`Client` of preset ``name`` for ``env`` (pinned when ``version``)."""
    preset = get_preset(name)
    if version is not None and preset.name != "uv":
        raise ConfigError(f"client {name!r}: pinned versions are supported for uv only")
    if version is None and preset.detect() is None:
        raise ClientUnavailableError(f"client {name!r} is not installed on this machine")
    return preset.build(env, version or preset.detect())
