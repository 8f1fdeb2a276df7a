"""The proxy environment: HTTPS proxies, NO_PROXY forms, the variables' spelling, SOCKS, and
credentials with reserved characters - measured with real clients, judged by the evidence.

Each verdict is checked against what the servers saw: which proxy granted (or refused) a
tunnel, whether the origin got the request, and for SOCKS whether the client sent the name or
an address. The SOCKS and HTTPS proxies are also driven by raw sockets here: they refuse
upstreams off loopback as the CONNECT proxy does.
"""

from __future__ import annotations

import base64
import socket
import ssl
import struct
import urllib.request
from typing import Any

import pytest
from sockets import read_all, read_head

from pytest_tlsenv import TLSEnv, Verdict, namespace
from pytest_tlsenv.errors import ConfigError, NotApplicableError
from pytest_tlsenv.outcome import Outcome
from pytest_tlsenv.pki import PKI, TEST_DOMAIN
from pytest_tlsenv.proxy import Proxy
from pytest_tlsenv.proxyenv import ENVIRONMENTS, RESERVED_CREDENTIALS
from pytest_tlsenv.scenarios import CATALOGUE, GROUPS
from pytest_tlsenv.socks import SocksProxy
from pytest_tlsenv.tlsproxy import PROXY_DOMAIN, TLSProxy

NO_NAMESPACES = namespace.probe()
needs_names = pytest.mark.skipif(
    NO_NAMESPACES is not None,
    reason=f"proxy-environment scenarios need a private /etc/hosts: {NO_NAMESPACES}",
)

# -- the SOCKS5 proxy on raw sockets ----------------------------------------------------------


def _socks(port: int, atyp: int, addr: bytes, dport: int) -> tuple[socket.socket, bytes]:
    """Greet, ask for a CONNECT; the open socket and the 10-byte reply (or what came)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00" + bytes([atyp]) + addr + struct.pack(">H", dport))
    reply = b""
    while len(reply) < 10 and (chunk := s.recv(10 - len(reply))):
        reply += chunk
    return s, reply


def _name(host: str) -> bytes:
    return bytes([len(host)]) + host.encode()


@pytest.fixture
def upstream() -> Any:
    """A loopback listener standing for the origin: what reaches it came through the proxy."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        srv.settimeout(10)
        yield srv


def test_socks_proxy_refuses_upstreams_off_loopback(upstream: socket.socket) -> None:
    port = upstream.getsockname()[1]
    with SocksProxy("tunnel") as proxy:
        for atyp, addr in (
            (3, _name("example.com")),
            (3, _name("localhost.evil")),
            (1, socket.inet_aton("10.0.0.1")),
            (4, socket.inet_pton(socket.AF_INET6, "2001:db8::1")),
        ):
            s, reply = _socks(proxy.port, atyp, addr, 443)
            s.close()
            assert reply[:2] == b"\x05\x02", (atyp, addr)  # not allowed by ruleset
        assert proxy.egress_refused == [
            "example.com:443",
            "localhost.evil:443",
            "10.0.0.1:443",
            "[2001:db8::1]:443",
        ]
        assert [c.status for c in proxy.connects] == [403] * 4
        # Twin: a loopback address and a .test name are relayed to the listener.
        for atyp, addr, kind in ((1, socket.inet_aton("127.0.0.1"), "ipv4"),
                                 (3, _name(TEST_DOMAIN), "domain")):  # fmt: skip
            s, reply = _socks(proxy.port, atyp, addr, port)
            with s:
                assert reply[:2] == b"\x05\x00"
                conn, _ = upstream.accept()
                with conn:
                    s.sendall(b"ping")
                    assert conn.recv(4) == b"ping"
            assert proxy.requests[-1].address_type == kind
        assert [r.resolved_by for r in proxy.requests[-2:]] == ["client", "proxy"]


