"""The loopback server base on its own: a tiny echo server and a tiny TLS server built on it.

Both address families on one port, stop() while a client is mid-handshake, an acceptor that
dies, a handler that fails or outlives stop(), and settle() over connections still in flight.
Every test runs twice: accepting on the server's own thread, and on a shared acceptor (what a
plugin session uses).
Real sockets and real handshakes; the servers are the smallest subclasses that show each
property, so a failure here is the base's, not the origin's or the proxy's.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import pytest
from sockets import read_all

from pytest_tlsenv.errors import ServerError
from pytest_tlsenv.loopback import (
    Job,
    LoopbackServer,
    SharedAcceptor,
    ipv6_loopback_available,
    run_handshakes,
)
from pytest_tlsenv.loopback import wrap_socket as wrap
from pytest_tlsenv.pki import PKI
from pytest_tlsenv.tlsenv import TLSEnv

needs_ipv6 = pytest.mark.skipif(not ipv6_loopback_available(), reason="::1 cannot be bound here")


@pytest.fixture(autouse=True, params=["own-thread", "shared"])
def acceptor(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SharedAcceptor | None]:
    """Where servers started by the test accept: a thread each, or one shared acceptor."""
    monkeypatch.setattr(SharedAcceptor, "_installed", [])  # not the session's: the test's
    if request.param == "own-thread":
        yield None
        return
    shared = SharedAcceptor.install()
    try:
        yield shared
    finally:
        shared.uninstall()


class _Refused(Exception):
    """What the echo server's handler raises for a line it will not serve."""


@dataclass(eq=False)
class Echo(LoopbackServer):
    """Echoes one line back. ``BOOM`` fails the handler; ``QUIET`` ends it without an error.

    ``hold`` makes each handler wait for the event before answering (after saying it is
    settled when ``settle_early``).
    """

    kind: ClassVar[str] = "echo"
    quiet: ClassVar[tuple[type[BaseException], ...]] = (_Refused,)

    hold: threading.Event | None = None
    settle_early: bool = False
    entered: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    port: int = 0

    def _serve(self, conn: socket.socket, job: Job) -> None:
        line = conn.recv(1024)
        if not line:
            return  # connected and left
        job.doing = f"echoing {line[:20]!r}"
        if self.settle_early:
            self._settled()
        self.entered.release()
        if self.hold is not None:
            self.hold.wait(10)
        if line.startswith(b"BOOM"):
            raise RuntimeError("echo handler exploded")
        if line.startswith(b"QUIET"):
            raise _Refused
        conn.sendall(line)


class EchoV4(Echo):
    ipv6: ClassVar[bool] = False


@dataclass(eq=False)
class Handshaker(LoopbackServer):
    """Runs one TLS handshake per connection with a long deadline; records how it ended."""

    kind: ClassVar[str] = "handshaker"

    context: ssl.SSLContext
    use_stop_signal: bool = True
    ended: list[str] = field(default_factory=list)
    handshaking: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    def _serve(self, conn: socket.socket, job: Job) -> None:
        tls = wrap(self.context, conn, server_side=True, do_handshake_on_connect=False)
        self._swap(job, conn, tls)
        self.handshaking.set()
        stop = self._stopping if self.use_stop_signal else None
        error = run_handshakes([tls], 30.0, stop)[tls]
        self.ended.append(f"{type(error).__name__}: {error}")


def _echo(port: int, host: str = "127.0.0.1", line: bytes = b"hello\n") -> bytes:
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(line)
        return read_all(s)


# -- both address families on one port --------------------------------------------------------


@needs_ipv6
def test_both_families_are_bound_on_one_port() -> None:
    with Echo() as server:
        assert sorted(s.family for s in server._listeners) == [socket.AF_INET, socket.AF_INET6]
        assert {s.getsockname()[1] for s in server._listeners} == {server.port}
        assert _echo(server.port, "127.0.0.1") == b"hello\n"
        assert _echo(server.port, "::1") == b"hello\n"


