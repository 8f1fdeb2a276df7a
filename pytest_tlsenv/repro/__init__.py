"""Reproduction bundles: any scenario, exported so that it runs without pytest.

:func:`export` (``TLSEnv.repro(path)``, ``--tlsenv-repro-dir``, ``python -m pytest_tlsenv
repro``) writes a directory a maintainer can run on their own machine:

* ``scenario.json``: everything needed to rebuild the scenario (keywords, layout, trust mode,
  faults with their placement and shell lines, the store's commands, the client runs with
  their exact environment, verdicts, the expected set, the servers);
* ``certs/``: the bundle's public CA certificates and server leaves;
* ``throwaway-keys/``: the only private keys, those the bundle's servers present, with a README;
* ``server.py``: the origin (and proxy), python3's standard library only;
* ``index/``: the ``tlsenv-probe`` wheel the origin serves;
* ``repro.sh``: POSIX sh: builds the store with mkdir/cp/ln -s/chmod/chown..., starts
  ``server.py``, runs each recorded client command in exactly its environment (``env -i``; as
  root under ``setpriv`` without any capability; in ``system`` trust mode or with system paths,
  through ``nsplan.py``'s mount namespace) and prints the verdict;
* ``Dockerfile``: the same store commands as RUN lines, the client installed, a non-root user;
* ``ISSUE.md``: ready to paste.

Every bundle has its own fresh CAs: the session's keys never leave the session, and the
bundle's CA keys are never written at all (the forged interception leaf is made at export
time, so ``server.py`` needs no crypto library). The store is rebuilt by the same code that
built the session's (``world.World.materialise``: the healthy part, then ``Fault.apply`` and its
``Applied.shell`` lines for the faults), then translated into shell commands.

The parts: :mod:`.staging` (the store as commands), :mod:`.record` (the runs), :mod:`.script`
(repro.sh), :mod:`.docker`, :mod:`.issue`, :mod:`.export` (writing it all); the text of the
files is package data under ``templates/``. The ``repro`` and ``serve`` commands are
:mod:`pytest_tlsenv.cli.repro`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .common import BundleEnv


from .common import BUNDLE_VALIDITY
from .common import DOCKER_BUNDLE as DOCKER_BUNDLE
from .common import DOCKER_STORE as DOCKER_STORE
from .common import KEYS_DIR as KEYS_DIR
from .common import MAX_RUNS as MAX_RUNS
from .common import NS_SCRIPTS as NS_SCRIPTS
from .common import SERVER_SCRIPT as SERVER_SCRIPT
from .common import STORE_BEGIN as STORE_BEGIN
from .common import STORE_END as STORE_END
from .docker import parse_dockerfile_runs
from .export import export
from .export import known_verdicts as known_verdicts
from .script import parse_store_commands
from .staging import Staged, stage

__all__ = [
    "BUNDLE_VALIDITY",
    "Staged",
    "export",
    "parse_dockerfile_runs",
    "parse_store_commands",
    "stage",
]


def _deprecated_substitute(words: Sequence[str], env: BundleEnv) -> list[str]:
    from ..placeholders import env_values, substitute

    return substitute(words, env_values(env))


def _moved() -> dict[str, tuple[str, Any]]:
    from .. import placeholders
    from ..cli import repro as cli_repro  # the command moved up to the faces: a shim, not a use

    return {
        "add_cli_commands": ("pytest_tlsenv.cli.repro.add_commands", cli_repro.add_commands),
        "PLACEHOLDERS": ("pytest_tlsenv.placeholders.PLACEHOLDERS", placeholders.PLACEHOLDERS),
        "_Translator": ("pytest_tlsenv.placeholders.Translator", placeholders.Translator),
        "_substitute": (
            "pytest_tlsenv.placeholders.substitute(words, env_values(env))",
            _deprecated_substitute,
        ),
    }


def __getattr__(name: str) -> Any:
    """Names that moved out of this module stay importable, with a DeprecationWarning."""
    moved = _moved()
    if name in moved:
        where, value = moved[name]
        warnings.warn(
            f"pytest_tlsenv.repro.{name} is deprecated: use {where}",
            DeprecationWarning,
            stacklevel=2,
        )
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
