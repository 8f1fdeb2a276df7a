"""Every OS layout: the paths it creates, the variables it sets, and that clients trust it.

With only the layout's variables (and explicit --cacert/--capath where the layout has them),
python's ssl and curl complete a handshake with the origin (a leaf of the trusted CA) and
refuse an origin whose leaf comes from the session's ``untrusted`` CA (the negative twin).
``openssl verify -CApath`` checks the hashed directory on its own (``cert_store_stats()``
cannot see a capath: OpenSSL loads it lazily).
"""

from __future__ import annotations

import os
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_tlsenv import LAYOUTS, PKI, Origin, TLSEnv, Verdict

pytestmark = pytest.mark.nonroot

# What each layout must look like: paths (relative to the store root) that exist, and the
# variables' targets (relative). Written out, not derived, so a change to LAYOUTS shows here.
EXPECTED: dict[str, dict[str, object]] = {
    "debian": {
        "paths": [
            "etc/ssl/certs/ca-certificates.crt",
            "etc/ssl/certs/tlsenv-trusted.pem",
            "usr/share/ca-certificates/tlsenv/tlsenv-trusted.crt",
            "usr/local/share/ca-certificates",
        ],
        "SSL_CERT_FILE": "etc/ssl/certs/ca-certificates.crt",
        "SSL_CERT_DIR": "etc/ssl/certs",
    },
    # Debian's store; what differs (OPENSSLDIRs hidden) shows only in a mount namespace.
    "foreign": {
        "paths": [
            "etc/ssl/certs/ca-certificates.crt",
            "etc/ssl/certs/tlsenv-trusted.pem",
            "usr/share/ca-certificates/tlsenv/tlsenv-trusted.crt",
            "usr/local/share/ca-certificates",
        ],
        "SSL_CERT_FILE": "etc/ssl/certs/ca-certificates.crt",
        "SSL_CERT_DIR": "etc/ssl/certs",
    },
    "rhel": {
        "paths": [
            "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
            "etc/pki/tls/certs/ca-bundle.crt",
            "etc/pki/tls/cert.pem",
            "etc/pki/tls/certs/tlsenv-trusted.pem",
            "etc/pki/ca-trust/source/anchors/tlsenv-trusted.crt",
            "etc/ssl/certs/tlsenv-trusted.pem",
        ],
        "SSL_CERT_FILE": "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        "SSL_CERT_DIR": "etc/pki/tls/certs",
    },
    "alpine": {
        "paths": [
            "etc/ssl/cert.pem",
            "etc/ssl/certs/ca-certificates.crt",
            "etc/ssl/certs/tlsenv-trusted.pem",
            "usr/share/ca-certificates/tlsenv/tlsenv-trusted.crt",
            "usr/local/share/ca-certificates",
        ],
        "SSL_CERT_FILE": "etc/ssl/cert.pem",
        "SSL_CERT_DIR": "etc/ssl/certs",
    },
    # Such machines have only the one variable: the other is unset, not an empty place.
    "bundle-only": {
        "paths": ["etc/ssl/cert.pem"],
        "SSL_CERT_FILE": "etc/ssl/cert.pem",
        "SSL_CERT_DIR": None,
    },
    "dir-only": {
        "paths": ["etc/ssl/certs/tlsenv-trusted.pem"],
        "SSL_CERT_FILE": None,
        "SSL_CERT_DIR": "etc/ssl/certs",
    },
}


@pytest.fixture
def untrusted_origin(tlsenv_pki: PKI) -> Iterator[Origin]:
    """An origin presenting a leaf of the session's ``untrusted`` CA (in no store)."""
    leaf = tlsenv_pki.authorities["untrusted"].issue()
    origin = Origin(tlsenv_pki.server_context(leaf)).start()
    try:
        yield origin
    finally:
        origin.stop()


def test_every_layout_is_checked() -> None:
    assert set(EXPECTED) == set(LAYOUTS)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layout_paths_and_variables(make_tlsenv, tlsenv_pki: PKI, layout: str) -> None:  # type: ignore[no-untyped-def]
    env: TLSEnv = make_tlsenv(layout=layout)
    root = env.store.root
    want = EXPECTED[layout]
    for rel in want["paths"]:  # type: ignore[attr-defined]
        assert os.path.exists(root / rel), f"{layout}: {rel} missing\n{env.store.listing()}"
    for rel in LAYOUTS[layout].paths():
        assert os.path.lexists(root / rel), rel
    for var in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        rel = want[var]
        assert env.environ.get(var) == (None if rel is None else str(root / str(rel))), var
    trusted = tlsenv_pki.authorities["trusted"]
    if LAYOUTS[layout].cert_dir:
        # A c_rehash-style link by subject hash, resolving to the CA itself.
        link = Path(env.environ["SSL_CERT_DIR"]) / f"{trusted.subject_hash}.0"
        assert link.read_bytes() == trusted.cert_pem
    if LAYOUTS[layout].bundle:
        assert trusted.cert_pem in Path(env.environ["SSL_CERT_FILE"]).read_bytes()


