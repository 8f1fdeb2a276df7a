"""Staging: the scenario's store rebuilt with the bundle's PKI, then written down as the POSIX
shell commands that build the same store from scratch."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..faults import Applied
from ..journal import Journal
from ..proxy import SETUPS
from ..scenarios import Spec
from ..world import World
from .bundle_pki import BundlePKI

__all__ = ["Staged", "stage"]


@dataclass
class Staged:
    """The scenario's store rebuilt under ``root`` with the bundle's PKI.

    ``commands`` are the POSIX shell lines (using ``$STORE`` and ``$CERTS``) that build the
    same store from scratch; ``certs`` maps a file name under ``certs/`` to its content;
    ``applied`` is what each fault did.
    """

    pki: BundlePKI
    root: Path
    store_root: Path
    commands: list[str]
    certs: dict[str, bytes]
    applied: list[Applied]
    mitm_trusted: bool
    world: World  # the staging store (given back and removed by close())
    journal: Journal

    def close(self) -> None:
        try:
            self.world.close()
        finally:
            shutil.rmtree(self.world.root, ignore_errors=True)
            self.journal.discard()


def _pem_blocks(data: bytes) -> list[bytes] | None:
    end = b"-----END CERTIFICATE-----\n"
    if not data or not data.endswith(end):
        return None
    parts = data.split(end)
    blocks = [p + end for p in parts[:-1]]
    return blocks if b"".join(blocks) == data else None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        # Non-root: a denied file is ours with mode 000; open it up for a moment.
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        os.chmod(path, 0o600)
        try:
            return path.read_bytes()
        finally:
            os.chmod(path, mode)


def _denied(st: os.stat_result) -> bool:
    """Whether a healthy-phase entry was made unreadable on purpose (TrustStore.deny)."""
    return st.st_uid != os.geteuid() or not st.st_mode & stat.S_IRUSR


def _deny_line(target: str, *, directory: bool, fault_uid: int) -> str:
    # The same line faults.py writes for a denied entry: chown as root, chmod 000 otherwise.
    mode = "0700" if directory else "0600"
    return (
        f'if [ "$(id -u)" = 0 ]; then chown {fault_uid}:{fault_uid} {target} && chmod {mode} '
        f"{target}; else chmod 000 {target}; fi"
    )


def _walk_commands(
    store_root: Path, by_pem: Mapping[bytes, str], certs: dict[str, bytes], fault_uid: int
) -> list[str]:
    """Shell lines that recreate the tree under ``store_root``: dirs, files, links, FIFOs,
    and the entries denied to the client (owner and mode as :meth:`TrustStore.deny` sets)."""
    dirs: list[str] = []
    files: list[str] = []
    links: list[str] = []
    denials: list[str] = []
    for dirpath, dirnames, filenames in os.walk(store_root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = base / name
            rel = path.relative_to(store_root)
            target = f'"$STORE/{rel}"'
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                links.append(f"ln -s {shlex.quote(os.readlink(path))} {target}")
            elif stat.S_ISDIR(st.st_mode):
                dirs.append(str(rel))
                if _denied(st):
                    denials.append(_deny_line(target, directory=True, fault_uid=fault_uid))
            elif stat.S_ISFIFO(st.st_mode):
                files.append(f"mkfifo {target}")
            elif stat.S_ISREG(st.st_mode):
                if _denied(st):
                    denials.append(_deny_line(target, directory=False, fault_uid=fault_uid))
                data = _read(path)
                if data in by_pem:
                    files.append(f'cp "$CERTS/{by_pem[data]}" {target}')
                    continue
                blocks = _pem_blocks(data)
                if blocks and all(b in by_pem for b in blocks):
                    sources = " ".join(f'"$CERTS/{by_pem[b]}"' for b in blocks)
                    files.append(f"cat {sources} > {target}")
                    continue
                name_in_certs = "store-" + str(rel).replace("/", "_")
                certs[name_in_certs] = data
                files.append(f'cp "$CERTS/{name_in_certs}" {target}')
            else:
                raise ConfigError(f"cannot export {rel}: not a file, dir, symlink or FIFO")
    # Deepest directories only: mkdir -p makes their parents.
    leaves = [d for d in dirs if not any(o.startswith(d + "/") for o in dirs)]
    mkdirs = [f'mkdir -p "$STORE/{d}"' for d in leaves]
    # Denials last: a denied directory must be filled before it is closed.
    return mkdirs + files + links + denials[::-1]


def stage(spec: Spec, root: Path, *, fault_uid: int = 65533) -> Staged:
    """Rebuild ``spec``'s store under ``root`` with a fresh PKI; return it with its commands."""
    pki = BundlePKI(root / "pki")
    # No user: the staging store is ours to walk; the bundle's repro.sh runs as whoever runs it.
    scenario = root / "scenario"
    scenario.mkdir(parents=True, exist_ok=True)
    world = World(dataclasses.replace(spec, user=None), pki=pki, root=scenario, fault_uid=fault_uid)
    journal = Journal(fault_uid=fault_uid)
    commands: list[str] = []
    certs: dict[str, bytes] = {}
    healthy_applied: list[int] = []

    def healthy() -> None:
        # The healthy store as commands; the faults add their own shell lines below. (What
        # the healthy part applied, an admin-installed CA, is in the walk already.)
        healthy_applied.append(len(world.applied))
        authorities = [*pki.authorities.values(), *pki.decoys]
        by_pem = {a.cert_pem: f"{a.label}.pem" for a in authorities}
        commands.extend(_walk_commands(world.store.root, by_pem, certs, fault_uid))

    staged = Staged(
        pki=pki,
        root=root,
        store_root=world.store.root,
        commands=commands,
        certs=certs,
        applied=[],
        mitm_trusted=False,
        world=world,
        journal=journal,
    )
    try:
        world.materialise(journal, before_faults=healthy)
        staged.mitm_trusted = bool(spec.proxy and SETUPS[spec.proxy].ca_trusted)
        staged.applied = world.applied[healthy_applied[0] :]
        for name, done in zip(spec.faults, staged.applied, strict=True):
            commands.append(f"# fault: {name} ({spec.placement})")
            commands.extend(done.shell)
        for a in [*pki.authorities.values(), *pki.decoys]:
            certs.setdefault(f"{a.label}.pem", a.cert_pem)
        for line in commands:
            for ref in re.findall(r"\$CERTS/([\w.@+-]+)", line):
                if ref not in certs:
                    raise ConfigError(
                        f"a store command refers to $CERTS/{ref}, which the bundle does not "
                        f"have: {line}"
                    )
    except BaseException:
        staged.close()
        raise
    return staged