@needs_ipv6
def test_an_ipv4_only_server_refuses_ipv6_clients() -> None:
    # Twin: a subclass that asks for 127.0.0.1 only (the proxy) is not reachable on ::1.
    with EchoV4() as server:
        assert [s.family for s in server._listeners] == [socket.AF_INET]
        assert _echo(server.port, "127.0.0.1") == b"hello\n"
        with pytest.raises(ConnectionRefusedError):
            _echo(server.port, "::1")


# -- stop() while a client is mid-handshake ---------------------------------------------------


@pytest.mark.parametrize("use_stop_signal", [True, False], ids=["stop-signal", "sweep"])
def test_stop_ends_a_handshake_in_progress_within_its_timeout(
    tlsenv_pki: PKI, use_stop_signal: bool
) -> None:
    # The handshake's own deadline is 30 s; a client that sent half a ClientHello must not
    # hold stop() for it: the stop signal (as the proxy's relays use) or the OS-level
    # shutdown of the connection (as for the origin) ends it at once.
    context = tlsenv_pki.server_context(tlsenv_pki.server_leaf("good"))
    server = Handshaker(context, use_stop_signal=use_stop_signal).start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
        client.sendall(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello that never ends
        assert server.handshaking.wait(5)
        assert not server.settle(0.2)  # the handler is in the handshake
        start = time.monotonic()
        server.stop(timeout=3.0)
        assert time.monotonic() - start < 1.0
    (ended,) = server.ended
    assert ended != "NoneType: None"  # the handshake did not complete
    if use_stop_signal:
        assert ended == "TimeoutError: server stopping: not done within 30 s"


def test_stop_reports_a_handler_it_could_not_wake() -> None:
    # Twin: a thread that waits on something stop() cannot shut down survives stop(); stop()
    # says so after its timeout instead of returning clean or waiting for ever.
    release = threading.Event()
    server = Echo(hold=release).start()  # held where no socket wakes it
    client = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        client.sendall(b"hello\n")
        assert server.entered.acquire(timeout=5)
        start = time.monotonic()
        with pytest.raises(ServerError, match=r"echo threads survived stop\(\): \['tlsenv-echo"):
            server.stop(timeout=0.5)
        assert 0.4 < time.monotonic() - start < 2.0
    finally:
        release.set()
        for t in list(server._threads):
            t.join(5)
        client.close()


# -- what a server thread raised is raised by stop() ------------------------------------------


class _AcceptorDies(Echo):
    """The acceptor's step raises (as select() did above fd 1024) on the first connection."""

    def _accept(self, lsock: socket.socket) -> None:
        raise LookupError(f"no acceptor for {lsock.getsockname()[0]}")


def test_a_dead_acceptor_is_raised_at_stop() -> None:
    # Its clients can only hang: stop() must say so, with what the thread was doing.
    server = _AcceptorDies().start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
        client.settimeout(0.5)
        with pytest.raises(TimeoutError):
            client.recv(1)  # accepted by the kernel, never served
    expected = r"echo handler failed: LookupError: no acceptor for 127\.0\.0\.1 \(while accepting"
    with pytest.raises(ServerError, match=expected):
        server.stop()


def test_a_failing_handler_is_raised_at_stop_a_quiet_one_is_not() -> None:
    server = Echo().start()
    try:
        assert _echo(server.port, line=b"QUIET\n") == b""  # ended, on purpose: no error
        assert server.settle(2.0)
        assert _echo(server.port, line=b"BOOM\n") == b""
        assert server.settle(2.0)
    finally:
        with pytest.raises(ServerError) as raised:
            server.stop()
    assert str(raised.value).startswith(
        "echo handler failed: RuntimeError: echo handler exploded (while echoing b'BOOM\\n' "
        "(client 127.0.0.1:"
    )


def test_a_healthy_server_stops_clean() -> None:
    # Twin of both: connections served, a client that connects and leaves, stop() is silent.
    with Echo() as server:
        assert _echo(server.port) == b"hello\n"
        with socket.create_connection(("127.0.0.1", server.port), timeout=5):
            pass
    assert not [t for t in server._threads if t.is_alive()]


# -- settle() waits for connections in flight -------------------------------------------------


@pytest.mark.parametrize("settle_early", [False, True], ids=["at-thread-end", "said-early"])
def test_settle_waits_for_connections_in_flight(settle_early: bool) -> None:
    # A connection settles when its thread ends, or when the subclass says it has recorded
    # what it records (the origin: the handshake). settle() is False until then.
    release = threading.Event()
    server = Echo(hold=release, settle_early=settle_early).start()
    clients: list[socket.socket] = []
    try:
        for _ in range(2):
            clients.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        for c in clients:
            c.sendall(b"hello\n")
        for _ in clients:
            assert server.entered.acquire(timeout=5)
        # Twin in one: said early, settled while the handlers still hold; otherwise not.
        assert server.settle(0.3) is settle_early
        release.set()
        assert server.settle(2.0)
        assert [read_all(c) for c in clients] == [b"hello\n", b"hello\n"]
    finally:
        release.set()
        for c in clients:
            c.close()
        server.stop()


# -- the shared acceptor ----------------------------------------------------------------------


def _acceptor_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("tlsenv-echo:")]


