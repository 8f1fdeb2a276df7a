"""What the servers saw of one client, and the verdict it supports: one capture for ``run``
and ``call``.

A :class:`Evidence` is taken before the client starts (how much the origin and the proxy had
recorded); :meth:`Evidence.judge` then reads what they recorded since: whether the origin got
a request, the proxy's own account of a refusal, leaked application data, and a certificate
alert the client sent. The client's own facts (exit status and output, or exception) are
bound into the classifier by the caller (``outcome.classify_run`` / ``classify_call``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .outcome import Verdict, refine, trust_alert
from .proxy import Proxy
from .servers import Origin

__all__ = ["Evidence", "Judged", "untrusted_hint"]


@dataclass(frozen=True)
class Judged:
    """A verdict, its reason, and whether the origin got the client's request."""

    verdict: Verdict
    reason: str
    reached_origin: bool


class Evidence:
    """How far the origin's and the proxy's records went when a client started."""

    def __init__(self, origin: Origin, proxy: Proxy | None) -> None:
        self.origin = origin
        self.proxy = proxy
        self.received = len(origin.received)
        self.origin_handshakes = len(origin.handshakes)
        self.connects = len(proxy.connects) if proxy is not None else 0
        self.proxy_handshakes = len(proxy.handshakes) if proxy is not None else 0
        self.upstreams = len(proxy.upstreams) if proxy is not None else 0
        self.leaks = len(proxy.leaks) if proxy is not None else 0

    def judge(self, classify: Callable[..., tuple[Verdict, str]]) -> Judged:
        """Decide with ``classify`` (the client's facts bound) on what the servers saw since.

        ``classify`` gets ``reached_origin``, ``proxy_refused`` and ``leaked``; a FAILED
        verdict is then refined by a certificate alert the client sent (it refused a server).
        """
        reached = len(self.origin.received) > self.received
        verdict, reason = classify(
            reached_origin=reached,
            # In this order: proxy_refusal lets the proxy settle before leaks are counted.
            proxy_refused=self.proxy_refusal(),
            leaked=self.proxy is not None and len(self.proxy.leaks) > self.leaks,
        )
        if verdict is Verdict.FAILED:  # did a server see the client refuse its certificate?
            verdict, reason = refine(verdict, reason, self.client_alert())
        return Judged(verdict, reason, reached)

    def proxy_refusal(self) -> str | None:
        """The proxy's evidence for a FAILED client since the start, if any.

        The last tunnel it refused, or else the last of its own upstream TLS connections
        that failed (it then answered 502 inside the intercepted tunnel).
        """
        if self.proxy is None:
            return None
        # Called first when a verdict is decided: let the proxy finish writing its evidence
        # (a pooled keep-alive connection only costs this bound).
        self.proxy.settle(1.0)
        refused = [c for c in self.proxy.connects[self.connects :] if c.status != 200]
        if refused:
            c = refused[-1]
            return f"{c.status} to CONNECT {c.target} ({c.note})"
        upstreams = self.proxy.upstreams[self.upstreams :]
        failed = [u for u in upstreams if u.error and not u.abandoned]
        if not failed:
            return None
        u = failed[-1]
        return (
            f"502 inside the intercepted tunnel to {u.target}: the proxy's own upstream TLS "
            f"connection, verifying the origin as {u.name}, failed ({u.error})"
        )

    def client_alert(self) -> str | None:
        """A certificate alert the client sent the origin or the proxy since the start.

        Only the client's: an intercepting proxy's own connections to the origin (known by
        their local address) are left out of the origin's log, since an alert there is the
        proxy refusing the origin's certificate.
        """
        self.origin.settle(1.0)  # its handshake records are written on its own threads
        proxy = self.proxy
        ours = set() if proxy is None else {u.local for u in proxy.upstreams[self.upstreams :]}
        shakes = self.origin.handshakes[self.origin_handshakes :]
        errors = [h.error for h in shakes if h.peer not in ours]
        if proxy is not None:
            errors += [h.alert for h in proxy.handshakes[self.proxy_handshakes :]]
        return trust_alert(errors)


_CALL_TRUST_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def untrusted_hint(environ: Mapping[str, str], trust: str) -> str:
    """Why a call may be refused where it should connect: the store reaches a library only
    through what it reads."""
    if trust != "env":
        return (
            f" (trust={trust!r}: no trust variable was set; the library must find the store at "
            "its compiled-in paths or through the options the code passes)"
        )
    named = [f"{k}={environ[k]}" for k in _CALL_TRUST_VARIABLES if k in environ]
    return (
        f" (the scenario's store was named by {', '.join(named) or 'no variable'}; python's "
        "ssl, urllib3, httpx and aiohttp read SSL_CERT_FILE/SSL_CERT_DIR, requests "
        "REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE; code that passes its own verify=/cafile=/"
        "SSLContext, or uses certifi or truststore, never sees them)"
    )
