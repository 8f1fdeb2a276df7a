"""A SOCKS5 proxy on loopback (RFC 1928, CONNECT without authentication), for ``ALL_PROXY``.

Clients name it ``socks5://127.0.0.1:PORT`` (they resolve the origin's name themselves and
send an address) or ``socks5h://127.0.0.1:PORT`` (they send the name and the proxy resolves
it). Every request is recorded with the address type the client sent
(:attr:`SocksProxy.requests`): that is the evidence of who resolved the name. Each is also a
:class:`~pytest_tlsenv.proxy.Connect` in :attr:`~pytest_tlsenv.proxy.Proxy.connects`, with the
HTTP status a CONNECT proxy would have answered (200 granted, 403 refused, 400 malformed, 502
upstream unreachable), so the evidence and verdict code reads both proxies alike.

Egress guard as the CONNECT proxy's: a name under ``.test`` (or ``localhost``) is resolved by
the proxy to 127.0.0.1, an address is dialled only if it is loopback; anything else is refused
with reply 0x02 ("connection not allowed by ruleset") and recorded in
:attr:`~pytest_tlsenv.proxy.Proxy.egress_refused`. Lifecycle, deadlines and relaying are the
CONNECT proxy's (:class:`~pytest_tlsenv.proxy.Proxy`), whose subclass this is.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field
from typing import ClassVar

from .errors import ConfigError
from .loopback import IO_TIMEOUT, Job
from .proxy import Proxy, resolve_upstream

__all__ = ["SOCKS_MODES", "SocksProxy", "SocksRequest"]

#: What the SOCKS proxy can do: relay, or refuse every request.
SOCKS_MODES = ("tunnel", "refuse")

_VERSION = 5
_NO_AUTH = 0
_CONNECT = 1
# Address types (RFC 1928 section 4) and their names in the evidence.
_ATYPS = {1: "ipv4", 3: "domain", 4: "ipv6"}
# Reply codes (RFC 1928 section 6).
_GRANTED, _FAILURE, _NOT_ALLOWED, _REFUSED, _BAD_COMMAND, _BAD_ATYP = 0, 1, 2, 5, 7, 8
# A name as a client may send it: LDH labels, "_" and dots (no NUL, space or control bytes).
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,253}")


@dataclass(frozen=True)
class SocksRequest:
    """One SOCKS5 request: what the client asked for, and how.

    ``address_type`` is ``"domain"`` when the client sent the name (socks5h: the proxy
    resolves it) or ``"ipv4"``/``"ipv6"`` when it sent an address (socks5: it resolved the
    name itself). ``reply`` is the SOCKS reply code sent (0: granted).
    """

    target: str
    peer: str
    address_type: str
    reply: int
    note: str

    @property
    def resolved_by(self) -> str:
        """``"proxy"`` when the client sent a name, ``"client"`` when it sent an address."""
        return "proxy" if self.address_type == "domain" else "client"


class _Malformed(ConnectionAbortedError):
    """The client sent something that is not a SOCKS5 request (not an error of ours)."""


@dataclass(eq=False)
class SocksProxy(Proxy):
    """A SOCKS5 proxy on 127.0.0.1 (``mode``: ``tunnel`` or ``refuse``). Context manager."""

    kind: ClassVar[str] = "socks"
    first_step: ClassVar[str] = "reading the SOCKS greeting"

    requests: list[SocksRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in SOCKS_MODES:
            raise ConfigError(
                f"a SOCKS proxy's mode must be one of {', '.join(SOCKS_MODES)}, got {self.mode!r}"
            )
        super().__post_init__()

    @property
    def url(self) -> str:
        """``socks5://127.0.0.1:PORT``: the client resolves names and sends addresses."""
        return f"socks5://127.0.0.1:{self.port}"

    @property
    def remote_dns_url(self) -> str:
        """``socks5h://127.0.0.1:PORT``: the client sends names and the proxy resolves them."""
        return f"socks5h://127.0.0.1:{self.port}"

    @property
    def authenticated_url(self) -> str:
        """The SOCKS proxy asks for no credentials: :attr:`url`."""
        return self.url

    def _exact(self, conn: socket.socket, n: int, deadline: float) -> bytes:
        """``n`` bytes, or _Malformed when the client closes or the deadline passes first."""
        buf = b""
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Malformed("request deadline passed")
            conn.settimeout(left)
            try:
                chunk = conn.recv(n - len(buf))
            except TimeoutError:
                raise _Malformed("request deadline passed") from None
            if not chunk:
                raise _Malformed("client closed")
            buf += chunk
        return buf

    def _answer(self, conn: socket.socket, reply: int) -> None:
        # BND.ADDR/BND.PORT are not used by any client here: 0.0.0.0:0.
        conn.settimeout(IO_TIMEOUT)
        conn.sendall(bytes([_VERSION, reply, 0, 1, 0, 0, 0, 0, 0, 0]))

    def _note(self, req: SocksRequest, status: int) -> None:
        with self._lock:
            self.requests.append(req)
        self._record(req.target, req.peer, status, req.note)

    def _serve(self, conn: socket.socket, job: Job) -> None:
        peer = job.peer
        deadline = time.monotonic() + self.deadlines.request
        version, count = self._exact(conn, 2, deadline)
        if version != _VERSION:
            # An HTTP client sent to a SOCKS port ("C" of CONNECT is 0x43): say so in the record.
            self._record("", peer, 400, f"not SOCKS5 (first byte {version:#04x})")
            return
        methods = self._exact(conn, count, deadline)
        if _NO_AUTH not in methods:
            self._record("", peer, 407, "no acceptable authentication method offered")
            conn.sendall(bytes([_VERSION, 0xFF]))
            return
        conn.sendall(bytes([_VERSION, _NO_AUTH]))
        job.doing = "reading the SOCKS request"
        _, command, _, atyp = self._exact(conn, 4, deadline)
        if atyp == 1:
            host = socket.inet_ntop(socket.AF_INET, self._exact(conn, 4, deadline))
        elif atyp == 4:
            host = socket.inet_ntop(socket.AF_INET6, self._exact(conn, 16, deadline))
        elif atyp == 3:
            host = self._exact(conn, self._exact(conn, 1, deadline)[0], deadline).decode("latin-1")
        else:
            self._record("", peer, 400, f"unknown address type {atyp}")
            self._answer(conn, _BAD_ATYP)
            return
        port = int.from_bytes(self._exact(conn, 2, deadline), "big")
        kind = _ATYPS[atyp]
        target = f"[{host}]:{port}" if atyp == 4 else f"{host}:{port}"
        how = "name sent, resolved by the proxy" if atyp == 3 else "address sent by the client"
        job.doing = f"answering SOCKS5 CONNECT {target[:300]!r}"

        def refuse(reply: int, status: int, why: str) -> None:
            self._note(SocksRequest(target, peer, kind, reply, f"{why} ({how})"), status)
            self._answer(conn, reply)

        if command != _CONNECT:
            refuse(_BAD_COMMAND, 405, f"command {command} is not CONNECT")
            return
        if (atyp == 3 and not _NAME.fullmatch(host)) or port == 0:
            refuse(_FAILURE, 400, "target is not host:port")
            return
        if self.mode == "refuse":
            refuse(_NOT_ALLOWED, 403, "refuse mode")
            return
        address = resolve_upstream(host)
        if address is None:
            with self._lock:
                self.egress_refused.append(target)
            refuse(_NOT_ALLOWED, 403, "egress guard: upstream is not loopback")
            return
        try:
            upstream = socket.create_connection((address, port), timeout=IO_TIMEOUT)
        except OSError as e:
            refuse(_REFUSED, 502, f"upstream: {e}")
            return
        self._own(job, upstream)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._note(SocksRequest(target, peer, kind, _GRANTED, f"tunnel ({how})"), 200)
        self._answer(conn, _GRANTED)
        self._relay(conn, upstream)
