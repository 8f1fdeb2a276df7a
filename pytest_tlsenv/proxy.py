"""An HTTP CONNECT proxy on loopback: the corporate interceptor, in a test.

Modes (``Proxy.mode``):

* ``intercept`` - answers CONNECT with 200, then terminates the client's TLS itself with a
  leaf forged for the requested name (SNI-aware; one cached context per name) and signed by a
  chosen CA, opens its own verified TLS connection to the origin and relays between the two,
  like Zscaler-style corporate proxies. Whether the forging CA is in the client's store decides
  whether what the client sends afterwards is a *leak*: ``ca_trusted=False`` records every
  application byte received through the forged handshake in :attr:`Proxy.leaks`.
* ``tunnel`` - a plain byte relay after 200 (an honest proxy).
* ``refuse`` - 403 to every CONNECT.
* ``auth`` - 407 until ``Proxy-Authorization`` carries the credentials, then a tunnel;
  :attr:`Proxy.authenticated_url` carries them, :attr:`Proxy.url` does not.

Every CONNECT is recorded (:attr:`Proxy.connects`), and every forged handshake with its result
(completed, or the alert the client sent, e.g. ``tlsv1 alert unknown ca``). Egress guard: an
upstream that is not loopback is refused with 403 and recorded; names under ``.test`` are
resolved by the proxy only, to 127.0.0.1 (the origin), so a client never needs DNS for them.

Lifecycle as the origin's, from their shared base (:mod:`pytest_tlsenv.loopback`): bind
127.0.0.1 port 0, ready before :meth:`Proxy.start` returns, bounded waits, :meth:`Proxy.stop`
closes every socket, joins every thread and raises :class:`~pytest_tlsenv.errors.ServerError`
if one survived or a server thread failed (the acceptor included). One thread per connection
does both directions of a relay (a selector over both sockets: epoll, so any fd number works,
unlike select()), so an SSL socket is never touched by two threads; ``stop`` only shuts the
file descriptors down at the OS level to wake blocked threads. Every step of a connection has
a deadline (:class:`~pytest_tlsenv.servers.Deadlines`): a client that trickles its request is
cut off.

Every TLS connection the proxy itself opens to the origin is recorded
(:attr:`Proxy.upstreams`) with its local address, so a certificate alert in the origin's log
can be told apart: the proxy refusing the origin's certificate is not the client refusing one.
"""

# Size: a little over 600 lines of one protocol (CONNECT parsing, the modes, interception
# and relaying); its server lifecycle lives in loopback.py.

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import re
import selectors
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

from .errors import ConfigError
from .faults import Applied
from .loopback import IO_TIMEOUT, Job, LoopbackServer, run_handshakes, wrap_socket
from .pki import Authority
from .servers import Deadlines
from .store import TrustStore

__all__ = [
    "MODES",
    "SETUPS",
    "Connect",
    "ForgedHandshake",
    "Leak",
    "Proxy",
    "ProxySetup",
    "Upstream",
    "install_admin_ca",
    "resolve_upstream",
]

MODES = ("intercept", "tunnel", "refuse", "auth")
_MAX_HEADER = 16 * 1024
_CHUNK = 65536
_ORIGIN_SUFFIX = ".test"


@dataclass(frozen=True)
class ProxySetup:
    """What a ``proxy`` group scenario runs: the mode, and whether its CA is in the store."""

    mode: str
    ca_trusted: bool = False


#: The ``proxy`` group's scenarios (scenarios.py) and the proxy each one runs.
SETUPS: dict[str, ProxySetup] = {
    "mitm-untrusted": ProxySetup("intercept", ca_trusted=False),
    "mitm-trusted": ProxySetup("intercept", ca_trusted=True),
    "proxy-tunnel": ProxySetup("tunnel"),
    "proxy-refuses": ProxySetup("refuse"),
    "proxy-auth-required": ProxySetup("auth"),
}


