"""One loopback server base under the origin and the proxy: sockets, threads, stop, settle.

:class:`LoopbackServer` binds 127.0.0.1 (and ::1 on the same port) on port 0 and reads the
port back, is accepting before :meth:`~LoopbackServer.start` returns, accepts on a selector
(epoll: any fd number, unlike select()) and serves each connection on a thread of its own.
:meth:`~LoopbackServer.stop` wakes every thread, closes every socket, joins every thread and
raises :class:`~pytest_tlsenv.errors.ServerError` if one survived or a server thread failed
(the acceptor included: its clients would all hang). urllib3's dummyserver and
pytest-httpserver's ``HTTPServerBase`` are the models. A subclass adds its protocol only:
``_serve(conn, job)``, and what "settled" means for one connection (:meth:`settle`).

Every socket a connection's thread opens is accounted for in its :class:`Job`: ``stop`` shuts
them down at the OS level to wake a blocked thread without touching its SSL object, and the
base closes them when the thread ends.

A server started while a :class:`SharedAcceptor` is installed (the plugin installs one for a
session that uses its fixtures) has its listening sockets watched by that acceptor's one
thread instead of a thread of its own: starting and stopping a server per test then costs no
thread start and no join (two waits for the scheduler each, milliseconds on a loaded machine).
Connections are still served on threads of their own, and the server is listening and
accepting before ``start`` returns either way.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar, Self

from .errors import ServerError

__all__ = [
    "IO_TIMEOUT",
    "Job",
    "LoopbackServer",
    "SharedAcceptor",
    "bind_loopback",
    "ipv6_loopback_available",
    "run_handshakes",
    "sweep",
    "wrap_socket",
]

#: Per-operation socket timeout of a server thread outside the deadlines of its steps.
IO_TIMEOUT = 10.0


@cache
def ipv6_loopback_available() -> bool:
    """Whether ::1 can be bound here (probed once)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def bind_loopback(*, ipv6: bool = True, backlog: int = 128) -> list[socket.socket]:
    """Non-blocking listening sockets on 127.0.0.1 and (if ``ipv6`` and possible) ::1.

    Both on one port, chosen by the kernel: a client that resolves ``localhost`` to either
    address reaches the same server.
    """
    for _ in range(20):
        v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        v4.bind(("127.0.0.1", 0))
        port = v4.getsockname()[1]
        socks = [v4]
        if ipv6 and ipv6_loopback_available():
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                v6.bind(("::1", port))
            except OSError:  # that port is taken on ::1: try another
                v6.close()
                v4.close()
                continue
            socks.append(v6)
        for s in socks:
            s.listen(backlog)
            s.setblocking(False)
        return socks
    raise ServerError("could not bind 127.0.0.1 and ::1 on a common port in 20 tries")


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


def run_handshakes(
    socks: Iterable[ssl.SSLSocket], seconds: float, stop: socket.socket | None = None
) -> dict[ssl.SSLSocket, OSError | None]:
    """Run the TLS handshakes of ``socks`` together in this thread; an error or None each.

    A blocking ``do_handshake`` applies the socket timeout to each read: a peer that sends
    its ClientHello a byte at a time would never time out. Non-blocking steps driven by one
    selector (epoll) bound all of them together by ``seconds`` instead; a byte on ``stop``
    ends them at once. When the first one fails, the others are abandoned (a client that
    refused a certificate needs no upstream).
    """
    order = list(socks)
    result: dict[ssl.SSLSocket, OSError | None] = {}
    pending: set[ssl.SSLSocket] = set()
    ready = list(order)
    deadline = time.monotonic() + seconds
    timeouts = {s: s.gettimeout() for s in order}
    for s in order:
        s.settimeout(0.0)
    try:
        with selectors.DefaultSelector() as sel:
            if stop is not None:
                sel.register(stop, selectors.EVENT_READ)
            for s in order:
                sel.register(s, selectors.EVENT_READ)
            while True:
                for s in ready:
                    try:
                        s.do_handshake()
                    except ssl.SSLWantReadError:
                        pending.add(s)
                        sel.modify(s, selectors.EVENT_READ)
                        continue
                    except ssl.SSLWantWriteError:
                        pending.add(s)
                        sel.modify(s, selectors.EVENT_WRITE)
                        continue
                    except OSError as e:  # ssl.SSLError included
                        result[s] = e
                    else:
                        result[s] = None
                    pending.discard(s)
                    sel.unregister(s)
                if not pending:
                    return result
                if result.get(order[0]) is not None:  # the first one failed: the rest is moot
                    for s in pending:
                        result[s] = ConnectionAbortedError("abandoned: the first handshake failed")
                    return result
                events = sel.select(max(deadline - time.monotonic(), 0.0))
                fired = {key.fileobj for key, _ in events}
                if not events or stop in fired:
                    why = "server stopping" if events else "handshake timed out"
                    for s in pending:
                        result[s] = TimeoutError(f"{why}: not done within {seconds:g} s")
                    return result
                ready = [s for s in pending if s in fired]
    finally:
        for s, timeout in timeouts.items():
            with contextlib.suppress(OSError):
                s.settimeout(timeout)


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


