"""The Preset type: how a client gets a scenario's store in each trust mode (its wiring).

A preset names the trust variables a client honours, the ones users of it set (``env``), its
explicit options (``flags``) and the compiled-in paths it reads (``system``); :meth:`Preset.wiring`
turns those tables into the variables or paths of one scenario, or refuses a mode that cannot
apply.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import NotApplicableError
from ..keystore import KEYSTORE
from .client import Client

if TYPE_CHECKING:
    from typing import TypeAlias

    from .._types import EnvView
    from ..outcome import Outcome, Verdict

    # A TLSEnv as seen from below it in the layers (_types.py).
    TLSEnv: TypeAlias = EnvView[Outcome, Verdict]

__all__ = [
    "DIR",
    "EITHER",
    "FILE",
    "KEYSTORE",
    "OPENSSL_ENV",
    "WIRED_VARIABLES",
    "Preset",
    "Wiring",
    "version_key",
]


#: Where a trust variable or flag gets its value: the store variable it copies
#: (SSL_CERT_FILE or SSL_CERT_DIR, as the scenario has them, env faults included), or
#: EITHER: the layout's bundle when it has one, else its cert dir (for clients with one
#: variable that takes a file or a hashed directory, such as REQUESTS_CA_BUNDLE).
FILE = "SSL_CERT_FILE"
DIR = "SSL_CERT_DIR"
EITHER = "SSL_CERT_FILE|SSL_CERT_DIR"

#: What OpenSSL-based clients read, each variable its own source.
OPENSSL_ENV: Mapping[str, str] = {FILE: FILE, DIR: DIR}

#: Every variable a trust mode sets or unsets for a preset (beside the ones it sets, these are
#: unset: a requests user sets REQUESTS_CA_BUNDLE, not SSL_CERT_FILE as well).
WIRED_VARIABLES = (
    FILE,
    DIR,
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
    "JAVA_TOOL_OPTIONS",
)


@dataclass(frozen=True)
class Wiring:
    """How one preset gets a scenario's store in one trust mode.

    ``env``: the variables to set (None unsets); ``values``: flag or variable -> the path it
    takes (what the scenario's SSL_CERT_FILE/SSL_CERT_DIR name, faults included);
    ``sources``: the store variables the client's trust comes from (for applicability).
    """

    trust: str
    env: Mapping[str, str | None]
    values: Mapping[str, str]
    sources: frozenset[str]

    def flag_words(self, *, joined: bool = False) -> list[str]:
        """The flags mode's options as argv words (``--cacert X`` or ``--flag=X``); none in
        the other modes."""
        words: list[str] = []
        for flag, path in self.values.items() if self.trust == "flags" else ():
            words += [f"{flag}={path}"] if joined else [flag, path]
        return words


@dataclass(frozen=True)
class Preset:
    """How to detect a client, point it at a scenario's origin/store/proxy, and run it.

    ``honours`` lists the trust variables the client reads (highest first), as measured here;
    ``honours_before`` the older versions' lists, as ``(first version that differs, list)``
    pairs, oldest first (see :meth:`honours_for`). ``build(tlsenv, version, wiring)``
    returns a ready :class:`Client`; :meth:`wiring` decides, per trust mode, which variables
    (``env_vars``) or options (``flags``) the client gets, or which compiled-in paths it reads
    (``system``), and whether the scenario applies at all.
    """

    name: str
    description: str
    honours: tuple[str, ...]
    detect: Callable[[], str | None]
    #: ``build(tlsenv, version, wiring)`` (or ``build(tlsenv, version)`` for a preset that
    #: knows nothing of trust modes: it gets the env mode's variables).
    build: Callable[..., Client]
    in_process: bool = False
    # (PyPI package, executable) for pinned(); "python" for a library run out of process.
    installable: tuple[str, str] | None = None
    honours_before: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: ``trust="env"``: variable -> source (:data:`FILE`, :data:`DIR` or :data:`EITHER`);
    #: the variables users of this client set. Empty: the client reads none (wget).
    env_vars: Mapping[str, str] = field(default_factory=lambda: dict(OPENSSL_ENV))
    #: ``trust="flags"``: option -> source, in argv order. Empty: no such mode.
    flags: Mapping[str, str] = field(default_factory=dict)
    #: ``trust="system"``: the compiled-in trust paths the client reads with no variable set
    #: (absolute; a function, so it can ask the host's OpenSSL). None: it never reads the
    #: system store (certifi, node's bundled store).
    system: Callable[[], tuple[str, ...]] | None = None

    def honours_for(self, version: str | None) -> tuple[str, ...]:
        """What version ``version`` honours: the list of the first ``honours_before`` pair
        whose version is above it, else :attr:`honours` (also for an unknown version)."""
        key = version_key(version)
        if key is not None:
            for since, honours in self.honours_before:  # oldest first
                if key < (version_key(since) or ()):
                    return honours
        return self.honours

    def label(self, trust: str) -> str:
        """The variant's name in a trust mode: ``curl``, ``curl (system)``, ``curl --cacert``."""
        if trust == "flags" and self.flags:
            return f"{self.name} {next(iter(self.flags))}"
        return self.name if trust == "env" else f"{self.name} ({trust})"

    def wiring(self, env: TLSEnv, trust: str) -> Wiring:
        """How this client gets ``env``'s store in mode ``trust``, or NotApplicableError."""
        unset: dict[str, str | None] = dict.fromkeys(WIRED_VARIABLES)
        if trust == "system":
            return Wiring(trust, unset, {}, self._system_sources(env))
        table = self.env_vars if trust == "env" else self.flags
        if not table:
            how = "reads no trust variable" if trust == "env" else "has no trust option"
            other = "flags" if trust == "env" and self.flags else "system"
            raise NotApplicableError(
                f"{self.name} {how}: trust={trust!r} cannot apply (use trust={other!r})"
            )
        present = env.store.sources  # the variables' targets, and the Java keystore
        healthy = env.store.layout.variables(env.store.root)
        values: dict[str, str] = {}
        sources: set[str] = set()
        for name, source in table.items():
            if source == EITHER:
                source = FILE if FILE in healthy else DIR
            value = present.get(source)
            if value is not None:
                values[name] = value
                sources.add(source)
        if not values:
            raise NotApplicableError(
                f"layout {env.store.layout.name!r} has nothing {self.name}'s "
                f"{', '.join(table)} can name (it has {', '.join(present) or 'no variable'})"
            )
        wired = {**unset, **values} if trust == "env" else unset
        return Wiring(trust, wired, values, frozenset(sources))

    def _system_sources(self, env: TLSEnv) -> frozenset[str]:
        layout = env.store.layout
        if self.system is None:
            raise NotApplicableError(
                f"{self.name} never reads the system trust store (its own bundle): "
                "trust='system' cannot apply"
            )
        read = set(self.system())
        sources = set()
        if any(f"/{rel}" in read for rel in (layout.bundle, layout.cert_file) if rel):
            sources.add(FILE)
        if layout.cert_dir and f"/{layout.cert_dir}" in read:
            sources.add(DIR)
        if layout.keystore and f"/{layout.keystore}" in read:
            sources.add(KEYSTORE)
        if not sources:
            kept = (layout.bundle, layout.cert_dir, layout.keystore)
            where = ", ".join(f"/{p}" for p in kept if p)
            raise NotApplicableError(
                f"{self.name} was built to read {', '.join(sorted(read))}; layout "
                f"{layout.name!r} keeps its trust at {where}: trust='system' cannot apply"
            )
        return frozenset(sources)


def version_key(version: str | None) -> tuple[int, ...] | None:
    """``"0.2.28"`` -> ``(0, 2, 28)``; None when it does not start with a number."""
    m = re.match(r"\d+(?:\.\d+)*", version or "")
    return tuple(int(x) for x in m.group(0).split(".")) if m else None
