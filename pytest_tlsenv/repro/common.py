"""What the parts of a bundle share: its file names, markers, limits, and the record of a run."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .._types import EnvView
from ..outcome import Outcome, Verdict

if TYPE_CHECKING:
    from ..scenarios import Scenario, Spec

__all__ = [
    "BUNDLE_VALIDITY",
    "CALLER_VARS",
    "DOCKER_BUNDLE",
    "DOCKER_STORE",
    "KEYS_DIR",
    "MAX_RUNS",
    "NS_SCRIPTS",
    "SECRET_REF",
    "SERVER_SCRIPT",
    "STORE_BEGIN",
    "STORE_END",
    "BundleEnv",
    "Run",
    "now",
]

#: How long a bundle's certificates stay valid: long enough for an issue to be looked at.
#: Safe because the CAs are name-constrained and their keys are never written anywhere.
BUNDLE_VALIDITY = dt.timedelta(days=365)

STORE_BEGIN = "# tlsenv: store commands begin"
STORE_END = "# tlsenv: store commands end"
DOCKER_STORE = "/tlsenv/store"
DOCKER_BUNDLE = "/tlsenv/bundle"
SERVER_SCRIPT = "server.py"
KEYS_DIR = "throwaway-keys"
# System paths: the mount plan (computed on the host that runs the bundle) and its executor.
NS_SCRIPTS = {"nsplan.py": "_nsplan.py", "nsexec.py": "_nsexec.py"}
MAX_RUNS = 5

# Variables repro.sh takes from its own caller (the allow-list idea of env.build_environ).
CALLER_VARS = ("LANG", "LANGUAGE", "LC_ALL", "TERM", "TZ")

# A secret's place in a recorded word: ``{$NAME}`` (Redactor.references), ``"${NAME}"`` in sh.
SECRET_REF = re.compile(r"\{\$([A-Za-z_][A-Za-z0-9_]*)\}")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Run:
    """One recorded client run, as the bundle replays it."""

    argv: list[str]  # translated
    env: dict[str, str]  # translated, caller/sandbox dirs excluded
    verdict: str
    reason: str
    returncode: int | None
    stderr: str  # translated and without secrets, not scrubbed of local paths
    stand_in: bool = False


class _FaultOwner(Protocol):
    @property
    def fault_uid(self) -> int: ...


class BundleEnv(EnvView[Outcome, Verdict], Protocol):
    """What a reproduction bundle reads of a :class:`~pytest_tlsenv.tlsenv.TLSEnv`.

    A structural type: the bundle engine sits above ``tlsenv`` in the layers but must not
    depend on it (``TLSEnv.repro()`` calls down into this package), so it names this view,
    which a TLSEnv satisfies (mypy checks it where ``TLSEnv.repro`` passes ``self``).
    """

    @property
    def spec(self) -> Spec: ...
    @property
    def scenario(self) -> Scenario: ...
    @property
    def settings(self) -> _FaultOwner: ...
    @property
    def system_paths(self) -> bool: ...
    @property
    def environ(self) -> Mapping[str, str]: ...
    @property
    def outcomes(self) -> Sequence[Outcome]: ...