def install_admin_ca(store: TrustStore, ca: Authority, name: str = "ROOT_CRT") -> Applied:
    """Install a proxy's CA the way the admin in astral-sh/uv#5448 did (Debian layout).

    ``cp ROOT_CRT.crt /usr/local/share/ca-certificates/`` as root with mode 0600, then
    ``update-ca-certificates``: ``/etc/ssl/certs/ROOT_CRT.pem`` links to it, ``openssl rehash``
    adds ``HASH.0 -> ROOT_CRT.pem``, and the CA is appended to the (readable) bundle. The
    anchor is then unreadable to a non-root client (:meth:`TrustStore.deny`), while the bundle
    still carries the CA. https://github.com/astral-sh/uv/issues/5448
    """
    if store.anchors is None or store.cert_dir is None or store.bundle is None:
        raise ConfigError(
            f"the admin-installed proxy CA needs anchors, a cert dir and a bundle; layout "
            f"{store.layout.name!r} lacks one"
        )
    anchor = store.anchors / f"{name}.crt"
    anchor.write_bytes(ca.cert_pem)
    store.deny(anchor)
    entry = store.cert_dir / f"{name}.pem"
    entry.symlink_to(os.path.relpath(anchor, store.cert_dir))
    link = store.link_hash(ca.subject_hash, entry.name)
    store.insert_bundle_block(ca.cert_pem, cert=ca.cert)

    def rel(path: Path) -> str:
        return f'"$STORE/{path.relative_to(store.root)}"'

    uid = store.fault_uid
    shell = (
        f'cp "$CERTS/{ca.label}.pem" {rel(anchor)}',
        f'if [ "$(id -u)" = 0 ]; then chown {uid}:{uid} {rel(anchor)} && chmod 0600 '
        f"{rel(anchor)}; else chmod 000 {rel(anchor)}; fi",
        f"ln -s {os.path.relpath(anchor, store.cert_dir)} {rel(entry)}",
        f"ln -s {entry.name} {rel(link)}",
        f'cat "$CERTS/{ca.label}.pem" >> {rel(store.bundle)}',
    )
    return Applied("admin-installed-proxy-ca", "anchors", (anchor, entry, link), shell)


@dataclass(frozen=True)
class Connect:
    """One CONNECT request: its target, the status the proxy answered, and why."""

    target: str
    peer: str
    status: int
    note: str
    time: float


@dataclass(frozen=True)
class ForgedHandshake:
    """A handshake the proxy ran with a forged certificate.

    ``completed`` is True when the client accepted it; otherwise ``alert`` is what the client
    said (``"tlsv1 alert unknown ca"``...) or None if it just closed, and ``error`` the detail.
    """

    target: str
    sni: str | None
    completed: bool
    alert: str | None
    error: str | None


@dataclass(frozen=True)
class Upstream:
    """A TLS connection the intercepting proxy opened to the origin, verifying it as ``name``.

    ``local`` is the proxy's end (``127.0.0.1:PORT``): the peer the origin logs for it, so an
    alert in the origin's log from this address was sent by the proxy, not the client.
    ``error`` is None when the origin's certificate was verified; ``abandoned`` when the
    proxy gave up on it because the client had already refused the forged certificate.
    """

    target: str
    name: str
    local: str
    error: str | None
    abandoned: bool = False


@dataclass(frozen=True)
class Leak:
    """Application bytes a client sent through an untrusted forged handshake."""

    target: str
    data: bytes


def resolve_upstream(host: str) -> str | None:
    """The loopback address to dial for ``host``, or None when egress must be refused.

    Names under ``.test`` and ``localhost`` go to 127.0.0.1; IP literals only if loopback.
    """
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(_ORIGIN_SUFFIX):
        return "127.0.0.1"
    try:
        addr = ipaddress.ip_address(name)
    except ValueError:
        return None
    return str(addr) if addr.is_loopback else None


