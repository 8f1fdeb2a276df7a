"""The ``proxy`` group with real clients: interception, tunnels, refusals, credentials, leaks.

Every client gets the proxy the way users configure one: HTTPS_PROXY/https_proxy/ALL_PROXY
(set by the scenario), and the origin's URL uses ``origin.tlsenv.test``, a name only the
proxy resolves - so reaching the origin at all proves the client went through the proxy.
"""

from __future__ import annotations

import functools
import http.client
import socket
import ssl
import sys
import urllib.request
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests

from pytest_tlsenv import TLSEnv, Verdict
from pytest_tlsenv.outcome import Outcome
from pytest_tlsenv.pki import TEST_DOMAIN
from pytest_tlsenv.proxyenv import ENVIRONMENTS
from pytest_tlsenv.scenarios import GROUPS

# -- clients --------------------------------------------------------------------------------


def _urllib(env: TLSEnv) -> bytes:
    # create_default_context() reads SSL_CERT_FILE/SSL_CERT_DIR; urllib reads https_proxy.
    ctx = ssl.create_default_context()
    with urllib.request.urlopen(env.origin.url, context=ctx, timeout=10) as r:
        data: bytes = r.read()
        return data


def _requests(env: TLSEnv) -> bytes:
    # requests ignores SSL_CERT_FILE (certifi by default): point it at the store's bundle.
    r = requests.get(env.origin.url, verify=str(env.store.bundle), timeout=10)
    r.raise_for_status()
    return r.content


def _httpx(env: TLSEnv) -> bytes:
    # httpx (trust_env) honours SSL_CERT_FILE and HTTPS_PROXY/ALL_PROXY.
    r = httpx.get(env.origin.url, timeout=10)
    r.raise_for_status()
    return r.content


def _close_tunnel_responses(exc: BaseException) -> None:
    """Close the proxy's refusal response that http.client left open (CPython < 3.11.4).

    ``HTTPConnection._tunnel`` did not close the CONNECT response on a non-200 status
    (https://github.com/python/cpython/issues/103472, fixed in 3.11.4; Debian 12 ships
    3.11.2): its socket outlives the call and this suite's fd and ResourceWarning checks would
    blame the next test. The response is still a local of ``_tunnel``'s frame in the traceback.
    """
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        tb = e.__traceback__
        while tb is not None:
            for value in tb.tb_frame.f_locals.values():
                if isinstance(value, http.client.HTTPResponse):
                    value.close()
            tb = tb.tb_next
        todo += [x for x in (e.__cause__, e.__context__, *e.args) if isinstance(x, BaseException)]


def _in_process(fn: Callable[[TLSEnv], bytes], env: TLSEnv) -> bytes:
    try:
        return fn(env)
    except BaseException as e:
        _close_tunnel_responses(e)
        raise


IN_PROCESS: dict[str, Callable[[TLSEnv], bytes]] = {
    "urllib": _urllib,
    "requests": _requests,
    "httpx": _httpx,
}


def _curl(env: TLSEnv, *extra: str, env_vars: dict[str, str | None] | None = None) -> Outcome:
    store = env.store
    argv = ["curl", "-fsS", "--max-time", "10", *extra]
    argv += ["--cacert", str(store.bundle), "--capath", str(store.cert_dir), env.origin.url]
    return env.run(argv, env=env_vars)


def _pip(env: TLSEnv, env_vars: dict[str, str | None] | None = None) -> Outcome:
    target = env.root / f"pip-target-{len(env.outcomes)}"
    argv = [sys.executable, "-m", "pip", "install", "--no-deps", "--retries", "0"]
    argv += ["--timeout", "10", "--target", str(target), "--cert", str(env.store.bundle)]
    argv += ["--index-url", env.origin.index_url, "tlsenv-probe"]
    return env.run(argv, env=env_vars)


def _uv(env: TLSEnv, uv: str, env_vars: dict[str, str | None] | None = None) -> Outcome:
    argv = [uv, "pip", "install", "--python", env.venv(), "--index-url", env.origin.index_url]
    # UV_HTTP_RETRIES=0: recent uv retries a failed request three times with backoff (5 s).
    base: dict[str, str | None] = {"UV_NATIVE_TLS": "1", "UV_HTTP_RETRIES": "0"}
    return env.run([*argv, "tlsenv-probe"], env={**base, **(env_vars or {})})


