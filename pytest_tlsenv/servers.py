"""The origin: an HTTPS server on loopback that records what it is asked.

It binds 127.0.0.1 and ::1 on one port (port 0, read back), signals readiness before
:meth:`Origin.start` returns, serves each connection on its own thread with bounded waits,
sends close_notify, and :meth:`Origin.stop` closes every socket, joins every thread and raises
if one survived or if a handler thread failed (urllib3's dummyserver and pytest-httpserver's
``check_assertions`` are the models).

Besides ``/`` it serves a PEP 503 simple index with one wheel, ``tlsenv-probe``, built at run
time (nothing binary is committed), so ``pip install`` and ``uv pip install`` work offline
against it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import selectors
import socket
import ssl
import threading
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .errors import ConfigError, ServerError
from .pki import PKI, SERVER_VARIANTS

__all__ = [
    "Deadlines",
    "Origin",
    "Request",
    "handshake_within",
    "ipv6_loopback_available",
    "probe_wheel",
    "sweep",
    "wrap_socket",
]

PROBE_PROJECT = "tlsenv-probe"
PROBE_VERSION = "0.1"
_IO_TIMEOUT = 10.0
_MAX_HEADER = 64 * 1024
_MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Deadlines:
    """How long one connection may take for each step, in seconds (origin and proxy).

    Totals, not per-read timeouts: a client that trickles one byte a second is cut off when
    its step's time is up, so it cannot hold a server thread for ever. ``handshake``: the
    TLS handshake; ``request``: a request head (and body) from its first byte; ``idle``: a
    connection with nothing to say (between keep-alive requests, in a relay).
    """

    handshake: float = 10.0
    request: float = 10.0
    idle: float = 30.0

    def __post_init__(self) -> None:
        for name in ("handshake", "request", "idle"):
            value = getattr(self, name)
            if not value > 0:  # also NaN
                raise ConfigError(f"deadline {name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class Request:
    """One HTTP request the origin received."""

    method: str
    path: str
    headers: dict[str, str]
    peer: str
    sni: str | None
    time: float


@dataclass(frozen=True)
class Handshake:
    """A TLS handshake attempt on the origin: ``error`` is None when it completed."""

    peer: str
    sni: str | None
    error: str | None


@cache
def probe_wheel() -> tuple[str, bytes]:
    """The ``tlsenv-probe`` wheel (file name, bytes): a pure-Python package built in memory."""
    dist = f"tlsenv_probe-{PROBE_VERSION}"
    files = {
        "tlsenv_probe/__init__.py": b'"""Installed from a pytest-tlsenv origin."""\nOK = True\n',
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {PROBE_PROJECT}\nVersion: {PROBE_VERSION}\n"
            "Summary: probe package served by pytest-tlsenv's loopback origin\n"
        ).encode(),
        f"{dist}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: pytest-tlsenv\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record_lines = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record_lines.append(f"{name},sha256={digest},{len(data)}")
    record_lines.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return f"{dist}-py3-none-any.whl", buf.getvalue()


def wrap_socket(ctx: ssl.SSLContext, sock: socket.socket, **kwargs: Any) -> ssl.SSLSocket:
    """``ctx.wrap_socket(sock, ...)``, closing the SSLSocket CPython drops when wrapping fails.

    ``SSLSocket._create`` takes the fd over (``sock.detach()``) before it checks the
    connection; if the peer reset in between, its ``recv(1)`` probe (added for CVE-2023-40217)
    raises ECONNRESET and the half-made SSLSocket is dropped unclosed: a ResourceWarning on a
    server thread, blamed on whatever test runs then. It is still ``self`` in the traceback.
    """
    try:
        return ctx.wrap_socket(sock, **kwargs)
    except OSError as e:
        tb = e.__traceback__
        while tb is not None:
            leaked = tb.tb_frame.f_locals.get("self")
            if isinstance(leaked, ssl.SSLSocket):
                leaked.close()
            tb = tb.tb_next
        raise


def handshake_within(tls: ssl.SSLSocket, seconds: float) -> None:
    """Run ``tls``'s handshake to its end within ``seconds`` in total, or raise TimeoutError.

    A blocking ``do_handshake`` applies the socket timeout to each read: a peer that sends its
    ClientHello a byte at a time would never time out. Non-blocking steps driven by a selector
    (epoll: any fd number, unlike select()) bound the whole handshake instead.
    """
    deadline = time.monotonic() + seconds
    timeout = tls.gettimeout()
    tls.settimeout(0.0)
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(tls, selectors.EVENT_READ)
            while True:
                try:
                    tls.do_handshake()
                    return
                except ssl.SSLWantReadError:
                    sel.modify(tls, selectors.EVENT_READ)
                except ssl.SSLWantWriteError:
                    sel.modify(tls, selectors.EVENT_WRITE)
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise TimeoutError(f"TLS handshake not done within {seconds:g} s")
    finally:
        with contextlib.suppress(OSError):
            tls.settimeout(timeout)


def sweep(
    lock: threading.Lock,
    sockets: Callable[[], Iterable[socket.socket]],
    threads: Callable[[], Iterable[threading.Thread]],
    timeout: float,
) -> list[str]:
    """Shut ``sockets()`` down until every one of ``threads()`` has ended; survivors' names.

    What a server's ``stop`` does after its acceptor ended: the OS-level shutdown wakes a
    handler blocked in recv or a handshake without touching its SSL object (SSLSocket.shutdown
    would reset it under the thread that owns it). Repeated, because a handler may register a
    socket (an upstream it is dialling) after a first sweep. Both getters run under ``lock``.
    """
    deadline = time.monotonic() + timeout
    while True:
        with lock:
            socks = list(sockets())
            alive = [t for t in threads() if t.is_alive()]
        for s in socks:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(s, socket.SHUT_RDWR)
        for t in alive:
            t.join(min(0.05, max(0.0, deadline - time.monotonic())))
        if not any(t.is_alive() for t in alive) or time.monotonic() >= deadline:
            break
    with lock:
        return [t.name for t in threads() if t.is_alive()]


@cache
def ipv6_loopback_available() -> bool:
    """Whether ::1 can be bound here (probed once)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _bind_pair() -> list[socket.socket]:
    """Listening sockets on 127.0.0.1 and (if possible) ::1, on the same port."""
    for _ in range(20):
        v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        v4.bind(("127.0.0.1", 0))
        port = v4.getsockname()[1]
        socks = [v4]
        if ipv6_loopback_available():
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                v6.bind(("::1", port))
            except OSError:
                v6.close()
                v4.close()
                continue
            socks.append(v6)
        for s in socks:
            s.listen(128)
            s.setblocking(False)
        return socks
    raise ServerError("could not bind 127.0.0.1 and ::1 on a common port in 20 tries")


