"""pytest_tlsenv.subjecthash against the real thing: the ``openssl`` binary.

Every accepted subject goes into one directory that ``openssl rehash`` hashes in a
single run (the very ``HHHHHHHH.N`` links the module exists to reproduce); the
names OpenSSL refuses are checked one ``openssl x509`` at a time. Names that
``cryptography`` cannot build are spliced, as DER, into a certificate it did build:
``openssl x509`` does not check the signature, so the splice is harmless.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import ssl
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from pytest_tlsenv.subjecthash import (
    MalformedNameError,
    _canonical_rdns,
    _read,
    _tlv,
    canonical_name_der,
    issuer_hash,
    name_hash,
    subject_hash,
)

OPENSSL = "/usr/bin/openssl"
needs_openssl = pytest.mark.skipif(not Path(OPENSSL).exists(), reason=f"{OPENSSL} not installed")

Attr = x509.NameAttribute
CN, ORG, UNIT, COUNTRY = (
    NameOID.COMMON_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.COUNTRY_NAME,
)
CN_OID = b"\x06\x03\x55\x04\x03"  # DER of OID 2.5.4.3 (commonName)


def _attr(oid: x509.ObjectIdentifier, value: str, asn1_type: _ASN1Type) -> x509.NameAttribute[str]:
    return Attr(oid, value, _type=asn1_type)


def _rdn(*attrs: x509.NameAttribute[str]) -> x509.RelativeDistinguishedName:
    return x509.RelativeDistinguishedName(attrs)


def _raw_name(*rdns: list[tuple[int, bytes]]) -> bytes:
    """DER Name of commonName values given as (tag, content), one list per RDN, unsorted."""
    return _tlv(
        0x30,
        b"".join(
            _tlv(0x31, b"".join(_tlv(0x30, CN_OID + _tlv(t, v)) for t, v in rdn)) for rdn in rdns
        ),
    )


# Subjects OpenSSL accepts: an x509.Name, or raw Name DER that cryptography cannot build.
ACCEPTED: dict[str, x509.Name | bytes] = {
    "mixed-case": x509.Name(
        [Attr(COUNTRY, "US"), Attr(ORG, "PyTest TLSEnv"), Attr(CN, "Root CA One")]
    ),
    "rdn-order-kept": x509.Name([Attr(CN, "zz Last"), Attr(ORG, "mm Middle"), Attr(COUNTRY, "AA")]),
    "spaces-and-tabs": x509.Name(
        [Attr(CN, "  Lead And Trail  "), Attr(ORG, "inner   runs\tand\t\t tabs")]
    ),
    "ascii-control-whitespace": x509.Name([Attr(CN, "\t\n\x0b\x0c\r Ctl \r\n X \x0b")]),
    # ossl_isspace knows only \t \n \v \f \r and space; Python's str.split() knows more.
    "not-whitespace-for-openssl": x509.Name([Attr(CN, "\x1cA\x1fB \x85C\u00a0D\u3000 E\u2003")]),
    "non-ascii-utf8": x509.Name(
        [Attr(CN, "Ünïcödé  Çà"), Attr(ORG, "認証局 テスト"), Attr(UNIT, "ΣΊΣΥΦΟΣ İstanbul")]
    ),
    "printable-and-ia5": x509.Name(
        [
            _attr(CN, "Mixed  Case ", _ASN1Type.PrintableString),
            _attr(NameOID.EMAIL_ADDRESS, " Admin@Example.COM", _ASN1Type.IA5String),
        ]
    ),
    # cryptography writes UTF-8 bytes under any tag; OpenSSL reads one-byte types as Latin-1.
    "ia5-non-ascii": x509.Name([_attr(CN, "Ünïcödé IA5", _ASN1Type.IA5String)]),
    "t61-non-ascii": x509.Name([_attr(CN, "Ünïcödé  T61", _ASN1Type.T61String)]),
    "bmp": x509.Name([_attr(CN, " BMP  Ünï 中文 ", _ASN1Type.BMPString)]),
    "universal": x509.Name([_attr(CN, "Univ \U0001f600  ÜNÏ", _ASN1Type.UniversalString)]),
    "numeric-kept-as-is": x509.Name(
        [_attr(NameOID.SERIAL_NUMBER, "  12  34 ", _ASN1Type.NumericString)]
    ),
    "bitstring-kept-as-is": x509.Name(
        [
            Attr(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00AB  c", _type=_ASN1Type.BitString),
            Attr(CN, "X"),
        ]
    ),
    # DER sorts a SET OF by encoding; canonicalisation changes the encodings, so the order.
    "multi-valued-case-reorders": x509.Name([_rdn(Attr(CN, "B"), Attr(CN, "a"))]),
    "multi-valued-length-reorders": x509.Name([_rdn(Attr(CN, "ab"), Attr(CN, "  X  "))]),
    "multi-valued-type-reorders": x509.Name(
        [
            _rdn(_attr(ORG, "b", _ASN1Type.UTF8String), _attr(ORG, "a", _ASN1Type.PrintableString)),
            _rdn(Attr(CN, "Leaf")),
        ]
    ),
    "multi-valued-duplicate-after-canon": x509.Name([_rdn(Attr(CN, "a"), Attr(CN, " A"))]),
    "multi-valued-mixed-oids": x509.Name(
        [_rdn(Attr(COUNTRY, "DE")), _rdn(Attr(CN, "Zeta"), Attr(UNIT, "alpha"), Attr(ORG, "MiXeD"))]
    ),
    "long-form-to-short-form": x509.Name(
        [Attr(ORG, "A" + " " * 150 + "B"), Attr(UNIT, "Ou" * 150)]
    ),
    "empty-subject": x509.Name([]),
    # Raw DER below. cryptography loads these certificates but cannot decode their subject.
    "t61-latin1-bytes": _raw_name([(0x14, b"\xdcber  ALLES")]),
    "unknown-tag-kept-as-is": _raw_name([(0x1D, b"Odd  TAG")]),
    "sequence-value-kept-as-is": _raw_name([(0x30, _tlv(0x0C, b"In  Sequence"))]),
    "empty-rdn-dropped": _raw_name([(0x0C, b"Before")], [], [(0x0C, b"After")]),
}

# DER that cryptography refuses to load at all, so only name_hash can take it.
RAW_ONLY: dict[str, bytes] = {
    "printable-wildcard": _raw_name([(0x13, b"*.Example.COM"), (0x13, b"Who@Example.COM")]),
    "printable-latin1-bytes": _raw_name([(0x13, b"M\xdcNCHEN")]),
    "unsorted-set": _raw_name([(0x0C, b"b"), (0x0C, b"a")]),
}

# Subjects the openssl binary refuses to load; the module must refuse them too.
REJECTED: dict[str, x509.Name | bytes] = {
    "visiblestring": x509.Name([_attr(CN, "Visible", _ASN1Type.VisibleString)]),
    "octet-string": x509.Name([_attr(CN, "Octets", _ASN1Type.OctetString)]),
    "utctime": x509.Name([_attr(CN, "240101000000Z", _ASN1Type.UTCTime)]),
    "bmp-surrogate-pair": x509.Name([_attr(CN, "x\U0001f600", _ASN1Type.BMPString)]),
    "utf8-invalid": _raw_name([(0x0C, b"A\xdcB")]),
    "enumerated": _raw_name([(0x0A, b"\x01")]),
}

REORDERED = [case for case in ACCEPTED if case.endswith("-reorders")]


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _build(
    key: ec.EllipticCurvePrivateKey, subject: x509.Name, issuer: x509.Name
) -> x509.Certificate:
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def _cert_der(key: ec.EllipticCurvePrivateKey, subject: x509.Name | bytes) -> bytes:
    if isinstance(subject, x509.Name):
        return _build(key, subject, subject).public_bytes(serialization.Encoding.DER)
    placeholder = x509.Name([Attr(CN, "subject placeholder")])
    cert = _build(key, placeholder, x509.Name([Attr(CN, "Issuer")])).public_bytes(
        serialization.Encoding.DER
    )
    _, start, end = _read(cert, 0, len(cert))
    _, tbs_start, tbs_end = _read(cert, start, end)
    tbs = cert[tbs_start:tbs_end].replace(placeholder.public_bytes(), subject)
    return _tlv(0x30, _tlv(0x30, tbs) + cert[tbs_end:end])


def _name_der(subject: x509.Name | bytes) -> bytes:
    return subject.public_bytes() if isinstance(subject, x509.Name) else subject


def _hex(value: int) -> str:
    return f"{value:08x}"


def _openssl_x509(pem: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPENSSL, "x509", "-noout", *options, "-in", str(pem)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def certs(key: ec.EllipticCurvePrivateKey) -> dict[str, bytes]:
    subjects: Mapping[str, x509.Name | bytes] = {**ACCEPTED, **REJECTED, **RAW_ONLY}
    return {case: _cert_der(key, subject) for case, subject in subjects.items()}


@pytest.fixture(scope="module")
def openssl_hashes(
    certs: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """``openssl rehash`` over every accepted certificate: case id -> hash of its link."""
    directory = tmp_path_factory.mktemp("rehash")
    for case in [*ACCEPTED, *RAW_ONLY]:
        (directory / f"{case}.pem").write_text(ssl.DER_cert_to_PEM_cert(certs[case]))
    subprocess.run([OPENSSL, "rehash", str(directory)], check=True, capture_output=True)

    def links() -> Iterator[tuple[str, str]]:
        for link in directory.iterdir():
            if link.is_symlink():
                yield os.readlink(link).removesuffix(".pem"), link.name.split(".")[0]

    return dict(links())


def _naive_hash(name_der: bytes) -> int:
    """What a hash of the raw DER would give: no canonical form at all."""
    return int.from_bytes(hashlib.sha1(name_der, usedforsecurity=False).digest()[:4], "little")


def _canon_keeping_order(name_der: bytes) -> int:
    """Canonicalise each value, but forget to re-sort the RDN's SET OF afterwards."""
    canon = b"".join(_tlv(0x31, b"".join(atvs)) for atvs in _canonical_rdns(name_der) if atvs)
    return int.from_bytes(hashlib.sha1(canon, usedforsecurity=False).digest()[:4], "little")