def test_socks_proxy_refuse_mode_and_malformed_requests() -> None:
    with SocksProxy("refuse") as proxy:
        s, reply = _socks(proxy.port, 3, _name(TEST_DOMAIN), 443)
        s.close()
        assert reply[:2] == b"\x05\x02"
        assert proxy.connects[-1].note.startswith("refuse mode")
        # An HTTP CONNECT sent to the SOCKS port is recorded, not served.
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as raw:
            raw.sendall(b"CONNECT x:1 HTTP/1.1\r\n\r\n")
            assert read_all(raw) == b""  # closed (or reset: the request was unread)
        proxy.settle(2.0)
        assert proxy.connects[-1].status == 400
        assert "not SOCKS5" in proxy.connects[-1].note
    with pytest.raises(ConfigError, match="SOCKS proxy's mode"):
        SocksProxy("intercept")


# -- the HTTPS proxy on raw sockets -----------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


def _tls_connect(proxy: TLSProxy, ctx: ssl.SSLContext, target: str) -> bytes:
    raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=PROXY_DOMAIN) as tls:
        tls.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        return read_head(tls)


def test_https_proxy_refuses_upstreams_off_loopback(pki: PKI, upstream: socket.socket) -> None:
    ctx = ssl.create_default_context(cadata=pki.authorities["mitm"].cert_pem.decode())
    context = pki.forged_context("mitm", PROXY_DOMAIN)
    with TLSProxy("tunnel", context=context) as proxy:
        for target in ("example.com:443", "10.0.0.1:443", "[2001:db8::1]:443"):
            assert _tls_connect(proxy, ctx, target).startswith(b"HTTP/1.1 403"), target
        assert proxy.egress_refused == ["example.com:443", "10.0.0.1:443", "[2001:db8::1]:443"]
        # Twin: a loopback upstream is tunnelled, inside the TLS session with the proxy.
        port = upstream.getsockname()[1]
        assert _tls_connect(proxy, ctx, f"127.0.0.1:{port}").startswith(b"HTTP/1.1 200")
        upstream.accept()[0].close()
        assert all(h.completed for h in proxy.handshakes)
        assert proxy.url == f"https://{PROXY_DOMAIN}:{proxy.port}"


def test_https_proxy_records_a_client_that_does_not_trust_it(pki: PKI) -> None:
    # The client trusts only the origin's CA: it refuses the proxy's certificate and never
    # sends a CONNECT; the proxy records the alert it got.
    ctx = ssl.create_default_context(cadata=pki.authorities["trusted"].cert_pem.decode())
    with TLSProxy("tunnel", context=pki.forged_context("mitm", PROXY_DOMAIN)) as proxy:
        with pytest.raises(ssl.SSLCertVerificationError):
            _tls_connect(proxy, ctx, "127.0.0.1:1")
        proxy.settle(2.0)
        assert proxy.connects == []
        assert not proxy.handshakes[-1].completed
        assert proxy.handshakes[-1].alert is not None
        assert "unknown ca" in proxy.handshakes[-1].alert
    with pytest.raises(ConfigError, match="needs context="):
        TLSProxy("tunnel")


def test_credentials_are_percent_encoded_in_the_url() -> None:
    proxy = Proxy("auth", credentials=RESERVED_CREDENTIALS)
    assert proxy.authenticated_url.startswith("http://tlsenv%40corp:se%3Acret%40tlsenv@127.0.0.1:")
    # Twin: plain credentials are unchanged.
    assert Proxy("auth").authenticated_url.startswith("http://tlsenv:tlsenv-secret@")


# -- scenarios with real clients --------------------------------------------------------------


def _curl(env: TLSEnv) -> Outcome:
    return env.client("curl").run()


def _granted(proxy: Proxy | None) -> list[str]:
    assert proxy is not None
    return [c.target for c in proxy.connects if c.status == 200]


def test_the_proxy_environment_is_in_the_proxy_group() -> None:
    for name in ENVIRONMENTS:
        assert CATALOGUE[name].groups == ("proxy",)
        assert name in GROUPS["proxy"]