def run_client(
    env: TLSEnv, client: str, uv_pinned: Any, env_vars: dict[str, str | None] | None = None
) -> Outcome:
    """Run one client against the origin in ``env``; ``env_vars`` override the scenario's."""
    if client in IN_PROCESS:
        return env.call(functools.partial(_in_process, IN_PROCESS[client], env), env=env_vars)
    if client == "curl":
        return _curl(env, env_vars=env_vars)
    if client == "pip":
        return _pip(env, env_vars)
    assert client == "uv"
    return _uv(env, uv_pinned("0.13.9"), env_vars)


CLIENTS = [*IN_PROCESS, "curl", "pip", "uv"]


def _authenticated(env: TLSEnv) -> dict[str, str | None]:
    assert env.proxy is not None
    url = env.proxy.authenticated_url
    return dict.fromkeys(("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"), url)


# -- the catalogue --------------------------------------------------------------------------


def test_proxy_group_is_the_designed_one() -> None:
    assert GROUPS["proxy"] == (
        "mitm-untrusted",
        "mitm-trusted",
        "proxy-tunnel",
        "proxy-refuses",
        "proxy-auth-required",
        *ENVIRONMENTS,  # the proxy environment (tests/test_proxyenv.py)
    )


@pytest.mark.tlsenv(proxy="mitm-untrusted")
def test_environment_points_every_client_at_the_proxy(tlsenv: TLSEnv) -> None:
    assert tlsenv.proxy is not None
    assert tlsenv.proxy.mode == "intercept"
    assert tlsenv.origin.host == TEST_DOMAIN
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        assert tlsenv.environ[name] == tlsenv.proxy.url
    assert tlsenv.environ["NO_PROXY"] == tlsenv.environ["no_proxy"] == ""
    assert "@" not in tlsenv.proxy.url


def test_no_proxy_variables_without_a_proxy(tlsenv: TLSEnv) -> None:
    # Negative twin: the healthy default has no proxy and addresses the origin as localhost.
    assert tlsenv.proxy is None
    assert tlsenv.origin.host == "localhost"
    assert not {k for k in tlsenv.environ if k.lower().endswith("_proxy")}


# -- verdicts per client --------------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.tlsenv(proxy="mitm-untrusted")
def test_mitm_untrusted_is_rejected_and_nothing_leaks(
    tlsenv: TLSEnv, client: str, uv_pinned: Any
) -> None:
    out = run_client(tlsenv, client, uv_pinned)
    out.assert_expected().assert_rejected()
    proxy = tlsenv.proxy
    assert proxy is not None
    assert proxy.leaked == b""
    assert not tlsenv.origin.received
    assert proxy.connects
    assert proxy.connects[0].target.startswith(f"{TEST_DOMAIN}:")
    refused = [h for h in proxy.handshakes if not h.completed]
    assert refused, proxy.handshakes
    assert all(h.sni == TEST_DOMAIN for h in proxy.handshakes)
    if client != "uv":
        # OpenSSL clients say why: the alert names the unknown CA.
        assert refused[0].alert == "tlsv1 alert unknown ca"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.tlsenv(proxy="mitm-trusted")
def test_mitm_trusted_is_ok_through_the_interceptor(
    tlsenv: TLSEnv, client: str, uv_pinned: Any
) -> None:
    out = run_client(tlsenv, client, uv_pinned)
    out.assert_expected().assert_ok()
    proxy = tlsenv.proxy
    assert proxy is not None
    assert proxy.connects[0].target.startswith(f"{TEST_DOMAIN}:")
    assert proxy.connects[0].status == 200
    assert proxy.handshakes[0].completed
    # The proxy decrypted the request (its CA is trusted: not a leak) and the origin got it.
    assert b"GET /" in b"".join(i.data for i in proxy.intercepted)
    assert proxy.leaked == b""
    assert tlsenv.origin.received


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.tlsenv(proxy="proxy-tunnel")
def test_proxy_tunnel_is_ok(tlsenv: TLSEnv, client: str, uv_pinned: Any) -> None:
    out = run_client(tlsenv, client, uv_pinned)
    out.assert_expected().assert_ok()
    assert tlsenv.proxy is not None
    assert tlsenv.proxy.connects[0].note == "tunnel"
    assert not tlsenv.proxy.handshakes  # a tunnel never sees the TLS inside


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.tlsenv(proxy="proxy-refuses")
def test_proxy_refuses_is_a_clean_failure(tlsenv: TLSEnv, client: str, uv_pinned: Any) -> None:
    out = run_client(tlsenv, client, uv_pinned)
    out.assert_expected().assert_verdict(Verdict.FAILED)
    assert "403" in out.reason or "Forbidden" in out.reason, out.reason
    assert tlsenv.proxy is not None
    assert [c.status for c in tlsenv.proxy.connects][:1] == [403]
    assert not tlsenv.origin.received


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.tlsenv(proxy="proxy-auth-required")
def test_proxy_auth_required(tlsenv: TLSEnv, client: str, uv_pinned: Any) -> None:
    out = run_client(tlsenv, client, uv_pinned)
    out.assert_expected().assert_verdict(Verdict.FAILED)
    assert "407" in out.reason or "Proxy Authentication Required" in out.reason, out.reason
    assert not tlsenv.origin.received
    # Twin: the same client with the credentials in the proxy URL gets through.
    with_creds = run_client(tlsenv, client, uv_pinned, _authenticated(tlsenv))
    with_creds.assert_ok()
    assert tlsenv.proxy is not None
    assert tlsenv.proxy.connects[-1].status == 200


