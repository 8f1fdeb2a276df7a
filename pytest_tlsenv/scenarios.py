"""The scenario catalogue (from :mod:`pytest_tlsenv.catalogue`) and the marker's keywords.

A :class:`Scenario` is a named, documented environment with the set of verdicts a robust
client may give in it. :func:`resolve` turns the marker's keywords into a :class:`Spec`: the
scenario sets defaults, keywords beside it add faults or override the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ._checks import MAX_EXTRA_CAS, MAX_TIMEOUT, check_count, check_timeout, did_you_mean
from .env import TRUST_MODES  # defined low: client presets validate it too
from .errors import ConfigError
from .faults import FAULTS, PLACEMENTS
from .outcome import Verdict
from .store import LAYOUTS

__all__ = [
    "BACKENDS",
    "CATALOGUE",
    "GROUPS",
    "MAX_EXTRA_CAS",
    "MAX_TIMEOUT",
    "TRUST_MODES",
    "Scenario",
    "Spec",
    "get_scenario",
    "resolve",
]

from .catalogue import (
    CATALOGUE,
    GROUPS,
    OK,
    Scenario,
)

# Scenarios that proxy= or server= may name on their own (without scenario=).
GROUPS_OF_ALONE = frozenset(GROUPS.get("proxy", ()) + GROUPS.get("server", ()))


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``, or a :class:`ConfigError` listing the valid names."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ConfigError(
            f"unknown scenario {name!r}; valid names: {', '.join(sorted(CATALOGUE))}"
            f"{did_you_mean(name, CATALOGUE)}"
        ) from None


@dataclass(frozen=True)
class Spec:
    """Everything needed to build one TLSEnv: the marker's keywords, resolved."""

    scenario: Scenario
    faults: tuple[str, ...] = ()
    placement: str = "decoy"
    proxy: str | None = None
    server: str = "good"
    layout: str = "debian"
    backend: str = "disk"
    system_paths: bool = False
    user: str | None = None
    timeout: float | None = None
    extra_cas: int = 0
    #: None: the session's default (``--tlsenv-trust``, ini ``tlsenv_trust``, else "env").
    trust: str | None = None


#: Where ``call`` reads the store: real files, or the store copied into pyfakefs.
BACKENDS = ("disk", "fakefs")

KEYWORDS = (
    "scenario",
    "faults",
    "placement",
    "proxy",
    "server",
    "layout",
    "backend",
    "system_paths",
    "user",
    "timeout",
    "extra_cas",
    "trust",
)


def _substitute_ok(expected: frozenset[Verdict], by: frozenset[Verdict]) -> frozenset[Verdict]:
    # A store fault only changes what would otherwise have succeeded.
    return (expected - {Verdict.OK}) | by if Verdict.OK in expected else expected


def _one_of(keyword: str, value: object, valid: Sequence[str], *, unknown: str = "") -> str:
    """``value`` if it is one of the names ``valid``, else a ConfigError that lists them."""
    if isinstance(value, str) and value in valid:
        return value
    hint = did_you_mean(value, valid)
    if unknown and isinstance(value, str):
        raise ConfigError(f"unknown {unknown} {value!r}; valid: {', '.join(valid)}{hint}")
    raise ConfigError(f"{keyword} must be one of {', '.join(valid)}, got {value!r}{hint}")


