"""The proxy and the origin survive what real networks and bad clients do.

Malformed CONNECT requests and TLS records (hypothesis, bounded so it runs in seconds), half-open
and abruptly reset connections, byte-by-byte clients, alerts mid-stream, and 200 concurrent
tunnels. Each test ends with the servers stopped cleanly (``stop()`` raises if a handler thread
failed or survived) and the process back to the file descriptors it had before.
"""

from __future__ import annotations

import functools
import os
import select
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sockets import read_all, read_head

from pytest_tlsenv.errors import ServerError
from pytest_tlsenv.pki import PKI, TEST_DOMAIN
from pytest_tlsenv.proxy import Proxy
from pytest_tlsenv.servers import Origin

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


class Rig:
    """An origin and a proxy in one mode, started; ``close()`` stops both (raising on errors)."""

    def __init__(self, pki: PKI, mode: str) -> None:
        self.pki = pki
        self.origin = Origin.variant(pki, "good", host=TEST_DOMAIN).start()
        self.proxy = Proxy(
            mode,
            forge=lambda host: pki.forged_context("mitm", host),
            upstream_context=pki.client_context("trusted"),
            ca_trusted=True,
        ).start()
        self.client_ctx = ssl.create_default_context(cadata=self._pems())

    def _pems(self) -> str:
        auths = self.pki.authorities
        return (auths["trusted"].cert_pem + auths["mitm"].cert_pem).decode()

    @property
    def target(self) -> str:
        return f"{TEST_DOMAIN}:{self.origin.port}"

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.proxy.port), timeout=10)

    def tunnel(self) -> ssl.SSLSocket:
        """A verified TLS connection to the origin through the proxy."""
        raw = self.connect()
        raw.sendall(f"CONNECT {self.target} HTTP/1.1\r\nHost: {self.target}\r\n\r\n".encode())
        reply = read_head(raw)
        assert reply.startswith(b"HTTP/1.1 200"), reply
        return self.client_ctx.wrap_socket(raw, server_hostname=TEST_DOMAIN)

    def get(self) -> bytes:
        with self.tunnel() as tls:
            tls.sendall(
                f"GET / HTTP/1.1\r\nHost: {TEST_DOMAIN}\r\nConnection: close\r\n\r\n".encode()
            )
            return read_all(tls)

    def close(self) -> None:
        try:
            self.proxy.stop()
        finally:
            self.origin.stop()


def _send_and_drain(sock: socket.socket, data: bytes) -> bytes:
    """Send ``data``, half-close, read the answer until the peer closes (bounded)."""
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        return read_all(sock)
    except OSError:
        return b""
    finally:
        sock.close()


@pytest.fixture(params=["intercept", "tunnel"])
def rig(request: pytest.FixtureRequest, tlsenv_pki: PKI) -> Iterator[Rig]:
    fds = _fd_count()
    rig = Rig(tlsenv_pki, request.param)
    try:
        # Warm the per-host forged context so the fd count compares like with like.
        assert rig.get().endswith(b"tlsenv origin: ok\n")
        fds_ready = _fd_count()
        yield rig
        # Still serving after the abuse...
        assert rig.get().endswith(b"tlsenv origin: ok\n")
    finally:
        rig.close()  # ...and stops without a failed or surviving thread
    assert not [t for t in threading.enumerate() if t.name.startswith("tlsenv-") and t.is_alive()]
    assert _fd_count() <= max(fds, fds_ready)


# -- fuzz -------------------------------------------------------------------------------------

_methods = st.sampled_from(["CONNECT", "GET", "connect", "POST", "", "CONNECT\x00", "\xff"])
_targets = st.one_of(
    st.sampled_from(
        [
            f"{TEST_DOMAIN}:1",
            f"{TEST_DOMAIN}:0",
            f"{TEST_DOMAIN}:99999",
            f"{TEST_DOMAIN}:",
            ":443",
            "[::1]:1",
            "[::1",
            "example.com:443",
            "10.1.2.3:80",
            "localhost:-1",
            "a:b:c",
        ]
    ),
    st.text(max_size=60),
)
_versions = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/9", "", "http/1.1", "HTTP/1.1 extra"])
_headers = st.lists(
    st.tuples(
        st.sampled_from(["Host", "Proxy-Authorization", "X", "", ":", "Content-Length"]),
        st.text(max_size=40),
    ),
    max_size=4,
)