def test_a_server_accepts_on_a_thread_of_its_own_or_the_shared_one(
    acceptor: SharedAcceptor | None,
) -> None:
    # Served either way, listening before start() returns; a thread of its own only without
    # a shared acceptor (none started and joined per server with one).
    with Echo() as server:
        assert _echo(server.port) == b"hello\n"
        assert _acceptor_threads() == ([] if acceptor else [f"tlsenv-echo:{server.port}"])
    assert _acceptor_threads() == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def test_a_dead_accept_step_on_the_shared_acceptor_spares_the_other_servers(
    acceptor: SharedAcceptor | None,
) -> None:
    # One server's accept step raises: its stop() says so; a server beside it on the same
    # acceptor still serves and stops clean.
    with Echo() as healthy:
        broken = _AcceptorDies().start()
        with socket.create_connection(("127.0.0.1", broken.port), timeout=5) as client:
            client.settimeout(0.5)
            with pytest.raises(TimeoutError):
                client.recv(1)
        assert _echo(healthy.port) == b"hello\n"
        with pytest.raises(ServerError, match=r"LookupError: no acceptor for 127\.0\.0\.1"):
            broken.stop()
        assert _echo(healthy.port) == b"hello\n"


def test_a_server_outliving_its_shared_acceptor_gets_a_thread_of_its_own(
    acceptor: SharedAcceptor | None,
) -> None:
    if acceptor is None:
        pytest.skip("about the shared acceptor")
    server = Echo().start()
    try:
        assert _acceptor_threads() == []
        acceptor.uninstall()
        assert SharedAcceptor.current() is None
        assert _acceptor_threads() == [f"tlsenv-echo:{server.port}"]
        assert _echo(server.port) == b"hello\n"  # still served
    finally:
        server.stop()
    assert _acceptor_threads() == []


CLIENT = """
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
print(urllib.request.urlopen(sys.argv[1], context=ctx, timeout=10).read().decode(), end="")
"""


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
def test_a_users_own_subprocess_meets_the_origin_at_its_url(
    tlsenv: TLSEnv, tlsenv_pki: PKI, trusted: bool
) -> None:
    # A test that reads tlsenv.origin.url and runs its own client (not run/call) meets the
    # real origin, whichever way it accepts; the twin, trusting another CA, is refused by
    # that origin's certificate (so it was the origin that answered).
    ca = tlsenv_pki.authorities["trusted" if trusted else "untrusted"]
    cafile = tlsenv.root / "ca.pem"
    cafile.write_bytes(ca.cert_pem)
    argv = [sys.executable, "-I", "-c", CLIENT, tlsenv.origin.url, str(cafile)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={})
    if trusted:
        assert (proc.returncode, proc.stdout) == (0, "tlsenv origin: ok\n"), proc.stderr
        assert [r.path for r in tlsenv.origin.received] == ["/"]
    else:
        assert proc.returncode != 0
        assert "CERTIFICATE_VERIFY_FAILED" in proc.stderr
        assert tlsenv.origin.received == []
