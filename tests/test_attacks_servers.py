"""The origin and the proxy against hostile or unlucky clients.

A test process that already holds more than 1,024 file descriptors, CONNECT targets no DNS
name can be, a flood of distinct SNI names, clients that trickle one byte at a time or say
nothing, and server threads that die: each must end in a working server or a loud error,
never a hung client, a warning from a server thread, or a "clean" stop.
"""

from __future__ import annotations

import os
import resource
import selectors
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sockets import read_all, read_head

from pytest_tlsenv import TLSEnv
from pytest_tlsenv.errors import ServerError
from pytest_tlsenv.pki import PKI, TEST_DOMAIN
from pytest_tlsenv.proxy import Proxy
from pytest_tlsenv.servers import Deadlines, Origin

OK_BODY = b"tlsenv origin: ok\n"


def _connect(proxy: Proxy, target: str) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    return raw


def _client_context(pki: PKI, *authorities: str) -> ssl.SSLContext:
    pems = b"".join(pki.authorities[a].cert_pem for a in authorities)
    return ssl.create_default_context(cadata=pems.decode())


def _get_through(proxy: Proxy, origin: Origin, ctx: ssl.SSLContext) -> bytes:
    raw = _connect(proxy, f"{TEST_DOMAIN}:{origin.port}")
    with raw:
        reply = read_head(raw)
        assert reply.startswith(b"HTTP/1.1 200"), reply
        with ctx.wrap_socket(raw, server_hostname=TEST_DOMAIN) as tls:
            tls.sendall(
                f"GET / HTTP/1.1\r\nHost: {TEST_DOMAIN}\r\nConnection: close\r\n\r\n".encode()
            )
            return read_all(tls)


def _proxy(pki: PKI, mode: str = "intercept", **kwargs: object) -> Proxy:
    return Proxy(
        mode,
        forge=lambda host: pki.forged_context("mitm", host),
        upstream_context=pki.client_context("trusted"),
        ca_trusted=True,
        **kwargs,  # type: ignore[arg-type]
    )


# -- more than 1,024 file descriptors ---------------------------------------------------------