@st.composite
def connect_requests(draw: Any) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return bytes(draw(st.binary(max_size=300)))
    if kind == 1:  # an oversized header
        return b"CONNECT x.test:1 HTTP/1.1\r\nX: " + b"a" * draw(st.integers(15000, 40000))
    line = f"{draw(_methods)} {draw(_targets)} {draw(_versions)}"
    head = "\r\n".join([line, *(f"{k}: {v}" for k, v in draw(_headers))])
    end = draw(st.sampled_from(["\r\n\r\n", "\r\n", "\n\n", ""]))
    return (head + end).encode("utf-8", "surrogatepass")


@FUZZ
@given(data=connect_requests())
@example(data=b"CONNECT origin.tlsenv.test:\xb2 HTTP/1.1\r\n\r\n")  # "2" to isdigit(), not int()
@example(data=b"CONNECT origin.tlsenv.test:443 HTTP/1.1\r\nHost: x")  # never ends
def test_fuzz_connect_requests(rig: Rig, data: bytes) -> None:
    reply = _send_and_drain(rig.connect(), data)
    if reply:
        assert reply.startswith(b"HTTP/1.1 "), reply[:80]
        status = int(reply[9:12])
        assert status in (200, 400, 403, 405, 431, 502)


@st.composite
def tls_records(draw: Any) -> bytes:
    """Byte strings that look more or less like TLS records (handshake, alert, data...)."""
    records = []
    for _ in range(draw(st.integers(1, 3))):
        ctype = draw(st.sampled_from([0x14, 0x15, 0x16, 0x17, 0x18, 0x00, 0xFF]))
        version = draw(st.sampled_from([0x0301, 0x0303, 0x0304, 0x0300, 0xFFFF]))
        body = bytes(draw(st.binary(max_size=200)))
        claimed = draw(st.one_of(st.just(len(body)), st.integers(0, 0xFFFF)))
        records.append(struct.pack("!BHH", ctype, version, claimed) + body)
    return b"".join(records)


@FUZZ
@given(data=tls_records())
def test_fuzz_tls_records_after_connect(rig: Rig, data: bytes) -> None:
    # In intercept mode these reach the forged-certificate handshake, in tunnel mode the origin.
    sock = rig.connect()
    sock.sendall(f"CONNECT {rig.target} HTTP/1.1\r\n\r\n".encode())
    assert read_head(sock).startswith(b"HTTP/1.1 200")
    _send_and_drain(sock, data)


@FUZZ
@given(data=tls_records())
def test_fuzz_tls_records_at_the_origin(rig: Rig, data: bytes) -> None:
    sock = socket.create_connection(("127.0.0.1", rig.origin.port), timeout=10)
    _send_and_drain(sock, data)


# -- bad manners ------------------------------------------------------------------------------


def _reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER 0): an abrupt close."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_half_open_and_reset_connections(rig: Rig) -> None:
    # Half-open before the request, after CONNECT, and in the middle of a tunnel.
    s = rig.connect()
    s.shutdown(socket.SHUT_WR)
    assert read_all(s) == b""
    s.close()
    s = rig.connect()
    s.sendall(f"CONNECT {rig.target} HTTP/1.1\r\n\r\n".encode())
    assert read_head(s).startswith(b"HTTP/1.1 200")
    s.shutdown(socket.SHUT_WR)
    # Closed without a hang (intercept mode answers the empty ClientHello with an alert).
    assert len(read_all(s)) < 10
    s.close()
    # Resets: before anything, mid-header, mid-handshake, mid-request.
    _reset(rig.connect())
    s = rig.connect()
    s.sendall(b"CONNECT origin.tl")
    _reset(s)
    s = rig.connect()
    s.sendall(f"CONNECT {rig.target} HTTP/1.1\r\n\r\n".encode())
    read_head(s)
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    _reset(s)
    tls = rig.tunnel()
    tls.sendall(b"GET / HTTP/1.1\r\nHost: x")
    _reset(tls)


