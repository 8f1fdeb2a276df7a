"""Making a ready :class:`~pytest_tlsenv.clients.client.Client` of a preset for one scenario:
its trust mode's wiring, the n/a check, the fallback variables, and a pinned version."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..env import TRUST_MODES
from ..errors import ClientUnavailableError, ConfigError, NotApplicableError
from .applicability import applicable, proxy_applicable
from .client import Client
from .fetchers import FETCHERS, fetch_script
from .pinning import pinned
from .preset import Preset
from .registry import get_preset, presets

if TYPE_CHECKING:
    from typing import TypeAlias

    from .._types import EnvView
    from ..outcome import Outcome, Verdict

    # A TLSEnv as seen from below it in the layers (_types.py).
    TLSEnv: TypeAlias = EnvView[Outcome, Verdict]

__all__ = ["make_client"]


def make_client(
    env: TLSEnv, name: str, version: str | None = None, trust: str | None = None
) -> Client:
    """A ready :class:`Client` of preset ``name`` for ``env`` (pinned when ``version``), in
    trust mode ``trust`` (default: ``env.trust``).

    Raises :class:`NotApplicableError` when the scenario cannot apply to the client in that
    mode (see :meth:`Preset.wiring` and :func:`applicable`).
    """
    preset = get_preset(name)
    trust = trust or env.trust
    if trust not in TRUST_MODES:
        raise ConfigError(f"trust must be one of {', '.join(TRUST_MODES)}, got {trust!r}")
    if version is not None and preset.installable is None:
        pinnable = sorted(n for n, p in presets().items() if p.installable is not None)
        raise ConfigError(
            f"client {name!r} cannot be pinned: it is not installable from the package index "
            f"(clients that take a version: {', '.join(pinnable)})"
        )
    if version is None and preset.detect() is None:
        raise ClientUnavailableError(f"client {name!r} is not installed on this machine")
    wiring = preset.wiring(env, trust)
    proxy_applicable(env, preset.name)
    applicable(env, wiring, preset.label(trust))
    from ..fallback import client_variables

    overriding = client_variables(env.fallback, preset, trust, version, wiring.env)
    build: Callable[..., Client] = preset.build
    if _positional_arity(build) >= 3:
        client = build(env, version or preset.detect(), wiring)
    else:  # a third-party preset written before trust modes
        client = build(env, version or preset.detect())
    client = replace(
        client,
        env={**wiring.env, **overriding, **client.env},
        trust=trust,
        label=client.label or preset.label(trust),
    )
    if version is None:
        return client
    if client.fn is not None and trust == "flags":
        raise NotApplicableError(
            f"client {name!r} pinned: a library runs out of process, where its flags (cafile=, "
            "verify=) are not passed; use trust='env' or 'system'"
        )
    return _pin(client, preset, version)


def _positional_arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return 3
    return sum(1 for p in params if p.kind in kinds)


def _pin(client: Client, preset: Preset, version: str) -> Client:
    """``client`` running ``version`` from its pinned environment, with the same variables.

    A library preset's in-process fetch becomes ``python -c SCRIPT LIBRARY URL`` in the
    pinned interpreter; ``python -m MODULE ...`` runs the pinned interpreter; any other
    command whose program is the package's executable runs the pinned one.
    """
    assert preset.installable is not None
    package, executable = preset.installable
    url = client.tlsenv.origin.url
    if client.fn is not None:
        fetch = FETCHERS.get(preset.name)
        if fetch is None:
            raise ConfigError(
                f"client {preset.name!r}: no out-of-process fetch known for pinning it"
            )
        python = str(pinned(package, version, "python"))
        argv: tuple[str, ...] = (python, "-c", fetch_script(fetch), package, url)
    else:
        assert client.argv is not None
        argv = client.argv
        if len(argv) >= 3 and argv[1] == "-m" and argv[2] == executable:
            argv = (str(pinned(package, version, "python")), *argv[1:])
        elif os.path.basename(argv[0]) == executable:
            argv = (str(pinned(package, version, executable)), *argv[1:])
        else:
            raise ConfigError(f"client {preset.name!r}: its command does not run {executable}")
    return replace(client, argv=argv, fn=None, version=version)
