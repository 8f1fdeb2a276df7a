"""pytest-tlsenv: TLS environment regression testing.

Fake trust stores, faults and loopback servers as pytest fixtures, and verdicts on how a
client (in-process or a CLI) copes with them. The README is the guide; docs/ has the
architecture, the catalogue, the verdict rules and the security model.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .bisection import BisectResult, bisect
    from .clients import PRESETS, Client, Preset
    from .errors import (
        ClientNotFoundError,
        ClientUnavailableError,
        ConfigError,
        NotApplicableError,
        NotYetSupportedError,
        ServerError,
        TLSEnvError,
    )
    from .faults import FAULTS, Fault
    from .namespace import SystemPathsUnavailableError
    from .outcome import Outcome, Verdict
    from .pki import PKI, Authority, Leaf
    from .report import BaselineError
    from .reports import REPORTS, Report
    from .scenarios import CATALOGUE, GROUPS, TRUST_MODES, Scenario, Spec, resolve
    from .servers import Deadlines, Origin
    from .store import LAYOUTS, Layout, TrustStore
    from .tlsenv import Settings, TLSEnv

# The plugin is auto-loaded in every pytest session where the package is installed: importing
# the engine (cryptography, trustme) lazily keeps sessions that never use it fast.
_LAZY = {
    "bisect": "bisection",
    "BisectResult": "bisection",
    "PRESETS": "clients",
    "Client": "clients",
    "Preset": "clients",
    "ClientNotFoundError": "errors",
    "ClientUnavailableError": "errors",
    "SystemPathsUnavailableError": "namespace",
    "BaselineError": "report",
    "ConfigError": "errors",
    "NotApplicableError": "errors",
    "NotYetSupportedError": "errors",
    "ServerError": "errors",
    "TLSEnvError": "errors",
    "FAULTS": "faults",
    "Fault": "faults",
    "Outcome": "outcome",
    "Verdict": "outcome",
    "PKI": "pki",
    "Authority": "pki",
    "Leaf": "pki",
    "CATALOGUE": "scenarios",
    "GROUPS": "scenarios",
    "REPORTS": "reports",
    "Report": "reports",
    "TRUST_MODES": "scenarios",
    "Scenario": "scenarios",
    "Spec": "scenarios",
    "resolve": "scenarios",
    "Origin": "servers",
    "Deadlines": "servers",
    "LAYOUTS": "store",
    "Layout": "store",
    "TrustStore": "store",
    "Settings": "tlsenv",
    "TLSEnv": "tlsenv",
}


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(import_module(f".{module}", __name__), name)


__all__ = [
    "CATALOGUE",
    "FAULTS",
    "GROUPS",
    "LAYOUTS",
    "PKI",
    "PRESETS",
    "REPORTS",
    "TRUST_MODES",
    "Authority",
    "BaselineError",
    "BisectResult",
    "Client",
    "ClientNotFoundError",
    "ClientUnavailableError",
    "ConfigError",
    "Deadlines",
    "Fault",
    "Layout",
    "Leaf",
    "NotApplicableError",
    "NotYetSupportedError",
    "Origin",
    "Outcome",
    "Preset",
    "Report",
    "Scenario",
    "ServerError",
    "Settings",
    "Spec",
    "SystemPathsUnavailableError",
    "TLSEnv",
    "TLSEnvError",
    "TrustStore",
    "Verdict",
    "__version__",
    "bisect",
    "resolve",
]
