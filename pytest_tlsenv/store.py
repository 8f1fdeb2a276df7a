"""Trust stores on disk: an OS layout recreated under a scenario root.

A :class:`TrustStore` writes real files (OpenSSL, rustls and subprocesses read them), names
cert-dir entries the way ``c_rehash`` does (``HHHHHHHH.N`` links by OpenSSL subject hash,
computed in Python), keeps a bundle, and remembers every owner/mode change it makes so
:meth:`TrustStore.restore` can undo them before the tree is deleted.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .errors import ConfigError
from .keystore import DEFAULT_PASSWORD, KEYSTORE, jks_truststore
from .pki import Authority, Leaf, build_certificate, ca_name
from .subjecthash import name_hash

__all__ = ["LAYOUTS", "Entry", "Layout", "TrustStore", "filler_cas"]


_DIRS: dict[str, tuple[str, ...]] = {}


def _write_file(path: Path, data: bytes) -> None:
    # Every store writes its own files: a test may edit its store in place (write_bytes on
    # the bundle), and a file shared with other stores by hard link would carry that edit
    # into them. On a tmpfs a small write costs microseconds, so sharing bought nothing.
    # os-level: Path.write_bytes costs twice the syscalls (an fstat, an ioctl, an lseek).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Layout:
    """Where one OS keeps its trust, as paths relative to the scenario root.

    ``bundle`` is the PEM bundle file, ``cert_dir`` the hashed directory, ``anchors`` where an
    administrator drops extra CAs, ``shared`` where the CA files that cert-dir entries link to
    live, ``aliases`` extra symlinks (path -> target) the OS ships, ``cert_file`` the path
    ``SSL_CERT_FILE`` names when it is not the bundle itself (Alpine: the ``cert.pem`` link),
    ``keystore`` the JVM's trust store (``cacerts``, password ``keystore_password``), written
    as JKS from the same CAs as the bundle.
    :meth:`variables` is the environment that points OpenSSL-style clients at the store, as
    such a machine has it: a layout without a bundle has no ``SSL_CERT_FILE``, one without a
    cert dir no ``SSL_CERT_DIR``. A client then falls back to its compiled-in default for the
    missing half (Debian's OpenSSL: the *host's* /etc/ssl/certs), exactly as on that machine;
    the host's store never holds a CA of ours, so it cannot turn a refusal into a success.
    """

    name: str
    description: str
    bundle: str | None
    cert_dir: str | None
    anchors: str | None = None
    shared: str | None = None
    aliases: tuple[tuple[str, str], ...] = ()
    cert_file: str | None = None
    keystore: str | None = None
    keystore_password: str = DEFAULT_PASSWORD
    #: Directories the machine does not have, though clients were built to read them: their
    #: compiled-in OpenSSL defaults (``OPENSSLDIR``). In a mount namespace (system paths or
    #: ``trust="system"``), each that exists on the host is hidden behind an empty directory.
    hidden: tuple[str, ...] = ()

    def variables(self, root: Path) -> dict[str, str]:
        """``SSL_CERT_FILE`` and/or ``SSL_CERT_DIR`` for a store under ``root``: the ones
        the layout has (a bundle-only machine has no ``SSL_CERT_DIR``, and so on)."""
        out: dict[str, str] = {}
        file = self.cert_file or self.bundle
        if file:
            out["SSL_CERT_FILE"] = str(root / file)
        if self.cert_dir:
            out["SSL_CERT_DIR"] = str(root / self.cert_dir)
        return out

    def dirs(self) -> tuple[str, ...]:
        """Every directory the layout needs (relative), each parent before its children."""
        cached = _DIRS.get(self.name)
        if cached is None:
            wanted = [self.cert_dir, self.anchors, self.shared]
            if self.bundle:
                wanted.append(os.path.dirname(self.bundle))
            if self.keystore:
                wanted.append(os.path.dirname(self.keystore))
            found: dict[str, None] = {}
            for rel in wanted:
                if not rel:
                    continue
                parts = rel.split("/")
                for i in range(1, len(parts) + 1):
                    found.setdefault("/".join(parts[:i]))
            cached = _DIRS[self.name] = tuple(found)
        return cached

    def paths(self) -> list[str]:
        """Every path this layout creates (relative), for the docs and the tests."""
        out = [
            p for p in (self.bundle, self.cert_dir, self.anchors, self.shared, self.keystore) if p
        ]
        out += [alias for alias, _ in self.aliases]
        return out


#: Where OpenSSL builds look for their defaults: Debian's, a source build's, conda's and the
#: OpenSSL vendored in cryptography's wheels (what pyOpenSSL then falls back from).
FOREIGN_OPENSSLDIRS = (
    "usr/lib/ssl",
    "usr/local/ssl",
    "opt/conda/ssl",
    "opt/pyca/cryptography/openssl",
)

LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "debian",
            "Debian/Ubuntu: /etc/ssl/certs with hash links to NAME.pem links into "
            "/usr/share/ca-certificates, the bundle /etc/ssl/certs/ca-certificates.crt, admin "
            "anchors in /usr/local/share/ca-certificates, the JVM's cacerts (JKS, password "
            "changeit) in /etc/ssl/certs/java",
            bundle="etc/ssl/certs/ca-certificates.crt",
            cert_dir="etc/ssl/certs",
            anchors="usr/local/share/ca-certificates",
            shared="usr/share/ca-certificates/tlsenv",
            keystore="etc/ssl/certs/java/cacerts",
        ),
        Layout(
            "foreign",
            "a healthy Debian store at its usual paths, while the compiled-in OpenSSL defaults "
            "(OPENSSLDIR) clients were built with name directories this machine lacks: "
            "Debian's /usr/lib/ssl is hidden, and conda's, /usr/local/ssl and cryptography's "
            "vendored /opt/pyca/cryptography/openssl do not exist (with system paths)",
            bundle="etc/ssl/certs/ca-certificates.crt",
            cert_dir="etc/ssl/certs",
            anchors="usr/local/share/ca-certificates",
            shared="usr/share/ca-certificates/tlsenv",
            hidden=FOREIGN_OPENSSLDIRS,
        ),
        Layout(
            "rhel",
            "RHEL/Fedora: the bundle /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem "
            "(/etc/pki/tls/certs/ca-bundle.crt and /etc/pki/tls/cert.pem link to it), hash "
            "links in /etc/pki/tls/certs (/etc/ssl/certs links there) to anchors in "
            "/etc/pki/ca-trust/source/anchors; the JVM's cacerts in "
            "/etc/pki/ca-trust/extracted/java",
            bundle="etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
            cert_dir="etc/pki/tls/certs",
            anchors="etc/pki/ca-trust/source/anchors",
            shared="etc/pki/ca-trust/source/anchors",
            keystore="etc/pki/ca-trust/extracted/java/cacerts",
            aliases=(
                (
                    "etc/pki/tls/certs/ca-bundle.crt",
                    "../../ca-trust/extracted/pem/tls-ca-bundle.pem",
                ),
                ("etc/pki/tls/cert.pem", "../ca-trust/extracted/pem/tls-ca-bundle.pem"),
                ("etc/ssl/certs", "../pki/tls/certs"),
            ),
        ),
        Layout(
            "alpine",
            "Alpine: /etc/ssl/cert.pem (SSL_CERT_FILE; a link to certs/ca-certificates.crt), "
            "hash links in /etc/ssl/certs into /usr/share/ca-certificates, admin anchors in "
            "/usr/local/share/ca-certificates",
            bundle="etc/ssl/certs/ca-certificates.crt",
            cert_dir="etc/ssl/certs",
            anchors="usr/local/share/ca-certificates",
            shared="usr/share/ca-certificates/tlsenv",
            aliases=(("etc/ssl/cert.pem", "certs/ca-certificates.crt"),),
            cert_file="etc/ssl/cert.pem",
        ),
        Layout(
            "bundle-only",
            "one PEM bundle /etc/ssl/cert.pem (SSL_CERT_FILE); no cert dir, no SSL_CERT_DIR",
            bundle="etc/ssl/cert.pem",
            cert_dir=None,
        ),
        Layout(
            "dir-only",
            "a hashed directory /etc/ssl/certs (SSL_CERT_DIR); no bundle, no SSL_CERT_FILE",
            bundle=None,
            cert_dir="etc/ssl/certs",
        ),
    )
}


@dataclass(frozen=True)
class Entry:
    """One path of the store as ``ls -l`` would show it."""

    path: str
    kind: str  # file, dir, symlink, fifo, other
    mode: int
    uid: int
    gid: int
    size: int
    target: str | None = None

    def __str__(self) -> str:
        line = f"{stat.filemode(self.mode)} {self.uid:>5} {self.gid:>5} {self.size:>8} {self.path}"
        return f"{line} -> {self.target}" if self.target is not None else line


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode):
        return "fifo"
    return "other"


@dataclass
class _Saved:
    path: Path
    mode: int
    uid: int
    gid: int


@dataclass
class TrustStore:
    """A trust store under ``root`` in the shape of ``layout``.

    ``fault_uid`` owns files that must be unreadable to the client: a uid that is never the
    client's. As non-root the store cannot chown, so it chmods to 000.
    """

    root: Path
    layout: Layout
    fault_uid: int = 65533
    _bundle_blocks: list[bytes] = field(default_factory=list, repr=False)
    _keystore_certs: list[x509.Certificate] = field(default_factory=list, repr=False)
    _filler_pems: list[bytes] = field(default_factory=list, repr=False)
    _keystore_written: int = field(default=-1, repr=False)
    #: Set by a keystore fault: from then on the keystore is the fault's, never rewritten.
    keystore_broken: bool = False
    _saved: list[_Saved] = field(default_factory=list, repr=False)
    _on_close: list[Callable[[], object]] = field(default_factory=list, repr=False)
    # The files and links install() and write_bundle() made (relative), for remove_created().
    _made: list[str] = field(default_factory=list, repr=False)
    env_overrides: dict[str, str | None] = field(default_factory=dict)
    #: What the JVM's trust-store property names instead of the layout's keystore (the
    #: fallback group's broken store), else None.
    keystore_override: str | None = None

    @classmethod
    def create(cls, root: Path, layout: str = "debian", *, fault_uid: int = 65533) -> TrustStore:
        try:
            lay = LAYOUTS[layout]
        except KeyError:
            raise ConfigError(
                f"unknown layout {layout!r}; expected one of: {', '.join(LAYOUTS)}"
            ) from None
        store = cls(root=root, layout=lay, fault_uid=fault_uid)
        # One mkdir per directory, parents first (Path.mkdir(parents=True) costs about twice
        # the syscalls: half of a scenario's materialisation time on ext4).
        try:
            os.mkdir(root)
        except FileExistsError:
            pass
        except FileNotFoundError:
            os.makedirs(root, exist_ok=True)
        for rel in lay.dirs():
            with contextlib.suppress(FileExistsError):
                os.mkdir(f"{root}/{rel}")
        return store

    # -- where things are ---------------------------------------------------------------

    @property
    def bundle(self) -> Path | None:
        """The PEM bundle file (``SSL_CERT_FILE``), if the layout has one."""
        return self.root / self.layout.bundle if self.layout.bundle else None

    @property
    def cert_dir(self) -> Path | None:
        """The hashed directory (``SSL_CERT_DIR``), if the layout has one."""
        return self.root / self.layout.cert_dir if self.layout.cert_dir else None

    @property
    def anchors(self) -> Path | None:
        """Where an administrator drops extra CA files, if the layout has such a place."""
        return self.root / self.layout.anchors if self.layout.anchors else None

    @property
    def keystore(self) -> Path | None:
        """The JVM's trust store (``cacerts``), if the layout has one."""
        return self.root / self.layout.keystore if self.layout.keystore else None

    @property
    def sources(self) -> dict[str, str]:
        """Every trust source a client can be pointed at: :attr:`env`'s variables, and the
        keystore (under :data:`~pytest_tlsenv.keystore.KEYSTORE`) when the layout has one.
        Never exported as such: the keystore reaches a JVM through its properties."""
        out = self.env
        if self.keystore_override is not None:
            out[KEYSTORE] = self.keystore_override
        elif self.keystore is not None:
            out[KEYSTORE] = str(self.keystore)
        return out

    @property
    def env(self) -> dict[str, str]:
        """The variables that point clients at this store (faults may redirect them)."""
        env = self.layout.variables(self.root)
        for key, value in self.env_overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    # -- building -----------------------------------------------------------------------

    def next_slot(self, hash_hex: str) -> int:
        """The first free ``N`` for ``hash_hex.N`` in the cert dir."""
        assert self.cert_dir is not None
        n = 0
        while os.path.lexists(self.cert_dir / f"{hash_hex}.{n}"):
            n += 1
        return n

    def link_hash(self, hash_hex: str, target: str, slot: int | None = None) -> Path:
        """Make ``HHHHHHHH.N -> target`` in the cert dir (``target`` relative to it)."""
        assert self.cert_dir is not None
        n = self.next_slot(hash_hex) if slot is None else slot
        link = self.cert_dir / f"{hash_hex}.{n}"
        link.symlink_to(target)
        return link

    def install(self, ca: Authority | Leaf, name: str | None = None) -> Path | None:
        """Install ``ca`` as a healthy trust anchor, as the OS's tooling would (a self-signed
        :class:`~pytest_tlsenv.pki.Leaf` too: its own anchor).

        Debian-style: the certificate under ``shared``, a ``NAME.pem`` link to it in the cert
        dir, a hash link to that, and its block in the bundle. Returns the cert dir entry.
        """
        name = name or f"tlsenv-{ca.label}"
        pem = ca.cert_pem
        if self.layout.bundle:
            self._bundle_blocks.append(pem)
        if self.layout.keystore:
            self._keystore_certs.append(ca.cert)
        if not self.cert_dir:
            return None
        entry = self.cert_dir / f"{name}.pem"
        if self.layout.shared:
            real = self.root / self.layout.shared / f"{name}.crt"
            _write_file(real, pem)
            self._made.append(f"{self.layout.shared}/{name}.crt")
            entry.symlink_to(os.path.relpath(real, self.cert_dir))
        else:
            _write_file(entry, pem)
        link = self.link_hash(ca.subject_hash, entry.name)
        self._made += [f"{self.layout.cert_dir}/{n}" for n in (entry.name, link.name)]
        return entry

    def write_bundle(self) -> None:
        """(Re)write the bundle file from its blocks, and the layout's aliases."""
        if self.bundle is not None:
            data = b"".join(self._bundle_blocks)
            denied = [s for s in self._saved if s.path == self.bundle]
            if not os.path.lexists(self.bundle):
                _write_file(self.bundle, data)
                self._made.append(str(self.bundle.relative_to(self.root)))
            elif not denied and os.lstat(self.bundle).st_nlink > 1:
                os.unlink(self.bundle)  # a shared copy: never written through
                self.bundle.write_bytes(data)
            elif denied and os.geteuid() != 0:
                # Composed faults: a bundle fault after unreadable-bundle. Non-root cannot
                # write its own mode-000 file; lift the mode for the write only.
                os.chmod(self.bundle, 0o600)
                try:
                    self.bundle.write_bytes(data)
                finally:
                    os.chmod(self.bundle, 0)
            else:
                self.bundle.write_bytes(data)
        for rel, target in self.layout.aliases:
            alias = self.root / rel
            alias.parent.mkdir(parents=True, exist_ok=True)
            if not os.path.lexists(alias):
                alias.symlink_to(target)
        # The keystore is rewritten only when its CAs changed (an admin-installed proxy CA
        # comes after the first write); once a keystore fault broke it, it is the fault's.
        certs = self.keystore_certs() if self.keystore is not None else []
        if (
            self.keystore is not None
            and not self.keystore_broken
            and len(certs) != self._keystore_written
        ):
            data = jks_truststore(certs, self.layout.keystore_password)
            if os.path.lexists(self.keystore):
                os.unlink(self.keystore)
            _write_file(self.keystore, data)
            if self._keystore_written < 0:
                self._made.append(str(self.keystore.relative_to(self.root)))
            self._keystore_written = len(certs)

    def keystore_certs(self) -> list[x509.Certificate]:
        """The certificates the keystore holds: the installed CAs, then the filler CAs."""
        if self._filler_pems:
            self._keystore_certs += x509.load_pem_x509_certificates(b"".join(self._filler_pems))
            self._filler_pems.clear()
        return list(self._keystore_certs)

    def bundle_index(self, block: bytes) -> int:
        """The position of ``block`` among the bundle's blocks (ValueError if absent)."""
        return self._bundle_blocks.index(block)

    def install_many(self, certs: Iterable[tuple[str, bytes]], prefix: str = "tlsenv-extra") -> int:
        """Install many healthy CAs fast: ``certs`` yields ``(subject_hash, pem)`` pairs.

        The same files and links as :meth:`install` (the real file under ``shared`` when the
        layout has it, a ``NAME.pem`` entry, the hash link, a bundle block), written with
        plain ``os`` calls and slot numbers counted in memory. Returns how many were written.
        """
        cert_dir = self.cert_dir
        shared = self.root / self.layout.shared if self.layout.shared else None
        rel_shared = os.path.relpath(shared, cert_dir) if shared and cert_dir else None
        slots: dict[str, int] = {}
        existing = set(os.listdir(cert_dir)) if cert_dir is not None else set()
        count = 0
        for hash_hex, pem in certs:
            if self.layout.bundle:
                self._bundle_blocks.append(pem)
            if self.layout.keystore:
                self._filler_pems.append(pem)
            count += 1
            if cert_dir is None:
                continue
            name = f"{prefix}-{count}"
            entry = f"{cert_dir}/{name}.pem"
            if shared is not None:
                with open(f"{shared}/{name}.crt", "wb") as f:
                    f.write(pem)
                os.symlink(f"{rel_shared}/{name}.crt", entry)
            else:
                with open(entry, "wb") as f:
                    f.write(pem)
            n = slots.get(hash_hex, 0)
            while f"{hash_hex}.{n}" in existing:
                n += 1
            os.symlink(f"{name}.pem", f"{cert_dir}/{hash_hex}.{n}")
            slots[hash_hex] = n + 1
        return count

    def insert_bundle_block(
        self, block: bytes, index: int | None = None, *, cert: x509.Certificate | None = None
    ) -> None:
        """Put ``block`` in the bundle at ``index`` (default: the end) and rewrite it;
        ``cert`` (the block's certificate, when it is a CA being installed) also goes into the
        keystore, as Debian's update-ca-certificates hook for Java adds it."""
        if cert is not None and self.layout.keystore:
            self._keystore_certs.append(cert)
        if index is None:
            self._bundle_blocks.append(block)
        else:
            self._bundle_blocks.insert(index, block)
        self.write_bundle()

    # -- permission faults ----------------------------------------------------------------

    def deny(self, path: Path) -> None:
        """Make ``path`` unreadable to the client, recording how to undo it.

        As root: owned by the fault uid, mode 0600 (0700 for a directory); the client runs
        without any capability and so gets EACCES like any other user.
        As non-root: mode 000 on a file we own does the same directly.
        """
        st = os.lstat(path)
        self._saved.append(_Saved(path, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid))
        if os.geteuid() == 0:
            os.chown(path, self.fault_uid, self.fault_uid, follow_symlinks=False)
            os.chmod(path, 0o700 if stat.S_ISDIR(st.st_mode) else 0o600)
        else:
            os.chmod(path, 0)

    def restore(self) -> None:
        """Undo every owner/mode change, newest first (idempotent)."""
        while self._saved:
            saved = self._saved.pop()
            try:
                if os.geteuid() == 0:
                    os.chown(saved.path, saved.uid, saved.gid, follow_symlinks=False)
                os.chmod(saved.path, saved.mode)
            except FileNotFoundError:
                continue

    def on_close(self, hook: Callable[[], object]) -> None:
        """Run ``hook`` at :meth:`close` (before permissions are restored), newest first.

        For faults that can hold a client: a FIFO gets a writer so blocked readers return.
        """
        self._on_close.append(hook)

    def close(self) -> None:
        """Run the close hooks (idempotent); every hook runs even if one raises."""
        errors: list[BaseException] = []
        while self._on_close:
            hook = self._on_close.pop()
            try:
                hook()
            except Exception as e:  # noqa: BLE001 - re-raised below, after the others ran
                errors.append(e)
        if errors:
            raise errors[0]

    def remove_created(self) -> bool:
        """Remove the store as it was made (its files and links, then its directories,
        deepest first, then its root); True if the root is gone.

        A few unlinks and rmdirs instead of a full tree walk (about ten syscalls per
        directory), for the healthy store a test leaves as it found it. Neither unlink nor
        rmdir follows a link. False, having removed only part, as soon as something is not
        as made (a fault's extra file, a changed mode still recorded): the caller then
        removes the rest with a tree walk.
        """
        if self._saved or self._on_close:
            return False
        # Relative to directories opened without following a link: a directory that a
        # fault or the test replaced by a link is never gone through (unlink resolves every
        # component of a path but the last, and we may be root).
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        fds: dict[str, int] = {}
        try:
            fds[""] = os.open(self.root, flags)
            for rel in self.layout.dirs():  # parents first
                parent, _, name = rel.rpartition("/")
                fds[rel] = os.open(name, flags, dir_fd=fds[parent])
            for rel in self._made:
                parent, _, name = rel.rpartition("/")
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=fds[parent])
            for rel in reversed(self.layout.dirs()):
                parent, _, name = rel.rpartition("/")
                os.rmdir(name, dir_fd=fds[parent])
            os.rmdir(self.root)
        except (OSError, KeyError):
            return False
        finally:
            for fd in fds.values():
                os.close(fd)
        return True

    def destroy(self) -> None:
        """Run the close hooks, restore permissions, then delete the whole tree."""
        try:
            self.close()
        finally:
            self.restore()
            shutil.rmtree(self.root, ignore_errors=True)

    # -- looking at it --------------------------------------------------------------------

    def _walk(self) -> Iterator[Path]:
        for dirpath, dirnames, filenames in os.walk(self.root, onerror=lambda _e: None):
            dirnames.sort()
            base = Path(dirpath)
            for name in sorted(dirnames + filenames):
                yield base / name

    @property
    def entries(self) -> list[Entry]:
        """Every path under the root with kind, mode, owner and link target."""
        out: list[Entry] = []
        for path in self._walk():
            try:
                st = os.lstat(path)
            except OSError:
                continue
            target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
            out.append(
                Entry(
                    path=str(path.relative_to(self.root)),
                    kind=_kind(st.st_mode),
                    mode=st.st_mode,
                    uid=st.st_uid,
                    gid=st.st_gid,
                    size=st.st_size,
                    target=target,
                )
            )
        return out

    def listing(self) -> str:
        """The store as ``ls -l``-style lines (owners and modes included)."""
        return "\n".join(str(e) for e in self.entries)