@dataclass
class Job:
    """One accepted connection as its thread sees it.

    ``doing`` names the step in the error if the thread fails; ``owned`` holds every socket
    of the connection (the accepted one, its TLS wrapper, upstreams): the base closes them
    all when the thread ends.
    """

    peer: str
    doing: str
    owned: list[socket.socket] = field(default_factory=list)


class SharedAcceptor:
    """One thread that accepts connections for every server started while it is installed.

    :meth:`install` starts it and makes it the one :meth:`LoopbackServer.start` registers
    with; :meth:`uninstall` stops it (a server still registered then gets a thread of its own,
    so its clients are still served). Installs nest: the newest one is used (a pytest session
    run inside a test installs its own and removes it when it ends). What a server's
    ``_accept`` raises is that server's error at its ``stop``, as with a thread of its own,
    and the acceptor stops watching it (its clients hang, as they would).
    """

    _installed: ClassVar[list[SharedAcceptor]] = []

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sel = selectors.DefaultSelector()
        # fd -> (server, listening socket): checked under the lock before each accept, so an
        # event for a socket unregistered meanwhile (its fd perhaps reused) is dropped.
        self._owners: dict[int, tuple[LoopbackServer, socket.socket]] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel.register(self._wake_r, selectors.EVENT_READ)
        self._closing = False
        self._thread = threading.Thread(
            target=self._loop, name="tlsenv:shared-acceptor", daemon=True
        )

    @classmethod
    def install(cls) -> SharedAcceptor:
        """Start a shared acceptor and make it the current one."""
        acceptor = cls()
        acceptor._thread.start()
        cls._installed.append(acceptor)
        return acceptor

    @classmethod
    def current(cls) -> SharedAcceptor | None:
        """The newest installed acceptor still running, or None."""
        for acceptor in reversed(cls._installed):
            if acceptor._thread.is_alive() and not acceptor._closing:
                return acceptor
        return None

    def uninstall(self, timeout: float = 5.0) -> None:
        """Stop watching (servers still registered get a thread each), end the thread."""
        with contextlib.suppress(ValueError):
            type(self)._installed.remove(self)
        with self._lock:
            self._closing = True
            orphans = {server for server, _ in self._owners.values()}
            for _, sock in self._owners.values():
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(sock)
            self._owners.clear()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(timeout)
        for server in orphans:
            if server._running:  # not stopping: its clients must still be served
                server._accept_on_own_thread()
        if not self._thread.is_alive():
            self._sel.close()
            self._wake_r.close()
            self._wake_w.close()

    def register(self, server: LoopbackServer) -> bool:
        """Watch ``server``'s listening sockets; False if this acceptor no longer runs."""
        with self._lock:
            if self._closing or not self._thread.is_alive():
                return False
            for sock in server._listeners:
                self._sel.register(sock, selectors.EVENT_READ)
                self._owners[sock.fileno()] = (server, sock)
        return True

    def unregister(self, server: LoopbackServer) -> None:
        """Stop watching ``server``: once this returns, it accepts nothing more here."""
        with self._lock:
            self._drop(server)

    def _drop(self, server: LoopbackServer) -> None:
        for fd, (owner, sock) in list(self._owners.items()):
            if owner is server:
                del self._owners[fd]
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(sock)

    def _loop(self) -> None:
        try:
            while True:
                for key, _ in self._sel.select():
                    if key.fileobj is self._wake_r:
                        if self._closing:
                            return
                        continue
                    with self._lock:
                        owner = self._owners.get(key.fd)
                        if owner is None or owner[1] is not key.fileobj:
                            continue
                        server, sock = owner
                        try:
                            server._accept(sock)
                        except Exception as e:  # noqa: BLE001 - that server's stop() raises it
                            server._fail(f"accepting connections on port {server.port}", e)
                            self._drop(server)
        except Exception as e:  # noqa: BLE001 - every server's clients would hang: each stop() says so
            with self._lock:
                self._closing = True
                for server in {server for server, _ in self._owners.values()}:
                    server._fail(f"accepting connections on port {server.port}", e)
                self._owners.clear()


