"""Java trust stores (keystores) written in-process: PKCS12 and JKS, certificates only.

A JVM reads its trust from a keystore file, not from PEM: Debian ships
``/etc/ssl/certs/java/cacerts`` (JKS, password ``changeit``), RHEL
``/etc/pki/ca-trust/extracted/java/cacerts``. The store writes one beside the PEM bundle with
:func:`jks_truststore`, in Debian's own format. JKS, not PKCS12, because of how each is read
(measured with OpenJDK 17): the JDK opens its *default* cacerts without a password, which a
JKS file allows (its digest is only checked when a password is given), while a PKCS12 trust
store from cryptography's ``serialize_java_truststore`` either has its certificates encrypted
(a password given: read without one, it holds no entry, "the trustAnchors parameter must be
non-empty") or has no MAC (no password: refused as soon as one is declared, "problem accessing
trust store"). :func:`pkcs12_truststore` writes the PKCS12 kind for the type-mismatch fault.
No keytool in the hot path: starting a JVM costs a second.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

__all__ = [
    "DEFAULT_PASSWORD",
    "JKS_MAGIC",
    "KEYSTORE",
    "java_tool_options",
    "jks_truststore",
    "pkcs12_truststore",
    "trust_store_options",
]

#: The trust source a keystore stands for, named like the Java property that selects it (the
#: sources of a client's trust are otherwise SSL_CERT_FILE and SSL_CERT_DIR).
KEYSTORE = "javax.net.ssl.trustStore"

#: The password every distribution gives its cacerts (not a secret: it is public and only
#: guards the file's integrity).
DEFAULT_PASSWORD = "changeit"

#: The first bytes of a JKS file (a PKCS12 file starts with a DER SEQUENCE, ``30 82``).
JKS_MAGIC = b"\xfe\xed\xfe\xed"

# Sun's JKS integrity check: SHA-1 over the password (UTF-16BE), this phrase, then the body.
_JKS_WHITENER = b"Mighty Aphrodite"
_JKS_TRUSTED_CERT = 2


def _alias(i: int, cert: x509.Certificate) -> str:
    # Lower case, as keytool stores them (JKS aliases are case-insensitive).
    attrs = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    name = str(attrs[0].value) if attrs else "ca"
    return f"tlsenv-{i}-{name}".lower().replace(" ", "-")


def pkcs12_truststore(certs: Sequence[x509.Certificate], password: str = DEFAULT_PASSWORD) -> bytes:
    """A PKCS12 trust store holding ``certs`` as trusted certificates, its MAC keyed with
    ``password`` (so a wrong declared password fails as it would with keytool's file)."""
    entries = [
        pkcs12.PKCS12Certificate(cert, _alias(i, cert).encode()) for i, cert in enumerate(certs)
    ]
    encryption = serialization.BestAvailableEncryption(password.encode())
    return pkcs12.serialize_java_truststore(entries, encryption)


def jks_truststore(certs: Sequence[x509.Certificate], password: str = DEFAULT_PASSWORD) -> bytes:
    """A JKS trust store (version 2) holding ``certs`` as trusted-certificate entries, with
    the SHA-1 integrity digest keyed by ``password``: the format of Debian's cacerts."""
    now_ms = int(time.time() * 1000)
    body = bytearray(JKS_MAGIC + struct.pack(">II", 2, len(certs)))
    for i, cert in enumerate(certs):
        der = cert.public_bytes(serialization.Encoding.DER)
        body += struct.pack(">I", _JKS_TRUSTED_CERT)
        body += _utf(_alias(i, cert))
        body += struct.pack(">q", now_ms)
        body += _utf("X.509")
        body += struct.pack(">I", len(der)) + der
    digest = hashlib.sha1(password.encode("utf-16-be") + _JKS_WHITENER + bytes(body))
    return bytes(body) + digest.digest()


def trust_store_options(keystore: str, password: str = DEFAULT_PASSWORD) -> list[str]:
    """The JVM properties that make ``keystore`` (JKS, as the store writes it) its trust."""
    return [
        f"-Djavax.net.ssl.trustStore={keystore}",
        f"-Djavax.net.ssl.trustStorePassword={password}",
        "-Djavax.net.ssl.trustStoreType=JKS",
    ]


def java_tool_options(options: list[str]) -> str:
    """``options`` as one JAVA_TOOL_OPTIONS value (the JVM splits it on white space and
    honours double quotes)."""
    return " ".join(f'"{o}"' if any(c.isspace() for c in o) else o for o in options)


def _utf(text: str) -> bytes:
    # Java's DataOutput.writeUTF: a 2-byte length, then (for ASCII, all we write) the bytes.
    data = text.encode("ascii", "replace")
    return struct.pack(">H", len(data)) + data