@needs_names
@pytest.mark.tlsenv(proxy="no-proxy-name")
def test_no_proxy_bypass_reaches_the_origin_directly(tlsenv: TLSEnv) -> None:
    assert tlsenv.environ["NO_PROXY"] == tlsenv.environ["no_proxy"] == TEST_DOMAIN
    before = len(tlsenv.origin.received)
    out = _curl(tlsenv)
    assert out.verdict is Verdict.OK, out.reason
    assert "bypassed the proxy" in out.reason
    assert tlsenv.proxy is not None
    assert tlsenv.proxy.connects == []
    assert len(tlsenv.origin.received) > before
    # Twin: told to ignore NO_PROXY (an empty one), curl goes to the refusing proxy: FAILED.
    out = tlsenv.run(
        ["curl", "-fsS", "--max-time", "10", tlsenv.origin.url],
        env={"NO_PROXY": None, "no_proxy": None},
    )
    assert out.verdict is Verdict.FAILED
    assert [c.status for c in tlsenv.proxy.connects] == [403]


@needs_names
@pytest.mark.tlsenv(proxy="no-proxy-wildcard")
def test_no_proxy_glob_is_ignored_by_curl_and_requests(tlsenv: TLSEnv) -> None:
    # Measured: neither curl nor requests (urllib's proxy_bypass) matches "*.tlsenv.test".
    assert tlsenv.proxy is not None
    for out in (_curl(tlsenv), tlsenv.client("requests").run()):
        assert out.verdict is Verdict.FAILED, out.reason
        assert "403 to CONNECT" in out.reason
    assert [c.status for c in tlsenv.proxy.connects] == [403, 403]


@needs_names
@pytest.mark.tlsenv(proxy="no-proxy-name-port")
def test_no_proxy_with_a_port_curl_ignores_requests_honours(tlsenv: TLSEnv) -> None:
    assert tlsenv.environ["NO_PROXY"] == f"{TEST_DOMAIN}:{tlsenv.origin.port}"
    assert tlsenv.proxy is not None
    out = _curl(tlsenv)
    assert out.verdict is Verdict.FAILED
    assert "403 to CONNECT" in out.reason
    assert len(tlsenv.proxy.connects) == 1
    out = tlsenv.client("requests").run()
    assert out.verdict is Verdict.OK, out.reason
    assert "bypassed the proxy" in out.reason
    assert len(tlsenv.proxy.connects) == 1  # requests never asked it


@needs_names
@pytest.mark.tlsenv(proxy="proxy-case-conflict")
def test_case_conflict_records_which_proxy_each_client_used(tlsenv: TLSEnv, uv_0_13_9: str) -> None:
    upper, lower = tlsenv.proxies["HTTPS_PROXY"], tlsenv.proxies["https_proxy"]
    assert tlsenv.environ["HTTPS_PROXY"] == upper.url != lower.url == tlsenv.environ["https_proxy"]
    assert "ALL_PROXY" not in tlsenv.environ
    for client in ("curl", "python-ssl", "requests"):
        out = tlsenv.client(client).run()
        assert out.verdict is Verdict.OK, (client, out.reason)
        assert "(https_proxy)" in out.reason, client
    assert upper.connects == []
    assert len(_granted(lower)) == 3
    # uv (reqwest) reads the upper-case spelling first: the refusing proxy saw it.
    out = tlsenv.client("uv", version="0.13.9").run()
    assert out.verdict is Verdict.FAILED, out.reason
    assert [c.status for c in upper.connects] == [403]
    assert len(_granted(lower)) == 3


@needs_names
@pytest.mark.parametrize("scenario", ["socks5", "socks5h"])
def test_socks_evidence_says_who_resolved_the_name(
    make_tlsenv: Any, scenario: str, uv_0_13_9: str
) -> None:
    env = make_tlsenv(scenario)
    proxy = env.proxy
    assert isinstance(proxy, SocksProxy)
    assert set(env.environ) >= {"ALL_PROXY", "all_proxy"}
    assert "HTTPS_PROXY" not in env.environ
    # socks5: the private hosts file maps the name to 127.0.0.1 and ::1; curl sends ::1.
    by = "proxy" if scenario == "socks5h" else "client"
    for client, version in (("curl", None), ("uv", "0.13.9")):
        out = env.client(client, version=version).run()
        assert out.verdict is Verdict.OK, (client, out.reason)
        assert proxy.requests[-1].resolved_by == by, client
        assert proxy.requests[-1].target.endswith(f":{env.origin.port}")
    assert len(proxy.requests) == 2


