"""What a fault acts on and what it reports: :class:`Site`, :class:`Made`, :class:`Applied`.

The types :mod:`pytest_tlsenv.faults` (the catalogue) is built from, kept apart so that the
modules that only read a fault's result (the world, the proxy, reproduction bundles) need
not load the catalogue's makers. :mod:`pytest_tlsenv.faults` re-exports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pki import Authority
    from .store import TrustStore

__all__ = ["Applied", "Made", "Maker", "Site"]


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
    """What one fault did: the paths it broke and the shell lines that redo it.

    ``reaches`` names the trust sources whose target the fault broke, by the variable that
    names them (``SSL_CERT_DIR``: the cert dir or a redirected dir variable; ``SSL_CERT_FILE``:
    the bundle or a redirected file variable); ``None`` means anything (e.g. the proxy's CA
    installed by an admin). ``redirects`` are the variables it gave another value. A client
    whose trust comes from none of the reached sources cannot meet the fault: for that
    (client, trust mode) pair the scenario is not applicable. In system mode (no variables)
    a fault that only redirects variables reaches nobody.
    """

    fault: str
    placement: str
    paths: tuple[Path, ...]
    shell: tuple[str, ...]
    reaches: tuple[str, ...] | None = None
    redirects: tuple[str, ...] = ()

    def reaches_any(self, sources: set[str], *, variables: bool = True) -> bool:
        """Whether the fault breaks one of ``sources`` (store variables a client's trust comes
        from); with ``variables=False`` (system mode) a redirected variable does not count."""
        if self.reaches is None:
            return True
        reached = set(self.reaches)
        if not variables:
            reached -= set(self.redirects)
        return bool(reached & sources)


# A maker breaks ``path`` (entry: the cert-dir entry to write; bundle: the bundle, whose new
# block it returns through ``Made``; env: the file the faulty variable is about) and returns
# the shell lines that do the same.
Maker = Callable[[Site, Path], "Made"]


@dataclass(frozen=True)
class Made:
    """What a maker did: shell lines, plus a bundle block (bundle kind) or variable values."""

    shell: list[str]
    block: bytes = b""
    env: tuple[tuple[str, str], ...] = ()
    paths: tuple[Path, ...] = ()
    only_source: tuple[str, ...] = ()  # env kind: the variable(s) this fault breaks
