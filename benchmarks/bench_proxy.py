"""Proxy figures against the budgets in the README's benchmark table.

Measures (medians): the proxy's start+ready time, a cold start of origin + proxy (target
<= 5 ms; the session PKI is warm, as in a test session), and the latency of one HTTPS GET on a
fresh connection (what a CLI client does), direct to the origin, through the tunnelling proxy
and through the intercepting proxy (target: interception adds <= 1.5 ms; anchors: loopback TLS
1.3 GET 0.8 ms, a Python interceptor with cached contexts +1.2 ms, mitmdump 0.34 s to listen
and +4.7 ms per request). The anchor is measured in the same run, with the same client:
the benchmark installs mitmproxy into a venv of its own in the pytest-tlsenv
cache, never into this interpreter; ``--mitmdump PATH`` uses another one instead.

    python benchmarks/bench_proxy.py [--quick] [--mitmdump PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_tlsenv.pki import PKI, TEST_DOMAIN
from pytest_tlsenv.proxy import Proxy
from pytest_tlsenv.servers import Origin

ANCHORS = {
    "direct GET": 0.8,
    "interception added": 1.2,
    "mitmdump added": 4.7,
    "mitmdump start": 340.0,
}
TARGETS = {"cold start origin+proxy": 5.0, "interception added": 1.5}


def median_ms(fn: Callable[[], object], n: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def get(ctx: ssl.SSLContext, port: int, host: str, proxy_port: int | None = None) -> None:
    """One GET on a fresh TCP+TLS connection (through CONNECT when ``proxy_port``)."""
    raw = socket.create_connection(("127.0.0.1", proxy_port or port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        if proxy_port:
            raw.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = raw.recv(4096)
                if not chunk:
                    raise RuntimeError("proxy closed")
                head += chunk
            if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
                raise RuntimeError(head[:40])
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            body = b""
            while chunk := tls.recv(65536):
                body += chunk
                if body.endswith(b"tlsenv origin: ok\n"):
                    break
            if not body.endswith(b"tlsenv origin: ok\n"):
                raise RuntimeError(body[:80])
    finally:
        raw.close()


MITMPROXY = "mitmproxy==11.0.2"


def install_mitmdump() -> tuple[str | None, str]:
    """mitmdump from a venv in the cache, installed on first use: (path or None, why not)."""
    from filelock import FileLock

    from pytest_tlsenv.clients import cache_dir

    home = cache_dir() / "bench" / MITMPROXY.replace("==", "-")
    exe, done = home / "bin" / "mitmdump", home / ".installed"
    with FileLock(str(home) + ".lock", timeout=900):
        if done.exists():
            return str(exe), ""
        # Built in place (a venv is not relocatable); `done` is written last, so an install
        # killed half-way is rebuilt from scratch next time.
        shutil.rmtree(home, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
        # This machine's pip.conf and PIP_* variables add certificates and local wheel dirs:
        # neutralised. Wheels where they exist (pyperclip ships an sdist only).
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
        proc = subprocess.run(
            [str(home / "bin" / "python"), "-m", "pip", "install", "-q",
             "--disable-pip-version-check", "--prefer-binary", MITMPROXY],
            capture_output=True, text=True, env=env, check=False, timeout=900,
        )  # fmt: skip
        if proc.returncode != 0 or not exe.exists():
            shutil.rmtree(home, ignore_errors=True)
            return None, f"pip install {MITMPROXY} failed: {proc.stderr.strip()[-300:]}"
        done.touch()
        return str(exe), ""


def mitmdump_figures(
    exe: str, pki: PKI, workdir: Path, origin: Origin, n: int
) -> tuple[float, float] | None:
    """(ms to listen, median ms per GET) for mitmdump as a CONNECT proxy, or None."""
    if not os.access(exe, os.X_OK):
        return None
    confdir = workdir / "mitm-conf"
    confdir.mkdir()
    mitm = pki.authorities["mitm"]
    # mitmproxy's CA file: key + certificate in one PEM.
    from cryptography.hazmat.primitives import serialization

    key = mitm.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (confdir / "mitmproxy-ca.pem").write_bytes(key + mitm.cert_pem)
    os.chmod(confdir / "mitmproxy-ca.pem", 0o600)
    upstream_ca = workdir / "upstream-ca.pem"
    upstream_ca.write_bytes(pki.authorities["trusted"].cert_pem)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [
        exe,
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(port),
        "--set",
        f"confdir={confdir}",
        "--set",
        f"ssl_verify_upstream_trusted_ca={upstream_ca}",
        "--set",
        "connection_strategy=lazy",
        "-q",
    ]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir)}
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError as e:  # e.g. its interpreter lives under a home this user cannot enter
        print(f"  mitmdump cannot run here: {e}")
        return None
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    print(f"  mitmdump did not start: {err[-300:]}")
                    return None
                time.sleep(0.002)
        start_ms = (time.perf_counter() - t0) * 1000
        ctx = ssl.create_default_context(cadata=mitm.cert_pem.decode())
        try:
            # mitmdump resolves names itself (DNS): give it localhost, which the origin's
            # leaf and the mitm CA's name constraints both cover.
            per = median_ms(lambda: get(ctx, origin.port, "localhost", port), n)
        except (OSError, RuntimeError) as e:
            print(f"  mitmdump request failed: {e}")
            return None
        return start_ms, per
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (a few seconds)")
    parser.add_argument("--mitmdump", default=None, help="a mitmdump to use (default: cached)")
    args = parser.parse_args()
    n = 40 if args.quick else 300
    why_not = ""
    if args.mitmdump is None:
        args.mitmdump, why_not = install_mitmdump()
    workdir = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    try:
        pki = PKI(workdir / "pki")
        trusted_ctx = pki.client_context("trusted")
        mitm_ctx = ssl.create_default_context(cadata=pki.authorities["mitm"].cert_pem.decode())

        def make_proxy(mode: str) -> Proxy:
            return Proxy(
                mode,
                forge=lambda host: pki.forged_context("mitm", host),
                upstream_context=trusted_ctx,
                ca_trusted=True,
            )

        # Warm the session caches (leaf contexts, forged context), as a test session would.
        with Origin.variant(pki, "good", host=TEST_DOMAIN) as origin, make_proxy("intercept") as p:
            get(mitm_ctx, origin.port, TEST_DOMAIN, p.port)

        def proxy_start() -> float:
            proxy = make_proxy("intercept")
            t = time.perf_counter()
            proxy.start()  # listening and accepting when it returns
            took = (time.perf_counter() - t) * 1000
            proxy.stop()
            return took

        def cold_start() -> None:
            origin = Origin.variant(pki, "good", host=TEST_DOMAIN).start()
            proxy = make_proxy("intercept").start()
            proxy.stop()
            origin.stop()

        results: dict[str, float] = {}
        for _ in range(3):
            proxy_start()
        results["proxy start"] = statistics.median(proxy_start() for _ in range(n))
        results["cold start origin+proxy"] = median_ms(cold_start, n)

        with Origin.variant(pki, "good", host=TEST_DOMAIN) as origin:
            with make_proxy("tunnel") as tunnel, make_proxy("intercept") as intercept:
                direct = median_ms(lambda: get(trusted_ctx, origin.port, TEST_DOMAIN), n)
                tunnelled = median_ms(
                    lambda: get(trusted_ctx, origin.port, TEST_DOMAIN, tunnel.port), n
                )
                intercepted = median_ms(
                    lambda: get(mitm_ctx, origin.port, TEST_DOMAIN, intercept.port), n
                )
            results["direct GET"] = direct
            results["tunnelled GET"] = tunnelled
            results["intercepted GET"] = intercepted
            results["tunnel added"] = tunnelled - direct
            results["interception added"] = intercepted - direct
            mitm = None
            if args.mitmdump is not None:
                mitm = mitmdump_figures(args.mitmdump, pki, workdir, origin, max(20, n // 5))
        if mitm is not None:
            results["mitmdump start"] = mitm[0]
            results["mitmdump GET"] = mitm[1]
            results["mitmdump added"] = mitm[1] - direct

        print(f"bench_proxy ({'quick' if args.quick else 'full'}: {n} samples, medians)")
        for name, value in results.items():
            line = f"  {name:26} {value:8.3f} ms"
            if name in TARGETS:
                verdict = "ok" if value <= TARGETS[name] else "OVER"
                line += f"   target <= {TARGETS[name]} ms: {verdict}"
            if name in ANCHORS:
                line += f"   anchor {ANCHORS[name]} ms (x{value / ANCHORS[name]:.2f})"
            print(line)
        if mitm is None:
            print(f"  mitmdump: not measured ({why_not or args.mitmdump + ' did not work'})")
        else:
            start_ratio = results["mitmdump start"] / results["proxy start"]
            added_ratio = results["mitmdump added"] / max(results["interception added"], 1e-3)
            print(
                f"  ratio mitmdump/ours: start x{start_ratio:.0f}, "
                f"added per request x{added_ratio:.1f}"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
