"""Large stores: ``extra_cas=N`` fills the store with N healthy CAs, hash-linked like c_rehash.

Timing lives in benchmarks/bench_store.py (10,000 CAs); here: correctness at a realistic size
(150, about Debian's count).
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import urllib.request

import pytest
from cryptography import x509

from pytest_tlsenv import TLSEnv
from pytest_tlsenv.store import filler_cas
from pytest_tlsenv.subjecthash import subject_hash

pytestmark = pytest.mark.nonroot


def _hash_links(env: TLSEnv) -> list[str]:
    cert_dir = env.store.cert_dir
    assert cert_dir is not None
    return sorted(n for n in os.listdir(cert_dir) if len(n) > 9 and n[8] == ".")


def test_fillers_are_distinct_safe_cas() -> None:
    fillers = filler_cas(200)
    assert len({h for h, _ in fillers}) == 200
    assert len({pem for _, pem in fillers}) == 200
    for hash_hex, pem in fillers[::50]:
        cert = x509.load_pem_x509_certificate(pem)
        assert subject_hash(cert) == hash_hex
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        constraints = cert.extensions.get_extension_for_class(x509.NameConstraints)
        assert constraints.critical
        assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=3)
    assert filler_cas(10) == fillers[:10]  # made once per process, reused


@pytest.mark.tlsenv(extra_cas=150)
def test_extra_cas_are_hash_linked(tlsenv: TLSEnv) -> None:
    links = _hash_links(tlsenv)
    assert len(links) == 151  # the trusted CA and 150 fillers
    bundle = tlsenv.store.bundle
    assert bundle is not None
    assert bundle.read_bytes().count(b"-----BEGIN CERTIFICATE-----") == 151
    # OpenSSL agrees with the names (a sample: `openssl x509` costs ~20 ms per file here).
    cert_dir = tlsenv.store.cert_dir
    assert cert_dir is not None
    sample = links[::10]
    script = 'for f in "$@"; do openssl x509 -noout -subject_hash -in "$f"; done'
    out = tlsenv.run(["sh", "-c", script, "sh", *(str(cert_dir / n) for n in sample)])
    assert out.returncode == 0, out.explain("openssl x509 on the sampled links")
    assert out.stdout.split() == [n[:8] for n in sample]


def _urlopen(url: str, **kw: str) -> bytes:
    ctx = ssl.create_default_context(**kw)
    with urllib.request.urlopen(url, context=ctx, timeout=5) as r:
        data: bytes = r.read()
        return data


@pytest.mark.tlsenv(extra_cas=150)
def test_clients_find_the_origin_ca_among_many(tlsenv: TLSEnv) -> None:
    tlsenv.call(lambda: _urlopen(tlsenv.origin.url)).assert_ok()
    capath = str(tlsenv.store.cert_dir)
    tlsenv.call(lambda: _urlopen(tlsenv.origin.url, capath=capath)).assert_ok()
    cafile = str(tlsenv.store.bundle)
    tlsenv.run(
        ["curl", "-fsS", "--cacert", cafile, "--capath", capath, tlsenv.origin.url]
    ).assert_ok()


@pytest.mark.tlsenv(scenario="empty-file", placement="shadow", extra_cas=150)
def test_shadow_among_many_still_bites(tlsenv: TLSEnv) -> None:
    # Negative twin: the fillers never stand in for the origin's CA.
    capath = str(tlsenv.store.cert_dir)
    tlsenv.call(lambda: _urlopen(tlsenv.origin.url, capath=capath)).assert_rejected()
