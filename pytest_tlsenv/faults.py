"""Faults: one broken thing in a trust store, as data plus one small behaviour.

A :class:`Fault` has a name, a one-line description, :meth:`Fault.apply` (break a
:class:`~pytest_tlsenv.store.TrustStore`) and the POSIX shell lines that do the same by hand
(used by reproduction bundles). The catalogue is the table :data:`FAULTS`, not a ladder of
``if``s (pytest-httpserver models response faults the same way).

Placement: an *entry* fault writes its broken entry ``tlsenv-<fault>.pem`` in the cert dir and
links a hash name to it, like ``c_rehash`` would. With ``placement="decoy"`` the link carries a
decoy CA's own hash, so the origin's CA stays healthy; only clients that read every file
(rustls-native-certs, Go, ``wget --ca-directory``) meet it, because OpenSSL looks a cert dir up
lazily by subject hash and never opens a decoy. With ``placement="shadow"`` the link takes the
trusted CA's ``<hash>.0`` slot (the real CA moves to ``.1``): OpenSSL stops at the first slot
that fails to load, so this is what bites OpenSSL clients.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .pki import Authority
from .store import TrustStore

__all__ = ["FAULTS", "PLACEMENTS", "Applied", "Fault", "Site", "get_fault"]

PLACEMENTS = ("decoy", "shadow")


@dataclass(frozen=True)
class Site:
    """Where a fault lands: the store, the placement and the CAs it may need.

    ``ca`` is the CA whose slot the fault occupies: a decoy for ``decoy``, the trusted CA for
    ``shadow``.
    """

    store: TrustStore
    placement: str
    trusted: Authority
    decoy: Authority

    @property
    def ca(self) -> Authority:
        return self.trusted if self.placement == "shadow" else self.decoy

    def rel(self, path: Path) -> str:
        """``path`` as a shell word under ``$STORE``."""
        return f'"$STORE/{path.relative_to(self.store.root)}"'


@dataclass(frozen=True)
class Applied:
    """What one fault did: the paths it broke and the shell lines that redo it."""

    fault: str
    placement: str
    paths: tuple[Path, ...]
    shell: tuple[str, ...]


# A maker writes the broken entry at ``path`` and returns the shell lines that do the same.
Maker = Callable[[Site, Path], list[str]]


@dataclass(frozen=True)
class Fault:
    """One named way a trust store can be broken."""

    name: str
    description: str
    make: Maker
    kind: str = "entry"

    def apply(self, site: Site) -> Applied:
        """Break ``site.store`` and return what was done."""
        store = site.store
        if store.cert_dir is None:
            raise ConfigError(
                f"fault {self.name!r} needs a cert dir, and layout {store.layout.name!r} has none"
            )
        entry = store.cert_dir / f"tlsenv-{self.name}.pem"
        lines = self.make(site, entry)
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
        return Applied(self.name, site.placement, (entry, link), tuple(lines))


def _copy_ca(site: Site, path: Path) -> list[str]:
    path.write_bytes(site.ca.cert_pem)
    return [f'cp "$CERTS/{site.ca.label}.pem" {site.rel(path)}']


def _deny_lines(site: Site, path: Path, *, directory: bool = False) -> list[str]:
    mode = "0700" if directory else "0600"
    uid = site.store.fault_uid
    target = site.rel(path)
    return [
        f'if [ "$(id -u)" = 0 ]; then chown {uid}:{uid} {target} && chmod {mode} {target};'
        f" else chmod 000 {target}; fi"
    ]


def _unreadable_file(site: Site, path: Path) -> list[str]:
    lines = _copy_ca(site, path)
    site.store.deny(path)
    return lines + _deny_lines(site, path)


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault(
            "unreadable-file",
            "a CA file in the cert dir owned by another user with mode 0600 (the uv 5448 case)",
            _unreadable_file,
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
