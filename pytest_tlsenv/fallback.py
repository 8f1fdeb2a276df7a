"""The ``fallback`` group: a user overrode the trust store, and the override is broken.

The trusted CA sits only in the *default* store (the layout's real paths, shown to the client
in a private mount namespace, as in ``system`` mode), while every trust variable or option the
client honours names a store that is missing, empty, unreadable or garbage. A robust client
refuses (REJECTED) or stops (FAILED): the user asked for another store, and that store trusts
nothing. OK means the client quietly went back to the default store the user had overridden.

What each kind of broken store is (:data:`KINDS`), as a file (``SSL_CERT_FILE`` and the other
bundle variables) and a directory (``SSL_CERT_DIR``, ``GIT_SSL_CAPATH``):

``missing``
    Neither exists (ENOENT); their parent does not exist either.
``empty``
    A zero-byte file and an empty directory.
``unreadable``
    A file holding a decoy CA (never the origin's), and a directory holding that decoy's hash
    link, both owned by another user with mode 0600/0700 (mode 000 as non-root): the
    permission fault's capability drop makes them unreadable to a root client too.
``garbage``
    A file of binary garbage, and a directory whose only entry is a garbage file named by the
    trusted CA's subject hash (``HHHHHHHH.0``), so OpenSSL's lookup opens it and fails.

A client whose own fallback is a store the scenario cannot reach (certifi for requests and
httpx, node's bundled roots, pip's certifi: :attr:`~pytest_tlsenv.clients.Preset.system` is
None) is not applicable: refusing there would only show that certifi lacks our CA. In ``system``
mode nothing overrides the default store, so the group does not apply either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .errors import NotApplicableError
from .faults import GARBAGE
from .pki import Authority
from .store import TrustStore

__all__ = ["KINDS", "Overrides", "client_variables", "install"]

KINDS = ("missing", "empty", "unreadable", "garbage")


class Preset(Protocol):
    """What the fallback rules read of a :class:`~pytest_tlsenv.clients.Preset` (this module
    sits below ``clients`` in the package's layers, so it names the shape, not the class)."""

    @property
    def system(self) -> object | None: ...
    def label(self, trust: str) -> str: ...
    def honours_for(self, version: str | None) -> Iterable[str]: ...


#: Honoured variables that name a directory (every other one names a file).
_DIR_VARIABLES = frozenset({"SSL_CERT_DIR", "GIT_SSL_CAPATH"})


@dataclass(frozen=True)
class Overrides:
    """The broken store a fallback scenario's variables and options name."""

    kind: str
    file: Path
    directory: Path

    @property
    def env(self) -> dict[str, str]:
        """``SSL_CERT_FILE`` and ``SSL_CERT_DIR``, both naming the broken store."""
        return {"SSL_CERT_FILE": str(self.file), "SSL_CERT_DIR": str(self.directory)}

    def value_for(self, variable: str) -> str:
        """What ``variable`` names here: the broken directory or the broken file."""
        return str(self.directory if variable in _DIR_VARIABLES else self.file)


def install(store: TrustStore, kind: str, *, trusted: Authority, decoy: Authority) -> Overrides:
    """Make the broken store of ``kind`` under ``store.root`` and point the store's variables
    (``store.env``, and so every preset's variables and flags) at it. The default store (the
    layout's own paths) is left as it is: healthy, holding the trusted CA."""
    if kind not in KINDS:
        raise ValueError(f"unknown fallback kind {kind!r}; valid: {', '.join(KINDS)}")
    base = store.root / "fallback"
    base.mkdir(exist_ok=True)
    if kind == "missing":
        # The parent is missing too: no client can create or find anything there.
        where = base / "missing"
        out = Overrides(kind, where / "ca-certificates.crt", where / "certs")
    else:
        out = Overrides(kind, base / f"{kind}.pem", base / f"{kind}-certs")
        out.directory.mkdir()
        if kind == "empty":
            out.file.touch()
        elif kind == "garbage":
            out.file.write_bytes(GARBAGE)
            (out.directory / f"{trusted.subject_hash}.0").write_bytes(GARBAGE)
        else:  # unreadable: a valid store of a decoy CA, which the client cannot read
            out.file.write_bytes(decoy.cert_pem)
            (out.directory / f"{decoy.subject_hash}.0").write_bytes(decoy.cert_pem)
            store.deny(out.file)
            store.deny(out.directory)
    store.env_overrides.update(out.env)
    # A JVM's trust-store property names the broken file too (Java's silent fallback from a
    # broken javax.net.ssl.trustStore to the JDK's default cacerts is this group's case).
    store.keystore_override = str(out.file)
    return out


def client_variables(
    overrides: Overrides | None,
    preset: Preset,
    trust: str,
    version: str | None,
    wired: Mapping[str, str | None],
) -> dict[str, str]:
    """The variables a client gets on top of its wiring in a fallback scenario, or a
    NotApplicableError saying why the scenario cannot apply to it.

    In ``env`` mode every variable the client honours (:meth:`Preset.honours_for`) names the
    broken store, not only the ones its users usually set (curl also reads CURL_CA_BUNDLE);
    ``flags`` mode needs nothing more (the options name it already).
    """
    if overrides is None:
        return {}
    label = preset.label(trust)
    if trust == "system":
        raise NotApplicableError(
            f"fallback-{overrides.kind}: with trust='system' no variable or option overrides "
            f"the default store, so there is no fallback for {label} to take"
        )
    if preset.system is None:
        raise NotApplicableError(
            f"fallback-{overrides.kind}: {label} never reads the system store (its own "
            "bundle: certifi or compiled-in roots), so its fallback is a store the scenario "
            "cannot reach"
        )
    if trust != "env":
        return {}
    honoured: Iterable[str] = preset.honours_for(version)
    return {name: overrides.value_for(name) for name in honoured if wired.get(name) is None}