def test_slow_client_byte_by_byte(rig: Rig) -> None:
    s = rig.connect()
    for b in f"CONNECT {rig.target} HTTP/1.1\r\nHost: {rig.target}\r\n\r\n".encode():
        s.send(bytes([b]))
    assert read_head(s).startswith(b"HTTP/1.1 200")
    with rig.client_ctx.wrap_socket(s, server_hostname=TEST_DOMAIN) as tls:
        for b in f"GET / HTTP/1.1\r\nHost: {TEST_DOMAIN}\r\nConnection: close\r\n\r\n".encode():
            tls.send(bytes([b]))
        assert read_all(tls).endswith(b"tlsenv origin: ok\n")


def test_origin_survives_bad_requests_inside_tls(rig: Rig) -> None:
    for request in (
        b"GET / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
        b"NONSENSE\r\n\r\n",
    ):
        with rig.tunnel() as tls:
            tls.sendall(request)
            if request.endswith(b"abc"):
                continue  # a body that never comes: the origin waits, we hang up
            reply = read_all(tls)
            assert reply.startswith(b"HTTP/1.1 400"), reply[:60]


def test_alerts_mid_stream(rig: Rig) -> None:
    # close_notify in the middle of a request...
    tls = rig.tunnel()
    tls.sendall(b"GET / HTTP/1.1\r\n")
    try:
        tls.unwrap()  # the peer may close without answering close_notify: fine
    except (ssl.SSLError, OSError):
        pass
    finally:
        tls.close()
    # ...and a plaintext fatal alert record after the handshake (unexpected in TLS 1.3).
    tls = rig.tunnel()
    raw = socket.socket(fileno=os.dup(tls.fileno()))
    raw.sendall(b"\x15\x03\x03\x00\x02\x02\x28")  # alert: fatal, handshake_failure
    raw.close()
    assert read_all(tls) == b""
    tls.close()


# -- load -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["tunnel", "intercept"])
def test_200_concurrent_tunnels(tlsenv_pki: PKI, mode: str) -> None:
    fds = _fd_count()
    rig = Rig(tlsenv_pki, mode)
    tunnels: list[ssl.SSLSocket] = []
    try:
        for _ in range(200):  # all open at once
            tunnels.append(rig.tunnel())
        assert len({t.getsockname() for t in tunnels}) == 200
        for tls in tunnels:
            tls.sendall(
                f"GET / HTTP/1.1\r\nHost: {TEST_DOMAIN}\r\nConnection: close\r\n\r\n".encode()
            )
        bodies = [read_all(tls) for tls in tunnels]
        assert all(b.endswith(b"tlsenv origin: ok\n") for b in bodies)
        assert len(rig.origin.received) == 200
        assert len(rig.proxy.connects) == 200
    finally:
        for tls in tunnels:
            tls.close()
        rig.close()
    assert _fd_count() <= fds + 2  # + the forged context files' cache, at most


class _BrokenUpstream:
    """An upstream context whose wrap_socket fails with a bug, not a network error."""

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        raise RuntimeError("upstream context exploded")