# -- whose alert: the client's, or the proxy's own upstream connection ----------------------


def _curl_other_host(env: TLSEnv) -> Outcome:
    # other.test is not in the origin's certificate: the trusted interceptor forges a leaf for
    # it, the client accepts that, and the proxy's own verification of the origin fails.
    url = f"https://other.test:{env.origin.port}/"
    return env.run(["curl", "-fsS", "--max-time", "10", "--cacert", str(env.store.bundle), url])


@pytest.mark.tlsenv(proxy="mitm-trusted")
def test_proxy_refusing_the_origin_is_not_the_client_refusing(tlsenv: TLSEnv) -> None:
    out = _curl_other_host(tlsenv)
    out.assert_verdict(Verdict.FAILED)
    assert "the proxy's own upstream TLS connection" in out.reason, out.reason
    assert "verifying the origin as other.test" in out.reason, out.reason
    assert "Hostname mismatch" in out.reason, out.reason
    assert "refused the certificate" not in out.reason
    proxy = tlsenv.proxy
    assert proxy is not None
    assert proxy.handshakes[0].completed  # the client accepted the forged certificate
    # The origin did log a certificate alert - sent by the proxy, from its upstream port.
    (upstream,) = proxy.upstreams
    assert upstream.name == "other.test"
    assert "Hostname mismatch" in (upstream.error or "")
    (logged,) = [h.error for h in tlsenv.origin.handshakes if h.peer == upstream.local]
    assert "alert bad certificate" in (logged or "")


@pytest.mark.tlsenv(proxy="mitm-untrusted")
def test_client_refusing_the_interceptor_stays_rejected(tlsenv: TLSEnv) -> None:
    # Twin: the same request, but the client itself refuses the forged certificate.
    out = _curl_other_host(tlsenv)
    out.assert_rejected()
    proxy = tlsenv.proxy
    assert proxy is not None
    assert not proxy.handshakes[0].completed
    assert "unknown ca" in (proxy.handshakes[0].alert or "")
    assert all(u.abandoned for u in proxy.upstreams)


# -- the leak detector ----------------------------------------------------------------------


@pytest.mark.tlsenv(proxy="mitm-untrusted")
def test_leak_detector_positive_control_curl_insecure(tlsenv: TLSEnv) -> None:
    # curl -k accepts the forged certificate and sends its request to the interceptor:
    # LEAKED, although curl exits 0 and the origin (behind the proxy) answered.
    out = _curl(tlsenv, "-k")
    assert out.returncode == 0
    out.assert_verdict(Verdict.LEAKED)
    assert tlsenv.proxy is not None
    assert b"GET / HTTP/1.1" in tlsenv.proxy.leaked
    assert f"Host: {TEST_DOMAIN}".encode() in tlsenv.proxy.leaked
    with pytest.raises(AssertionError, match="expected graceful degradation, got LEAKED"):
        out.assert_graceful()


@pytest.mark.tlsenv(proxy="mitm-untrusted")
def test_leak_detector_positive_control_in_process(tlsenv: TLSEnv) -> None:
    def insecure() -> bytes:
        ctx = ssl._create_unverified_context()  # the point of the test
        with urllib.request.urlopen(tlsenv.origin.url, context=ctx, timeout=10) as r:
            data: bytes = r.read()
            return data

    out = tlsenv.call(insecure)
    out.assert_verdict(Verdict.LEAKED)
    assert out.value == b"tlsenv origin: ok\n"