@needs_names
@pytest.mark.tlsenv(proxy="socks5")
def test_socks_without_support_is_not_applicable_never_failed(tlsenv: TLSEnv) -> None:
    for client in ("python-ssl", "node", "aiohttp"):
        with pytest.raises(NotApplicableError, match="socks5 does not apply"):
            tlsenv.client(client)

    # The twin of n/a: urllib, run anyway, ignores ALL_PROXY and goes straight to the origin;
    # the route check turns that into FAILED, with the evidence.
    def fetch() -> bytes:
        ctx = ssl.create_default_context()
        with urllib.request.urlopen(tlsenv.origin.url, context=ctx, timeout=10) as r:
            return bytes(r.read())

    out = tlsenv.call(fetch)
    assert out.verdict is Verdict.FAILED
    assert "reached the origin directly" in out.reason
    assert isinstance(tlsenv.proxy, SocksProxy)
    assert tlsenv.proxy.requests == []


@needs_names
@pytest.mark.tlsenv(proxy="socks5h")
def test_a_client_resolving_despite_socks5h_is_failed(tlsenv: TLSEnv) -> None:
    # curl given socks5:// while the scenario says socks5h: it sends an address.
    assert isinstance(tlsenv.proxy, SocksProxy)
    url = tlsenv.proxy.url
    out = tlsenv.client("curl").run()
    assert out.verdict is Verdict.OK
    twin = tlsenv.run(
        ["curl", "-fsS", "--max-time", "10", tlsenv.origin.url],
        env={"ALL_PROXY": url, "all_proxy": url},
    )
    assert twin.verdict is Verdict.FAILED
    assert "despite socks5h" in twin.reason
    assert [r.resolved_by for r in tlsenv.proxy.requests] == ["proxy", "client"]


@needs_names
@pytest.mark.parametrize(
    ("scenario", "expected"),
    [("https-proxy-trusted", Verdict.OK), ("https-proxy-untrusted", Verdict.REJECTED)],
)
def test_https_proxy_is_verified_against_the_store(
    make_tlsenv: Any, scenario: str, expected: Verdict, uv_0_13_9: str
) -> None:
    env = make_tlsenv(scenario)
    proxy = env.proxy
    assert isinstance(proxy, TLSProxy)
    assert env.environ["HTTPS_PROXY"].startswith(f"https://{PROXY_DOMAIN}:")
    for client, version in (("curl", None), ("requests", None), ("uv", "0.13.9")):
        before = len(proxy.handshakes)
        out = env.client(client, version=version).run()
        assert out.verdict is expected, (client, out.reason)
        done = proxy.handshakes[before:]
        assert done, client  # every client spoke TLS to the proxy first
        if expected is Verdict.OK:
            assert all(h.completed for h in done), client
        else:
            assert not any(h.completed for h in done), client
    assert len(_granted(proxy)) == (3 if expected is Verdict.OK else 0)


@needs_names
@pytest.mark.tlsenv(proxy="https-proxy-trusted")
def test_urllib_cannot_speak_tls_to_a_proxy(tlsenv: TLSEnv) -> None:
    # Measured: urllib sends its CONNECT in clear text to the https:// proxy; the proxy's TLS
    # handshake fails and no tunnel is granted.
    out = tlsenv.client("python-ssl").run()
    assert out.verdict is Verdict.FAILED
    assert tlsenv.proxy is not None
    assert _granted(tlsenv.proxy) == []
    assert not tlsenv.proxy.handshakes[-1].completed


@needs_names
@pytest.mark.tlsenv(proxy="proxy-auth-reserved")
def test_reserved_characters_in_credentials_are_decoded(tlsenv: TLSEnv, uv_0_13_9: str) -> None:
    proxy = tlsenv.proxy
    assert proxy is not None
    assert "%40" in tlsenv.environ["HTTPS_PROXY"]
    assert "%3A" in tlsenv.environ["HTTPS_PROXY"]
    for client, version in (("curl", None), ("requests", None), ("uv", "0.13.9")):
        out = tlsenv.client(client, version=version).run()
        assert out.verdict is Verdict.OK, (client, out.reason)
    assert len(_granted(proxy)) == 3
    with pytest.raises(NotApplicableError, match="urllib3 takes no credentials"):
        tlsenv.client("urllib3")  # the preset would measure its own ProxyManager call
    # Twin: credentials sent still encoded are refused (407).
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        token = base64.b64encode(b"tlsenv%40corp:se%3Acret%40tlsenv").decode()
        target = f"{TEST_DOMAIN}:{tlsenv.origin.port}"
        s.sendall(
            f"CONNECT {target} HTTP/1.1\r\nProxy-Authorization: Basic {token}\r\n\r\n".encode()
        )
        assert read_head(s).startswith(b"HTTP/1.1 407")


