"""The ``fakefs`` backend: a scenario's trust store inside pyfakefs, for Python-level code.

Some code finds and reads trust files itself: certifi-style bundle lookups, a library walking
candidate paths like openssl-probe, a tool scanning ``/etc/ssl/certs``. For such code,
:func:`fake_store` copies the scenario's real store (owners, modes, symlinks, FIFOs, faults
included) into a pyfakefs file system, twice: at its own paths (where ``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` point) and at the layout's *system* paths (``/etc/ssl/certs/...``), so a
lookup of hard-coded system paths finds the scenario's store instead of the host's.

Permission faults bite there as a non-root user even when the test process is root:
pyfakefs runs with ``allow_root_user=False``, which makes the fake file system's user uid 1
whatever the real uid (so a fault file, owned by the fault uid with mode 0600 or by you with
mode 000, is unreadable as on disk; the healthy files are world-readable).

What it is **not**: OpenSSL (and so ``ssl``, curl, any subprocess) reads the real disk, never
pyfakefs. There is no handshake against a fakefs store: ``ssl.create_default_context(cafile=
...)`` inside it opens the *real* path. A FIFO is a fake FIFO whose open never blocks.
Use the disk backend for anything that does TLS.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError
from .store import TrustStore

if TYPE_CHECKING:
    from pyfakefs.fake_filesystem import FakeFilesystem

__all__ = ["FakeEntry", "fake_store", "snapshot"]


@dataclass(frozen=True)
class FakeEntry:
    """One path of the real store, captured to be recreated in pyfakefs."""

    rel: str
    kind: str  # dir, file, symlink, fifo
    mode: int  # permission bits
    uid: int
    gid: int
    data: bytes = b""
    target: str = ""


@contextmanager
def _readable(path: Path, mode: int) -> Iterator[None]:
    """As non-root, lift a mode-000 (our own) file or dir for the copy only."""
    if os.geteuid() == 0 or mode & 0o500 == 0o500:
        yield
        return
    os.chmod(path, mode | 0o500)
    try:
        yield
    finally:
        os.chmod(path, mode)


def snapshot(store: TrustStore) -> list[FakeEntry]:
    """Every path under the store's root, with contents: what :func:`fake_store` recreates."""
    out: list[FakeEntry] = []

    def visit(directory: Path) -> None:
        st = os.lstat(directory)
        with _readable(directory, stat.S_IMODE(st.st_mode)):
            names = sorted(os.listdir(directory))
        for name in names:
            path = directory / name
            st = os.lstat(path)
            rel = str(path.relative_to(store.root))
            mode = stat.S_IMODE(st.st_mode)
            common = {"rel": rel, "mode": mode, "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISLNK(st.st_mode):
                out.append(FakeEntry(kind="symlink", target=os.readlink(path), **common))  # type: ignore[arg-type]
            elif stat.S_ISDIR(st.st_mode):
                out.append(FakeEntry(kind="dir", **common))  # type: ignore[arg-type]
                with _readable(path, mode):
                    visit(path)
            elif stat.S_ISFIFO(st.st_mode):
                out.append(FakeEntry(kind="fifo", **common))  # type: ignore[arg-type]
            elif stat.S_ISREG(st.st_mode):
                with _readable(path, mode):
                    data = path.read_bytes()
                out.append(FakeEntry(kind="file", data=data, **common))  # type: ignore[arg-type]

    visit(store.root)
    return out


def _populate(fs: FakeFilesystem, entries: list[FakeEntry], base: Path) -> None:
    # Create everything first, then set owners and modes deepest first, so a fault's 0700
    # directory does not stop the setup itself.
    fs.create_dir(str(base))
    for e in entries:
        path = str(base / e.rel)
        if e.kind == "dir":
            fs.create_dir(path)
        elif e.kind == "symlink":
            fs.create_symlink(path, e.target)
        elif e.kind == "fifo":
            fs.create_file(path, st_mode=stat.S_IFIFO | e.mode)
        else:
            fs.create_file(path, contents=e.data)
    for e in sorted(entries, key=lambda e: e.rel.count("/"), reverse=True):
        if e.kind == "symlink":
            continue
        obj = fs.get_object(str(base / e.rel))
        obj.st_uid, obj.st_gid = e.uid, e.gid
        obj.st_mode = stat.S_IFMT(obj.st_mode) | e.mode


@contextmanager
def fake_store(store: TrustStore, *, system_paths: bool = True) -> Iterator[FakeFilesystem]:
    """Run the ``with`` body inside pyfakefs holding a copy of ``store``.

    The copy sits at the store's own root (what ``store.env`` names) and, with
    ``system_paths``, also at ``/`` (``/etc/ssl/certs/...`` for the debian layout). The body
    runs as a non-root user of the fake file system whatever the real uid. Yields the
    :class:`pyfakefs.fake_filesystem.FakeFilesystem`.
    """
    try:
        from pyfakefs.fake_filesystem_unittest import Patcher
    except ImportError:
        raise ConfigError(
            "backend='fakefs' needs pyfakefs: pip install 'pytest-tlsenv[fakefs]'"
        ) from None
    entries = snapshot(store)  # read the real files before the patch hides them
    with Patcher(allow_root_user=False) as patcher:
        fs = patcher.fs
        assert fs is not None
        _populate(fs, entries, store.root)
        if system_paths:
            _populate(fs, entries, Path("/"))
        yield fs