@pytest.mark.tlsenv(proxy="mitm-trusted")
def test_trusted_interception_is_not_a_leak(tlsenv: TLSEnv) -> None:
    # Negative twin of the controls: the same bytes through a *trusted* interceptor.
    out = _curl(tlsenv, "-k")
    out.assert_ok()
    assert tlsenv.proxy is not None
    assert tlsenv.proxy.intercepted
    assert tlsenv.proxy.leaked == b""


def _handshake_only(env: TLSEnv) -> str | None:
    """CONNECT, accept the forged certificate, then close without sending a request."""
    assert env.proxy is not None
    with socket.create_connection(("127.0.0.1", env.proxy.port), timeout=10) as raw:
        target = f"{env.origin.host}:{env.origin.port}"
        raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        assert raw.recv(1024).startswith(b"HTTP/1.1 200")
        ctx = ssl._create_unverified_context()
        with ctx.wrap_socket(raw, server_hostname=env.origin.host) as tls:
            return tls.version()


@pytest.mark.tlsenv(proxy="mitm-untrusted")
def test_completed_handshake_without_request_is_not_a_leak(tlsenv: TLSEnv) -> None:
    out = tlsenv.call(lambda: _handshake_only(tlsenv))
    assert out.verdict is not Verdict.LEAKED
    assert out.verdict is Verdict.FAILED  # returned, origin received nothing
    assert tlsenv.proxy is not None
    assert tlsenv.proxy.handshakes[-1].completed
    assert tlsenv.proxy.leaked == b""


# -- proxy behaviour ------------------------------------------------------------------------


def _connect(port: int, target: str, headers: str = "") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{headers}\r\n".encode())
        return s.recv(1024)


@pytest.mark.tlsenv(proxy="proxy-tunnel")
def test_egress_guard_refuses_non_loopback_upstreams(tlsenv: TLSEnv) -> None:
    proxy = tlsenv.proxy
    assert proxy is not None
    for target in ("example.com:443", "10.0.0.1:443", "[2001:db8::1]:443", "localhost.evil:443"):
        assert _connect(proxy.port, target).startswith(b"HTTP/1.1 403"), target
    assert proxy.egress_refused == [
        "example.com:443",
        "10.0.0.1:443",
        "[2001:db8::1]:443",
        "localhost.evil:443",
    ]
    # Twin: a loopback target is tunnelled.
    assert _connect(proxy.port, f"127.0.0.1:{tlsenv.origin.port}").startswith(b"HTTP/1.1 200")


@pytest.mark.tlsenv(proxy="proxy-auth-required")
def test_auth_mode_checks_the_credentials(tlsenv: TLSEnv) -> None:
    import base64

    proxy = tlsenv.proxy
    assert proxy is not None
    target = f"{TEST_DOMAIN}:{tlsenv.origin.port}"
    bad = base64.b64encode(b"tlsenv:wrong").decode()
    good = base64.b64encode(":".join(proxy.credentials).encode()).decode()
    assert _connect(proxy.port, target).startswith(b"HTTP/1.1 407")
    assert b'Proxy-Authenticate: Basic realm="tlsenv"' in _connect(proxy.port, target)
    reply = _connect(proxy.port, target, f"Proxy-Authorization: Basic {bad}\r\n")
    assert reply.startswith(b"HTTP/1.1 407")
    reply = _connect(proxy.port, target, f"Proxy-Authorization: Basic {good}\r\n")
    assert reply.startswith(b"HTTP/1.1 200")
    assert proxy.authenticated_url == f"http://{':'.join(proxy.credentials)}@127.0.0.1:{proxy.port}"