@needs_openssl
@pytest.mark.parametrize("case", ACCEPTED)
def test_subject_hash_matches_openssl(
    case: str, certs: dict[str, bytes], openssl_hashes: dict[str, str]
) -> None:
    cert = x509.load_der_x509_certificate(certs[case])
    assert subject_hash(cert) == openssl_hashes[case]
    assert _hex(name_hash(_name_der(ACCEPTED[case]))) == openssl_hashes[case]


@needs_openssl
@pytest.mark.parametrize("case", RAW_ONLY)
def test_name_hash_matches_openssl_where_cryptography_cannot_load(
    case: str, certs: dict[str, bytes], openssl_hashes: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="asn1"):
        x509.load_der_x509_certificate(certs[case])
    assert _hex(name_hash(RAW_ONLY[case])) == openssl_hashes[case]


@needs_openssl
@pytest.mark.parametrize("case", REJECTED)
def test_names_openssl_rejects_are_rejected(
    case: str, certs: dict[str, bytes], tmp_path: Path
) -> None:
    pem = tmp_path / "cert.pem"
    pem.write_text(ssl.DER_cert_to_PEM_cert(certs[case]))
    assert _openssl_x509(pem, "-subject_hash").returncode != 0
    with pytest.raises(MalformedNameError):
        subject_hash(x509.load_der_x509_certificate(certs[case]))


