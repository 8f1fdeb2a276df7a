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
``$XDG_CACHE_HOME/pytest-tlsenv``, else ``~/.cache/pytest-tlsenv``.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from .errors import ClientUnavailableError, ConfigError, NotApplicableError

if TYPE_CHECKING:
    from .outcome import Outcome
    from .tlsenv import TLSEnv

__all__ = [
    "PRESETS",
    "Client",
    "Preset",
    "Wiring",
    "applicable",
    "cache_dir",
    "get_preset",
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
    installable: tuple[str, str] | None = None  # (PyPI package, executable) for pinned()
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
    from .scenarios import TRUST_MODES

    preset = get_preset(name)
    trust = trust or env.trust
    if trust not in TRUST_MODES:
        raise ConfigError(f"trust must be one of {', '.join(TRUST_MODES)}, got {trust!r}")
    if version is not None and preset.name != "uv":
        raise ConfigError(f"client {name!r}: pinned versions are supported for uv only")
    if version is None and preset.detect() is None:
        raise ClientUnavailableError(f"client {name!r} is not installed on this machine")
    wiring = preset.wiring(env, trust)
    applicable(env, wiring, preset.label(trust))
    build: Callable[..., Client] = preset.build
    if _positional_arity(build) >= 3:
        client = build(env, version or preset.detect(), wiring)
    else:  # a third-party preset written before trust modes
        client = build(env, version or preset.detect())
    return replace(
        client,
        env={**wiring.env, **client.env},
        trust=trust,
        label=client.label or preset.label(trust),
    )


def _positional_arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return 3
    return sum(1 for p in params if p.kind in kinds)
