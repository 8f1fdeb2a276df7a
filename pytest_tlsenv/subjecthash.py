"""OpenSSL's subject-name hash (``openssl x509 -subject_hash``) in pure Python.

This is the ``HHHHHHHH`` in the ``HHHHHHHH.N`` links that ``openssl rehash`` and
``c_rehash`` create, and that OpenSSL's hashed ``CApath`` lookup expects.

OpenSSL (crypto/x509/x509_cmp.c, ``X509_NAME_hash_ex``) takes the SHA-1 of the
name's *canonical* encoding, built by ``x509_name_canon`` in
crypto/x509/x_name.c, and reads the first four digest bytes as a little-endian
integer. ``cryptography`` does not expose the ASN.1 string tag of attribute
values, and the canonical form depends on it, so the Name DER is parsed here.
The names are cut out of the certificate's own TBS bytes rather than re-encoded
by ``cert.subject.public_bytes()``: ``cryptography`` fails to decode names that
OpenSSL hashes happily (a ``*`` or ``@`` in a PrintableString, Latin-1 in a
T61String, uncommon value tags), and re-encoding is slower anyway.
"""

from __future__ import annotations

import hashlib

from cryptography import x509

from .errors import TLSEnvError

__all__ = [
    "MalformedNameError",
    "canonical_name_der",
    "issuer_hash",
    "name_hash",
    "subject_hash",
]

_SEQUENCE, _SET, _OID = 0x30, 0x31, 0x06
_UTF8, _UNIVERSAL, _BMP = 0x0C, 0x1C, 0x1E

# String types in ASN1_MASK_CANON (x_name.c), with the character width that
# ASN1_STRING_to_UTF8 (crypto/asn1/a_strex.c, tag2nbyte) assumes for them: the
# one-byte types, T61String included, are read as Latin-1. VisibleString is in
# the mask too, but OpenSSL cannot reach it: see _KEPT.
_CANON_CODECS = {
    _UTF8: "utf-8",
    0x13: "latin-1",  # PrintableString
    0x14: "latin-1",  # T61String / TeletexString
    0x16: "latin-1",  # IA5String
    _UNIVERSAL: "utf-32-be",
    _BMP: "utf-16-be",
}
_WIDE = frozenset({_UNIVERSAL, _BMP})

# Other values that X509_NAME_ENTRY's ASN1_PRINTABLE CHOICE accepts (the
# B_ASN1_PRINTABLE mask in include/openssl/asn1.h over tag2bit[] in
# crypto/asn1/tasn_dec.c): NumericString, BIT STRING, SEQUENCE and the
# B_ASN1_UNKNOWN tags. asn1_string_canon copies them unchanged. Every other tag
# (OCTET STRING, VisibleString, UTCTime, ENUMERATED, ...) makes d2i_X509 fail,
# so OpenSSL never computes a hash for such a name.
_KEPT = frozenset({0x03, 0x07, 0x08, 0x09, 0x0B, 0x0D, 0x0E, 0x0F, 0x12, 0x1D, _SEQUENCE})


class MalformedNameError(TLSEnvError, ValueError):
    """The bytes are not a DER Name that OpenSSL would accept."""