def test_stop_reraises_what_a_handler_thread_raised(tlsenv_pki: PKI) -> None:
    pki = tlsenv_pki
    with Origin.variant(pki, "good", host=TEST_DOMAIN) as origin:
        proxy = Proxy(
            "intercept",
            forge=lambda host: pki.forged_context("mitm", host),
            upstream_context=_BrokenUpstream(),  # type: ignore[arg-type]
        ).start()
        ctx = ssl.create_default_context(cadata=pki.authorities["mitm"].cert_pem.decode())
        raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        raw.sendall(f"CONNECT {TEST_DOMAIN}:{origin.port} HTTP/1.1\r\n\r\n".encode())
        assert read_head(raw).startswith(b"HTTP/1.1 200")
        with ctx.wrap_socket(raw, server_hostname=TEST_DOMAIN) as tls:
            # The dial failed; the client gets a 502 and the proxy the bug.
            assert read_all(tls).startswith(b"HTTP/1.1 502")
        with pytest.raises(ServerError, match="proxy handler failed: RuntimeError: upstream"):
            proxy.stop()
    # Twin: a healthy proxy stops without raising (every other test here).


def _reset_accepted() -> tuple[socket.socket, socket.socket]:
    """A server-side socket whose peer has already reset the connection (and its listener)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    _reset(client)
    select.select([server], [], [], 2)  # until the RST has arrived (recv would consume it)
    return server, listener


@pytest.mark.parametrize("helper", [True, False])
def test_wrap_socket_closes_what_cpython_drops(
    monkeypatch: pytest.MonkeyPatch, helper: bool
) -> None:
    # CPython's SSLSocket._create takes the fd, then its recv(1) probe raises ECONNRESET and
    # the half-made SSLSocket is dropped unclosed. servers.wrap_socket closes it; the twin
    # (plain ctx.wrap_socket) shows the ResourceWarning it prevents.
    import gc

    from pytest_tlsenv.servers import wrap_socket

    unraisable: list[str] = []
    monkeypatch.setattr("sys.unraisablehook", lambda u: unraisable.append(str(u.exc_value)))
    server, listener = _reset_accepted()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    wrap = functools.partial(wrap_socket, ctx) if helper else ctx.wrap_socket
    try:
        with pytest.raises(ConnectionResetError):
            wrap(server, server_side=True, do_handshake_on_connect=False)
    finally:
        server.close()
        listener.close()
    gc.collect()
    if helper:
        assert unraisable == []
    else:
        assert any("unclosed <ssl.SSLSocket" in u for u in unraisable), unraisable


@pytest.mark.parametrize("client_trusts_the_proxy", [False, True])
def test_silent_origin_holds_only_a_client_that_accepted(
    tlsenv_pki: PKI, client_trusts_the_proxy: bool
) -> None:
    # The proxy runs the client's handshake and its own to the origin together. An origin
    # that accepts TCP and never answers must not hold a client that refused the forged
    # certificate: the proxy abandons the origin's handshake then (settles at once). The twin
    # (a client that accepted) waits for the origin, as it should; stop() still wakes it.
    pki = tlsenv_pki
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # the kernel completes the TCP handshake; nobody ever reads
    port = silent.getsockname()[1]
    proxy = Proxy(
        "intercept",
        forge=lambda host: pki.forged_context("mitm", host),
        upstream_context=pki.client_context("trusted"),
    ).start()
    try:
        authority = "mitm" if client_trusts_the_proxy else "untrusted"
        ctx = ssl.create_default_context(cadata=pki.authorities[authority].cert_pem.decode())
        raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        raw.sendall(f"CONNECT {TEST_DOMAIN}:{port} HTTP/1.1\r\n\r\n".encode())
        assert read_head(raw).startswith(b"HTTP/1.1 200")
        if client_trusts_the_proxy:
            tls = ctx.wrap_socket(raw, server_hostname=TEST_DOMAIN)
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert not proxy.settle(0.3)  # the handler waits for the origin
            tls.close()
        else:
            with pytest.raises(ssl.SSLCertVerificationError):
                ctx.wrap_socket(raw, server_hostname=TEST_DOMAIN)
            raw.close()
            assert proxy.settle(2.0)  # well under the 10 s handshake timeout
            (handshake,) = proxy.handshakes
            assert not handshake.completed
            assert "unknown ca" in (handshake.alert or "")
    finally:
        proxy.stop(timeout=2.0)
        silent.close()
    assert proxy.leaked == b""