@pytest.mark.tlsenv(proxy="mitm-trusted")
def test_forged_certificate_follows_sni_and_ip(tlsenv: TLSEnv, tlsenv_pki: Any) -> None:
    proxy = tlsenv.proxy
    assert proxy is not None
    ctx = ssl.create_default_context(cadata=tlsenv_pki.mitm.cert_pem.bytes().decode())

    def peer_names(target: str, server_hostname: str) -> Any:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as raw:
            raw.sendall(f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
            assert raw.recv(1024).startswith(b"HTTP/1.1 200")
            with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                return tls.getpeercert()["subjectAltName"]

    port = tlsenv.origin.port
    # SNI names another .test host than the CONNECT target: the forged leaf follows the SNI.
    assert peer_names(f"127.0.0.1:{port}", "other.tlsenv.test") == (("DNS", "other.tlsenv.test"),)
    # An IP literal is sent without SNI: the leaf names the CONNECT host.
    assert peer_names(f"127.0.0.1:{port}", "127.0.0.1") == (("IP Address", "127.0.0.1"),)
    assert proxy.settle()
    # (each connection records on its own thread: compare without order)
    assert {h.sni for h in proxy.handshakes} == {"other.tlsenv.test", None}


@pytest.mark.tlsenv(proxy="mitm-trusted")
def test_stop_ends_idle_and_silent_connections(tlsenv: TLSEnv) -> None:
    # A client that connects and says nothing, one that stops after CONNECT, one that stalls
    # mid-handshake: stop() must still join every thread promptly.
    proxy = tlsenv.proxy
    assert proxy is not None
    socks = [socket.create_connection(("127.0.0.1", proxy.port), timeout=5) for _ in range(3)]
    try:
        socks[1].sendall(f"CONNECT {TEST_DOMAIN}:{tlsenv.origin.port} HTTP/1.1\r\n\r\n".encode())
        socks[2].sendall(f"CONNECT {TEST_DOMAIN}:{tlsenv.origin.port} HTTP/1.1\r\n\r\n".encode())
        assert socks[2].recv(1024).startswith(b"HTTP/1.1 200")
        socks[2].sendall(b"\x16\x03\x01\x00\xff")  # a ClientHello header, then nothing
        proxy.stop()
    finally:
        for s in socks:
            s.close()
    assert not [t for t in proxy._threads if t.is_alive()]


# -- astral-sh/uv#5448, the corporate setup of the seed thread ------------------------------------

UV_5448 = {"0.2.28": Verdict.OK, "0.2.29": Verdict.CRASHED, "0.13.9": Verdict.OK}


@pytest.mark.tlsenv(scenario="uv-5448")
def test_uv_5448_store_is_laid_out_as_the_admin_did(tlsenv: TLSEnv, tlsenv_pki: Any) -> None:
    import os

    store = tlsenv.store
    assert store.anchors is not None
    assert store.cert_dir is not None
    assert store.bundle is not None
    anchor = store.anchors / "ROOT_CRT.crt"
    st = os.stat(anchor)
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_mode & 0o777) == (65533, 0o600)
    else:
        assert st.st_mode & 0o777 == 0
    entry = store.cert_dir / "ROOT_CRT.pem"
    assert os.readlink(entry) == "../../../usr/local/share/ca-certificates/ROOT_CRT.crt"
    mitm = tlsenv.pki.authorities["mitm"]
    assert os.readlink(store.cert_dir / f"{mitm.subject_hash}.0") == "ROOT_CRT.pem"
    assert mitm.cert_pem in store.bundle.read_bytes()  # the readable copy
    # The anchor really is unreadable to the client, and the bundle readable.
    assert "Permission denied" in tlsenv.run(["cat", str(anchor)]).stderr
    assert tlsenv.run(["cat", str(store.bundle)]).returncode == 0
    (applied,) = tlsenv.applied
    assert applied.paths[0] == anchor
    assert tlsenv.scenario.source == "https://github.com/astral-sh/uv/issues/5448"


@pytest.mark.slow
@pytest.mark.nonroot
@pytest.mark.tlsenv(scenario="uv-5448")
@pytest.mark.parametrize("version", list(UV_5448))
def test_uv_5448_through_the_proxy(tlsenv: TLSEnv, uv_pinned: Any, version: str) -> None:
    out = _uv(tlsenv, uv_pinned(version))
    out.assert_verdict(UV_5448[version])
    proxy = tlsenv.proxy
    assert proxy is not None
    if UV_5448[version] is Verdict.OK:
        out.assert_expected()
        # Through the interceptor: it forged the leaf, uv accepted it (the CA is in the
        # readable bundle) and the wheel came from the origin behind it.
        assert proxy.connects[0].target.startswith(f"{TEST_DOMAIN}:")
        assert proxy.handshakes[0].completed
        assert any(r.path.endswith(".whl") for r in tlsenv.origin.received)
        assert proxy.leaked == b""
    else:
        # 0.2.29 panics building its client, before any connection: the seed's exact words.
        assert "panicked at crates/uv-client/src/base_client.rs" in out.stderr
        assert "PermissionDenied" in out.stderr
        assert not proxy.connects
        with pytest.raises(AssertionError, match=r"expected \{OK\}, got CRASHED"):
            out.assert_expected()


