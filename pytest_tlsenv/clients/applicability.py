"""When a scenario does not apply to a client in a trust mode (its verdict would be n/a)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from typing import TYPE_CHECKING

from ..errors import NotApplicableError
from .preset import Wiring

if TYPE_CHECKING:
    from typing import TypeAlias

    from .._types import EnvView
    from ..outcome import Outcome, Verdict

    # A TLSEnv as seen from below it in the layers (_types.py).
    TLSEnv: TypeAlias = EnvView[Outcome, Verdict]

__all__ = ["applicable", "proxy_applicable"]


# -- the proxy environment: scenarios about the proxy variables themselves -------------------

#: Presets that read no proxy variable (their builder passes HTTPS_PROXY on by hand): a
#: scenario about NO_PROXY, the variables' spelling or ALL_PROXY would measure the preset.
_HAND_PROXY = {
    "node": "node 20 reads no proxy variable: the preset sends its CONNECT to HTTPS_PROXY by hand",
    "node-openssl": "node 20 reads no proxy variable: the preset sends its CONNECT by hand",
    "openssl": "openssl s_client reads no proxy variable: the preset passes -proxy by hand",
    "urllib3": "urllib3 reads no proxy variable: the preset hands HTTPS_PROXY to ProxyManager",
    "java": "Java reads no proxy variable: the preset passes -Dhttps.proxyHost/Port by hand",
}
#: Presets that take the URL as given (an https:// proxy, credentials): only the hand-rolled
#: CONNECTs of node and openssl, and Java's proxy properties, carry no TLS or credentials.
_HAND_URL = ("node", "node-openssl", "openssl", "java")


def _needs(module: str, what: str) -> Callable[[], str | None]:
    return lambda: None if find_spec(module) is not None else f"{what}, and it is not installed"


#: Presets without SOCKS (None: they speak it), checked when a socks scenario is made.
_NO_SOCKS: dict[str, Callable[[], str | None]] = {
    "python-ssl": lambda: "urllib has no SOCKS support: it ignores ALL_PROXY for https",
    "wget": lambda: "wget has no SOCKS support",
    "aiohttp": lambda: "aiohttp's trust_env proxies are HTTP only (SOCKS needs aiohttp-socks)",
    "requests": _needs("socks", "requests speaks SOCKS only with PySocks"),
    "pip": _needs("socks", "pip's vendored requests speaks SOCKS only with PySocks"),
    "httpx": _needs("socksio", "httpx speaks SOCKS only with socksio (httpx[socks])"),
}


def proxy_applicable(env: TLSEnv, client: str) -> None:
    """Raise NotApplicableError when ``env``'s proxy scenario is about what preset ``client``
    cannot do: SOCKS, or reading the proxy variables itself."""
    name = env.proxy_name or ""
    url_only = name.startswith("https-proxy-") or name == "proxy-auth-reserved"
    variables = name.startswith("no-proxy-") or name in ("proxy-case-conflict", "socks5", "socks5h")
    why = None
    if (url_only and client in _HAND_URL) or (variables and client in _HAND_PROXY):
        why = _HAND_PROXY[client]
    elif name == "proxy-auth-reserved" and client == "urllib3":
        why = "urllib3 takes no credentials from a proxy URL (proxy_headers= carries them)"
    elif name in ("socks5", "socks5h") and client in _NO_SOCKS:
        why = _NO_SOCKS[client]()
    if why is not None:
        raise NotApplicableError(f"{name} does not apply to {client}: {why}")


def applicable(env: TLSEnv, wiring: Wiring, client: str) -> None:
    """Raise NotApplicableError when no fault of ``env`` reaches a source ``wiring`` reads.

    A scenario without faults (server, proxy) applies to every client; with faults, at least
    one of them must break something this client, in this mode, trusts.
    """
    if not env.applied:
        return
    variables = wiring.trust != "system"
    if any(a.reaches_any(set(wiring.sources), variables=variables) for a in env.applied):
        return
    faults = ", ".join(a.fault for a in env.applied)
    reads = " and ".join(sorted(wiring.sources)) or "nothing of the store"
    raise NotApplicableError(
        f"{faults} cannot reach {client} with trust={wiring.trust!r}: it reads only what "
        f"{reads} names there"
        + ("" if variables else " by its compiled-in paths, and no variable is set")
    )