Handler = Callable[["Origin", Request], tuple[int, str, bytes]]


@dataclass(eq=False)
class Origin:
    """An HTTPS origin on loopback. Use as a context manager, or ``start()``/``stop()``."""

    context: ssl.SSLContext
    host: str = "localhost"
    deadlines: Deadlines = field(default_factory=Deadlines)
    received: list[Request] = field(default_factory=list)
    handshakes: list[Handshake] = field(default_factory=list)
    port: int = 0
    _socks: list[socket.socket] = field(default_factory=list, repr=False)
    _conns: set[socket.socket] = field(default_factory=set, repr=False)
    # Every handler thread started and perhaps still alive: a thread leaves only once it is
    # no longer alive (pruned on the next accept), so stop() joins exactly all of them.
    _threads: set[threading.Thread] = field(default_factory=set, repr=False)
    # What a server thread raised, with what it was doing: re-raised by stop().
    _errors: list[tuple[str, BaseException]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stop_r: socket.socket | None = field(default=None, repr=False)
    _stop_w: socket.socket | None = field(default=None, repr=False)
    _acceptor: threading.Thread | None = field(default=None, repr=False)
    # Accepted connections whose handshake is not yet recorded in `handshakes` (settle()).
    _unrecorded: int = field(default=0, repr=False)
    _recorded: threading.Condition = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._recorded = threading.Condition(self._lock)

    @classmethod
    def variant(
        cls,
        pki: PKI,
        name: str = "good",
        *,
        host: str = "localhost",
        deadlines: Deadlines | None = None,
    ) -> Origin:
        """An origin presenting the ``server`` scenario ``name``'s certificate (badssl-style).

        ``name`` is a key of :data:`pytest_tlsenv.pki.SERVER_VARIANTS`; the leaf and its
        context are made once per session by ``pki``.
        """
        if name not in SERVER_VARIANTS:
            raise ConfigError(
                f"unknown server variant {name!r}; valid: {', '.join(SERVER_VARIANTS)}"
            )
        return cls(
            pki.server_context(pki.server_leaf(name)),
            host=host,
            deadlines=deadlines or Deadlines(),
        )

    # -- addresses --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``https://HOST:PORT/``."""
        return f"https://{self.host}:{self.port}/"

    @property
    def index_url(self) -> str:
        """The PEP 503 simple index (``pip install --index-url``)."""
        return f"{self.url}simple/"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Origin:
        self._socks = _bind_pair()
        self.port = self._socks[0].getsockname()[1]
        self._stop_r, self._stop_w = socket.socketpair()
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"tlsenv-origin:{self.port}", daemon=True
        )
        self._acceptor.start()
        return self

    def __enter__(self) -> Origin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """Close every socket, join every thread; raise what a server thread raised.

        A thread that died (the acceptor included: its clients would all hang) is a
        :class:`ServerError` naming what it was doing, never a clean stop.
        """
        if self._acceptor is None:
            return
        assert self._stop_w is not None
        assert self._stop_r is not None
        with contextlib.suppress(OSError):
            self._stop_w.send(b"x")
        self._acceptor.join(timeout)
        # Unblock handlers waiting on a silent client.
        survivors = sweep(self._lock, lambda: self._conns, lambda: self._threads, timeout)
        for s in (*self._socks, self._stop_r, self._stop_w):
            s.close()
        alive = self._acceptor.is_alive()
        self._acceptor = None
        if alive or survivors:
            raise ServerError(f"origin threads survived stop(): {survivors or ['acceptor']}")
        if self._errors:
            doing, err = self._errors[0]
            raise ServerError(
                f"origin handler failed: {type(err).__name__}: {err} (while {doing})"
            ) from err

    def _fail(self, doing: str, err: BaseException) -> None:
        with self._lock:
            self._errors.append((doing, err))

    # -- serving ----------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._stop_r is not None
        try:
            with selectors.DefaultSelector() as sel:
                for s in self._socks:
                    sel.register(s, selectors.EVENT_READ)
                sel.register(self._stop_r, selectors.EVENT_READ)
                while True:
                    for key, _ in sel.select():
                        if key.fileobj is self._stop_r:
                            return
                        assert isinstance(key.fileobj, socket.socket)
                        self._accept(key.fileobj)
        except Exception as e:  # noqa: BLE001 - every client would hang: stop() re-raises it
            self._fail(f"accepting connections on port {self.port}", e)

    def _accept(self, lsock: socket.socket) -> None:
        try:
            conn, addr = lsock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EMFILE and friends: back off; that client will fail
            time.sleep(0.01)
            return
        try:
            conn.setblocking(True)
            conn.settimeout(_IO_TIMEOUT)
            # TLS 1.3 sends session tickets as separate small writes: with Nagle on, the
            # second waits for the client's delayed ACK (40 ms per connection).
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # the client reset already
            conn.close()
            return
        t = threading.Thread(
            target=self._serve, args=(conn, addr), name="tlsenv-origin-conn", daemon=True
        )
        with self._lock:
            self._conns.add(conn)
            self._threads = {x for x in self._threads if x.is_alive()}
            self._threads.add(t)
            self._unrecorded += 1
        t.start()

    def settle(self, timeout: float = 1.0) -> bool:
        """Wait until the handshake of every connection accepted so far is in ``handshakes``.

        The origin records on its own threads: a client that refused the certificate may exit
        before the alert it sent is written down. False if some are still unrecorded.
        """
        with self._recorded:
            return self._recorded.wait_for(lambda: self._unrecorded == 0, timeout)

    def _record(self, handshake: Handshake | None) -> None:
        with self._recorded:
            if handshake is not None:
                self.handshakes.append(handshake)
            self._unrecorded -= 1
            self._recorded.notify_all()

    def _serve(self, raw: socket.socket, addr: tuple[str, int]) -> None:
        peer = f"{addr[0]}:{addr[1]}"
        sock: socket.socket = raw
        recorded = False
        try:
            # wrap_socket detaches `raw`: from here on the SSLSocket owns the fd.
            tls = wrap_socket(self.context, raw, server_side=True, do_handshake_on_connect=False)
            with self._lock:
                self._conns.discard(raw)
                self._conns.add(tls)
            sock = tls
            try:
                handshake_within(tls, self.deadlines.handshake)
            except (ssl.SSLError, OSError) as e:
                recorded = True
                self._record(Handshake(peer, None, f"{type(e).__name__}: {e}"))
                return
            recorded = True
            self._record(Handshake(peer, None, None))
            self._http(tls, peer, None)
            with contextlib.suppress(OSError, ValueError):
                # close_notify; unwrap then waits for the client's, bounded: a client that
                # keeps its end open must not hold this thread.
                tls.settimeout(1.0)
                tls.unwrap()
        except Exception as e:  # noqa: BLE001 - re-raised on the test thread by stop()
            self._fail(f"serving {peer}", e)
        finally:
            if not recorded:  # wrap_socket failed (a reset before the handshake)
                self._record(None)
            with self._lock:
                self._conns.discard(sock)
            sock.close()

    def _http(self, tls: ssl.SSLSocket, peer: str, sni: str | None) -> None:
        buf = b""
        while True:  # keep-alive: serve requests until the client closes or dawdles
            # Waiting for a request is bounded by `idle`; once it has begun, the whole request
            # by `request` (a client trickling a byte a second is cut off, not waited for).
            deadline = time.monotonic() + (self.deadlines.request if buf else self.deadlines.idle)
            started = bool(buf)
            while b"\r\n\r\n" not in buf:
                chunk = self._recv(tls, deadline)
                if not chunk:
                    return
                if not started:
                    started = True
                    deadline = time.monotonic() + self.deadlines.request
                buf += chunk
                if len(buf) > _MAX_HEADER:
                    return
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            try:
                method, path, version = lines[0].split(" ", 2)
            except ValueError:
                self._send(tls, 400, "text/plain", b"bad request line\n", close=True)
                return
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length_text = headers.get("content-length", "0") or "0"
            digits = length_text.isascii() and length_text.isdigit()  # not "²"
            if not digits or int(length_text) > _MAX_BODY:
                self._send(tls, 400, "text/plain", b"bad content-length\n", close=True)
                return
            length = int(length_text)
            while len(buf) < length:
                chunk = self._recv(tls, deadline)
                if not chunk:
                    return
                buf += chunk
            buf = buf[length:]
            self.received.append(Request(method, path, headers, peer, sni, time.time()))
            status, ctype, body = self.respond(method, path)
            # HTTP/1.0 closes after one answer unless the client asked to keep the connection
            # (openssl s_client then waits for EOF); HTTP/1.1 keeps it unless asked to close.
            connection = headers.get("connection", "").lower()
            if version.strip().upper() == "HTTP/1.0":
                close = connection != "keep-alive"
            else:
                close = connection == "close"
            self._send(
                tls, status, ctype, b"" if method == "HEAD" else body, close=close, length=len(body)
            )
            if close:
                return

    @staticmethod
    def _recv(tls: ssl.SSLSocket, deadline: float) -> bytes:
        """Up to 64 KiB before ``deadline``; b"" when the client closed, failed or ran out."""
        left = deadline - time.monotonic()
        if left <= 0:
            return b""
        try:
            tls.settimeout(left)
            return tls.recv(65536)
        except (OSError, ssl.SSLError):  # TimeoutError included
            return b""

    @staticmethod
    def _send(
        tls: ssl.SSLSocket,
        status: int,
        ctype: str,
        body: bytes,
        *,
        close: bool,
        length: int | None = None,
    ) -> None:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "OK")
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            tls.settimeout(_IO_TIMEOUT)  # not what was left of the request's deadline
            tls.sendall(head.encode() + body)

    def respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        """The response for ``path``: ``/``, the simple index, the wheel, or 404."""
        path = path.split("?", 1)[0]
        wheel_name, wheel = probe_wheel()
        if path == "/":
            return 200, "text/plain", b"tlsenv origin: ok\n"
        if path == "/tlsenv-probe.git/info/refs":
            # An empty repository over git's "dumb" HTTP protocol: `git ls-remote` exits 0.
            return 200, "text/plain", b""
        if path == "/simple/":
            link = f'<a href="{PROBE_PROJECT}/">{PROBE_PROJECT}</a>'
            body = f"<!DOCTYPE html><html><body>{link}</body></html>\n"
            return 200, "text/html", body.encode()
        if path in (f"/simple/{PROBE_PROJECT}/", f"/simple/{PROBE_PROJECT}"):
            digest = hashlib.sha256(wheel).hexdigest()
            body = (
                "<!DOCTYPE html><html><body>"
                f'<a href="/files/{wheel_name}#sha256={digest}">{wheel_name}</a>'
                "</body></html>\n"
            )
            return 200, "text/html", body.encode()
        if path == f"/files/{wheel_name}":
            return 200, "application/octet-stream", wheel
        return 404, "text/plain", b"not found\n"