@pytest.mark.slow
@pytest.mark.tlsenv(proxy="mitm-trusted")
@pytest.mark.parametrize("version", list(UV_5448))
def test_uv_5448_control_readable_proxy_ca(tlsenv: TLSEnv, uv_pinned: Any, version: str) -> None:
    # Twin: the same proxy with its CA installed readably: every version is OK, so 0.2.29's
    # crash above is the unreadable anchor's doing.
    _uv(tlsenv, uv_pinned(version)).assert_ok()


@pytest.mark.parametrize("client", ["urllib", "curl"])
@pytest.mark.tlsenv(scenario="uv-5448")
def test_uv_5448_openssl_clients_are_ok(tlsenv: TLSEnv, client: str, uv_pinned: Any) -> None:
    # OpenSSL finds the proxy's CA in the bundle and never needs the unreadable anchor.
    run_client(tlsenv, client, uv_pinned).assert_expected().assert_ok()


@pytest.mark.slow
@pytest.mark.tlsenv(proxy="mitm-untrusted")
@pytest.mark.parametrize("version", list(UV_5448))
def test_uv_refuses_an_untrusted_interceptor(tlsenv: TLSEnv, uv_pinned: Any, version: str) -> None:
    # The seed thread also reported uv accepting the Zscaler certificate without its CA. With a
    # hermetic store (UV_NATIVE_TLS=1, SSL_CERT_FILE/DIR without the proxy's CA) no version
    # does: all refuse with UnknownIssuer and send nothing. 0.2.x just closes; 0.13.9 sends
    # the unknown_ca alert.
    out = _uv(tlsenv, uv_pinned(version))
    out.assert_rejected()
    assert "UnknownIssuer" in out.reason
    proxy = tlsenv.proxy
    assert proxy is not None
    assert proxy.leaked == b""
    assert not proxy.handshakes[0].completed
    if version == "0.13.9":
        assert proxy.handshakes[0].alert == "tlsv1 alert unknown ca"


# -- marker keywords --------------------------------------------------------------------------


def test_proxy_and_server_keywords_take_group_names_only() -> None:
    from pytest_tlsenv.errors import ConfigError
    from pytest_tlsenv.scenarios import resolve

    with pytest.raises(ConfigError, match=r"proxy takes a name from the proxy group.*mitm-trusted"):
        resolve(proxy="zscaler")
    with pytest.raises(ConfigError, match=r"server takes a name from the server group.*expired"):
        resolve(server="mitm-trusted")
    spec = resolve(faults=["unreadable-file"], proxy="mitm-untrusted")
    assert spec.scenario.name == "mitm-untrusted+unreadable-file"
    assert spec.scenario.expected == {Verdict.REJECTED}
    assert resolve("uv-5448").proxy == "mitm-trusted"


# -- hermetic proxy variables -------------------------------------------------------------------

OUTER_PROXY = {
    "HTTPS_PROXY": "http://127.0.0.1:9",  # discard port: a client that used it would fail
    "https_proxy": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "*",
}


def test_outer_proxy_variables_never_reach_a_client(
    tlsenv: TLSEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in OUTER_PROXY.items():
        monkeypatch.setenv(name, value)
    tlsenv.call(lambda: _urllib(tlsenv)).assert_ok()
    out = tlsenv.run(["env"])
    assert "127.0.0.1:9" not in out.stdout
    assert "PROXY=" not in out.stdout.upper()


@pytest.mark.tlsenv(proxy="proxy-tunnel")
def test_scenario_proxy_replaces_the_outer_one(
    tlsenv: TLSEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in OUTER_PROXY.items():
        monkeypatch.setenv(name, value)
    assert tlsenv.proxy is not None
    tlsenv.call(lambda: _urllib(tlsenv)).assert_ok()
    _curl(tlsenv).assert_ok()
    assert len(tlsenv.proxy.connects) == 2
    lines = set(tlsenv.run(["env"]).stdout.splitlines())
    assert f"https_proxy={tlsenv.proxy.url}" in lines
    assert "NO_PROXY=" in lines
    assert not any("127.0.0.1:9" in line for line in lines)
