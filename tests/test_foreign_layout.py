"""layout="foreign": a healthy distribution store at its usual paths, while the OpenSSL
defaults clients were built with (OPENSSLDIR) name directories the machine does not have.

Two kinds of client show it on this machine: the system OpenSSL (Debian's OPENSSLDIR
/usr/lib/ssl, hidden in the namespace) and the OpenSSL vendored in cryptography's wheels,
whose OPENSSLDIR is /opt/pyca/cryptography/openssl (absent here, as on most machines):
pyOpenSSL falls back from it to the distribution's paths, a tool using its defaults alone
does not.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable

import pytest

from pytest_tlsenv import LAYOUTS, TLSEnv, Verdict
from pytest_tlsenv.clients import pinned
from pytest_tlsenv.errors import ClientUnavailableError
from pytest_tlsenv.namespace import probe as namespace_probe

pytestmark = pytest.mark.nonroot

Maker = Callable[..., TLSEnv]
PYOPENSSL = "26.4.0"

# Debian's Python links the system OpenSSL: its defaults are OPENSSLDIR's cert.pem and certs.
_SYSTEM_SSL = """
import os, ssl, sys, urllib.request
paths = ssl.get_default_verify_paths()
print("openssl_cafile", paths.openssl_cafile, os.path.exists(paths.openssl_cafile), file=sys.stderr)
urllib.request.urlopen(sys.argv[1], context=ssl.create_default_context(), timeout=10).read()
"""

# The OpenSSL in cryptography's wheel, through pyOpenSSL: set_default_verify_paths (with
# pyOpenSSL's fallback to the distribution's paths), or the vendored library's defaults alone.
_VENDORED = """
import os, socket, sys
from OpenSSL import SSL
from OpenSSL._util import lib, ffi
default = ffi.string(lib.X509_get_default_cert_file()).decode()
print("compiled-in", default, os.path.exists(default), file=sys.stderr)
host, port = "localhost", int(sys.argv[1])
ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
ctx.set_verify(SSL.VERIFY_PEER, lambda conn, cert, errno, depth, ok: bool(ok))
if sys.argv[2] == "pyopenssl":
    ctx.set_default_verify_paths()
else:
    assert lib.SSL_CTX_set_default_verify_paths(ctx._context) == 1
sock = socket.create_connection((host, port), timeout=10)
sock.setblocking(True)  # pyOpenSSL on a socket with a timeout raises WantReadError
conn = SSL.Connection(ctx, sock)
conn.set_tlsext_host_name(host.encode())
conn.set_connect_state()
conn.do_handshake()
conn.sendall(b"GET / HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n")
print(conn.recv(100).decode(errors="replace"))
conn.close()
"""


@pytest.fixture(autouse=True)
def namespaces() -> None:
    reason = namespace_probe()
    if reason is not None:
        pytest.skip(f"layout 'foreign' shows its store at system paths: {reason}")


def _vendored_python() -> str:
    try:
        return str(pinned("pyopenssl", PYOPENSSL))
    except ClientUnavailableError as e:
        pytest.skip(str(e))


def test_foreign_is_debians_store_with_openssldirs_hidden() -> None:
    foreign, debian = LAYOUTS["foreign"], LAYOUTS["debian"]
    assert foreign.paths() == debian.paths()
    assert "usr/lib/ssl" in foreign.hidden
    assert "opt/pyca/cryptography/openssl" in foreign.hidden
    assert not debian.hidden


def test_the_mount_plan_hides_the_hosts_openssldir(make_tlsenv: Maker) -> None:
    env = make_tlsenv(layout="foreign", trust="system")
    masks = env.world.mount_plan().masks
    if os.path.isdir("/usr/lib/ssl"):
        assert "/usr/lib/ssl" in masks
    # What the host lacks needs no mask: it points nowhere already.
    assert all(os.path.isdir(m) or os.path.isfile(m) for m in masks)


@pytest.mark.parametrize(("layout", "verdict"), [("foreign", "REJECTED"), ("debian", "OK")])
def test_system_openssl_defaults_point_nowhere(
    make_tlsenv: Maker, layout: str, verdict: str
) -> None:
    if not os.path.isdir("/usr/lib/ssl"):
        pytest.skip("this machine's OpenSSL has no /usr/lib/ssl to hide")
    env = make_tlsenv(layout=layout, trust="system")
    out = env.run([sys.executable, "-I", "-c", _SYSTEM_SSL, env.origin.url])
    assert out.verdict == Verdict(verdict), out.reason
    # The evidence: in the foreign layout, OpenSSL's compiled-in bundle does not exist.
    exists = "False" if layout == "foreign" else "True"
    assert f"/usr/lib/ssl/cert.pem {exists}" in out.stderr, out.stderr


def test_a_client_built_for_the_distributions_paths_is_unaffected(make_tlsenv: Maker) -> None:
    # Debian's curl names /etc/ssl/certs/ca-certificates.crt itself, not OPENSSLDIR's files.
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed on this machine")
    env = make_tlsenv(layout="foreign", trust="system")
    env.run(["curl", "-fsS", "--max-time", "10", env.origin.url]).assert_ok()


@pytest.mark.slow
@pytest.mark.parametrize(("how", "verdict"), [("pyopenssl", "OK"), ("defaults", "REJECTED")])
def test_vendored_openssl_whose_openssldir_does_not_exist(
    make_tlsenv: Maker, how: str, verdict: str
) -> None:
    python = _vendored_python()
    env = make_tlsenv(layout="foreign", trust="system")
    out = env.run([python, "-I", "-c", _VENDORED, str(env.origin.port), how])
    assert "compiled-in /opt/pyca/cryptography/openssl/cert.pem False" in out.stderr, out.stderr
    # pyOpenSSL finds the distribution's bundle; the library's own defaults find nothing.
    assert out.verdict == Verdict(verdict), out.reason
