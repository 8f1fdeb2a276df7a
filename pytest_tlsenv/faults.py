"""Faults: one broken thing in a trust store, as data plus one small behaviour.

A :class:`Fault` has a name, a one-line description, :meth:`Fault.apply` (break a
:class:`~pytest_tlsenv.store.TrustStore`) and the POSIX shell lines that do the same by hand
(used by reproduction bundles). The catalogue is the table :data:`FAULTS`, not a ladder of
``if``s (pytest-httpserver models response faults the same way).

A fault's ``kind`` says where it acts and so what its placement means (one small placer per
kind, in :data:`PLACERS`):

``entry``
    The maker writes the broken entry ``tlsenv-<fault>.pem`` in the cert dir, and a hash name
    is linked to it, like ``c_rehash`` would. With ``placement="decoy"`` the link carries a
    decoy CA's own hash, so the origin's CA stays healthy; only clients that read every file
    (rustls-native-certs, Go, ``wget --ca-directory``) meet it, because OpenSSL looks a cert
    dir up lazily by subject hash and never opens a decoy. With ``placement="shadow"`` the link
    takes the trusted CA's ``<hash>.0`` slot (the real CA moves to ``.1``): OpenSSL's by_dir
    lookup stops at the first slot that fails to load, so this is what bites OpenSSL clients.
``bundle``
    The maker returns a broken PEM block for the bundle: ``decoy`` appends it after the
    healthy blocks, ``shadow`` puts it before the trusted CA's block.
``env``
    The fault breaks what a trust variable points at (the bundle itself, or the variable's
    value). ``decoy``: the *other* variable still points at a healthy source holding the
    trusted CA. ``shadow``: the other variable points at an empty place (an empty directory
    for ``SSL_CERT_DIR``, an empty file for ``SSL_CERT_FILE``), so the broken one was the only
    source of the CA. Never unset: an unset variable lets the host's own store in.
"""

# Size: about 650 lines because it is the fault catalogue, one small maker per fault;
# splitting the catalogue would scatter what a reader compares side by side. The types a
# fault acts on and reports (Site, Applied, Made) are in faultsite.py.

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .errors import ConfigError
from .faultsite import Applied, Made, Maker, Site
from .keystore import KEYSTORE, jks_truststore, pkcs12_truststore
from .pki import Authority, build_certificate
from .store import TrustStore

__all__ = ["FAULTS", "KINDS", "PLACEMENTS", "Applied", "Fault", "Site", "get_fault"]

PLACEMENTS = ("decoy", "shadow")
KINDS = ("entry", "bundle", "env", "keystore")

#: Size of the ``huge-file`` entry: a sparse 64 MiB of NULs, then the CA's PEM block.
HUGE_SIZE = 64 << 20


@dataclass(frozen=True)
class Fault:
    """One named way a trust store can be broken.

    ``kind`` picks the placer (``entry``, ``bundle`` or ``env``; see the module docstring).
    """

    name: str
    description: str
    make: Maker
    kind: str = "entry"

    def apply(self, site: Site) -> Applied:
        """Break ``site.store`` and return what was done."""
        return PLACERS[self.kind](self, site)


# -- placers: what decoy / shadow mean for each kind -------------------------------------------


def _place_entry(fault: Fault, site: Site) -> Applied:
    store = site.store
    if store.cert_dir is None:
        raise ConfigError(
            f"fault {fault.name!r} needs a cert dir, and layout {store.layout.name!r} has none"
        )
    entry = store.cert_dir / f"tlsenv-{fault.name}.pem"
    lines = fault.make(site, entry).shell
    ca_hash = site.ca.subject_hash
    if site.placement == "shadow":
        # Move the healthy link(s) up one slot, then take .0: OpenSSL's by_dir lookup tries
        # .0 first and gives up at the first file that fails to load.
        n = store.next_slot(ca_hash)
        for i in range(n, 0, -1):
            old = store.cert_dir / f"{ca_hash}.{i - 1}"
            new = store.cert_dir / f"{ca_hash}.{i}"
            old.rename(new)
            lines.append(f"mv {site.rel(old)} {site.rel(new)}")
        link = store.link_hash(ca_hash, entry.name, slot=0)
    else:
        link = store.link_hash(ca_hash, entry.name)
    lines.append(f"ln -s {shlex.quote(entry.name)} {site.rel(link)}")
    return Applied(
        fault.name, site.placement, (entry, link), tuple(lines), reaches=("SSL_CERT_DIR",)
    )


