"""Certificate authorities and leaves for loopback tests.

Every CA made here is *safe to trust by accident*: it carries critical name constraints that
permit only ``localhost``, names under ``.test``, 127.0.0.0/8 and ::1, and it is valid for a
short time. trustme 1.2 has no parameter for either, so the certificates are built with
cryptography and handed to trustme through :meth:`trustme.CA.from_pem`, which is what the
public ``tlsenv_pki`` fixture exposes.

Keys are ECDSA P-256: generating one costs ~0.05 ms, against 26-30 ms (with a heavy tail)
for RSA-2048.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .subjecthash import subject_hash

__all__ = [
    "ORIGIN_HOSTS",
    "PKI",
    "SERVER_VARIANTS",
    "TEST_DOMAIN",
    "Authority",
    "Leaf",
    "build_certificate",
    "ca_name",
]

#: The name under ``.test`` that the origin's certificate also covers.
TEST_DOMAIN = "origin.tlsenv.test"
#: Every identity the origin's leaf is valid for.
ORIGIN_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1", TEST_DOMAIN)

_CA_LIFETIME = dt.timedelta(days=2)
_BACKDATE = dt.timedelta(hours=1)

_PERMITTED: list[x509.GeneralName] = [
    x509.DNSName("localhost"),
    x509.DNSName("test"),
    x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")),
    x509.IPAddress(ipaddress.ip_network("::1/128")),
]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


#: A key a leaf may carry: ECDSA by default, RSA only for the ``weak-key`` variant.
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def ca_name(common_name: str) -> x509.Name:
    """The subject every CA made here carries: ``O=pytest-tlsenv, CN=common_name``."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pytest-tlsenv"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
_SAFE_CONSTRAINTS = x509.NameConstraints(permitted_subtrees=_PERMITTED, excluded_subtrees=None)


