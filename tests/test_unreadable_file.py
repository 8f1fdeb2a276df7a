"""The uv 5448 fault, ``unreadable-file``, with clients that do not read every file.

OpenSSL (python's ssl, curl) looks a cert dir up lazily by subject hash: ``HHHHHHHH.0`` of the
*issuer it needs*. The decoy sits under its own hash, so OpenSSL never opens it and connects:
OK is the robust answer, and it is what they give. The shadow placement puts the unreadable
file on the trusted CA's own ``.0`` slot, and then OpenSSL gives up at that slot (by_dir stops
at the first file that fails to load), so a capath-only client is REJECTED - gracefully.
"""

from __future__ import annotations

import os
import ssl
import urllib.request

import pytest

from pytest_tlsenv import TLSEnv, Verdict

pytestmark = pytest.mark.nonroot


def _fault_entry(env: TLSEnv) -> str:
    (applied,) = env.applied
    return str(applied.paths[0])


@pytest.mark.tlsenv(scenario="unreadable-file")
def test_fault_bites_a_process_started_by_the_runner(tlsenv: TLSEnv) -> None:
    entry = _fault_entry(tlsenv)
    out = tlsenv.run(["cat", entry])
    assert out.returncode == 1
    assert "Permission denied" in out.stderr
    # Negative twin: the healthy CA next to it is readable by the very same runner.
    healthy = tlsenv.run(["cat", str(tlsenv.store.bundle)])
    assert healthy.returncode == 0
    assert "BEGIN CERTIFICATE" in healthy.stdout


@pytest.mark.tlsenv(scenario="unreadable-file")
def test_fault_bites_in_process(tlsenv: TLSEnv) -> None:
    entry = _fault_entry(tlsenv)

    def read() -> bytes:
        with open(entry, "rb") as f:
            return f.read()

    out = tlsenv.call(read)
    assert isinstance(out.exception, PermissionError)
    assert out.exception.errno == 13  # EACCES
    # Negative twin: a healthy file reads fine under the same call().
    bundle = tlsenv.store.bundle
    assert bundle is not None
    assert tlsenv.call(bundle.read_bytes).exception is None


@pytest.mark.tlsenv(scenario="unreadable-file")
def test_fault_is_owned_by_the_fault_uid(tlsenv: TLSEnv) -> None:
    st = os.stat(_fault_entry(tlsenv))
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_mode & 0o777) == (65533, 0o600)
    else:
        assert st.st_mode & 0o777 == 0
    listing = tlsenv.store.listing()
    assert "tlsenv-unreadable-file.pem" in listing
    assert ("-rw-------" if os.geteuid() == 0 else "----------") in listing


def _urlopen(url: str) -> bytes:
    # ssl.create_default_context() reads SSL_CERT_FILE / SSL_CERT_DIR, set by call().
    with urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=10) as r:
        data: bytes = r.read()
        return data


def _urlopen_capath(env: TLSEnv) -> bytes:
    ctx = ssl.create_default_context(capath=str(env.store.cert_dir))
    with urllib.request.urlopen(env.origin.url, context=ctx, timeout=10) as r:
        data: bytes = r.read()
        return data


@pytest.mark.tlsenv(scenario="unreadable-file")
def test_python_ssl_is_ok(tlsenv: TLSEnv) -> None:
    # OK because OpenSSL never opens the decoy (lookup by hash); see the module docstring.
    out = tlsenv.call(lambda: _urlopen(tlsenv.origin.url))
    out.assert_expected().assert_ok()
    assert out.value == b"tlsenv origin: ok\n"


@pytest.mark.tlsenv(scenario="unreadable-file")
def test_curl_is_ok(tlsenv: TLSEnv) -> None:
    # Explicit --cacert/--capath: Debian's curl would otherwise also load its compiled-in
    # bundle. OK for the same reason as python: the decoy's hash is never looked up.
    store = tlsenv.store
    out = tlsenv.run(
        [
            "curl",
            "-fsS",
            "--cacert",
            str(store.bundle),
            "--capath",
            str(store.cert_dir),
            tlsenv.origin.url,
        ]
    )
    out.assert_expected().assert_ok()


@pytest.mark.tlsenv(scenario="unreadable-file", placement="shadow")
def test_shadow_placement_bites_openssl(tlsenv: TLSEnv) -> None:
    # Only the cert dir: the unreadable file holds the trusted CA's .0 slot, OpenSSL stops there.
    out = tlsenv.call(lambda: _urlopen_capath(tlsenv))
    assert out.verdict is Verdict.REJECTED
    # pyenv's 3.11.7 says "unable to get local issuer certificate"; Debian's 3.11.2 raises a
    # plain SSLError "certificate verify failed". Both are the verification failing.
    assert "certificate verify failed" in out.reason
    out.assert_expected()  # {OK, REJECTED}: a clean refusal is graceful


@pytest.mark.tlsenv(placement="shadow")
def test_shadow_placement_without_fault_is_ok(tlsenv: TLSEnv) -> None:
    # Negative twin of the above: same capath-only context, healthy store -> OK.
    tlsenv.call(lambda: _urlopen_capath(tlsenv)).assert_ok()