def _place_bundle(fault: Fault, site: Site) -> Applied:
    store = site.store
    bundle = _need_bundle(fault, store)
    made = fault.make(site, bundle)
    index = store.bundle_index(site.trusted.cert_pem) if site.placement == "shadow" else None
    store.insert_bundle_block(made.block, index)
    return Applied(
        fault.name, site.placement, (bundle,), tuple(made.shell), reaches=("SSL_CERT_FILE",)
    )


def _place_env(fault: Fault, site: Site) -> Applied:
    store = site.store
    made = fault.make(site, store.bundle or store.root)
    lines = list(made.shell)
    redirects = [key for key, _ in made.env]
    for key, value in made.env:
        store.env_overrides[key] = value
        lines.append(f"export {key}={_shell_path(site, value)}")
    if site.placement == "shadow":
        # The other variable points at an empty place: the broken one held the only copy.
        changed = {key for key, _ in made.env} | set(made.only_source)
        if "SSL_CERT_DIR" not in changed:
            empty_dir = store.root / "empty-certs"
            empty_dir.mkdir(exist_ok=True)
            store.env_overrides["SSL_CERT_DIR"] = str(empty_dir)
            redirects.append("SSL_CERT_DIR")
            lines += [
                f"mkdir -p {site.rel(empty_dir)}",
                f"export SSL_CERT_DIR={site.rel(empty_dir)}",
            ]
        if "SSL_CERT_FILE" not in changed:
            empty = store.root / "empty.pem"
            empty.touch()
            store.env_overrides["SSL_CERT_FILE"] = str(empty)
            redirects.append("SSL_CERT_FILE")
            lines += [f": > {site.rel(empty)}", f"export SSL_CERT_FILE={site.rel(empty)}"]
    reaches = tuple(dict.fromkeys([key for key, _ in made.env] + list(made.only_source)))
    return Applied(
        fault.name,
        site.placement,
        made.paths,
        tuple(lines),
        reaches=reaches,
        redirects=tuple(redirects),
    )


def _place_keystore(fault: Fault, site: Site) -> Applied:
    keystore = site.store.keystore
    if keystore is None:
        raise ConfigError(
            f"fault {fault.name!r} needs a Java keystore, and layout "
            f"{site.store.layout.name!r} has none (debian and rhel have one)"
        )
    site.store.keystore_broken = True
    made = fault.make(site, keystore)
    return Applied(fault.name, site.placement, (keystore,), tuple(made.shell), reaches=(KEYSTORE,))


PLACERS: dict[str, Callable[[Fault, Site], Applied]] = {
    "entry": _place_entry,
    "bundle": _place_bundle,
    "env": _place_env,
    "keystore": _place_keystore,
}


def _need_bundle(fault: Fault, store: TrustStore) -> Path:
    if store.bundle is None:
        raise ConfigError(
            f"fault {fault.name!r} needs a bundle, and layout {store.layout.name!r} has none"
        )
    return store.bundle


def _shell_path(site: Site, value: str) -> str:
    try:
        return site.rel(Path(value))
    except ValueError:
        return shlex.quote(value)


# -- makers -----------------------------------------------------------------------------------


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _heredoc(site: Site, path: Path, data: bytes) -> str:
    """A shell line writing ``data`` (ASCII text) to ``path``."""
    text = data.decode("ascii")
    return f"cat > {site.rel(path)} <<'TLSENV_EOF'\n{text}TLSENV_EOF"


def _ca_pem_word(site: Site) -> str:
    return f'"$CERTS/{site.ca.label}.pem"'