def build_certificate(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    signing_key: PrivateKey,
    *,
    issuer: x509.Name | None = None,
    ca: bool,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    key_usage: bool = False,
    subject_key_id: bool = False,
    constrained: bool | x509.NameConstraints = False,
    authority_key_id: bool = False,
    eku: Iterable[x509.ObjectIdentifier] = (),
    san: Iterable[str] = (),
    serial: int | None = None,
) -> x509.Certificate:
    """The one place a certificate is made: every CA, leaf, filler and re-signed copy.

    ``issuer`` None means self-issued (the subject). The window defaults to an hour ago
    until two days from now. The extensions come in one fixed order, each only when asked:
    basicConstraints (critical, always), keyUsage for a CA (``key_usage``, critical),
    subjectKeyIdentifier, nameConstraints (``constrained``: True for the loopback-only
    constraints every CA here carries, critical; or the given ones, which a re-signed copy
    keeps), authorityKeyIdentifier of ``signing_key``, extendedKeyUsage ``eku``,
    subjectAltName for ``san`` (hosts: IP addresses or DNS names). Signed with SHA-256.
    """
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number() if serial is None else serial)
        .not_valid_before(now - _BACKDATE if not_before is None else not_before)
        .not_valid_after(now + _CA_LIFETIME if not_after is None else not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if key_usage:
        builder = builder.add_extension(_CA_KEY_USAGE, critical=True)
    if subject_key_id:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
    if constrained is not False:
        value = _SAFE_CONSTRAINTS if constrained is True else constrained
        builder = builder.add_extension(value, critical=True)
    if authority_key_id:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
            critical=False,
        )
    eku = list(eku)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    names = [_general_name(h) for h in san]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def write_private(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` readable by its owner only (keys are never world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


# RFC 5280's ub-common-name; cryptography refuses a longer CN.
_MAX_CN = 64


def _context_in_memory(pem: bytes, directory: Path) -> ssl.SSLContext:
    """A server context loaded from ``pem`` (chain and key) without leaving a file behind.

    ``ssl`` loads a chain and key only from a path. A memfd is anonymous memory with one,
    ``/proc/self/fd/N``, and vanishes when closed; where there is none (no memfd_create or no
    /proc), a private file in ``directory`` is written, loaded and unlinked at once.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        fd = os.memfd_create("tlsenv-forged", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        fd = -1
    if fd != -1:
        try:
            with os.fdopen(os.dup(fd), "wb") as f:
                f.write(pem)
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
            return ctx
        except FileNotFoundError:
            pass  # no /proc here
        finally:
            os.close(fd)
    directory.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="forged-", suffix=".pem", dir=directory)  # 0600, O_EXCL
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)
    return ctx


@dataclass(frozen=True)
class Leaf:
    """A certificate a server presents, with its key and the intermediates it sends."""

    cert: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    @cached_property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    #: The store's name for this certificate when it is installed as its own trust anchor.
    label = "origin-leaf"

    @cached_property
    def subject_hash(self) -> str:
        """OpenSSL's subject-name hash, for the cert-dir link of a self-signed leaf installed
        as its own anchor."""
        return subject_hash(self.cert)

    @cached_property
    def chain_pem(self) -> bytes:
        """The leaf followed by the intermediates, as a server sends them."""
        return self.cert_pem + b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in self.chain
        )

    @cached_property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)

    def server_context(self, directory: Path) -> ssl.SSLContext:
        """A server-side context presenting this leaf; key material goes under ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"leaf-{self.cert.serial_number:x}"
        certfile = directory / f"{stem}.pem"
        certfile.write_bytes(self.chain_pem)
        keyfile = write_private(directory / f"{stem}.key", self.key_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if isinstance(self.key, rsa.RSAPrivateKey) and self.key.key_size < 2048:
            # The server must be allowed to present a weak key; judging it is the client's job.
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.load_cert_chain(certfile, keyfile)
        return ctx


@dataclass(eq=False)
class Authority:
    """A name-constrained, short-lived CA that issues leaves (and sub-CAs) for test names."""

    label: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def create(
        cls,
        label: str,
        *,
        common_name: str | None = None,
        parent: Authority | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        constrained: bool = True,
    ) -> Authority:
        """Make a CA: self-signed, or signed by ``parent`` when given (an intermediate)."""
        key = _new_key()
        cert = build_certificate(
            ca_name(common_name or f"tlsenv {label} CA"),
            key.public_key(),
            parent.key if parent else key,
            issuer=parent.cert.subject if parent else None,
            ca=True,
            not_before=not_before,
            not_after=not_after,
            key_usage=True,
            subject_key_id=True,
            constrained=constrained,
            authority_key_id=parent is not None,
        )
        return cls(label=label, cert=cert, key=key)

    @cached_property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @cached_property
    def subject_hash(self) -> str:
        """OpenSSL's subject hash: the ``HHHHHHHH`` of the ``HHHHHHHH.N`` link name."""
        return subject_hash(self.cert)

    @cached_property
    def trustme(self) -> trustme.CA:
        """The same CA as a :class:`trustme.CA`."""
        return trustme.CA.from_pem(self.cert_pem, _key_pem(self.key))

    def issue(
        self,
        hosts: Sequence[str] = ORIGIN_HOSTS,
        *,
        common_name: str | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        eku: Iterable[x509.ObjectIdentifier] = (ExtendedKeyUsageOID.SERVER_AUTH,),
        san: bool = True,
        chain: tuple[x509.Certificate, ...] = (),
        key: PrivateKey | None = None,
    ) -> Leaf:
        """Issue a server leaf for ``hosts`` (first host is the CN unless given)."""
        key = key or _new_key()
        # The CN is a DNS host when there is one. Never an IP: with no DNS SAN, OpenSSL checks
        # a hostname-like CN against the DNS name constraints, and "127.0.0.1" violates them
        # (X509_V_ERR_PERMITTED_VIOLATION), found by tests/test_security.py.
        dns_hosts = [h for h in hosts if not isinstance(_general_name(h), x509.IPAddress)]
        cn = common_name or (dns_hosts[0] if dns_hosts else "tlsenv leaf")
        with self._lock:
            cert = build_certificate(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]),
                key.public_key(),
                self.key,
                issuer=self.cert.subject,
                ca=False,
                not_before=not_before,
                not_after=not_after,
                authority_key_id=True,
                eku=eku,
                san=hosts if san else (),
            )
        return Leaf(cert=cert, key=key, chain=chain)


def self_signed_leaf(hosts: Sequence[str] = ORIGIN_HOSTS, *, san: bool = True) -> Leaf:
    """A self-signed end-entity certificate for ``hosts`` (badssl's ``self-signed``); with
    ``san=False`` the first host is in the subject CN only."""
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    cert = build_certificate(
        name,
        key.public_key(),
        key,
        ca=False,
        eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
        san=hosts if san else (),
    )
    return Leaf(cert=cert, key=key)


#: The origin's certificate variants (the ``server`` group, badssl-style): name -> what.
SERVER_VARIANTS: dict[str, str] = {
    "good": "a valid leaf from the trusted CA for localhost, 127.0.0.1, ::1 and the .test name",
    "expired": "the leaf expired yesterday (issued by the trusted CA)",
    "not-yet-valid": "the leaf becomes valid tomorrow (issued by the trusted CA)",
    "wrong-host": "a valid leaf for wrong.tlsenv.test only",
    "self-signed": "a self-signed end-entity certificate for the origin's names",
    "untrusted-root": "a valid leaf from a CA that is not in the store",
    "incomplete-chain": "a leaf from an intermediate of the trusted CA; the intermediate is "
    "not sent",
    "cn-only": "the origin's name in the subject CN only, no subjectAltName",
    "wrong-eku": "extendedKeyUsage clientAuth only (no serverAuth)",
    "weak-key": "an RSA-1024 leaf (below OpenSSL's security level 2 and webpki's minimum)",
    "constraint-violation": "a leaf from the trusted CA that also names evil.example.com, "
    "outside the CA's name constraints (x509-limbo's nc cases)",
    # Not a scenario of its own: what `openssl req -x509` makes when asked only for a CN; the
    # requests-6969 report installs it in the store as its own anchor.
    "self-signed-cn-only": "a self-signed certificate with the origin's name in the subject CN "
    "only, no subjectAltName",
}

_DAY = dt.timedelta(days=1)


class PKI:
    """The session's CAs: ``trusted`` (the store's root), ``mitm`` and ``untrusted``.

    ``trusted``, ``mitm`` and ``untrusted`` are :class:`trustme.CA` objects (public API);
    the :class:`Authority` behind each is in :attr:`authorities`. ``decoy(n)`` gives the
    n-th decoy CA: distinct subjects, so distinct hash links, never trusted for the origin.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.authorities: dict[str, Authority] = {
            label: Authority.create(label) for label in ("trusted", "mitm", "untrusted")
        }
        self._decoys: list[Authority] = []
        self._lock = threading.Lock()
        self._origin: Leaf | None = None
        # Keyed by id(leaf); the leaf is kept alive beside its context so the id stays unique.
        self._contexts: dict[int, tuple[Leaf, ssl.SSLContext]] = {}
        self._variants: dict[str, Leaf] = {}
        self._intermediate: Authority | None = None
        self._forged: dict[tuple[str, str], ssl.SSLContext] = {}
        self._clients: dict[str, ssl.SSLContext] = {}

    @property
    def trusted(self) -> trustme.CA:
        return self.authorities["trusted"].trustme

    @property
    def mitm(self) -> trustme.CA:
        return self.authorities["mitm"].trustme

    @property
    def untrusted(self) -> trustme.CA:
        return self.authorities["untrusted"].trustme

    def decoy(self, n: int) -> Authority:
        """The ``n``-th decoy CA (made once per session, then reused)."""
        with self._lock:
            while len(self._decoys) <= n:
                i = len(self._decoys)
                self._decoys.append(
                    Authority.create(f"decoy-{i}", common_name=f"tlsenv decoy {i} CA")
                )
            return self._decoys[n]

    @property
    def origin_leaf(self) -> Leaf:
        """The healthy origin's leaf, issued by ``trusted`` for :data:`ORIGIN_HOSTS`."""
        with self._lock:
            if self._origin is None:
                self._origin = self.authorities["trusted"].issue(ORIGIN_HOSTS)
            return self._origin

    def server_context(self, leaf: Leaf) -> ssl.SSLContext:
        """A cached server context for ``leaf`` (built once: loading a chain costs ~0.3 ms)."""
        with self._lock:
            cached = self._contexts.get(id(leaf))
            if cached is None:
                cached = (leaf, leaf.server_context(self.directory))
                self._contexts[id(leaf)] = cached
            return cached[1]

    @property
    def intermediate(self) -> Authority:
        """An intermediate CA under ``trusted`` (made once): issues ``incomplete-chain``."""
        with self._lock:
            if self._intermediate is None:
                self._intermediate = Authority.create(
                    "intermediate",
                    common_name="tlsenv intermediate CA",
                    parent=self.authorities["trusted"],
                )
            return self._intermediate

    def server_leaf(self, variant: str = "good") -> Leaf:
        """The origin's leaf for a :data:`SERVER_VARIANTS` name (made once per session).

        The RSA key of ``weak-key`` is generated here, once, never in a test's hot path.
        """
        if variant == "good":
            return self.origin_leaf
        if variant not in SERVER_VARIANTS:
            raise KeyError(variant)
        intermediate = self.intermediate if variant == "incomplete-chain" else None
        with self._lock:
            leaf = self._variants.get(variant)
            if leaf is None:
                leaf = self._make_variant(variant, intermediate)
                self._variants[variant] = leaf
            return leaf

    def _make_variant(self, variant: str, intermediate: Authority | None) -> Leaf:
        trusted = self.authorities["trusted"]
        now = _now()
        if variant == "expired":
            return trusted.issue(not_before=now - 3 * _DAY, not_after=now - _DAY)
        if variant == "not-yet-valid":
            return trusted.issue(not_before=now + _DAY, not_after=now + _DAY + _BACKDATE)
        if variant == "wrong-host":
            return trusted.issue(("wrong.tlsenv.test",))
        if variant == "self-signed":
            return self_signed_leaf()
        if variant == "self-signed-cn-only":
            return self_signed_leaf(("localhost",), san=False)
        if variant == "untrusted-root":
            return self.authorities["untrusted"].issue()
        if variant == "incomplete-chain":
            assert intermediate is not None
            return intermediate.issue(chain=())
        if variant == "cn-only":
            return trusted.issue(("localhost",), common_name="localhost", san=False)
        if variant == "wrong-eku":
            return trusted.issue(eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
        if variant == "constraint-violation":
            return trusted.issue((*ORIGIN_HOSTS, "evil.example.com"))
        if variant == "weak-key":
            return trusted.issue(key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
        raise KeyError(variant)

    def client_context(self, authority: str = "trusted") -> ssl.SSLContext:
        """A cached client context trusting only ``authority`` (what a proxy uses upstream)."""
        with self._lock:
            ctx = self._clients.get(authority)
            if ctx is None:
                pem = self.authorities[authority].cert_pem.decode()
                ctx = ssl.create_default_context(cadata=pem)
                self._clients[authority] = ctx
            return ctx

    def forged_context(self, authority: str, host: str) -> ssl.SSLContext:
        """A server context presenting a leaf for ``host`` signed by ``authority`` (cached).

        What an intercepting proxy forges: one leaf and one context per (CA, host), made once
        per session, so a proxy's per-connection cost is a dict lookup. The key stays in
        memory: a client asking for a thousand names leaves no file behind. A name longer
        than a CN may be (64 characters, legal for a DNS name) is in the subjectAltName only,
        which is all a client checks.
        """
        key = (authority, host)
        with self._lock:
            ctx = self._forged.get(key)
        if ctx is not None:
            return ctx
        cn = None if len(host) <= _MAX_CN else "tlsenv forged leaf"
        leaf = self.authorities[authority].issue((host,), common_name=cn)
        ctx = _context_in_memory(leaf.chain_pem + leaf.key_pem, self.directory)
        with self._lock:
            return self._forged.setdefault(key, ctx)