@needs_openssl
def test_issuer_hash_matches_openssl(key: ec.EllipticCurvePrivateKey, tmp_path: Path) -> None:
    issuer = x509.Name([Attr(ORG, "  Issuing  ORG "), Attr(CN, "Intermediate\tCA")])
    cert = _build(key, x509.Name([Attr(CN, "Leaf.Example.COM")]), issuer)
    pem = tmp_path / "leaf.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    result = _openssl_x509(pem, "-subject_hash", "-issuer_hash")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [subject_hash(cert), issuer_hash(cert)]
    assert subject_hash(cert) != issuer_hash(cert)


@needs_openssl
@pytest.mark.parametrize(
    "case", ["mixed-case", "spaces-and-tabs", "non-ascii-utf8", "printable-and-ia5"]
)
def test_naive_raw_der_hash_differs(case: str, openssl_hashes: dict[str, str]) -> None:
    """Hashing ``public_bytes()`` as is gets the link name wrong: canonicalisation matters."""
    assert _hex(_naive_hash(_name_der(ACCEPTED[case]))) != openssl_hashes[case]


@needs_openssl
@pytest.mark.parametrize("case", REORDERED)
def test_canonicalising_without_resorting_differs(
    case: str, openssl_hashes: dict[str, str]
) -> None:
    """Keeping a multi-valued RDN in its original order gets the link name wrong."""
    name_der = _name_der(ACCEPTED[case])
    assert _canon_keeping_order(name_der) != name_hash(name_der)
    assert _hex(_canon_keeping_order(name_der)) != openssl_hashes[case]