def _urlopen(url: str) -> bytes:
    with urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=5) as r:
        data: bytes = r.read()
        return data


def _curl(env: TLSEnv, url: str) -> list[str]:
    lay = env.store.layout
    argv = ["curl", "-fsS", "--max-time", "5"]
    if lay.bundle:
        argv += ["--cacert", env.store.env["SSL_CERT_FILE"]]
    if lay.cert_dir:
        argv += ["--capath", env.environ["SSL_CERT_DIR"]]
    return [*argv, url]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_python_ssl_trusts_the_layout(make_tlsenv, untrusted_origin: Origin, layout: str) -> None:  # type: ignore[no-untyped-def]
    env: TLSEnv = make_tlsenv(layout=layout)
    env.call(lambda: _urlopen(env.origin.url)).assert_ok()
    # Twin: a leaf of a CA the layout does not hold is refused, for a trust reason.
    out = env.call(lambda: _urlopen(untrusted_origin.url))
    out.assert_rejected()
    assert "certificate verify failed" in out.reason


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_curl_trusts_the_layout(make_tlsenv, untrusted_origin: Origin, layout: str) -> None:  # type: ignore[no-untyped-def]
    env: TLSEnv = make_tlsenv(layout=layout)
    env.run(_curl(env, env.origin.url)).assert_ok()
    out = env.run(_curl(env, untrusted_origin.url))
    out.assert_rejected()
    assert "SSL certificate problem" in out.stderr


@pytest.mark.parametrize("layout", [n for n, lay in LAYOUTS.items() if lay.cert_dir])
def test_openssl_verify_capath(make_tlsenv, tlsenv_pki: PKI, layout: str) -> None:  # type: ignore[no-untyped-def]
    env: TLSEnv = make_tlsenv(layout=layout)
    leaves = env.root / "leaves"
    leaves.mkdir()
    good = leaves / "good.pem"
    good.write_bytes(tlsenv_pki.origin_leaf.cert_pem)
    bad = leaves / "untrusted.pem"
    bad.write_bytes(tlsenv_pki.authorities["untrusted"].issue().cert_pem)
    capath = env.environ["SSL_CERT_DIR"]
    verify = ["openssl", "verify", "-no-CAfile", "-no-CAstore", "-CApath", capath]
    ok = env.run([*verify, str(good)])
    assert ok.returncode == 0, ok.explain("verify OK")
    assert f"{good}: OK" in ok.stdout
    no = env.run([*verify, str(bad)])
    assert no.returncode == 2, no.explain("verify to fail")
    assert "unable to get local issuer certificate" in no.stderr + no.stdout


@pytest.mark.parametrize("layout", ["rhel", "alpine", "dir-only"])
def test_faults_follow_the_layout(make_tlsenv, layout: str) -> None:  # type: ignore[no-untyped-def]
    # The same fault, in another layout's cert dir, bites the same way: the capath-only
    # client loses the shadowed CA; the full default context still connects.
    env: TLSEnv = make_tlsenv(scenario="unreadable-file", placement="shadow", layout=layout)
    (applied,) = env.applied
    assert str(applied.paths[0]).startswith(env.environ["SSL_CERT_DIR"])
    capath = env.environ["SSL_CERT_DIR"]

    def capath_only() -> bytes:
        ctx = ssl.create_default_context(capath=capath)
        with urllib.request.urlopen(env.origin.url, context=ctx, timeout=5) as r:
            data: bytes = r.read()
            return data

    env.call(capath_only).assert_verdict(Verdict.REJECTED)
    # With a bundle, OK. In dir-only (no bundle to fall back on), OpenSSL 3's default paths
    # add the cert dir twice, as a by_dir lookup (stops at the bad .0) and as an OSSL_STORE
    # "file:" URI (X509_LOOKUP_store), whose directory search meets the slots in the order the
    # directory lists them: OK when the healthy .1 comes first (ext4's hash order here),
    # REJECTED when the unreadable .0 does (a tmpfs lists the newest entry first).
    default = env.call(lambda: _urlopen(env.origin.url))
    if layout == "dir-only":
        default.assert_verdict(Verdict.OK, Verdict.REJECTED)
    else:
        default.assert_ok()
