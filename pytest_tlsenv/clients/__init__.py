"""Clients under test: presets for known clients, and pinned versions in a cache.

Presets (:data:`PRESETS`): how to detect a client and its version, how to point it at a
scenario's origin, store and proxy (which trust variables it honours, which explicit flags it
needs to be hermetic), as a ready argv (CLIs) or callable (in-process libraries).
``tlsenv.client("curl")`` uses them. Register your own with :func:`register` (e.g. from a
conftest or a plugin's ``pytest_configure``).

Pinned versions: never installed into the running Python.

``pinned("uv", "0.2.29")`` returns the path of that version's executable, installing it once
into its own venv, ``<cache>/clients/uv-0.2.29``, under a file lock (safe with pytest-xdist
workers and parallel tox envs); ``pinned("requests", "2.25.1")`` the venv's ``bin/python``.
Every installable preset takes a version (``tlsenv.client("pip", version="24.0")``): a CLI
runs from its venv, a library preset runs out of process through the venv's interpreter, the
same request as in-process. The cache is ``$TLSENV_CACHE_DIR``, else
``$XDG_CACHE_HOME/pytest-tlsenv``, else ``~/.cache/pytest-tlsenv``; it must be this user's own
(:func:`cache_dir`).

The parts, each importing only those listed before it: :mod:`.client` (:class:`Client`),
:mod:`.preset` (:class:`Preset`, :class:`Wiring` and the trust-mode tables),
:mod:`.applicability` (when a scenario is n/a for a client), :mod:`.registry` (which presets
there are), :mod:`.pinning` (:func:`pinned`), :mod:`.fetchers` (the libraries' fetches, in
process or pinned), :mod:`.catalogue` (the built-in presets), :mod:`.make`
(:func:`make_client`).
"""

from __future__ import annotations

import warnings
from typing import Any

from .applicability import applicable
from .catalogue import NODE_OPENSSL_SWITCH as NODE_OPENSSL_SWITCH
from .catalogue import openssl_defaults
from .client import Client
from .fetchers import library_of
from .make import make_client
from .pinning import cache_dir, cache_entries, clear_cache, is_pinned, pinned, pinned_dir
from .preset import DIR as DIR
from .preset import EITHER as EITHER
from .preset import FILE as FILE
from .preset import OPENSSL_ENV as OPENSSL_ENV
from .preset import WIRED_VARIABLES as WIRED_VARIABLES
from .preset import Preset, Wiring
from .registry import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from .registry import PRESETS, get_preset, presets, register

__all__ = [
    "PRESETS",
    "Client",
    "Preset",
    "Wiring",
    "applicable",
    "cache_dir",
    "cache_entries",
    "clear_cache",
    "get_preset",
    "is_pinned",
    "library_of",
    "make_client",
    "openssl_defaults",
    "pinned",
    "pinned_dir",
    "presets",
    "register",
]

# Private fetchers of the single module this package was, now public in .fetchers.
_MOVED_FETCHERS = ("urllib", "requests", "httpx", "urllib3", "aiohttp")


def __getattr__(name: str) -> Any:
    """Names that moved out of this module stay importable, with a DeprecationWarning."""
    library = name.removeprefix("_").removesuffix("_fetch")
    if name == f"_{library}_fetch" and library in _MOVED_FETCHERS:
        new = f"{library}_fetch"
        warnings.warn(
            f"pytest_tlsenv.clients.{name} is deprecated: use pytest_tlsenv.clients.fetchers.{new}",
            DeprecationWarning,
            stacklevel=2,
        )
        from . import fetchers

        return getattr(fetchers, new)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
