"""A scenario's world made real on disk: the store in its layout, a trusted proxy's CA, the
filler CAs, the faults, the fallback store, and the mount plan that shows it at the system paths.

:class:`~pytest_tlsenv.tlsenv.TLSEnv` builds its world with :meth:`World.materialise`, and
reproduction bundles stage theirs with the same call (``repro.staging``), so a bundle's store
is made exactly as a session's is. Servers and clients are not part of a world: ``TLSEnv``
adds them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Callable
from pathlib import Path

from . import fallback
from .env import traversable_path
from .errors import ConfigError
from .fallback import Overrides
from .faults import Applied, Site, get_fault
from .journal import Journal
from .journal import covered as journal_covered
from .namespace import MountPlan
from .pki import PKI
from .proxy import install_admin_ca
from .proxyenv import invented_names, setup_of
from .runner import check_usable, client_ids
from .scenarios import Scenario, Spec
from .store import TrustStore, filler_cas

__all__ = ["World", "make_venv"]


class World:
    """``spec``'s store under ``root / "store"``, and what was done to it.

    Made empty; :meth:`materialise` fills it and applies the faults; :meth:`close` gives every
    entry back (hooks released, owners and modes restored). Removing ``root`` is the owner's.
    """

    def __init__(self, spec: Spec, *, pki: PKI, root: Path, fault_uid: int) -> None:
        self.spec = spec
        self.pki = pki
        self.root = root
        self.store = TrustStore.create(root / "store", spec.layout, fault_uid=fault_uid)
        #: What each fault (and an admin-installed proxy CA) did, in order.
        self.applied: list[Applied] = []
        #: The broken store every variable and option names (the fallback group), else None.
        self.fallback: Overrides | None = None
        # Behind a proxy the origin is addressed by a .test name that only the proxy resolves:
        # a client that resolves it itself (ignoring the proxy, SOCKS without remote DNS) must
        # not ask the machine's resolver about it.
        # An HTTPS proxy has an invented name of its own (proxyenv.py).
        self.invented_names: tuple[str, ...] = invented_names(spec.proxy)
        self._mount_plan: MountPlan | None = None
        self._names_plan: MountPlan | None = None

    @property
    def scenario(self) -> Scenario:
        return self.spec.scenario

    def materialise(
        self, journal: Journal, *, before_faults: Callable[[], None] | None = None
    ) -> None:
        """Fill the store: the trusted CA, a trusted proxy's CA, filler CAs, the bundle, then
        the faults and the fallback store.

        Before the first change a killed process could not give back (a fault, an admin's
        CA, a fallback store), ``root`` goes into ``journal``. ``before_faults`` runs once the
        healthy store is complete: bundles write it down before the faults change it.
        """
        trusted = self.pki.authorities["trusted"]
        if self.spec.faults or self._admin_ca() or self.scenario.fallback is not None:
            self._journal_root(journal)
        self.store.install(trusted)
        if self.scenario.leaf_anchor:
            # A self-signed origin certificate the user trusts as itself (requests 6969).
            self.store.install(self.pki.server_leaf(self.spec.server))
        self._install_proxy_ca()
        if self.spec.extra_cas:
            # Filler CAs from one template (store.filler_cas): 10,000 in about a second.
            self.store.install_many(filler_cas(self.spec.extra_cas))
        self.store.write_bundle()
        if before_faults is not None:
            before_faults()
        for n, name in enumerate(self.spec.faults):
            site = Site(self.store, self.spec.placement, trusted, self.pki.decoy(n))
            self.applied.append(get_fault(name).apply(site))
        if self.scenario.fallback is not None:
            # After the faults: the override wins over any variable a fault redirected.
            self.fallback = fallback.install(
                self.store,
                self.scenario.fallback,
                trusted=trusted,
                decoy=self.pki.decoy(len(self.spec.faults)),
            )

    def _journal_root(self, journal: Journal) -> None:
        """Record the root before the first fault: if this process dies from here on
        (SIGKILL, a CI timeout), the next session gives every entry back and removes it.
        Not needed when a live record of this process (the plugin's session) covers it."""
        if journal_covered(self.root):
            return
        if str(self.root) not in journal.roots:
            journal.write([*journal.roots, str(self.root)])

    def _admin_ca(self) -> bool:
        """Whether the proxy's CA goes in the way uv 5448's admin put it: unreadable."""
        trusted = self.spec.proxy is not None and setup_of(self.spec.proxy).ca_trusted
        return trusted and self.scenario.proxy_ca == "admin-0600"

    def _install_proxy_ca(self) -> None:
        """Put a trusted proxy's CA into the store, the way the scenario says."""
        if self.spec.proxy is None or not setup_of(self.spec.proxy).ca_trusted:
            return
        mitm = self.pki.authorities["mitm"]
        if self._admin_ca():
            self.applied.append(install_admin_ca(self.store, mitm))
        else:
            self.store.install(mitm)

    def mount_plan(self) -> MountPlan:
        """What system paths mount where (computed once, after the faults), with the
        invented names kept on loopback when there are any."""
        if self._mount_plan is None:
            plan = MountPlan.for_store(self.store, self.root / "ns-stage")
            if self.invented_names:
                plan = plan.with_names(self.invented_names)
            self._mount_plan = plan
        return self._mount_plan

    def names_plan(self) -> MountPlan:
        """Only the invented names kept on loopback: a client's namespace without the store."""
        if self._names_plan is None:
            self._names_plan = MountPlan.for_names(self.invented_names, self.root / "ns-stage")
        return self._names_plan

    def close(self) -> None:
        """Release the store's hooks (a FIFO gets its writer, so blocked readers return),
        then give every entry back its owner and mode."""
        try:
            self.store.close()
        finally:
            self.store.restore()


def make_venv(path: Path, user: str | None) -> str:
    """A fresh bare virtualenv (no pip) at ``path``, owned by ``user`` if given: its python.

    With a ``user``, the venv is made from this interpreter if that user can run it, else
    from the first ``python3`` on the clients' PATH that it can run (this one may live under
    /root, mode 0700); a ConfigError if none.
    """
    base = _venv_base(user) if user is not None else None
    if base is None:
        venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(path)
    else:
        argv = [base, "-I", "-m", "venv", "--without-pip", "--symlinks", "--clear", str(path)]
        subprocess.run(argv, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    if user is not None:
        _chown_tree(path, user)
    return str(path / "bin" / "python")


def _venv_base(user: str) -> str | None:
    """A python3 that ``user`` can run to make its venv; None: this interpreter will do."""
    if os.geteuid() != 0:
        return None
    uid, gid = client_ids(user)
    base = getattr(sys, "_base_executable", sys.executable)
    try:
        check_usable(base, uid, gid, want=os.X_OK, what="the interpreter", user=user)
        return None
    except ConfigError as e:
        why = e
    path = traversable_path(os.environ.get("PATH", os.defpath), other=True)
    for candidate in (shutil.which("python3", path=path), "/usr/bin/python3"):
        if candidate is None or not os.path.exists(candidate):
            continue
        try:
            check_usable(candidate, uid, gid, want=os.X_OK, what="python3", user=user)
        except ConfigError:
            continue
        return candidate
    raise ConfigError(f"tlsenv.venv(): {why}; and no python3 on the PATH is usable by it either")


def _chown_tree(path: Path, user: str) -> None:
    uid, gid = client_ids(user)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.chown(name, uid, gid, follow_symlinks=False)
