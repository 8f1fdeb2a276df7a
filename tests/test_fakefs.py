"""``backend="fakefs"``: the store inside pyfakefs, for Python code that finds trust files itself.

The client here is a small pure-Python bundle finder in the style of openssl-probe and
certifi-like lookups: ``SSL_CERT_FILE`` first, then the well-known system paths, returning the
first readable file that holds a PEM certificate. A careless twin checks ``os.path.exists``
and then opens, so an unreadable bundle escapes as a PermissionError (CRASHED in-process).
"""

from __future__ import annotations

import os
import ssl

import pytest

from pytest_tlsenv import PKI, TLSEnv, Verdict
from pytest_tlsenv.fakefs import fake_store

pytestmark = pytest.mark.nonroot

# openssl-probe 0.1's candidate files, in its order (CLIENT-FACTS.md).
CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
)


def find_bundle() -> str | None:
    """The first readable file holding a PEM certificate: $SSL_CERT_FILE, then CANDIDATES."""
    env = os.environ.get("SSL_CERT_FILE")
    for path in ((env,) if env else ()) + CANDIDATES:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:  # missing, unreadable, a directory...: try the next one
            continue
        if b"-----BEGIN CERTIFICATE-----" in data:
            return path
    return None


def find_bundle_careless() -> str | None:
    """Like :func:`find_bundle`, but trusts ``os.path.exists``: unreadable files escape."""
    env = os.environ.get("SSL_CERT_FILE")
    for path in ((env,) if env else ()) + CANDIDATES:
        if os.path.exists(path):
            with open(path, "rb") as f:
                if b"-----BEGIN CERTIFICATE-----" in f.read():
                    return path
    return None


@pytest.mark.tlsenv(backend="fakefs")
def test_finder_finds_the_store_bundle(tlsenv: TLSEnv) -> None:
    out = tlsenv.call(find_bundle)
    # FAILED only because a finder never reaches the origin; what it returned is the point.
    assert out.verdict is Verdict.FAILED
    assert out.exception is None
    assert out.value == tlsenv.environ["SSL_CERT_FILE"]


@pytest.mark.tlsenv(backend="fakefs")
def test_system_paths_hold_the_scenario_store(tlsenv: TLSEnv, tlsenv_pki: PKI) -> None:
    def system_bundle() -> bytes:
        with open("/etc/ssl/certs/ca-certificates.crt", "rb") as f:
            return f.read()

    out = tlsenv.call(system_bundle)
    assert out.exception is None
    # The scenario's bundle, not the host's ~140 CAs.
    assert out.value == tlsenv_pki.authorities["trusted"].cert_pem


@pytest.mark.tlsenv(scenario="unreadable-bundle", backend="fakefs")
def test_permission_fault_bites_in_fakefs_even_as_root(tlsenv: TLSEnv) -> None:
    bundle = tlsenv.environ["SSL_CERT_FILE"]

    def read() -> bytes:
        with open(bundle, "rb") as f:
            return f.read()

    out = tlsenv.call(read)
    assert isinstance(out.exception, PermissionError)
    assert out.exception.errno == 13
    # The robust finder skips it (its system-path twin is denied too: nothing is left);
    # the careless one lets PermissionError escape: CRASHED.
    robust = tlsenv.call(find_bundle)
    assert robust.exception is None
    assert robust.value is None
    careless = tlsenv.call(find_bundle_careless)
    careless.assert_verdict(Verdict.CRASHED)
    assert isinstance(careless.exception, PermissionError)


@pytest.mark.tlsenv(backend="fakefs", layout="alpine")
def test_healthy_twin_careless_finder_is_fine(tlsenv: TLSEnv) -> None:
    # Negative twin of the above: the careless finder works when nothing is broken.
    out = tlsenv.call(find_bundle_careless)
    assert out.exception is None
    assert out.value == tlsenv.environ["SSL_CERT_FILE"]


@pytest.mark.tlsenv(scenario="unreadable-file", backend="fakefs")
def test_fakefs_is_emulated_non_root(tlsenv: TLSEnv) -> None:
    entry = str(tlsenv.applied[0].paths[0])

    def who() -> tuple[int, bool]:
        try:
            with open(entry, "rb"):
                return os.getuid(), True
        except PermissionError:
            return os.getuid(), False

    out = tlsenv.call(who)
    assert out.value is not None
    uid, readable = out.value
    assert not readable
    assert uid == 1  # pyfakefs with allow_root_user=False is uid 1, root or not


@pytest.mark.tlsenv(scenario="fifo", backend="fakefs", timeout=2)
def test_fakefs_fifo_does_not_block(tlsenv: TLSEnv) -> None:
    entry = str(tlsenv.applied[0].paths[0])

    def read() -> bytes:
        with open(entry, "rb") as f:
            return f.read()

    out = tlsenv.call(read)
    assert out.exception is None  # documented: pyfakefs cannot block on a FIFO
    assert out.value == b""


@pytest.mark.tlsenv(backend="fakefs", layout="rhel")
def test_openssl_does_not_see_the_fake_store(tlsenv: TLSEnv) -> None:
    # Python sees the rhel bundle at its system path; OpenSSL opens the real path, which this
    # Debian machine does not have. No handshake ever runs against a fakefs store.
    path = "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"
    assert not os.path.exists(path)  # the real machine
    seen = tlsenv.call(lambda: os.path.exists(path))
    assert seen.value is True
    out = tlsenv.call(lambda: ssl.create_default_context(cafile=path))
    assert isinstance(out.exception, FileNotFoundError)


def test_fake_store_as_a_context_manager(make_tlsenv) -> None:  # type: ignore[no-untyped-def]
    # Library first: the same without the marker, on any TrustStore.
    env: TLSEnv = make_tlsenv(scenario="dangling-symlink")
    entry = str(env.applied[0].paths[0])
    with fake_store(env.store):
        assert os.path.islink(entry)
        assert not os.path.exists(entry)  # dangling in the fake fs too
        fake_system = sorted(os.listdir("/etc/ssl/certs"))
    # The scenario's few entries at the system path, not the host's ~140 CAs.
    assert "tlsenv-dangling-symlink.pem" in fake_system
    assert len(fake_system) < 10
    assert "tlsenv-dangling-symlink.pem" not in os.listdir("/etc/ssl/certs")
    assert os.path.islink(entry)  # the real store is untouched