# -- filler CAs for large stores ----------------------------------------------------------------
#
# A realistic store holds ~150 CAs, a stress store 10,000 (<= 1.5 s with
# hash links). Building each with cryptography's CertificateBuilder costs ~75 us; these are
# made from one template instead: one shared throwaway key (generated at run time), the
# template's TBSCertificate with a fixed-width number patched into the subject and issuer CN,
# signed for real (~20 us). Every filler is a valid, self-signed, name-constrained, 2-day CA
# with its own subject, hence its own subject hash. They are never used to issue anything.

_FILLER_DIGITS = 7
_FILLER_MARK = b"#" + b"0" * _FILLER_DIGITS
_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


@dataclass
class _Filler:
    key: ec.EllipticCurvePrivateKey
    tbs: bytes
    name: bytes
    made: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls) -> _Filler:
        key = ec.generate_private_key(ec.SECP256R1())
        name = ca_name("tlsenv filler CA " + _FILLER_MARK.decode())
        # Healthy and as safe as every other CA here: the same window and name constraints.
        cert = build_certificate(name, key.public_key(), key, ca=True, constrained=True)
        tbs = cert.tbs_certificate_bytes
        der = cert.public_bytes(serialization.Encoding.DER)
        # The mark must sit exactly in the issuer and subject CN, and the signature algorithm
        # must follow the TBS: else this template cannot be patched (never seen; be sure).
        if tbs.count(_FILLER_MARK) != 2 or _ECDSA_SHA256 not in der[len(tbs) :]:
            return cls.create()
        return cls(key=key, tbs=tbs, name=name.public_bytes())

    def cert(self, i: int) -> tuple[str, bytes]:
        mark = b"#" + str(i).zfill(_FILLER_DIGITS).encode()
        tbs = self.tbs.replace(_FILLER_MARK, mark)
        sig = self.key.sign(tbs, ec.ECDSA(hashes.SHA256()))
        bits = b"\x03" + _der_len(len(sig) + 1) + b"\x00" + sig
        body = tbs + _ECDSA_SHA256 + bits
        der = b"\x30" + _der_len(len(body)) + body
        b64 = base64.b64encode(der)
        lines = b"\n".join(b64[j : j + 64] for j in range(0, len(b64), 64))
        pem = b"-----BEGIN CERTIFICATE-----\n" + lines + b"\n-----END CERTIFICATE-----\n"
        digest = name_hash(self.name.replace(_FILLER_MARK, mark))
        return f"{digest:08x}", pem


_filler: _Filler | None = None
_filler_lock = threading.Lock()


def filler_cas(n: int) -> list[tuple[str, bytes]]:
    """``n`` distinct healthy CAs as ``(subject_hash, pem)``, made once per process and reused.

    For :meth:`TrustStore.install_many` (the ``extra_cas=N`` marker keyword). At most
    10**7 - 1 of them.
    """
    global _filler
    if n >= 10**_FILLER_DIGITS:
        raise ConfigError(f"extra_cas={n} is too many; at most {10**_FILLER_DIGITS - 1}")
    with _filler_lock:
        if _filler is None:
            _filler = _Filler.create()
        filler = _filler
    with filler.lock:
        while len(filler.made) < n:
            filler.made.append(filler.cert(len(filler.made) + 1))
        return filler.made[:n]