@needs_names
@pytest.mark.tlsenv(proxy="no-proxy-name")
def test_node_reads_no_proxy_variable(tlsenv: TLSEnv) -> None:
    # The node preset does its CONNECT by hand: n/a where the variables are the subject.
    with pytest.raises(NotApplicableError, match="node 20 reads no proxy variable"):
        tlsenv.client("node")
    # Measured with node itself (no hand-made CONNECT): https.get goes straight to the origin
    # whatever the proxy variables say (here that is also what NO_PROXY asks).
    script = (
        "require('https').get(process.argv[1], r => { r.resume();"
        " r.on('end', () => process.exit(r.statusCode < 400 ? 0 : 22)); })"
        ".on('error', e => { console.error(e.message); process.exit(1); });"
    )
    out = tlsenv.run(
        ["node", "-e", script, tlsenv.origin.url],
        env={"NODE_EXTRA_CA_CERTS": str(tlsenv.store.bundle), "NO_PROXY": None, "no_proxy": None},
    )
    assert out.verdict is Verdict.OK, out.reason
    assert tlsenv.proxy is not None
    assert tlsenv.proxy.connects == []


def test_without_namespaces_the_scenarios_are_unavailable(
    make_tlsenv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The probe's answer stands in for a machine without namespaces: the host's resolver is
    # never asked about the invented names instead.
    monkeypatch.setattr(namespace, "probe", lambda: "namespaces are off here")
    with pytest.raises(namespace.SystemPathsUnavailableError, match="private /etc/hosts"):
        make_tlsenv("socks5")
    # Twin: the CONNECT proxy scenarios of before do not need it.
    assert make_tlsenv("proxy-tunnel").proxy is not None


@pytest.fixture
def no_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(namespace, "probe", lambda: "namespaces are off here")


@pytest.mark.tlsenv(proxy="no-proxy-star")
def test_the_fixture_skips_them_without_namespaces(
    no_namespaces: None, tlsenv_scenario: object, request: pytest.FixtureRequest
) -> None:
    # tlsenv_scenario (the marker's Spec, no environment yet) keeps the marker meaningful;
    # the environment itself is asked for here, where the skip is expected.
    with pytest.raises(pytest.skip.Exception, match="unavailable here: proxy scenario"):
        request.getfixturevalue("tlsenv")


@needs_names
@pytest.mark.tlsenv(proxy="proxy-tunnel")
def test_a_client_ignoring_the_proxy_is_failed_in_a_tunnel_scenario(tlsenv: TLSEnv) -> None:
    # The private hosts file maps origin.tlsenv.test to loopback, so a client that ignores
    # HTTPS_PROXY reaches the origin directly: that is not an OK of a proxy scenario.
    proxy_vars = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
    argv = ["curl", "-fsS", "--max-time", "10", tlsenv.origin.url]
    out = tlsenv.run(argv, env=dict.fromkeys(proxy_vars))
    assert out.reached_origin
    assert out.verdict is Verdict.FAILED
    assert "reached the origin directly" in out.reason
    assert tlsenv.proxy is not None
    assert tlsenv.proxy.connects == []
    # Twin: through the proxy, OK, with the tunnel named in the reason.
    out = tlsenv.run(argv)
    assert out.verdict is Verdict.OK
    assert "through the proxy: tunnel" in out.reason


@needs_names
@pytest.mark.tlsenv(proxy="socks5")
def test_no_bundle_for_the_proxy_environment(tlsenv: TLSEnv, tmp_path: Any) -> None:
    tlsenv.client("curl").run()
    with pytest.raises(ConfigError, match="no reproduction bundle for proxy scenario 'socks5'"):
        tlsenv.repro(tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
