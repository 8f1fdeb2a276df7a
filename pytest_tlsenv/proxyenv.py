"""The proxy environment: scenarios about how clients read proxy variables, and who they used.

Each scenario here (the ``proxy`` group, :data:`ENVIRONMENTS`) starts its proxies
(:func:`start`), sets the variables users set (:func:`variables`), and judges a client by what
the proxies and the origin saw (:class:`Route`): which proxy granted a tunnel, whether the
origin was reached directly, and for SOCKS whether the client or the proxy resolved the name.

* ``https-proxy-trusted`` / ``-untrusted``: ``HTTPS_PROXY=https://proxy.tlsenv.test:PORT``, TLS
  to the proxy itself (:mod:`pytest_tlsenv.tlsproxy`), whose CA is or is not in the store.
* ``no-proxy-*``: the proxy refuses everything; ``NO_PROXY`` names the origin in one of the
  forms users write. OK: the client bypassed the proxy; FAILED: it ignored ``NO_PROXY``.
* ``proxy-case-conflict``: ``HTTPS_PROXY`` names a proxy that refuses, ``https_proxy`` one that
  tunnels: the verdict says which one the client used (OK: the lower-case one).
* ``socks5`` / ``socks5h``: only ``ALL_PROXY``, naming a SOCKS5 proxy
  (:mod:`pytest_tlsenv.socks`); the client resolves the name itself, or lets the proxy.
* ``proxy-auth-reserved``: the proxy wants credentials with ``@`` and ``:``; the proxy URL
  carries them percent-encoded (``%40``, ``%3A``), as RFC 3986 requires.

Every one of them needs the client to resolve an invented name (the origin's when it bypasses
or uses socks5, the HTTPS proxy's own): they run clients with the private ``/etc/hosts`` and
loopback ``resolv.conf`` (docs/security-dns.md), and are unavailable without namespaces.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .outcome import Verdict
from .pki import PKI, TEST_DOMAIN
from .proxy import SETUPS, Proxy, ProxySetup
from .socks import SocksProxy
from .tlsproxy import PROXY_DOMAIN, TLSProxy

__all__ = [
    "ENVIRONMENTS",
    "RESERVED_CREDENTIALS",
    "ProxyEnv",
    "Route",
    "invented_names",
    "setup_of",
    "start",
    "variables",
]

#: A user and a password with the characters a URL reserves: ``%40`` and ``%3A`` in the URL.
RESERVED_CREDENTIALS = ("tlsenv@corp", "se:cret@tlsenv")


@dataclass(frozen=True)
class ProxyEnv:
    """One proxy-environment scenario: its proxy server, mode and variables.

    ``server``: ``"connect"`` (HTTP CONNECT), ``"https"`` (CONNECT inside TLS), ``"socks5"``
    or ``"socks5h"`` (SOCKS5 via ``ALL_PROXY``), ``"case-conflict"`` (two CONNECT proxies).
    ``no_proxy``: the ``NO_PROXY`` value, ``{port}`` standing for the origin's port.
    ``credentials``: sent in the proxy URL (the proxy then asks for them).
    """

    server: str
    mode: str = "tunnel"
    ca_trusted: bool = False
    no_proxy: str = ""
    credentials: tuple[str, str] | None = None

    @property
    def through_proxy(self) -> bool:
        """Whether OK means "through a proxy" (every scenario but the ``no-proxy`` ones)."""
        return self.mode != "refuse"


def _no_proxy(value: str) -> ProxyEnv:
    return ProxyEnv("connect", "refuse", no_proxy=value)


#: The scenarios of this module by name (each one also a Scenario in the catalogue).
ENVIRONMENTS: dict[str, ProxyEnv] = {
    "https-proxy-trusted": ProxyEnv("https", ca_trusted=True),
    "https-proxy-untrusted": ProxyEnv("https"),
    "no-proxy-name": _no_proxy(TEST_DOMAIN),
    "no-proxy-name-port": _no_proxy(f"{TEST_DOMAIN}:{{port}}"),
    "no-proxy-dot-domain": _no_proxy(".tlsenv.test"),
    "no-proxy-dot-domain-port": _no_proxy(".tlsenv.test:{port}"),
    "no-proxy-wildcard": _no_proxy("*.tlsenv.test"),
    "no-proxy-wildcard-port": _no_proxy("*.tlsenv.test:{port}"),
    "no-proxy-domain": _no_proxy("tlsenv.test"),
    "no-proxy-domain-port": _no_proxy("tlsenv.test:{port}"),
    "no-proxy-star": _no_proxy("*"),
    "proxy-case-conflict": ProxyEnv("case-conflict"),
    "socks5": ProxyEnv("socks5"),
    "socks5h": ProxyEnv("socks5h"),
    "proxy-auth-reserved": ProxyEnv("connect", "auth", credentials=RESERVED_CREDENTIALS),
}


def setup_of(name: str) -> ProxySetup:
    """The mode and CA trust of proxy scenario ``name`` (this module's or the CONNECT proxy's)."""
    env = ENVIRONMENTS.get(name)
    if env is None:
        return SETUPS[name]
    return ProxySetup(env.mode, ca_trusted=env.ca_trusted)


def invented_names(name: str | None) -> tuple[str, ...]:
    """The names only proxy scenario ``name`` knows: the origin's, and an HTTPS proxy's own."""
    if name is None:
        return ()
    env = ENVIRONMENTS.get(name)
    https = env is not None and env.server == "https"
    return (TEST_DOMAIN, PROXY_DOMAIN) if https else (TEST_DOMAIN,)


def start(name: str, pki: PKI) -> dict[str, Proxy]:
    """Start proxy scenario ``name``'s proxies, by role: ``"proxy"`` first (the one the
    verdict code watches); a case conflict adds ``"HTTPS_PROXY"`` and ``"https_proxy"``.

    On a failure every proxy already started is stopped again.
    """
    env = ENVIRONMENTS.get(name)
    setup = setup_of(name)
    made: list[tuple[str, Proxy]] = []
    if env is None or env.server == "connect":
        forge = functools.partial(pki.forged_context, "mitm")
        proxy = Proxy(
            setup.mode, forge=forge, upstream_context=pki.client_context("trusted"),
            ca_trusted=setup.ca_trusted,
        )  # fmt: skip
        if env is not None and env.credentials is not None:
            proxy.credentials = env.credentials
        made.append(("proxy", proxy))
    elif env.server == "https":
        context = pki.forged_context("mitm", PROXY_DOMAIN)
        made.append(("proxy", TLSProxy(env.mode, context=context, ca_trusted=env.ca_trusted)))
    elif env.server in ("socks5", "socks5h"):
        made.append(("proxy", SocksProxy(env.mode)))
    else:  # case-conflict: the refusing one is "proxy", so a refusal is the verdict's evidence
        upper = Proxy("refuse")
        made += [("proxy", upper), ("HTTPS_PROXY", upper), ("https_proxy", Proxy("tunnel"))]
    started: list[Proxy] = []
    try:
        for _, p in made:
            if p not in started:
                started.append(p.start())
    except BaseException:
        for p in started:
            p.stop()
        raise
    return dict(made)


def variables(name: str, proxies: dict[str, Proxy], origin_port: int) -> dict[str, str]:
    """The proxy variables of scenario ``name`` (both spellings unless it is about them)."""
    env = ENVIRONMENTS.get(name)
    proxy = proxies["proxy"]
    out: dict[str, str] = {}
    if env is not None and env.server == "case-conflict":
        out["HTTPS_PROXY"] = proxies["HTTPS_PROXY"].url
        out["https_proxy"] = proxies["https_proxy"].url
    elif env is not None and isinstance(proxy, SocksProxy):
        # ALL_PROXY alone: an HTTPS_PROXY beside it would win in every client.
        url = proxy.remote_dns_url if env.server == "socks5h" else proxy.url
        out["ALL_PROXY"] = out["all_proxy"] = url
    else:
        url = proxy.authenticated_url if env is not None and env.credentials else proxy.url
        for var in ("HTTPS_PROXY", "ALL_PROXY"):
            out[var] = out[var.lower()] = url
    # Empty NO_PROXY: nothing bypasses the proxy (the origin's .test name never would).
    no_proxy = env.no_proxy.format(port=origin_port) if env is not None else ""
    out["NO_PROXY"] = out["no_proxy"] = no_proxy
    return out


class Route:
    """What the proxies of a proxy-environment scenario had seen when a client started.

    :meth:`judge` then checks an OK against the way the connection went: through a proxy that
    granted a tunnel (which one, and who resolved the name), or directly. It applies to this
    module's scenarios and to the CONNECT proxy's tunnelling and intercepting ones.
    """

    def __init__(self, name: str, proxies: dict[str, Proxy]) -> None:
        self.env = ENVIRONMENTS.get(name)
        setup = SETUPS.get(name)
        if self.env is None and setup is not None and setup.mode in ("tunnel", "intercept"):
            # The CONNECT scenarios whose OK means "through the proxy": the private hosts file
            # maps the origin's name to loopback, so a client ignoring HTTPS_PROXY reaches it.
            self.env = ProxyEnv("connect", setup.mode)
        self.proxies = proxies
        self.marks = {role: len(p.connects) for role, p in proxies.items()}

    def granted(self) -> list[tuple[str, str]]:
        """(role, note) of every tunnel a proxy granted since the start."""
        out = []
        for role, p in self.proxies.items():
            if role == "proxy" and len(self.proxies) > 1:
                continue  # the same proxy under its variable's name
            new = p.connects[self.marks[role] :]
            out += [(role, c.note) for c in new if c.status == 200]
        return out

    def judge(self, verdict: Verdict, reason: str, reached: bool) -> tuple[Verdict, str]:
        """``verdict``/``reason`` checked against the route; unchanged outside this module."""
        env = self.env
        if env is None or verdict is not Verdict.OK:
            return verdict, reason
        for p in self.proxies.values():
            p.settle(1.0)
        granted = self.granted()
        if not env.through_proxy:
            if granted:  # cannot happen with a refusing proxy: say so rather than guess
                return Verdict.FAILED, f"{reason}; but a proxy granted a tunnel: {granted}"
            return verdict, f"{reason}; bypassed the proxy: it saw no CONNECT, the origin a request"
        if not granted:
            return Verdict.FAILED, (
                "reached the origin directly: no proxy granted a tunnel (the client ignored the "
                "proxy variable)"
            )
        role, note = granted[-1]
        used = f" ({role})" if env.server == "case-conflict" else ""
        if env.server == "socks5h" and "address sent" in note:
            return Verdict.FAILED, (
                "resolved the origin's name itself despite socks5h:// (the proxy should have): "
                f"a lookup the proxy was meant to make ({note})"
            )
        return verdict, f"{reason}; through the proxy{used}: {note}"
