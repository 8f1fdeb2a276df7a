"""Where does this client look? The trust-discovery probe.

Every candidate source of trust gets a canary CA of its own: each trust variable of
:data:`TRUST_VARIABLES` (a bundle file for file-valued ones, a hashed directory for
directory-valued ones) and, with ``system_paths=True``, every default location of the
debian, rhel and alpine layouts (:data:`SYSTEM_SOURCES`, shown at the real paths in a private
mount namespace). One origin per canary presents a leaf of that canary on loopback. Then:

* **control**: nothing set, the client fetches from an origin whose canary is installed
  nowhere: it must refuse (REJECTED), else the probe cannot tell anything (the client does
  not verify, or fails for another reason);
* **singles**: one source set (a variable) or present (a system default), the client fetches
  from that source's origin: OK means the client trusts that source;
* **pairs**: two trusted sources set together, the client fetches from each one's origin in
  turn: both OK is a union, one OK means that one wins and setting it disables the other
  (httpx's SSL_CERT_FILE disables SSL_CERT_DIR).

While each run goes, an inotify watch (IN_OPEN/IN_ACCESS, no privileges needed) on every
canary directory records which canary files the client opened, so a refused source is either
"read-only" (opened, not trusted) or "ignored" (never opened). A callable runs in this
process: inotify sees its opens all the same. Runs are sequential: each run's opens must be
its own, and in-process calls serialise anyway (one ``os.environ``).

Runs are hermetic the way ``TLSEnv.run``/``call`` are: an allow-list environment with a
fresh sandbox HOME per run (:mod:`pytest_tlsenv.env`), a child without the DAC capabilities
as root (:mod:`pytest_tlsenv.runner`); every trust variable of the registry that is not under
test is unset.

The parts: :mod:`.sources` (the registry), :mod:`.watch` (inotify), :mod:`.results` (the
findings and their renderings), :mod:`.engine` (:class:`Probe`); the ``probe`` command is
:mod:`pytest_tlsenv.cli.probe`.
"""

from __future__ import annotations

import warnings
from typing import Any

from .engine import Client as Client
from .engine import Probe, probe
from .results import ERROR as ERROR
from .results import IGNORED as IGNORED
from .results import INCONCLUSIVE as INCONCLUSIVE
from .results import READ_ONLY as READ_ONLY
from .results import TRUSTED as TRUSTED
from .results import PairResult, ProbeReport, SourceResult
from .sources import PLACEHOLDERS, SYSTEM_SOURCES, TRUST_VARIABLES, Source, TrustVariable
from .watch import OpenWatch

__all__ = [
    "PLACEHOLDERS",
    "SYSTEM_SOURCES",
    "TRUST_VARIABLES",
    "OpenWatch",
    "PairResult",
    "Probe",
    "ProbeReport",
    "Source",
    "SourceResult",
    "TrustVariable",
    "probe",
]


def __getattr__(name: str) -> Any:
    """Names that moved out of this module stay importable, with a DeprecationWarning."""
    if name == "add_cli_command":
        from ..cli import probe as cli_probe  # the command moved up to the faces: a shim

        warnings.warn(
            "pytest_tlsenv.probe.add_cli_command is deprecated: use "
            "pytest_tlsenv.cli.probe.add_commands",
            DeprecationWarning,
            stacklevel=2,
        )
        return cli_probe.add_commands
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