def _check_faults(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ConfigError(
            f"faults takes a list of names, got the string {value!r}: write faults=[{value!r}]"
        )
    if not isinstance(value, (list, tuple)):
        raise ConfigError(
            f"faults takes a list (or tuple) of fault names, got {value!r}; [] for none"
        )
    for f in value:
        if not isinstance(f, str) or f not in FAULTS:
            what = "unknown fault" if isinstance(f, str) else "faults holds names (str), got"
            raise ConfigError(
                f"{what} {f!r}; valid names: {', '.join(sorted(FAULTS))}{did_you_mean(f, FAULTS)}"
            )
    extra = tuple(value)
    repeated = sorted({f for f in extra if extra.count(f) > 1})
    if repeated:
        # Each fault has one entry per store (tlsenv-<fault>.pem): twice makes no sense.
        raise ConfigError(f"fault(s) listed more than once: {', '.join(repeated)}")
    return extra


def _check_user(value: object) -> str | None:
    # A name or a uid as pwd knows them; whether it exists is checked where it is used (the
    # machine running the client), but what cannot be a user name at all is caught here.
    if value is None:
        return None
    bad = (
        not isinstance(value, str)
        or not value
        or value != value.strip()
        or any(c in value for c in ":/\0\n")
    )
    if bad:
        raise ConfigError(
            f"user must be None or a user name or uid (a non-empty str without ':', '/', "
            f"NUL or newline), got {value!r}"
        )
    return str(value)


def resolve(*args: Any, **kwargs: Any) -> Spec:
    """Turn ``tlsenv(...)`` marker arguments into a :class:`Spec`, or raise ConfigError.

    Every keyword is checked for type and range first: a wrong value is a ConfigError that
    names the keyword, what it got and what it accepts, never another exception.
    """
    if len(args) > 1:
        raise ConfigError(f"tlsenv takes at most one positional argument (scenario), got {args!r}")
    if args:
        if "scenario" in kwargs:
            raise ConfigError("scenario given both positionally and by keyword")
        kwargs["scenario"] = args[0]
    unknown = sorted(set(kwargs) - set(KEYWORDS))
    if unknown:
        hint = did_you_mean(unknown[0], KEYWORDS) if len(unknown) == 1 else ""
        raise ConfigError(
            f"unknown tlsenv keyword(s) {', '.join(unknown)}; valid: {', '.join(KEYWORDS)}{hint}"
        )
    name = kwargs.get("scenario")
    if name is not None and not isinstance(name, str):
        raise ConfigError(
            f"scenario must be None or a scenario name (str), got {name!r}; valid names: "
            f"{', '.join(sorted(CATALOGUE))}"
        )
    if name is not None and name not in CATALOGUE:
        raise ConfigError(
            f"unknown scenario {name!r}; valid names: {', '.join(sorted(CATALOGUE))}"
            f"{did_you_mean(name, CATALOGUE)}"
        )
    base = CATALOGUE[name] if name else CATALOGUE["good"]
    if not name:
        # proxy= or server= alone means that scenario (its description, why and expected set).
        alone = kwargs.get("proxy") or kwargs.get("server")
        if isinstance(alone, str) and alone in CATALOGUE and alone in GROUPS_OF_ALONE:
            base = CATALOGUE[alone]

    extra = _check_faults(kwargs.get("faults", ()))
    faults = base.faults + tuple(f for f in extra if f not in base.faults)
    placement = _one_of("placement", kwargs.get("placement", base.placement), PLACEMENTS)
    proxy = kwargs.get("proxy", base.proxy)
    proxies = GROUPS.get("proxy", ())
    if proxy is not None and (not isinstance(proxy, str) or proxy not in proxies):
        raise ConfigError(
            f"proxy takes a name from the proxy group, got {proxy!r}; valid: "
            f"{', '.join(proxies)} (or None){did_you_mean(proxy, proxies)}"
        )
    server = kwargs.get("server", base.server)
    servers = GROUPS.get("server", ())
    if not isinstance(server, str) or (server not in servers and server != base.server):
        raise ConfigError(
            f"server takes a name from the server group, got {server!r}; valid: "
            f"{', '.join(servers)}{did_you_mean(server, servers)}"
        )
    layout = _one_of("layout", kwargs.get("layout", base.layout), tuple(LAYOUTS), unknown="layout")
    backend = _one_of("backend", kwargs.get("backend", "disk"), BACKENDS)
    system_paths = kwargs.get("system_paths", False)
    if not isinstance(system_paths, bool):
        raise ConfigError(f"system_paths must be True or False, got {system_paths!r}")
    user = _check_user(kwargs.get("user"))
    timeout = kwargs.get("timeout")
    seconds = None if timeout is None else check_timeout(timeout, "timeout")
    extra_cas = check_count(kwargs.get("extra_cas", 0), "extra_cas", MAX_EXTRA_CAS)
    trust = kwargs.get("trust")
    if trust is not None:
        trust = _one_of("trust", trust, TRUST_MODES)

    # A server or proxy scenario's own set describes its server/proxy: keep it while both are
    # unchanged; otherwise start from the store's set (OK when the base is not a store one)
    # and let the server and proxy substitute for OK, as faults do.
    pure_store = base.proxy is None and base.server == "good"
    expected = base.expected_by_placement.get(placement, OK)
    if not pure_store and (server != base.server or proxy != base.proxy):
        expected = OK
    if pure_store or server != base.server or proxy != base.proxy:
        if server != "good":
            # A scenario's own server variant (requests-6969's self-signed-cn-only) is no
            # catalogue scenario: its expectation is the scenario's.
            own = CATALOGUE[server].expected if server in CATALOGUE else base.expected
            expected = _substitute_ok(expected, own)
        if proxy is not None:
            expected = _substitute_ok(expected, CATALOGUE[proxy].expected)
    for f in extra:
        if f in base.faults:
            continue
        fault_scenario = CATALOGUE.get(f)
        by = fault_scenario.expected_by_placement.get(placement, OK) if fault_scenario else OK
        expected = _substitute_ok(expected, by)
    changed = (
        (extra and set(extra) - set(base.faults))
        or placement != base.placement
        or layout != base.layout
        or server != base.server
        or proxy != base.proxy
    )
    scenario = base
    if changed:
        parts = [base.name] if name or base.name != "good" else []
        parts += [f for f in extra if f not in base.faults]
        if server != base.server:
            parts.append(server)
        if proxy != base.proxy:
            parts.append(proxy or "no-proxy")
        label = "+".join(parts) or base.name
        if placement != base.placement:
            label += f"@{placement}"
        if layout != base.layout:
            label += f"[{layout}]"
        scenario = replace(
            base,
            name=label,
            faults=faults,
            placement=placement,
            layout=layout,
            server=server,
            proxy=proxy,
            expected_by_placement={placement: expected},
            description=base.description
            if not extra
            else "; ".join(FAULTS[f].description for f in faults),
        )
    return Spec(
        scenario=scenario,
        faults=faults,
        placement=placement,
        proxy=proxy,
        server=server,
        layout=layout,
        backend=backend,
        system_paths=system_paths,
        user=user,
        timeout=seconds,
        extra_cas=extra_cas,
        trust=trust,
    )
