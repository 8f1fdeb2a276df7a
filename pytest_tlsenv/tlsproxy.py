"""An HTTPS proxy on loopback: the CONNECT proxy behind TLS of its own (``HTTPS_PROXY=https://``).

The client first makes a TLS connection to the proxy itself, verified against the proxy's
own certificate (for :data:`PROXY_DOMAIN`, from a CA that is not the origin's), and only then
sends its CONNECT inside it; the tunnel to the origin carries a second TLS session. Each
handshake with the proxy is recorded in :attr:`~pytest_tlsenv.proxy.Proxy.handshakes` (target
``"proxy PROXY_DOMAIN"``): completed, or the alert the client sent when it did not trust the
proxy's CA (``tlsv1 alert unknown ca``), which the verdict code reads like any other.

Everything after the handshake (modes ``tunnel``, ``refuse``, ``auth``; the egress guard;
deadlines; relaying) is the CONNECT proxy's (:class:`~pytest_tlsenv.proxy.Proxy`).
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import quote

from .errors import ConfigError
from .loopback import IO_TIMEOUT, Job, run_handshakes, wrap_socket
from .proxy import ForgedHandshake, Proxy

__all__ = ["PROXY_DOMAIN", "TLS_PROXY_MODES", "TLSProxy"]

#: The HTTPS proxy's own name: in its certificate, and resolved by the client (private hosts).
PROXY_DOMAIN = "proxy.tlsenv.test"

#: An HTTPS proxy tunnels, refuses or asks for credentials; it does not intercept.
TLS_PROXY_MODES = ("tunnel", "refuse", "auth")

_MAX_HEAD = 16 * 1024


def _alert(err: BaseException) -> str | None:
    """The alert in an OpenSSL error (``tlsv1 alert unknown ca``), else None."""
    text = str(err)
    if "alert" not in text:
        return None
    return text.split("] ", 1)[-1].split(" (_ssl.c", 1)[0].strip()


@dataclass(eq=False)
class TLSProxy(Proxy):
    """A CONNECT proxy spoken to over TLS, presenting ``context``'s certificate."""

    kind: ClassVar[str] = "tls-proxy"
    first_step: ClassVar[str] = "the TLS handshake with the proxy"

    context: ssl.SSLContext | None = None
    host: str = PROXY_DOMAIN

    def __post_init__(self) -> None:
        if self.mode not in TLS_PROXY_MODES:
            raise ConfigError(
                f"an HTTPS proxy's mode must be one of {', '.join(TLS_PROXY_MODES)}, "
                f"got {self.mode!r}"
            )
        if self.context is None:
            raise ConfigError("an HTTPS proxy needs context= (its own certificate)")
        super().__post_init__()

    @property
    def url(self) -> str:
        """``https://proxy.tlsenv.test:PORT`` (no credentials)."""
        return f"https://{self.host}:{self.port}"

    @property
    def authenticated_url(self) -> str:
        """:attr:`url` with the percent-encoded ``user:password@``."""
        user, password = (quote(x, safe="") for x in self.credentials)
        return f"https://{user}:{password}@{self.host}:{self.port}"

    def _serve(self, conn: socket.socket, job: Job) -> None:
        assert self.context is not None
        tls = wrap_socket(self.context, conn, server_side=True, do_handshake_on_connect=False)
        self._swap(job, conn, tls)
        error = run_handshakes([tls], self.deadlines.handshake, self._stopping)[tls]
        record = ForgedHandshake(
            f"proxy {self.host}",
            None,
            error is None,
            None if error is None else _alert(error),
            None if error is None else str(error),
        )
        with self._lock:
            self.handshakes.append(record)
        if error is not None:
            return
        job.doing = "reading the request head inside TLS"
        super()._serve(tls, job)

    def _head_bytes(self, conn: socket.socket) -> bytes:
        # A TLS socket cannot peek: read the head a byte at a time (from OpenSSL's buffer, not
        # a system call each), so a ClientHello sent right behind it stays for the tunnel.
        deadline = time.monotonic() + self.deadlines.request
        buf = b""
        while not buf.endswith(b"\r\n\r\n"):
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                conn.settimeout(left)
                byte = conn.recv(1)
            except TimeoutError:
                self._reply(conn, 408, "Request Timeout")
                raise ConnectionAbortedError("request head deadline passed") from None
            if not byte:
                raise ConnectionAbortedError("client closed")
            buf += byte
            if len(buf) > _MAX_HEAD:
                self._reply(conn, 431, "Request Header Fields Too Large")
                raise ConnectionAbortedError("request head too large")
        conn.settimeout(IO_TIMEOUT)
        return buf