def _deny_lines(site: Site, path: Path, *, directory: bool = False) -> list[str]:
    mode = "0700" if directory else "0600"
    uid = site.store.fault_uid
    target = site.rel(path)
    return [
        f'if [ "$(id -u)" = 0 ]; then chown {uid}:{uid} {target} && chmod {mode} {target};'
        f" else chmod 000 {target}; fi"
    ]


def _copy_ca(site: Site, path: Path) -> Made:
    path.write_bytes(site.ca.cert_pem)
    return Made([f"cp {_ca_pem_word(site)} {site.rel(path)}"])


def _unreadable_file(site: Site, path: Path) -> Made:
    made = _copy_ca(site, path)
    site.store.deny(path)
    return Made(made.shell + _deny_lines(site, path))


def _unreadable_dir(site: Site, path: Path) -> Made:
    # The entry is a link into a subdirectory of the cert dir that the client cannot search,
    # the way /etc/ssl/certs/X.pem links into /usr/local/share/ca-certificates/corp/.
    sub = path.with_suffix("")
    sub.mkdir()
    (sub / f"{site.ca.label}.pem").write_bytes(site.ca.cert_pem)
    path.symlink_to(f"{sub.name}/{site.ca.label}.pem")
    site.store.deny(sub)
    return Made(
        [
            f"mkdir {site.rel(sub)}",
            f"cp {_ca_pem_word(site)} {site.rel(sub / (site.ca.label + '.pem'))}",
            f"ln -s {shlex.quote(sub.name + '/' + site.ca.label + '.pem')} {site.rel(path)}",
            *_deny_lines(site, sub, directory=True),
        ]
    )


def _dangling_symlink(site: Site, path: Path) -> Made:
    target = f"../../../usr/share/ca-certificates/removed/{site.ca.label}.crt"
    path.symlink_to(target)
    return Made([f"ln -s {shlex.quote(target)} {site.rel(path)}"])


def _symlink_loop(site: Site, path: Path) -> Made:
    path.symlink_to(path.name)
    return Made([f"ln -s {shlex.quote(path.name)} {site.rel(path)}"])


def _fifo(site: Site, path: Path) -> Made:
    os.mkfifo(path, 0o644)
    site.store.on_close(lambda: release_fifo(path))
    return Made([f"mkfifo {site.rel(path)}"])


def release_fifo(path: Path, *, rounds: int = 20) -> int:
    """Let every reader blocked opening the FIFO ``path`` go, then remove it.

    Opening a FIFO for reading blocks until a writer appears. A non-blocking open for writing
    succeeds while a reader is waiting (and fails with ENXIO when none is); closing it at once
    gives the readers EOF. Returns how many writer opens were needed.
    """
    released = 0
    for _ in range(rounds):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader waiting (or the FIFO is already gone)
            break
        os.close(fd)
        released += 1
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return released


def _empty_file(site: Site, path: Path) -> Made:
    path.touch()
    return Made([f": > {site.rel(path)}"])


#: Every byte value once: not text, not PEM, not DER.
GARBAGE = bytes(range(256))


def _garbage_file(site: Site, path: Path) -> Made:
    path.write_bytes(GARBAGE)
    escaped = "".join(f"\\0{b:03o}" for b in GARBAGE)
    return Made([f"printf '%b' '{escaped}' > {site.rel(path)}"])


def _truncated_pem(site: Site, path: Path) -> Made:
    pem = site.ca.cert_pem
    cut = len(pem) // 2
    path.write_bytes(pem[:cut])
    return Made([f"dd if={_ca_pem_word(site)} of={site.rel(path)} bs={cut} count=1 2>/dev/null"])


def _der_file(site: Site, path: Path) -> Made:
    path.write_bytes(site.ca.cert.public_bytes(serialization.Encoding.DER))
    return Made([f"openssl x509 -in {_ca_pem_word(site)} -outform DER -out {site.rel(path)}"])