@pytest.fixture
def many_fds() -> Iterator[int]:
    """~1,100 open descriptors (dups of /dev/null), so every socket made next is above 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < 1300:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low to hold 1,100 fds")
        new_soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
    fds: list[int] = []
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        fds.append(null)
        while len(fds) < 1100:
            fds.append(os.dup(null))
        yield max(fds)
    finally:
        for fd in fds:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("mode", ["intercept", "tunnel"])
def test_servers_work_with_fd_numbers_above_1024(tlsenv_pki: PKI, many_fds: int, mode: str) -> None:
    # select() cannot watch a descriptor >= 1024 (FD_SETSIZE): a proxy built on it lost its
    # acceptor thread, every client hung, and stop() still said clean.
    assert many_fds >= 1024
    origin = Origin.variant(tlsenv_pki, "good", host=TEST_DOMAIN).start()
    proxy = _proxy(tlsenv_pki, mode).start()
    try:
        ctx = _client_context(tlsenv_pki, "trusted", "mitm")
        for _ in range(3):  # the acceptor, the relays and the handshakes, more than once
            assert _get_through(proxy, origin, ctx).endswith(OK_BODY)
        assert proxy.settle(2.0)
        assert proxy._listeners[0].fileno() > 1024
    finally:
        try:
            proxy.stop()
        finally:
            origin.stop()
    assert len(origin.received) == 3


# -- a server thread that dies fails the test ------------------------------------------------


class _Broken(Exception):
    """What the injected acceptor failure raises."""


def _explode(*_args: object) -> None:
    raise _Broken("accept step exploded")


@pytest.mark.parametrize("server", ["proxy", "origin"])
def test_a_dead_acceptor_is_an_error_at_stop(
    tlsenv_pki: PKI, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    # The acceptor's own step raises (as select() did above fd 1024): its clients can only
    # hang, so stop() must say so, with what the thread was doing.
    target: Proxy | Origin
    target = _proxy(tlsenv_pki) if server == "proxy" else Origin.variant(tlsenv_pki, "good")
    monkeypatch.setattr(target, "_accept", _explode)
    target.start()
    with socket.create_connection(("127.0.0.1", target.port), timeout=5):
        time.sleep(0.2)  # the acceptor wakes up, steps, dies
    with pytest.raises(ServerError, match=r"_Broken: accept step exploded \(while accepting"):
        target.stop()


def test_a_healthy_acceptor_stops_clean(tlsenv_pki: PKI) -> None:
    # Twin of the above: the same connection to servers left alone, and stop() is silent.
    with Origin.variant(tlsenv_pki, "good") as origin, _proxy(tlsenv_pki) as proxy:
        for port in (origin.port, proxy.port):
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                time.sleep(0.1)


def test_a_failing_forge_is_an_error_at_stop_not_a_warning(tlsenv_pki: PKI) -> None:
    # An exception in the SNI callback is only printed by ssl ("unraisable", fatal under
    # -W error, blamed on whatever test runs then): the proxy must carry it to stop().
    def forge(host: str) -> ssl.SSLContext:
        raise RuntimeError(f"no certificate for {host}")

    proxy = Proxy(
        "intercept", forge=forge, upstream_context=tlsenv_pki.client_context("trusted")
    ).start()
    try:
        with Origin.variant(tlsenv_pki, "good", host=TEST_DOMAIN) as origin:
            raw = _connect(proxy, f"{TEST_DOMAIN}:{origin.port}")
            with raw:
                assert read_head(raw).startswith(b"HTTP/1.1 200")
                ctx = _client_context(tlsenv_pki, "mitm")
                with pytest.raises(ssl.SSLError, match="internal error"):
                    ctx.wrap_socket(raw, server_hostname=TEST_DOMAIN)
            assert proxy.settle(2.0)
    finally:
        with pytest.raises(ServerError, match="RuntimeError: no certificate for origin"):
            proxy.stop()


# -- CONNECT targets no DNS name can be -------------------------------------------------------


BAD_HOSTS = [
    "a" * 64 + ".test",  # a 64-character label: the IDNA codec raises UnicodeError
    "a..test",
    "-a.test",
    "a-.test",
    ("a" * 62 + ".") * 4 + "test",  # 256 characters: more than 253
    "\xfc.test",  # latin-1 on the wire
    "a/b.test",
    "*.test",
]


@pytest.mark.parametrize("mode", ["intercept", "tunnel"])
def test_connect_to_an_impossible_name_is_a_400(tlsenv_pki: PKI, mode: str) -> None:
    origin = Origin.variant(tlsenv_pki, "good", host=TEST_DOMAIN).start()
    proxy = _proxy(tlsenv_pki, mode).start()
    try:
        for host in BAD_HOSTS:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw:
                target = f"{host}:{origin.port}"
                raw.sendall(f"CONNECT {target} HTTP/1.1\r\n\r\n".encode("latin-1"))
                assert read_head(raw).startswith(b"HTTP/1.1 400"), host
        assert proxy.settle(2.0)
        assert [(c.target.rpartition(":")[0], c.status) for c in proxy.connects] == [
            (h, 400) for h in BAD_HOSTS
        ]
        assert {c.note for c in proxy.connects} == {"host is neither a DNS name nor an IP literal"}
        # Twin: legal odd names still get through (an underscore, a trailing dot, 63 chars).
        for host in ("a_b.test", "origin.tlsenv.test.", "b" * 63 + ".test"):
            with _connect(proxy, f"{host}:{origin.port}") as raw:
                assert read_head(raw).startswith(b"HTTP/1.1 200"), host
    finally:
        try:
            proxy.stop()  # no handler failed
        finally:
            origin.stop()


def test_a_name_longer_than_a_cn_is_forged_in_the_san_only(tlsenv_pki: PKI) -> None:
    # 70 characters is a legal DNS name but longer than a CN may be (64): forging a leaf for
    # it raised in the SNI callback and the client saw a bare handshake failure.
    host = "x" * 60 + ".long.test"
    assert len(host) == 70
    assert all(len(label) <= 63 for label in host.split("."))
    ctx = _client_context(tlsenv_pki, "mitm")
    with (
        Origin.variant(tlsenv_pki, "good", host=TEST_DOMAIN) as origin,
        _proxy(tlsenv_pki) as proxy,
    ):
        raw = _connect(proxy, f"{host}:{origin.port}")
        with raw:
            assert read_head(raw).startswith(b"HTTP/1.1 200")
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                cert = tls.getpeercert()
                # The origin's certificate does not name it: the proxy answers 502.
                assert read_all(tls).startswith(b"HTTP/1.1 502")
        assert cert["subjectAltName"] == (("DNS", host),)
        assert ("commonName", host) not in [item for rdn in cert["subject"] for item in rdn]
        assert proxy.settle(2.0)
        (handshake,) = proxy.handshakes
        assert handshake.completed
        assert handshake.sni == host
        (upstream,) = proxy.upstreams
        assert upstream.name == host
        assert "Hostname mismatch" in (upstream.error or "")


# -- a flood of SNI names leaves nothing on disk ----------------------------------------------


def _files(*roots: Path) -> set[Path]:
    return {p for root in roots for p in root.rglob("*") if not p.is_dir()}


@pytest.mark.tlsenv(proxy="mitm-trusted")
def test_300_sni_names_write_no_files(tlsenv: TLSEnv, tlsenv_pki: PKI) -> None:
    proxy = tlsenv.proxy
    assert proxy is not None
    before = _files(tlsenv.root, tlsenv_pki.directory)
    fds = len(os.listdir("/proc/self/fd"))
    ctx = _client_context(tlsenv_pki, "mitm")
    names = [f"n{i}.flood.test" for i in range(300)]
    for name in names:
        with _connect(proxy, f"{name}:{tlsenv.origin.port}") as raw:
            assert read_head(raw).startswith(b"HTTP/1.1 200")
            with ctx.wrap_socket(raw, server_hostname=name) as tls:
                assert tls.getpeercert()["subjectAltName"] == (("DNS", name),)
    assert proxy.settle(5.0)
    assert {h.sni for h in proxy.handshakes} == set(names)
    assert _files(tlsenv.root, tlsenv_pki.directory) == before
    # ...and no descriptor kept per name (the origin closes its ends on its own threads).
    # A per-name leak is 300 descriptors; a few may belong to whatever else this process is
    # doing at that moment (a last connection's end still closing under load).
    slack = 4
    deadline = time.monotonic() + 5.0
    while len(os.listdir("/proc/self/fd")) > fds and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(os.listdir("/proc/self/fd")) <= fds + slack


# -- deadlines: trickling and silent clients are cut off --------------------------------------

SHORT = Deadlines(handshake=0.5, request=0.5, idle=0.5)


def _trickle(sock: socket.socket, data: bytes, interval: float, limit: float) -> float:
    """Send ``data`` a byte per ``interval`` until the peer closes; seconds it took.

    Returns ``limit`` if the peer was still listening after ``limit`` seconds.
    """
    start = time.monotonic()
    sock.setblocking(False)
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        for byte in data:
            try:
                sock.send(bytes([byte]))
            except OSError:
                return time.monotonic() - start
            if sel.select(interval):  # an answer (408, an alert) or the EOF: cut off
                try:
                    while sock.recv(65536):
                        pass
                except BlockingIOError:
                    if not sel.select(limit):
                        return limit
                except OSError:
                    pass
                return time.monotonic() - start
            if time.monotonic() - start >= limit:
                return limit
    return limit


HELLO = b"\x16\x03\x01\x02\x00" + b"\x01" + b"\x00" * 600  # a ClientHello that never ends
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 600


def test_origin_cuts_off_a_trickled_client_hello(tlsenv_pki: PKI) -> None:
    with Origin.variant(tlsenv_pki, "good", deadlines=SHORT) as origin:
        with socket.create_connection(("127.0.0.1", origin.port), timeout=5) as raw:
            took = _trickle(raw, HELLO, 0.05, 5.0)
        assert took < 2.0
        assert origin.settle(2.0)
        (handshake,) = origin.handshakes
        assert "not done within 0.5 s" in (handshake.error or "")


def test_origin_cuts_off_a_trickled_request_and_a_silent_one(tlsenv_pki: PKI) -> None:
    ctx = _client_context(tlsenv_pki, "trusted")
    with Origin.variant(tlsenv_pki, "good", deadlines=SHORT) as origin:
        raw = socket.create_connection(("127.0.0.1", origin.port), timeout=5)
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            # One byte per TLS record, one record per 50 ms: the head is never complete.
            start = time.monotonic()
            tls.settimeout(0.05)
            cut = False
            for byte in REQUEST:
                try:
                    tls.sendall(bytes([byte]))
                    if tls.recv(1024) == b"":
                        cut = True
                        break
                except TimeoutError:
                    continue
                except OSError:
                    cut = True
                    break
            assert cut, "the origin waited for the whole trickled request"
            assert time.monotonic() - start < 2.0
        # A silent client (handshake, then nothing) is let go after the idle deadline.
        raw = socket.create_connection(("127.0.0.1", origin.port), timeout=5)
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            start = time.monotonic()
            assert read_all(tls) == b""
            assert 0.4 < time.monotonic() - start < 2.0
        assert origin.received == []


def test_proxy_cuts_off_a_trickled_connect_and_client_hello(tlsenv_pki: PKI) -> None:
    with (
        Origin.variant(tlsenv_pki, "good", host=TEST_DOMAIN) as origin,
        _proxy(tlsenv_pki, deadlines=SHORT) as proxy,
    ):
        head = f"CONNECT {TEST_DOMAIN}:{origin.port} HTTP/1.1\r\nX-Slow: {'a' * 600}"
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw:
            assert _trickle(raw, head.encode(), 0.05, 5.0) < 2.0
        with _connect(proxy, f"{TEST_DOMAIN}:{origin.port}") as raw:
            assert read_head(raw).startswith(b"HTTP/1.1 200")
            assert _trickle(raw, HELLO, 0.05, 5.0) < 2.0
        assert proxy.settle(2.0)
        (handshake,) = proxy.handshakes
        assert not handshake.completed
        assert "handshake timed out" in (handshake.error or "")
        # Twin: a client that does not dawdle is served with the same deadlines.
        ctx = _client_context(tlsenv_pki, "trusted", "mitm")
        assert _get_through(proxy, origin, ctx).endswith(OK_BODY)


# -- HTTP/1.0 closes after one answer ---------------------------------------------------------


def _ask(tls: ssl.SSLSocket, version: str, connection: str | None) -> bytes:
    """One GET; the answer read up to its body (the connection may stay open)."""
    extra = f"Connection: {connection}\r\n" if connection else ""
    tls.sendall(f"GET / {version}\r\nHost: localhost\r\n{extra}\r\n".encode())
    answer = b""
    while not answer.endswith(OK_BODY):
        chunk = tls.recv(65536)
        assert chunk, answer
        answer += chunk
    return answer


@pytest.mark.parametrize(
    ("version", "connection", "kept"),
    [
        ("HTTP/1.0", None, False),
        ("HTTP/1.0", "keep-alive", True),
        ("HTTP/1.1", None, True),
        ("HTTP/1.1", "close", False),
    ],
)
def test_origin_closes_http_1_0_connections_at_once(
    tlsenv_pki: PKI, version: str, connection: str | None, kept: bool
) -> None:
    # An HTTP/1.0 client without keep-alive (openssl s_client with a typed request) reads to
    # EOF: the origin kept the connection and it waited 10 s for the idle timeout.
    ctx = _client_context(tlsenv_pki, "trusted")
    with Origin.variant(tlsenv_pki, "good") as origin:
        raw = socket.create_connection(("127.0.0.1", origin.port), timeout=3)
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            start = time.monotonic()
            answer = _ask(tls, version, connection)
            assert f"Connection: {'keep-alive' if kept else 'close'}".encode() in answer
            if kept:
                assert _ask(tls, version, "close").endswith(OK_BODY)  # served on the same one
            assert read_all(tls) == b""  # and then closed, without waiting
            assert time.monotonic() - start < 1.0
        assert origin.settle(2.0)
        assert len(origin.received) == (2 if kept else 1)
