"""The built-in presets: curl, wget, openssl, node (and node --use-openssl-ca), git, pip, uv,
go, python's ssl, requests, httpx, urllib3, aiohttp, java; how each is detected, wired and run.

Importing this module registers them (:func:`~pytest_tlsenv.clients.registry.register`).
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
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from ..keystore import java_tool_options, trust_store_options
from ..versions import version_of
from .client import Client
from .fetchers import aiohttp_fetch, httpx_fetch, requests_fetch, urllib3_fetch, urllib_fetch
from .gobuild import go_client, go_version
from .jvm import JVM_OPTIONS, java_class_dir, java_system_keystore
from .pinning import pinned
from .preset import DIR, EITHER, FILE, KEYSTORE, OPENSSL_ENV, Preset, Wiring
from .registry import register

if TYPE_CHECKING:
    from typing import TypeAlias

    from .._types import EnvView
    from ..outcome import Outcome, Verdict

    # A TLSEnv as seen from below it in the layers (_types.py).
    TLSEnv: TypeAlias = EnvView[Outcome, Verdict]

__all__ = ["NODE_OPENSSL_SWITCH", "openssl_defaults"]


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
    fn = _get(env.origin.url, urllib_fetch, *_ca_args(w))
    return Client("python-ssl", env, fn=fn, version=v)


def _requests(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    # requests ignores SSL_CERT_FILE; REQUESTS_CA_BUNDLE (env) or verify= (flags) may name a
    # bundle or a hashed dir.
    verify = w.values.get("verify=") if w.trust == "flags" else None
    fn = _get(env.origin.url, requests_fetch, verify)
    return Client("requests", env, fn=fn, version=v)


def _httpx(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    return Client("httpx", env, fn=_get(env.origin.url, httpx_fetch, *_ca_args(w)), version=v)


def _urllib3(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    fn = _get(env.origin.url, urllib3_fetch, *_ca_args(w))
    return Client("urllib3", env, fn=fn, version=v)


def _aiohttp(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    fn = _get(env.origin.url, aiohttp_fetch, *_ca_args(w))
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


#: crypto/x509's default lists on Linux (root_linux.go, go1.19 to go1.23): the first file
#: that reads wins; then every entry of every dir is read (a FIFO there blocks it).
_GO_DEFAULTS = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/etc/ssl/certs",
    "/etc/pki/tls/certs",
    "/system/etc/security/cacerts",
)


def _go(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    # http.Get as Go programs make it: HTTPS_PROXY through ProxyFromEnvironment, which never
    # proxies localhost or 127.0.0.1 (so proxy scenarios name the origin origin.tlsenv.test),
    # and SSL_CERT_FILE plus the SSL_CERT_DIR colon list in env mode. Go has no trust option.
    return Client("go", env, argv=(str(go_client()), env.origin.url), version=v)


def _java(env: TLSEnv, v: str | None, w: Wiring) -> Client:
    # Trust: JAVA_TOOL_OPTIONS (env), the same properties on the command line (flags), or the
    # JDK's default cacerts (system). The proxy: https.proxyHost/Port on the command line in
    # every mode, because Java ignores HTTPS_PROXY (even with java.net.useSystemProxies).
    staged = java_class_dir(env.root)
    keystore = next(iter(w.values.values()), None)
    password = env.store.layout.keystore_password
    options = trust_store_options(keystore, password) if keystore else []
    proxy: list[str] = []
    if env.proxy is not None:
        parsed = urllib.parse.urlsplit(env.proxy.url)
        proxy = [f"-Dhttps.proxyHost={parsed.hostname}", f"-Dhttps.proxyPort={parsed.port}"]
    flags = options if w.trust == "flags" else []
    argv = ("java", *JVM_OPTIONS, *flags, *proxy, "-cp", str(staged), "TlsenvGet", env.origin.url)
    extra: dict[str, str | None] = {"JAVA_TOOL_OPTIONS": None}
    if w.trust == "env" and options:
        # The JVM announces it on stderr ("Picked up JAVA_TOOL_OPTIONS: ..."): expected.
        extra["JAVA_TOOL_OPTIONS"] = java_tool_options(options)
    return Client("java", env, argv=argv, env=extra, version=v)


_JAVA_TRUST_FLAG = "-Djavax.net.ssl.trustStore"


def _java_detect() -> str | None:
    # The client is compiled here (javac), so a JRE alone does not do.
    if shutil.which("java") is None or shutil.which("javac") is None:
        return None
    m = re.search(r'version "([^"]+)"', version_of("java", "-version") or "")
    return m.group(1) if m else "unknown"


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
    Preset(
        "go",
        "Go net/http http.Get (crypto/x509 roots; SSL_CERT_FILE, SSL_CERT_DIR list; no flags)",
        ("SSL_CERT_FILE", "SSL_CERT_DIR"),
        go_version,
        _go,
        env_vars=dict(OPENSSL_ENV),
        system=lambda: _GO_DEFAULTS,
    ),
    Preset(
        "java",
        "java.net.http.HttpClient GET (JAVA_TOOL_OPTIONS -Djavax.net.ssl.trustStore...; "
        "proxy from -Dhttps.proxyHost/Port: Java ignores HTTPS_PROXY)",
        ("JAVA_TOOL_OPTIONS",),
        _java_detect,
        _java,
        env_vars={"JAVA_TOOL_OPTIONS": KEYSTORE},
        flags={_JAVA_TRUST_FLAG: KEYSTORE},
        system=java_system_keystore,
    ),
):
    register(_p)