def _private_key_file(site: Site, path: Path) -> Made:
    # A throwaway key made now, protecting nothing: never a CA key of the session. It is
    # world-readable on purpose, as the misplaced key file this fault stands for would be.
    key = ec.generate_private_key(ec.SECP256R1())
    _write(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return Made(
        [
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
            f"-out {site.rel(path)} && chmod 644 {site.rel(path)}"
        ]
    )


def _resign(
    ca: Authority,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    is_ca: bool,
) -> x509.Certificate:
    """``ca``'s certificate again (same subject, same key), with other validity or CA flag."""
    # The copy keeps the original's name constraints, whatever they are (or none).
    kept: bool | x509.NameConstraints = False
    for ext in ca.cert.extensions:
        if isinstance(ext.value, x509.NameConstraints):
            kept = ext.value
    return build_certificate(
        ca.cert.subject,
        ca.key.public_key(),
        ca.key,
        ca=is_ca,
        not_before=not_before,
        not_after=not_after,
        subject_key_id=True,
        constrained=kept,
    )


def _expired_copy(site: Site, path: Path) -> Made:
    # Same subject and key as the CA, validity ended five days ago: the shape of DST Root CA X3
    # next to ISRG Root X1 in 2021, or an old copy of a renewed corporate root.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = _resign(
        site.ca,
        not_before=now - dt.timedelta(days=10),
        not_after=now - dt.timedelta(days=5),
        is_ca=True,
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    path.write_bytes(pem)
    return Made([_heredoc(site, path, pem)])


def _non_ca_cert(site: Site, path: Path) -> Made:
    # The CA's name and key, but CA:FALSE: an end-entity certificate where a CA should be.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = _resign(
        site.ca,
        not_before=now - dt.timedelta(hours=1),
        not_after=now + dt.timedelta(days=2),
        is_ca=False,
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    path.write_bytes(pem)
    return Made([_heredoc(site, path, pem)])


def _huge_file(site: Site, path: Path) -> Made:
    # Sparse: 64 MiB of NULs cost no disk, but every reader wades through them.
    with open(path, "wb") as f:
        f.truncate(HUGE_SIZE)
        f.seek(HUGE_SIZE)
        f.write(site.ca.cert_pem)
    return Made(
        [
            f"dd if=/dev/null of={site.rel(path)} bs=1048576 seek={HUGE_SIZE >> 20} count=0"
            " 2>/dev/null",
            f"cat {_ca_pem_word(site)} >> {site.rel(path)}",
        ]
    )


def _crlf_pem(site: Site, path: Path) -> Made:
    path.write_bytes(site.ca.cert_pem.replace(b"\n", b"\r\n"))
    return Made([f"awk '{{printf \"%s\\r\\n\", $0}}' {_ca_pem_word(site)} > {site.rel(path)}"])


#: A block framed as a certificate whose base64 decodes to something that is not DER.
GARBAGE_BLOCK = (
    b"-----BEGIN CERTIFICATE-----\n"
    b"dGxzZW52IGdhcmJhZ2U6IHRoaXMgYmxvY2sgaXMgbm90IGEgY2VydGlmaWNhdGUK\n"
    b"-----END CERTIFICATE-----\n"
)


def _garbage_in_bundle(site: Site, bundle: Path) -> Made:
    if site.placement == "shadow":
        line = (
            f"{{ cat <<'TLSENV_EOF'\n{GARBAGE_BLOCK.decode()}TLSENV_EOF\n"
            f"cat {site.rel(bundle)}; }} > {site.rel(bundle)}.new"
            f" && mv {site.rel(bundle)}.new {site.rel(bundle)}"
        )
    else:
        line = f"cat >> {site.rel(bundle)} <<'TLSENV_EOF'\n{GARBAGE_BLOCK.decode()}TLSENV_EOF"
    return Made([line], block=GARBAGE_BLOCK)


def _unreadable_bundle(site: Site, root: Path) -> Made:
    bundle = site.store.bundle
    if bundle is None:
        raise ConfigError(f"layout {site.store.layout.name!r} has no bundle to make unreadable")
    site.store.deny(bundle)
    return Made(_deny_lines(site, bundle), paths=(bundle,), only_source=("SSL_CERT_FILE",))


def _missing_file_env(site: Site, root: Path) -> Made:
    missing = site.store.root / "missing" / "ca-certificates.crt"
    return Made([], env=(("SSL_CERT_FILE", str(missing)),), paths=(missing,))


def _missing_dir_env(site: Site, root: Path) -> Made:
    missing = site.store.root / "missing" / "certs"
    return Made([], env=(("SSL_CERT_DIR", str(missing)),), paths=(missing,))


def _dir_as_file(site: Site, root: Path) -> Made:
    store = site.store
    directory = store.cert_dir or (store.bundle.parent if store.bundle else store.root)
    return Made([], env=(("SSL_CERT_FILE", str(directory)),), paths=(directory,))


# -- keystore makers: ``path`` is the layout's cacerts, written healthy (JKS) by the store ------


def _binary_lines(site: Site, path: Path, data: bytes) -> list[str]:
    """Shell lines writing ``data`` (binary) to ``path``, through base64."""
    b64 = base64.encodebytes(data).decode("ascii")
    return [f"base64 -d > {site.rel(path)} <<'TLSENV_EOF'\n{b64}TLSENV_EOF"]


def _rewrite(site: Site, path: Path, data: bytes) -> Made:
    path.write_bytes(data)
    return Made(_binary_lines(site, path, data))


def _keystore_unreadable(site: Site, path: Path) -> Made:
    site.store.deny(path)
    return Made(_deny_lines(site, path))


def _keystore_dangling(site: Site, path: Path) -> Made:
    # The JDK's lib/security/cacerts is a link to this path (Debian, Ubuntu): with the file
    # gone, that link dangles. The JDK's own link is never touched; the store shows it.
    path.unlink()
    return Made([f"rm -f {site.rel(path)}"])


def _keystore_empty(site: Site, path: Path) -> Made:
    return _rewrite(site, path, jks_truststore([], site.store.layout.keystore_password))


def _keystore_corrupt(site: Site, path: Path) -> Made:
    data = path.read_bytes()
    cut = len(data) // 2
    path.write_bytes(data[:cut])
    return Made([f"truncate -s {cut} {site.rel(path)}"])


def _keystore_wrong_password(site: Site, path: Path) -> Made:
    certs = site.store.keystore_certs()
    return _rewrite(site, path, jks_truststore(certs, "not-" + site.store.layout.keystore_password))


def _keystore_type_mismatch(site: Site, path: Path) -> Made:
    # PKCS12 bytes (30 82 ...) where JKS (fe ed fe ed) is declared.
    certs = site.store.keystore_certs()
    return _rewrite(site, path, pkcs12_truststore(certs, site.store.layout.keystore_password))


def _keystore_expired_anchor(site: Site, path: Path) -> Made:
    # The trusted CA's only copy in the keystore is expired (same subject and key).
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expired = _resign(
        site.trusted,
        not_before=now - dt.timedelta(days=10),
        not_after=now - dt.timedelta(days=5),
        is_ca=True,
    )
    certs = [expired if c == site.trusted.cert else c for c in site.store.keystore_certs()]
    return _rewrite(site, path, jks_truststore(certs, site.store.layout.keystore_password))


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault(
            "unreadable-file",
            "a CA file in the cert dir owned by another user with mode 0600 (the uv 5448 case)",
            _unreadable_file,
        ),
        Fault(
            "unreadable-bundle",
            "the bundle SSL_CERT_FILE names is owned by another user with mode 0600",
            _unreadable_bundle,
            kind="env",
        ),
        Fault(
            "unreadable-dir",
            "a subdirectory of the cert dir, owned by another user with mode 0700, holding the "
            "CA file a cert-dir entry links to",
            _unreadable_dir,
        ),
        Fault(
            "dangling-symlink",
            "a cert-dir entry that links to a CA file which was removed (ENOENT)",
            _dangling_symlink,
        ),
        Fault(
            "symlink-loop",
            "a cert-dir entry that is a symlink to itself (ELOOP)",
            _symlink_loop,
        ),
        Fault(
            "fifo",
            "a cert-dir entry that is a FIFO: opening it for reading blocks until a writer comes",
            _fifo,
        ),
        Fault("empty-file", "a zero-byte cert-dir entry", _empty_file),
        Fault(
            "garbage-file",
            "a cert-dir entry holding 256 bytes of binary garbage (not PEM, not DER)",
            _garbage_file,
        ),
        Fault(
            "truncated-pem",
            "a CA's PEM cut in half: BEGIN line, half the base64, no END line",
            _truncated_pem,
        ),
        Fault("der-file", "a CA certificate in DER where PEM is expected", _der_file),
        Fault(
            "private-key-file",
            "a PEM private key (a throwaway one) where a certificate is expected",
            _private_key_file,
        ),
        Fault(
            "garbage-in-bundle",
            "a block framed as a certificate whose content is not DER, inside the bundle",
            _garbage_in_bundle,
            kind="bundle",
        ),
        Fault(
            "expired-decoy",
            "an expired copy of a CA (same subject and key, expired 5 days ago), like DST Root "
            "CA X3 in 2021",
            _expired_copy,
        ),
        Fault(
            "non-ca-cert",
            "a certificate with a CA's subject and key but CA:FALSE (an end-entity certificate)",
            _non_ca_cert,
        ),
        Fault(
            "huge-file",
            "a 64 MiB cert-dir entry (sparse NULs) with a CA's PEM block at its very end",
            _huge_file,
        ),
        Fault(
            "crlf-pem",
            "a CA's PEM with CRLF line endings (copied from Windows)",
            _crlf_pem,
        ),
        Fault(
            "missing-file-env",
            "SSL_CERT_FILE names a file that does not exist",
            _missing_file_env,
            kind="env",
        ),
        Fault(
            "missing-dir-env",
            "SSL_CERT_DIR names a directory that does not exist",
            _missing_dir_env,
            kind="env",
        ),
        Fault(
            "dir-as-file",
            "SSL_CERT_FILE names a directory (the cert dir)",
            _dir_as_file,
            kind="env",
        ),
        Fault(
            "keystore-unreadable",
            "the JVM's cacerts is owned by another user with mode 0600",
            _keystore_unreadable,
            kind="keystore",
        ),
        Fault(
            "keystore-dangling",
            "the JVM's cacerts is gone, so the JDK's lib/security/cacerts link to it dangles "
            "(the Ubuntu 'trustAnchors' case)",
            _keystore_dangling,
            kind="keystore",
        ),
        Fault(
            "keystore-empty",
            "the JVM's cacerts is a valid JKS store with no entry",
            _keystore_empty,
            kind="keystore",
        ),
        Fault(
            "keystore-corrupt",
            "the JVM's cacerts cut in half",
            _keystore_corrupt,
            kind="keystore",
        ),
        Fault(
            "keystore-wrong-password",
            "the JVM's cacerts is keyed with another password than the declared 'changeit'",
            _keystore_wrong_password,
            kind="keystore",
        ),
        Fault(
            "keystore-type-mismatch",
            "the JVM's cacerts is a PKCS12 file where JKS is declared",
            _keystore_type_mismatch,
            kind="keystore",
        ),
        Fault(
            "keystore-expired-anchor",
            "the JVM's cacerts holds only an expired copy of the origin's CA (same subject "
            "and key)",
            _keystore_expired_anchor,
            kind="keystore",
        ),
    )
}


def get_fault(name: str) -> Fault:
    """The fault called ``name``, or a :class:`ConfigError` listing the valid names."""
    try:
        return FAULTS[name]
    except KeyError:
        raise ConfigError(
            f"unknown fault {name!r}; expected one of: {', '.join(sorted(FAULTS))}"
        ) from None