class LoopbackServer:
    """The lifecycle the origin and the proxy share. Subclasses are dataclasses.

    A subclass sets ``kind`` (thread names, messages), may set ``ipv6``, ``backlog``,
    ``first_step`` (a new connection's :attr:`Job.doing`) and ``quiet`` (exceptions that end a
    connection without being an error), and implements ``_serve(conn, job)``. Its
    ``__post_init__`` calls this one.
    """

    kind: ClassVar[str] = "server"
    ipv6: ClassVar[bool] = True
    backlog: ClassVar[int] = 128
    first_step: ClassVar[str] = "serving"
    quiet: ClassVar[tuple[type[BaseException], ...]] = ()

    port: int

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        # Notified whenever a connection settles: what settle() waits on.
        self._changed = threading.Condition(self._lock)
        self._listeners: list[socket.socket] = []
        # Every socket of every connection, for stop() to shut down.
        self._socks: set[socket.socket] = set()
        # _threads: every thread started and perhaps still alive (pruned only once dead, so
        # stop() joins exactly all of them); _unsettled: those not yet settled (settle()).
        self._threads: set[threading.Thread] = set()
        self._unsettled: set[threading.Thread] = set()
        # What a server thread raised, with what it was doing: re-raised by stop().
        self._errors: list[tuple[str, BaseException]] = []
        # The wake-up pair stop() writes to: made on first use (a server whose connections
        # never wait on it, an origin under a shared acceptor, needs none).
        self._stop_r: socket.socket | None = None
        self._stop_w: socket.socket | None = None
        self._stop_sent = False
        self._acceptor: threading.Thread | None = None
        self._shared: SharedAcceptor | None = None
        self._running = False

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind, start accepting, return: connections are served from here on."""
        self._listeners = bind_loopback(ipv6=self.ipv6, backlog=self.backlog)
        self.port = self._listeners[0].getsockname()[1]
        self._running = True
        shared = SharedAcceptor.current()
        if shared is not None and shared.register(self):
            self._shared = shared
        else:
            self._accept_on_own_thread()
        return self

    def _accept_on_own_thread(self) -> None:
        """Accept on a thread of this server's own (no shared acceptor, or it went away)."""
        self._shared = None
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"tlsenv-{self.kind}:{self.port}", daemon=True
        )
        self._acceptor.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """Close every socket, join every thread; raise what a server thread raised.

        A thread that died (the acceptor included: its clients would all hang) is a
        :class:`ServerError` naming what it was doing, never a clean stop.
        """
        if not self._running:
            return
        self._running = False
        with self._lock:
            self._stop_sent = True
            stop_w = self._stop_w
        if stop_w is not None:
            with contextlib.suppress(OSError):
                stop_w.send(b"x")  # the acceptor and every relay select on _stop_r
        if self._shared is not None:
            self._shared.unregister(self)  # synchronous: nothing is accepted after this
            self._shared = None
        if self._acceptor is not None:
            self._acceptor.join(timeout)
        survivors = sweep(self._lock, lambda: self._socks, lambda: self._threads, timeout)
        alive = self._acceptor is not None and self._acceptor.is_alive()
        for s in self._listeners:
            s.close()
        with self._lock:
            for pair_end in (self._stop_r, self._stop_w):
                if pair_end is not None:
                    pair_end.close()
        self._acceptor = None
        if alive or survivors:
            raise ServerError(f"{self.kind} threads survived stop(): {survivors or ['acceptor']}")
        if self._errors:
            doing, err = self._errors[0]
            raise ServerError(
                f"{self.kind} handler failed: {type(err).__name__}: {err} (while {doing})"
            ) from err

    def settle(self, timeout: float = 1.0) -> bool:
        """Wait until every connection accepted so far has settled; False if some have not.

        A connection settles when its thread ends, or earlier when the subclass says so
        (``_settled()``): once what it records about the connection is written down.
        """
        with self._changed:
            return self._changed.wait_for(lambda: not self._unsettled, timeout)

    @property
    def _stopping(self) -> socket.socket:
        """Readable once :meth:`stop` began: register it in every selector that may wait."""
        with self._lock:
            if self._stop_r is None:
                self._stop_r, self._stop_w = socket.socketpair()
                if self._stop_sent:
                    self._stop_w.send(b"x")  # stop() began before anyone waited on it
            return self._stop_r

    def _fail(self, doing: str, err: BaseException) -> None:
        with self._lock:
            self._errors.append((doing, err))

    def _settled(self) -> None:
        """This thread's connection is settled (idempotent; also done when the thread ends)."""
        with self._changed:
            self._unsettled.discard(threading.current_thread())
            self._changed.notify_all()

    # -- accepting --------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        try:
            with selectors.DefaultSelector() as sel:
                for s in (*self._listeners, self._stopping):
                    sel.register(s, selectors.EVENT_READ)
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
            conn.settimeout(IO_TIMEOUT)
            # TLS 1.3 sends session tickets as separate small writes: with Nagle on, the
            # second waits for the client's delayed ACK (40 ms per connection).
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # the client reset already
            conn.close()
            return
        job = Job(f"{addr[0]}:{addr[1]}", self.first_step, [conn])
        t = threading.Thread(
            target=self._run, args=(conn, job), name=f"tlsenv-{self.kind}-conn", daemon=True
        )
        with self._lock:
            self._socks.add(conn)
            self._threads = {x for x in self._threads if x.is_alive()}
            self._threads.add(t)
            self._unsettled.add(t)
        t.start()

    # -- one connection ---------------------------------------------------------------------

    def _run(self, conn: socket.socket, job: Job) -> None:
        try:
            self._serve(conn, job)
        except self.quiet:
            pass  # the client went away or sent what is not served: nothing to report
        except Exception as e:  # noqa: BLE001 - re-raised on the test thread by stop()
            self._fail(f"{job.doing} (client {job.peer})", e)
        finally:
            with self._lock:
                for s in job.owned:
                    self._socks.discard(s)
            for s in job.owned:
                s.close()
            self._settled()

    def _serve(self, conn: socket.socket, job: Job) -> None:
        """Serve one accepted connection (blocking, timeout IO_TIMEOUT) on its own thread."""
        raise NotImplementedError

    def _own(self, job: Job, sock: socket.socket) -> None:
        """Account ``sock`` (an upstream the thread opened) to ``job``: woken by stop, closed."""
        job.owned.append(sock)
        with self._lock:
            self._socks.add(sock)

    def _swap(self, job: Job, old: socket.socket, new: ssl.SSLSocket) -> None:
        """``new`` (a TLS wrapper that took ``old``'s fd over) replaces ``old`` in the books."""
        job.owned[job.owned.index(old)] = new
        with self._lock:
            self._socks.discard(old)
            self._socks.add(new)