def _read(der: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Return (tag, content start, content end) of the DER TLV at ``pos``."""
    if end - pos < 2:
        raise MalformedNameError(f"truncated DER header at offset {pos}")
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if tag & 0x1F == 0x1F:
        raise MalformedNameError(f"multi-byte DER tag at offset {pos - 2}")
    if length & 0x80:
        count = length & 0x7F
        # 0x80 is BER's indefinite length, which DER forbids.
        if not 1 <= count <= 4 or end - pos < count:
            raise MalformedNameError(f"bad DER length at offset {pos - 1}")
        length = int.from_bytes(der[pos : pos + count], "big")
        if length < 0x80 or der[pos] == 0:  # DER wants the shortest length form
            raise MalformedNameError(f"non-minimal DER length at offset {pos - 1}")
        pos += count
    if length > end - pos:
        raise MalformedNameError(f"DER value at offset {pos} overruns its container")
    return tag, pos, pos + length


def _tlv(tag: int, content: bytes) -> bytes:
    """DER-encode ``content`` under a one-byte ``tag``."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def _canon_value(tag: int, content: bytes) -> bytes:
    """Mirror asn1_string_canon (x_name.c): UTF-8, squeezed, ASCII-lowercased."""
    utf8 = content
    # ASCII means the same in UTF-8 and Latin-1: only the wide types and
    # non-ASCII bytes need ASN1_STRING_to_UTF8's conversion (and validation).
    if tag in _WIDE or not content.isascii():
        try:
            text = content.decode(_CANON_CODECS[tag])
        except UnicodeDecodeError as exc:
            # ASN1_mbstring_copy (crypto/asn1/a_mbstr.c) rejects the same
            # input, so OpenSSL fails to load the certificate.
            raise MalformedNameError(f"invalid string of tag {tag:#04x}: {exc}") from exc
        # OpenSSL reads BMPString as UCS-2: a surrogate pair is two invalid
        # code points (type_str rejects them), whereas Python's UTF-16 joins it.
        if tag == _BMP and 2 * len(text) != len(content):
            raise MalformedNameError("BMPString holds a surrogate pair")
        if tag != _UTF8:
            utf8 = text.encode()
    # bytes.split() and bytes.lower() work only on ASCII bytes, like
    # ossl_isspace (\t \n \v \f \r and space) and ossl_tolower do: non-ASCII
    # whitespace and letters are left alone. Splitting strips both ends and
    # the join collapses each inner run to one space.
    return _tlv(_UTF8, b" ".join(utf8.split()).lower())


def _canonical_rdns(der: bytes) -> list[list[bytes]]:
    """Parse a DER Name into its RDNs of canonical AttributeTypeAndValue TLVs.

    Each RDN keeps the order of the input; sorting is the caller's job.
    """
    tag, pos, end = _read(der, 0, len(der))
    if tag != _SEQUENCE or end != len(der):
        raise MalformedNameError("not a single DER SEQUENCE (Name)")
    rdns: list[list[bytes]] = []
    while pos < end:
        tag, atv_pos, pos = _read(der, pos, end)
        if tag != _SET:
            raise MalformedNameError(f"RDN has tag {tag:#04x}, expected SET")
        atvs: list[bytes] = []
        while atv_pos < pos:
            tag, oid_pos, atv_pos = _read(der, atv_pos, pos)
            oid_tag, _, value_pos = _read(der, oid_pos, atv_pos)
            if tag != _SEQUENCE or oid_tag != _OID:
                raise MalformedNameError("AttributeTypeAndValue is not SEQUENCE {OID, value}")
            value_tag, start, value_end = _read(der, value_pos, atv_pos)
            if value_end != atv_pos:
                raise MalformedNameError("trailing bytes after attribute value")
            if value_tag in _CANON_CODECS:
                value = _canon_value(value_tag, der[start:value_end])
            elif value_tag in _KEPT:
                value = der[value_pos:value_end]
            elif value_tag & 0x20:
                # OpenSSL would reassemble a BER constructed string; DER forbids it.
                raise MalformedNameError(f"constructed string (tag {value_tag:#04x}) is not DER")
            else:
                raise MalformedNameError(f"OpenSSL rejects values of tag {value_tag:#04x}")
            atvs.append(_tlv(_SEQUENCE, der[oid_pos:value_pos] + value))
        rdns.append(atvs)
    return rdns


def canonical_name_der(name_der: bytes) -> bytes:
    """Return the canonical encoding that OpenSSL hashes for a DER ``Name``.

    That is each RDN as a DER SET OF its canonicalised attributes, concatenated
    without the outer SEQUENCE header (x509_name_canon / i2d_name_canon in
    crypto/x509/x_name.c). Raises MalformedNameError on bad input.
    """
    # The SET OF is re-sorted by encoding *after* canonicalisation, as DER
    # demands (asn1_set_seq_out in crypto/asn1/tasn_enc.c): lowercasing and
    # re-tagging can reorder the values of a multi-valued RDN. An empty RDN
    # contributes no entries, so x509_name_canon emits nothing for it.
    return b"".join(
        _tlv(_SET, b"".join(sorted(atvs))) for atvs in _canonical_rdns(name_der) if atvs
    )


def name_hash(name_der: bytes) -> int:
    """Return OpenSSL's 32-bit ``X509_NAME_hash_ex`` of a DER ``Name``."""
    digest = hashlib.sha1(canonical_name_der(name_der), usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "little")


def _tbs_name(cert: x509.Certificate, subject: bool) -> bytes:
    """Cut the issuer or subject Name TLV out of the TBSCertificate (RFC 5280 4.1)."""
    tbs = cert.tbs_certificate_bytes
    _, pos, end = _read(tbs, 0, len(tbs))
    if tbs[pos] == 0xA0:  # [0] EXPLICIT version, absent in v1 certificates
        pos = _read(tbs, pos, end)[2]
    for _field in range(4 if subject else 2):  # serial, signature, issuer, validity
        pos = _read(tbs, pos, end)[2]
    return tbs[pos : _read(tbs, pos, end)[2]]


def subject_hash(cert: x509.Certificate) -> str:
    """Return ``openssl x509 -subject_hash`` of ``cert``: 8 lowercase hex digits."""
    return f"{name_hash(_tbs_name(cert, subject=True)):08x}"


def issuer_hash(cert: x509.Certificate) -> str:
    """Return ``openssl x509 -issuer_hash`` of ``cert``: 8 lowercase hex digits."""
    return f"{name_hash(_tbs_name(cert, subject=False)):08x}"
