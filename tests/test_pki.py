"""The shape of every certificate the package makes, path by path.

CAs (roots, intermediates, the unconstrained kind), leaves (each server variant's knobs), the
self-signed leaf, the large stores' filler CAs and the faults' re-signed copies all come out of
one builder. What a client judges must not drift when that builder changes: which extensions,
in which order, critical or not, with which values; the validity window; the key type; the
signature algorithm. Each shape below was read off the certificates as they were made before
the builder was shared, and each test also has a twin that sees a changed certificate differ.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from pytest_tlsenv import faults
from pytest_tlsenv.pki import PKI, Authority, Leaf, self_signed_leaf
from pytest_tlsenv.store import filler_cas

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)

_CA_USAGE = (
    "KeyUsage",
    True,
    "digital_signature key_cert_sign crl_sign",
)
_CONSTRAINTS = (
    "NameConstraints",
    True,
    "permitted DNS:localhost DNS:test IP:127.0.0.0/8 IP:::1/128; excluded none",
)
_SKI = ("SubjectKeyIdentifier", False, "of own key")


def _key_usage(v: x509.KeyUsage) -> str:
    bits = [
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
    ]
    return " ".join(b for b in bits if getattr(v, b))


def _names(names: list[x509.GeneralName] | None) -> str:
    if names is None:
        return "none"
    words = []
    for n in names:
        prefix = "IP" if isinstance(n, x509.IPAddress) else "DNS"
        words.append(f"{prefix}:{n.value}")
    return " ".join(words)


def _value(ext: x509.Extension[x509.ExtensionType], own: x509.Certificate, issuer_key: Any) -> str:
    v = ext.value
    if isinstance(v, x509.BasicConstraints):
        return f"ca={v.ca} path_length={v.path_length}"
    if isinstance(v, x509.KeyUsage):
        return _key_usage(v)
    if isinstance(v, x509.NameConstraints):
        return f"permitted {_names(v.permitted_subtrees)}; excluded {_names(v.excluded_subtrees)}"
    if isinstance(v, x509.SubjectKeyIdentifier):
        assert v == x509.SubjectKeyIdentifier.from_public_key(own.public_key())  # type: ignore[arg-type]
        return "of own key"
    if isinstance(v, x509.AuthorityKeyIdentifier):
        expected = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key)
        return "of issuer key" if v == expected else "of another key"
    if isinstance(v, x509.ExtendedKeyUsage):
        return " ".join(oid._name for oid in v)
    if isinstance(v, x509.SubjectAlternativeName):
        return _names(list(v))
    raise AssertionError(f"unexpected extension {ext!r}")


def shape(cert: x509.Certificate, issuer_key: Any, made_at: dt.datetime) -> dict[str, Any]:
    """What a client judges in ``cert``, with the validity relative to ``made_at``."""
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key_type = f"EC {key.curve.name}"
    else:
        assert isinstance(key, rsa.RSAPublicKey)
        key_type = f"RSA {key.key_size}"
    hash_alg = cert.signature_hash_algorithm
    assert hash_alg is not None
    return {
        "version": cert.version.name,
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "key": key_type,
        "signature": f"{cert.signature_algorithm_oid._name}",
        "hash": hash_alg.name,
        # Whole seconds: every path truncates "now" to the second before adding offsets.
        "not_before": _offset(cert.not_valid_before_utc, made_at),
        "not_after": _offset(cert.not_valid_after_utc, made_at),
        "extensions": [
            (type(e.value).__name__, e.critical, _value(e, cert, issuer_key))
            for e in cert.extensions
        ],
        "serial_bits_min": cert.serial_number.bit_length() > 64,
    }


def _offset(when: dt.datetime, made_at: dt.datetime) -> str:
    # A certificate made within a couple of seconds of made_at: snap to whole minutes.
    minutes = round((when - made_at).total_seconds() / 60)
    return f"{minutes:+d} min"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ca_shape(cn: str, *, issuer: str | None = None, extra: list[Any] | None = None) -> Any:
    subject = f"CN={cn},O=pytest-tlsenv"
    return {
        "version": "v3",
        "subject": subject,
        "issuer": issuer or subject,
        "key": "EC secp256r1",
        "signature": "ecdsa-with-SHA256",
        "hash": "sha256",
        "not_before": "-60 min",
        "not_after": "+2880 min",
        "extensions": [("BasicConstraints", True, "ca=True path_length=None"), _CA_USAGE, _SKI]
        + (extra or []),
        "serial_bits_min": True,
    }


def _leaf_shape(
    cn: str, issuer: str, *, eku: str = "serverAuth", san: str | None = None, **over: Any
) -> Any:
    extensions: list[Any] = [
        ("BasicConstraints", True, "ca=False path_length=None"),
        ("AuthorityKeyIdentifier", False, "of issuer key"),
    ]
    if eku:
        extensions.append(("ExtendedKeyUsage", False, eku))
    if san is not None:
        extensions.append(("SubjectAlternativeName", False, san))
    return {
        "version": "v3",
        "subject": f"CN={cn}",
        "issuer": issuer,
        "key": "EC secp256r1",
        "signature": "ecdsa-with-SHA256",
        "hash": "sha256",
        "not_before": "-60 min",
        "not_after": "+2880 min",
        "extensions": extensions,
        "serial_bits_min": True,
    } | over


ORIGIN_SAN = "DNS:localhost IP:127.0.0.1 IP:::1 DNS:origin.tlsenv.test"
TRUSTED = "CN=tlsenv trusted CA,O=pytest-tlsenv"


@pytest.fixture(scope="module")
def trusted() -> Authority:
    return Authority.create("trusted")


def test_root_ca(trusted: Authority) -> None:
    made = _now()
    ca = Authority.create("trusted")
    assert shape(ca.cert, ca.key.public_key(), made) == _ca_shape(
        "tlsenv trusted CA", extra=[_CONSTRAINTS]
    )


def test_unconstrained_root_ca() -> None:
    made = _now()
    ca = Authority.create("wide", common_name="wide open", constrained=False)
    assert shape(ca.cert, ca.key.public_key(), made) == _ca_shape("wide open")


def test_intermediate_ca(trusted: Authority) -> None:
    made = _now()
    ca = Authority.create("intermediate", common_name="tlsenv intermediate CA", parent=trusted)
    assert shape(ca.cert, trusted.key.public_key(), made) == _ca_shape(
        "tlsenv intermediate CA",
        issuer=TRUSTED,
        extra=[_CONSTRAINTS, ("AuthorityKeyIdentifier", False, "of issuer key")],
    )


def test_ca_with_given_validity() -> None:
    made = _now().replace(microsecond=0)
    ca = Authority.create("old", not_before=made - 10 * DAY, not_after=made - 5 * DAY)
    got = shape(ca.cert, ca.key.public_key(), made)
    assert (got["not_before"], got["not_after"]) == ("-14400 min", "-7200 min")


def test_origin_leaf(trusted: Authority) -> None:
    made = _now()
    leaf = trusted.issue()
    assert shape(leaf.cert, trusted.key.public_key(), made) == _leaf_shape(
        "localhost", TRUSTED, san=ORIGIN_SAN
    )


def test_leaf_for_ip_only_has_a_dns_free_cn(trusted: Authority) -> None:
    made = _now()
    leaf = trusted.issue(("127.0.0.1",))
    assert shape(leaf.cert, trusted.key.public_key(), made) == _leaf_shape(
        "tlsenv leaf", TRUSTED, san="IP:127.0.0.1"
    )


def test_cn_only_leaf_with_client_eku(trusted: Authority) -> None:
    made = _now()
    leaf = trusted.issue(("localhost",), common_name="localhost", san=False)
    assert shape(leaf.cert, trusted.key.public_key(), made) == _leaf_shape("localhost", TRUSTED)
    leaf = trusted.issue(eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    assert shape(leaf.cert, trusted.key.public_key(), made) == _leaf_shape(
        "localhost", TRUSTED, eku="clientAuth", san=ORIGIN_SAN
    )
    leaf = trusted.issue(eku=())
    assert shape(leaf.cert, trusted.key.public_key(), made) == _leaf_shape(
        "localhost", TRUSTED, eku="", san=ORIGIN_SAN
    )


def test_leaf_with_rsa_key_and_validity(trusted: Authority) -> None:
    made = _now().replace(microsecond=0)
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    leaf = trusted.issue(key=key, not_before=made + DAY, not_after=made + DAY + HOUR)
    assert leaf.key is key
    assert shape(leaf.cert, trusted.key.public_key(), made) == _leaf_shape(
        "localhost",
        TRUSTED,
        san=ORIGIN_SAN,
        key="RSA 1024",
        not_before="+1440 min",
        not_after="+1500 min",
    )


def test_every_server_variant_is_signed_as_before(tmp_path: Any) -> None:
    pki = PKI(tmp_path)
    made = _now()
    trusted_key = pki.authorities["trusted"].key.public_key()
    intermediate = "CN=tlsenv intermediate CA,O=pytest-tlsenv"
    expected = {
        "good": _leaf_shape("localhost", TRUSTED, san=ORIGIN_SAN),
        "expired": _leaf_shape(
            "localhost", TRUSTED, san=ORIGIN_SAN, not_before="-4320 min", not_after="-1440 min"
        ),
        "wrong-host": _leaf_shape("wrong.tlsenv.test", TRUSTED, san="DNS:wrong.tlsenv.test"),
        "constraint-violation": _leaf_shape(
            "localhost", TRUSTED, san=ORIGIN_SAN + " DNS:evil.example.com"
        ),
        "incomplete-chain": _leaf_shape(
            "localhost",
            intermediate,
            san=ORIGIN_SAN,
            extensions=[
                ("BasicConstraints", True, "ca=False path_length=None"),
                ("AuthorityKeyIdentifier", False, "of another key"),  # the intermediate's
                ("ExtendedKeyUsage", False, "serverAuth"),
                ("SubjectAlternativeName", False, ORIGIN_SAN),
            ],
        ),
    }
    for variant, want in expected.items():
        assert shape(pki.server_leaf(variant).cert, trusted_key, made) == want, variant


def test_self_signed_leaf() -> None:
    made = _now()
    leaf = self_signed_leaf()
    assert isinstance(leaf, Leaf)
    assert leaf.chain == ()
    assert shape(leaf.cert, leaf.key.public_key(), made) == _leaf_shape(
        "localhost",
        "CN=localhost",
        san=ORIGIN_SAN,
        extensions=[
            ("BasicConstraints", True, "ca=False path_length=None"),
            ("ExtendedKeyUsage", False, "serverAuth"),
            ("SubjectAlternativeName", False, ORIGIN_SAN),
        ],
    )
    leaf.cert.verify_directly_issued_by(leaf.cert)


def test_filler_ca() -> None:
    # Fillers are made once per process, maybe by an earlier test: the window is what counts.
    _hash, pem = filler_cas(7)[6]
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.not_valid_before_utc <= _now()
    made = cert.not_valid_before_utc + HOUR
    cn = "tlsenv filler CA #0000007"
    assert shape(cert, cert.public_key(), made) == {
        "version": "v3",
        "subject": f"CN={cn},O=pytest-tlsenv",
        "issuer": f"CN={cn},O=pytest-tlsenv",
        "key": "EC secp256r1",
        "signature": "ecdsa-with-SHA256",
        "hash": "sha256",
        "not_before": "-60 min",
        "not_after": "+2880 min",
        "extensions": [("BasicConstraints", True, "ca=True path_length=None"), _CONSTRAINTS],
        "serial_bits_min": True,
    }
    cert.verify_directly_issued_by(cert)  # the patched signature holds


@pytest.mark.parametrize("is_ca", [True, False])
def test_resigned_ca(trusted: Authority, is_ca: bool) -> None:
    made = _now().replace(microsecond=0)
    cert = faults._resign(
        trusted, not_before=made - 10 * DAY, not_after=made - 5 * DAY, is_ca=is_ca
    )
    assert shape(cert, trusted.key.public_key(), made) == {
        "version": "v3",
        "subject": TRUSTED,
        "issuer": TRUSTED,
        "key": "EC secp256r1",
        "signature": "ecdsa-with-SHA256",
        "hash": "sha256",
        "not_before": "-14400 min",
        "not_after": "-7200 min",
        "extensions": [
            ("BasicConstraints", True, f"ca={is_ca} path_length=None"),
            _SKI,
            _CONSTRAINTS,
        ],
        "serial_bits_min": True,
    }
    assert cert.public_key() == trusted.cert.public_key()
    assert cert.serial_number != trusted.cert.serial_number


def test_resigning_an_unconstrained_ca_adds_no_constraints() -> None:
    made = _now().replace(microsecond=0)
    ca = Authority.create("wide", constrained=False)
    cert = faults._resign(ca, not_before=made, not_after=made + DAY, is_ca=True)
    got = shape(cert, ca.key.public_key(), made)
    assert got["extensions"] == [("BasicConstraints", True, "ca=True path_length=None"), _SKI]


def test_shape_sees_a_changed_certificate(trusted: Authority) -> None:
    """The negative twin: a certificate that differs in any judged way has another shape."""
    made = _now()
    good = shape(trusted.issue().cert, trusted.key.public_key(), made)
    assert shape(trusted.issue().cert, trusted.key.public_key(), made) == good
    # Another issuer key: the AKI no longer names it.
    other = Authority.create("other")
    assert shape(other.issue().cert, trusted.key.public_key(), made) != good
    # Same extensions, another order (what a careless shared builder would produce).
    key = ec.generate_private_key(ec.SECP256R1())
    base = trusted.issue().cert
    builder = (
        x509.CertificateBuilder()
        .subject_name(base.subject)
        .issuer_name(base.issuer)
        .public_key(key.public_key())
        .serial_number(base.serial_number)
        .not_valid_before(base.not_valid_before_utc)
        .not_valid_after(base.not_valid_after_utc)
    )
    for ext in reversed(list(base.extensions)):
        builder = builder.add_extension(ext.value, ext.critical)
    reordered = builder.sign(trusted.key, hashes.SHA256())
    assert shape(reordered, trusted.key.public_key(), made) != good
    # A constraint dropped from a CA.
    assert shape(Authority.create("trusted", constrained=False).cert, None, made) != _ca_shape(
        "tlsenv trusted CA", extra=[_CONSTRAINTS]
    )