def test_canonical_encoding_by_hand() -> None:
    name = x509.Name(
        [_attr(CN, "  Hello \t  WORLD ", _ASN1Type.PrintableString), Attr(COUNTRY, "US")]
    )
    cn = _tlv(0x30, CN_OID + _tlv(0x0C, b"hello world"))
    country = _tlv(0x30, b"\x06\x03\x55\x04\x06" + _tlv(0x0C, b"us"))
    assert canonical_name_der(name.public_bytes()) == _tlv(0x31, cn) + _tlv(0x31, country)


def test_empty_name_hashes_the_empty_string() -> None:
    assert canonical_name_der(b"\x30\x00") == b""
    assert _hex(name_hash(b"\x30\x00")) == "eea339da"  # SHA-1("") = da39a3ee..., little-endian


@pytest.mark.parametrize(
    ("der", "reason"),
    [
        pytest.param(b"", "truncated", id="empty-input"),
        pytest.param(b"\x30", "truncated", id="truncated-header"),
        pytest.param(b"\x30\x05\x31\x00", "overruns", id="truncated-content"),
        pytest.param(b"\x30\x00\x00", "single DER SEQUENCE", id="trailing-bytes"),
        pytest.param(b"\x31\x00", "single DER SEQUENCE", id="set-instead-of-sequence"),
        pytest.param(b"\x30\x80\x00\x00", "bad DER length", id="indefinite-length"),
        pytest.param(b"\x30\x81\x00", "non-minimal", id="non-minimal-length"),
        pytest.param(
            b"\x30\x82\x00\x80" + b"\x31\x00" * 64, "non-minimal", id="leading-zero-length"
        ),
        pytest.param(
            b"\x30\x85\x01\x00\x00\x00\x00", "bad DER length", id="length-of-length-too-big"
        ),
        pytest.param(b"\x30\x02\x30\x00", "expected SET", id="rdn-not-a-set"),
        pytest.param(b"\x30\x04\x31\x02\x30\x00", "truncated", id="atv-without-oid"),
        pytest.param(b"\x30\x02\x1f\x00", "multi-byte", id="multi-byte-tag"),
        pytest.param(
            _tlv(0x30, _tlv(0x31, _tlv(0x30, CN_OID + _tlv(0x0C, b"x") + b"\x05\x00"))),
            "trailing bytes",
            id="atv-trailing",
        ),
        pytest.param(_raw_name([(0x2C, _tlv(0x0C, b"BER"))]), "not DER", id="constructed-string"),
        pytest.param(
            _raw_name([(0x1C, b"\x00\x00\x00")]), "tag 0x1c", id="universalstring-bad-length"
        ),
        pytest.param(_raw_name([(0x1E, b"\xd8\x00")]), "tag 0x1e", id="bmpstring-lone-surrogate"),
    ],
)
def test_malformed_der_raises(der: bytes, reason: str) -> None:
    with pytest.raises(MalformedNameError, match=reason) as excinfo:
        name_hash(der)
    assert isinstance(excinfo.value, ValueError)