# A DNS name as a certificate and an SNI can carry it: LDH labels (and "_", seen in the wild)
# of 1-63 characters, 253 in all. Anything else is answered 400 before it reaches the IDNA
# codec (a 64-character label raises UnicodeError) or a certificate builder.
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _valid_host(host: str) -> bool:
    """Whether ``host`` is an IP literal or a DNS name the proxy can forge and verify."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(x) for x in name.split("."))


def _alert_of(err: BaseException) -> str | None:
    """The alert text in an OpenSSL error, e.g. ``tlsv1 alert unknown ca``."""
    text = str(err)
    if "alert" not in text:
        return None
    text = text.split("] ", 1)[-1]
    return text.split(" (_ssl.c", 1)[0].strip()


@dataclass
class _Hello:
    """Per-connection state the SNI callback fills in."""

    host: str
    sni: str | None = None


class _Closed(Exception):
    """The client went away or sent something we will not serve (not an error)."""


@dataclass(eq=False)
class Proxy(LoopbackServer):
    """An HTTP CONNECT proxy on 127.0.0.1. Use as a context manager, or ``start()``/``stop()``.

    ``forge(host)`` returns the server context presenting a leaf for ``host`` (intercept mode;
    :meth:`pytest_tlsenv.pki.PKI.forged_context` caches one per name). ``upstream_context``
    verifies the origin when intercepting. ``deadlines`` bound each step of a connection.
    """

    kind: ClassVar[str] = "proxy"
    ipv6: ClassVar[bool] = False  # its URL names 127.0.0.1
    backlog: ClassVar[int] = 512
    first_step: ClassVar[str] = "reading the request head"
    # The client went away, timed out or sent garbage: nothing to report.
    quiet: ClassVar[tuple[type[BaseException], ...]] = (_Closed, OSError)

    mode: str
    forge: Callable[[str], ssl.SSLContext] | None = None
    upstream_context: ssl.SSLContext | None = None
    ca_trusted: bool = False
    credentials: tuple[str, str] = ("tlsenv", "tlsenv-secret")
    deadlines: Deadlines = field(default_factory=Deadlines)
    connects: list[Connect] = field(default_factory=list)
    handshakes: list[ForgedHandshake] = field(default_factory=list)
    upstreams: list[Upstream] = field(default_factory=list)
    leaks: list[Leak] = field(default_factory=list)
    intercepted: list[Leak] = field(default_factory=list)
    egress_refused: list[str] = field(default_factory=list)
    port: int = 0
    _hello: ssl.SSLContext | None = field(default=None, repr=False)
    _hellos: dict[int, _Hello] = field(default_factory=dict, repr=False)
    _sessions: dict[tuple[str, int], ssl.SSLSession] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in MODES:
            raise ConfigError(f"proxy mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode == "intercept" and (self.forge is None or self.upstream_context is None):
            raise ConfigError("intercept mode needs forge= and upstream_context=")
        if self.mode == "intercept":
            # No certificate of its own: the SNI callback switches every connection to the
            # (cached) context forged for the name the client asked for.
            self._hello = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._hello.sni_callback = self._on_hello

    # -- addresses --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no credentials), for HTTPS_PROXY and friends."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def authenticated_url(self) -> str:
        """:attr:`url` with the percent-encoded ``user:password@`` (what ``auth`` wants)."""
        user, password = (quote(x, safe="") for x in self.credentials)  # %40, %3A...
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    @property
    def leaked(self) -> bytes:
        """Every application byte received through an untrusted forged handshake."""
        with self._lock:
            return b"".join(leak.data for leak in self.leaks)

    def settle(self, timeout: float = 1.0) -> bool:
        """Wait until every connection accepted so far is finished; False if some still run.

        The proxy records on its own threads: a client that gave up on the forged certificate
        may return before the proxy has written down the alert it sent. TLSEnv calls this
        before deciding a verdict, so the evidence is complete.
        """
        return super().settle(timeout)

    # -- serving ----------------------------------------------------------------------------

    def _read_head(self, conn: socket.socket) -> tuple[str, str, dict[str, str]]:
        lines = self._head_bytes(conn)[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            self._reply(conn, 400, "Bad Request")
            raise _Closed
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return parts[0], parts[1], headers

    def _head_bytes(self, conn: socket.socket) -> bytes:
        # One deadline for the whole head: a client trickling a byte a second is cut off.
        deadline = time.monotonic() + self.deadlines.request
        buf = b""
        while b"\r\n\r\n" not in buf:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                conn.settimeout(left)
                # Peek first, then consume exactly the header: bytes after it (a pipelined
                # ClientHello) stay in the socket for the tunnel or the forged handshake.
                chunk = conn.recv(_CHUNK, socket.MSG_PEEK)
                if not chunk:
                    raise _Closed
                end = (buf + chunk).find(b"\r\n\r\n")
                take = len(chunk) if end == -1 else end + 4 - len(buf)
                buf += conn.recv(take)
            except TimeoutError:
                self._reply(conn, 408, "Request Timeout")
                raise _Closed from None
            if len(buf) > _MAX_HEADER:
                self._reply(conn, 431, "Request Header Fields Too Large")
                raise _Closed
        conn.settimeout(IO_TIMEOUT)
        return buf

    @staticmethod
    def _reply(conn: socket.socket, status: int, reason: str, extra: str = "") -> None:
        body = f"{status} {reason}\n".encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\n{extra}Content-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            conn.settimeout(IO_TIMEOUT)
            conn.sendall(head.encode() + body)

    def _record(self, target: str, peer: str, status: int, note: str) -> None:
        with self._lock:
            self.connects.append(Connect(target, peer, status, note, time.time()))

    def _serve(self, conn: socket.socket, job: Job) -> None:
        peer = job.peer
        method, target, headers = self._read_head(conn)
        job.doing = f"answering {method[:20]!r} {target[:300]!r}"
        if method.upper() != "CONNECT":
            self._record(target, peer, 405, f"{method} is not CONNECT")
            self._reply(conn, 405, "Method Not Allowed", "Allow: CONNECT\r\n")
            return
        host, sep, port_text = target.rpartition(":")
        # isascii: str.isdigit() also accepts "²" (latin-1 0xb2), which int() refuses.
        digits = port_text.isascii() and port_text.isdigit()
        if not sep or not digits or not host or not 0 < int(port_text) < 65536:
            self._record(target, peer, 400, "target is not host:port")
            self._reply(conn, 400, "Bad Request")
            return
        port = int(port_text)
        host = host.strip("[]")
        if not _valid_host(host):
            self._record(target, peer, 400, "host is neither a DNS name nor an IP literal")
            self._reply(conn, 400, "Bad Request")
            return
        if self.mode == "refuse":
            self._record(target, peer, 403, "refuse mode")
            self._reply(conn, 403, "Forbidden")
            return
        if self.mode == "auth" and not self._authorised(headers):
            self._record(target, peer, 407, "no or wrong Proxy-Authorization")
            self._reply(
                conn,
                407,
                "Proxy Authentication Required",
                'Proxy-Authenticate: Basic realm="tlsenv"\r\n',
            )
            return
        address = resolve_upstream(host)
        if address is None:
            with self._lock:
                self.egress_refused.append(target)
            self._record(target, peer, 403, "egress guard: upstream is not loopback")
            self._reply(conn, 403, "Forbidden")
            return
        if self.mode == "intercept":
            job.doing = f"intercepting CONNECT {target}"
            self._record(target, peer, 200, "intercepted")
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._intercept(conn, host, address, port, target, job)
            return
        job.doing = f"tunnelling CONNECT {target}"
        try:
            upstream = socket.create_connection((address, port), timeout=IO_TIMEOUT)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            self._record(target, peer, 502, f"upstream: {e}")
            self._reply(conn, 502, "Bad Gateway")
            return
        self._own(job, upstream)
        self._record(target, peer, 200, "tunnel")
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self._relay(conn, upstream)

    def _authorised(self, headers: dict[str, str]) -> bool:
        scheme, _, token = headers.get("proxy-authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        return decoded == ":".join(self.credentials)

    # -- relays -----------------------------------------------------------------------------

    def _intercept(
        self, conn: socket.socket, host: str, address: str, port: int, target: str, job: Job
    ) -> None:
        assert self._hello is not None
        tls = wrap_socket(self._hello, conn, server_side=True, do_handshake_on_connect=False)
        self._swap(job, conn, tls)
        seen = _Hello(host)
        with self._lock:
            self._hellos[id(tls)] = seen
        # The origin connection is opened by this thread, its handshake interleaved with the
        # client's (both mostly wait on the network): no second thread per connection, whose
        # start and GIL hand-offs cost 0.4 ms of CPU (benchmarks/bench_proxy.py).
        try:
            up, local, up_error = self._open_upstream(address, port, host, job)
        except Exception as e:  # noqa: BLE001 - a proxy bug: 502 here, re-raised by stop()
            self._fail(f"opening the upstream connection for CONNECT {target}", e)
            up, local, up_error = None, "", ConnectionError(f"proxy failed: {e}")
        try:
            # Together, until stop(); when the client's fails (it refused the forged
            # certificate), the origin's is abandoned: that client needs no origin.
            done = run_handshakes(
                [tls] if up is None else [tls, up], self.deadlines.handshake, self._stopping
            )
        finally:
            with self._lock:
                self._hellos.pop(id(tls), None)
        error = done[tls]
        if error is not None:
            with self._lock:
                self.handshakes.append(
                    ForgedHandshake(target, seen.sni, False, _alert_of(error), str(error))
                )
                if up is not None:  # the origin logs this connection too: say it was ours
                    why = done[up]
                    self.upstreams.append(
                        Upstream(target, host, local, None if why is None else str(why), True)
                    )
            return
        with self._lock:
            self.handshakes.append(ForgedHandshake(target, seen.sni, True, None, None))
        if up is not None:
            up_error = done[up]
            self._record_upstream(target, host, local, up_error)
        # An SNI the proxy could not forge for got the CONNECT host's leaf: verify that one.
        name = seen.sni if seen.sni is not None and _valid_host(seen.sni) else host
        if up is not None and up_error is None and name != host:
            # The ClientHello named another host than CONNECT did: verify that one.
            up, local, up_error = self._open_upstream(address, port, name, job)
            if up is not None:
                up_error = run_handshakes([up], self.deadlines.handshake, self._stopping)[up]
                self._record_upstream(target, name, local, up_error)
        if up is None or up_error is not None:
            if up is None:
                self._record_upstream(target, name, local, up_error)
            self._send_quietly(tls, b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        try:
            self._relay(tls, up, target)
            # Like the origin, end the client's side with close_notify: OpenSSL 3 clients that
            # read to EOF (s_client) report "unexpected eof" without it.
            tls.settimeout(1.0)
            with contextlib.suppress(OSError, ValueError):
                tls.unwrap()
        finally:
            # TLS 1.3 tickets arrive after the handshake: the session is resumable only now.
            if up.session is not None and up.session.has_ticket:
                with self._lock:
                    self._sessions[(name, port)] = up.session

    def _record_upstream(
        self, target: str, name: str, local: str, error: BaseException | None
    ) -> None:
        with self._lock:
            self.upstreams.append(
                Upstream(target, name, local, None if error is None else str(error))
            )

    def _open_upstream(
        self, address: str, port: int, name: str, job: Job
    ) -> tuple[ssl.SSLSocket | None, str, OSError | None]:
        """A TCP connection to the origin wrapped for TLS verified as ``name`` (no handshake yet).

        Returns the socket, its local ``address:port`` (how the origin sees the proxy) and
        the error. Resumes the session of an earlier connection to the origin when there is
        one, as a corporate proxy's upstream pool would (its certificate was verified the first
        time): half the crypto per connection. Any OSError (refused, reset) is a result: the
        caller answers 502.
        """
        assert self.upstream_context is not None
        try:
            raw = socket.create_connection((address, port), timeout=IO_TIMEOUT)
        except OSError as e:
            return None, "", e
        self._own(job, raw)
        with self._lock:
            session = self._sessions.get((name, port))
        try:
            local_host, local_port = raw.getsockname()[:2]
            local = f"{local_host}:{local_port}"
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            up = wrap_socket(
                self.upstream_context,
                raw,
                server_hostname=name,
                do_handshake_on_connect=False,
                session=session,
            )
        except OSError as e:  # the origin reset already
            return None, "", e
        self._swap(job, raw, up)
        return up, local, None

    def _on_hello(
        self, sslobj: ssl.SSLSocket | ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext
    ) -> int | None:
        # SNI-aware: the forged leaf names what the client put in its ClientHello (else the
        # CONNECT host, e.g. for an IP literal, which is sent without SNI).
        assert self.forge is not None
        with self._lock:
            hello = self._hellos.get(id(sslobj))
        if hello is None:
            return None
        hello.sni = name
        forged_for = name if name is not None and _valid_host(name) else hello.host
        try:
            sslobj.context = self.forge(forged_for)
        except Exception as e:  # noqa: BLE001 - ssl would only print it: stop() re-raises it
            # (an exception escaping this callback is an "unraisable" warning, fatal under
            # -W error, and the client sees a bare handshake failure)
            self._fail(f"forging a certificate for {forged_for!r}", e)
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        return None

    @staticmethod
    def _send_quietly(tls: ssl.SSLSocket, data: bytes) -> None:
        with contextlib.suppress(OSError):
            tls.sendall(data)

    def _relay(self, client: socket.socket, upstream: socket.socket, target: str = "") -> None:
        """Relay both ways in this one thread until EOF, the idle deadline or stop().

        A tunnel (plain sockets) passes an EOF on as a half-close. An interception (TLS
        sockets, ``target`` given) records the decrypted bytes the client sends, and ends at
        the first EOF (a TLS stream has no half-close).
        """
        peer_of = {client: upstream, upstream: client}
        intercepting = bool(target)
        open_ = [client, upstream]
        with selectors.DefaultSelector() as sel:
            for sock in (client, upstream, self._stopping):
                sel.register(sock, selectors.EVENT_READ)
            while open_:
                # Bytes OpenSSL already decrypted are invisible to the selector: serve them first.
                ready: list[socket.socket] = [
                    s for s in open_ if isinstance(s, ssl.SSLSocket) and s.pending()
                ]
                if not ready:
                    events = sel.select(self.deadlines.idle)
                    fired = {key.fileobj for key, _ in events}
                    if not events or self._stop_r in fired:
                        return  # idle too long, or stopping
                    ready = [s for s in open_ if s in fired]
                for s in ready:
                    # Non-blocking read: readable may mean a TLS session ticket and no
                    # application data; a blocking recv would then stall the other direction.
                    s.settimeout(0.0)
                    try:
                        data = s.recv(_CHUNK)
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                        continue
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                        data = b""
                    finally:
                        s.settimeout(IO_TIMEOUT)
                    if data:
                        if intercepting and s is client:
                            record = Leak(target, data)
                            with self._lock:
                                self.intercepted.append(record)
                                if not self.ca_trusted:
                                    self.leaks.append(record)
                        peer_of[s].sendall(data)
                    elif intercepting:
                        return
                    else:
                        sel.unregister(s)
                        open_.remove(s)
                        with contextlib.suppress(OSError):
                            peer_of[s].shutdown(socket.SHUT_WR)
