#!/usr/bin/env python3
"""The origin and proxy of a pytest-tlsenv reproduction bundle, on python3's standard library.

This file is copied into every bundle as ``server.py``: it must run where neither pytest nor
cryptography nor pytest-tlsenv is installed, so it imports nothing outside the standard
library, and every certificate it needs was made when the bundle was exported.

    python3 server.py --bundle DIR --state STATE [--max-seconds 900]

It reads ``DIR/scenario.json`` (its ``servers`` section) and serves:

* the origin: HTTPS on 127.0.0.1 and ::1 (same port, when ::1 binds) with the bundle's
  throwaway leaf; ``/``, a PEP 503 index ``/simple/`` listing the wheels of ``DIR/index/``,
  and the wheels themselves;
* the proxy, when the scenario has one: an HTTP CONNECT proxy on 127.0.0.1 that ``tunnel``s,
  ``intercept``s with a certificate forged at export time for the origin's names (signed by
  the bundle's interception CA), ``refuse``s (403) or asks for credentials (``auth``, 407).
  Upstreams other than loopback are refused.

Once listening it writes ``STATE/ports.sh`` (``ORIGIN_PORT=...`` and ``PROXY_PORT=...``, for
``.`` in sh) and logs one JSON line per event: ``STATE/origin.log`` (each request the origin
got), ``STATE/proxy.log`` (each proxy request) and ``STATE/leaked.log`` (application bytes
received through a forged certificate). It stops on SIGTERM/SIGINT or after --max-seconds.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import ipaddress
import json
import os
import select
import signal
import socket
import ssl
import stat
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

IO_TIMEOUT = 10.0
MAX_HEADER = 64 * 1024


class Logbook:
    """Append-only JSON-lines logs under the state directory (one lock for all)."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self._lock = threading.Lock()

    def write(self, name: str, **record: Any) -> None:
        record["time"] = round(time.time(), 3)
        line = json.dumps(record, sort_keys=True) + "\n"
        with self._lock, open(self.state / name, "a", encoding="utf-8") as f:
            f.write(line)


def bind_loopback(port: int = 0, *, ipv6: bool = True) -> list[socket.socket]:
    """Listening sockets on 127.0.0.1 and, when possible, ::1 on the same port."""
    for _ in range(20):
        v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        v4.bind(("127.0.0.1", port))
        chosen = v4.getsockname()[1]
        socks = [v4]
        if ipv6:
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            try:
                v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                v6.bind(("::1", chosen))
            except OSError:
                v6.close()
                if port == 0 and _ipv6_binds():
                    v4.close()
                    continue  # ::1 exists but that port is taken there: try another
            else:
                socks.append(v6)
        for s in socks:
            s.listen(128)
        return socks
    raise OSError("could not bind 127.0.0.1 and ::1 on a common port in 20 tries")


def _ipv6_binds() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def read_head(sock: socket.socket, buf: bytes = b"") -> tuple[bytes, bytes] | None:
    """Read up to the end of an HTTP head; return (head, rest) or None if the peer left."""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = sock.recv(65536)
        except (OSError, ssl.SSLError):
            return None
        if not chunk:
            return None
        buf += chunk
        if len(buf) > MAX_HEADER:
            return None
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise ValueError(f"bad request line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], headers


def response(status: int, reason: str, ctype: str, body: bytes, *, close: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: {'close' if close else 'keep-alive'}\r\n\r\n"
    )
    return head.encode() + body


class BundleError(Exception):
    """scenario.json names a file this server will not use (outside the bundle...)."""


def _inside(bundle: Path, rel: object) -> Path:
    """``bundle/rel``, checked: a relative path without ``..``, no symlink on the way, inside
    the bundle once resolved. scenario.json is data: run as root, this server must not read
    (and serve) a file the bundle's author could not, nor follow a link out of the bundle."""
    if not isinstance(rel, str) or not rel or "\0" in rel:
        raise BundleError(f"not a path inside the bundle: {rel!r}")
    parts = Path(rel).parts
    if Path(rel).is_absolute() or ".." in parts:
        raise BundleError(f"{rel!r} is not a relative path inside the bundle")
    root = bundle.resolve()
    path = root
    for part in parts:
        path = path / part
        if os.path.islink(path):
            raise BundleError(f"{rel!r}: {part!r} is a symlink; the bundle's files are not")
    if os.path.commonpath([root, path.resolve()]) != str(root):
        raise BundleError(f"{rel!r} resolves outside the bundle")
    return path


def read_bundle_file(bundle: Path, rel: object) -> bytes:
    """The bytes of a regular file inside the bundle (see :func:`_inside`)."""
    path = _inside(bundle, rel)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise BundleError(f"cannot open {rel!r} in the bundle: {e.strerror}") from None
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise BundleError(f"{rel!r} is not a regular file")
        return f.read()


def bundle_path(bundle: Path, rel: object) -> str:
    """A regular file inside the bundle, checked, for APIs that take a path (ssl)."""
    read_bundle_file(bundle, rel)
    return str(_inside(bundle, rel))


def server_context(cert: Path | str, key: Path | str) -> ssl.SSLContext:
    """A server context presenting ``cert``; a weak key (the ``weak-key`` scenario) is
    allowed: judging it is the client's job."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.load_cert_chain(cert, key)
    return ctx


class Origin:
    """The HTTPS origin: ``/``, the simple index and the wheels of the bundle's index dir."""

    def __init__(self, bundle: Path, conf: dict[str, Any], log: Logbook) -> None:
        self.context = server_context(
            bundle_path(bundle, conf["cert"]), bundle_path(bundle, conf["key"])
        )
        self.project = str(conf.get("project", "tlsenv-probe"))
        self.log = log
        self.wheels = self._wheels(bundle, conf["index"])

    def _wheels(self, bundle: Path, index: object) -> dict[str, bytes]:
        """The regular files of the bundle's index directory; anything else (a path out of
        the bundle, a symlink, a device) is logged and not served."""
        wheels: dict[str, bytes] = {}
        try:
            directory = _inside(bundle, index)
            if not directory.is_dir():
                raise BundleError(f"index {index!r} is not a directory")
            names = sorted(os.listdir(directory))
        except (BundleError, OSError) as e:
            self.log.write("errors.log", peer=None, error=f"index not served: {e}")
            return wheels
        for name in names:
            try:
                wheels[name] = read_bundle_file(bundle, f"{index}/{name}")
            except BundleError as e:
                self.log.write("errors.log", peer=None, error=f"not served: {e}")
        return wheels

    def respond(self, path: str) -> tuple[int, str, bytes]:
        path = path.split("?", 1)[0]
        if path == "/":
            return 200, "text/plain", b"tlsenv origin: ok\n"
        if path == "/simple/":
            body = f'<!DOCTYPE html><html><body><a href="{self.project}/">{self.project}</a>'
            return 200, "text/html", (body + "</body></html>\n").encode()
        if path.rstrip("/") == f"/simple/{self.project}":
            links = "".join(
                f'<a href="/files/{name}#sha256={hashlib.sha256(data).hexdigest()}">{name}</a>'
                for name, data in self.wheels.items()
            )
            return 200, "text/html", f"<!DOCTYPE html><html><body>{links}</body></html>\n".encode()
        name = path.removeprefix("/files/")
        if path.startswith("/files/") and name in self.wheels:
            return 200, "application/octet-stream", self.wheels[name]
        return 404, "text/plain", b"not found\n"

    def serve(self, raw: socket.socket, peer: str) -> None:
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.log.write("handshakes.log", server="origin", peer=peer, error=str(e))
            raw.close()
            return
        with tls:
            self.log.write("handshakes.log", server="origin", peer=peer, error=None)
            self.http(tls, peer)

    def http(self, tls: ssl.SSLSocket, peer: str) -> None:
        rest = b""
        while True:  # keep-alive: serve requests until the client closes
            got = read_head(tls, rest)
            if got is None:
                return
            head, rest = got
            try:
                method, path, headers = parse_head(head)
            except ValueError:
                tls.sendall(response(400, "Bad Request", "text/plain", b"bad\n", close=True))
                return
            length = int(headers.get("content-length", "0") or 0)
            while len(rest) < length:
                chunk = tls.recv(65536)
                if not chunk:
                    return
                rest += chunk
            rest = rest[length:]
            self.log.write("origin.log", method=method, path=path, peer=peer)
            status, ctype, body = self.respond(path)
            close = headers.get("connection", "").lower() == "close"
            reason = {200: "OK", 404: "Not Found"}.get(status, "OK")
            out = response(status, reason, ctype, body, close=close)
            with contextlib.suppress(OSError):
                tls.sendall(out[: len(out) - len(body)] if method == "HEAD" else out)
            if close:
                return


def upstream_address(host: str) -> str | None:
    """The loopback address to dial for ``host`` (localhost and ``.test`` names go to
    127.0.0.1), or None: this proxy never reaches beyond loopback."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".test"):
        return "127.0.0.1"
    try:
        addr = ipaddress.ip_address(name)
    except ValueError:
        return None
    return str(addr) if addr.is_loopback else None


def relay(a: socket.socket, b: socket.socket, on_a: Callable[[bytes], None] | None = None) -> None:
    """Copy bytes both ways until one side closes (``on_a`` sees what ``a`` sends)."""
    socks = [a, b]
    while True:
        ready, _, _ = select.select(socks, [], [], IO_TIMEOUT)
        if not ready:
            return
        for s in ready:
            try:
                data = s.recv(65536)
            except (OSError, ssl.SSLError):
                return
            if not data:
                return
            if s is a and on_a is not None:
                on_a(data)
            (b if s is a else a).sendall(data)
            # TLS sockets may hold decrypted bytes that select() cannot see.
            while isinstance(s, ssl.SSLSocket) and s.pending():
                more = s.recv(65536)
                if s is a and on_a is not None:
                    on_a(more)
                (b if s is a else a).sendall(more)


class Proxy:
    """A CONNECT proxy: tunnel, intercept (forged leaf), refuse (403) or auth (407)."""

    def __init__(self, bundle: Path, conf: dict[str, Any], log: Logbook) -> None:
        self.mode = str(conf["mode"])
        self.credentials = conf.get("credentials")
        self.forward = bool(conf.get("forward", False))
        self.log = log
        self.forged: ssl.SSLContext | None = None
        self.upstream: ssl.SSLContext | None = None
        if self.mode == "intercept":
            self.forged = server_context(
                bundle_path(bundle, conf["cert"]), bundle_path(bundle, conf["key"])
            )
            self.upstream = ssl.create_default_context(
                cafile=bundle_path(bundle, conf["upstream_ca"])
            )

    def serve(self, conn: socket.socket, peer: str) -> None:
        with conn:
            got = read_head(conn)
            if got is None:
                return
            head, rest = got
            try:
                method, target, headers = parse_head(head)
            except ValueError:
                conn.sendall(response(400, "Bad Request", "text/plain", b"bad\n", close=True))
                return
            host, _, port_text = target.rpartition(":")
            self.log.write("proxy.log", method=method, target=target, peer=peer)
            if method != "CONNECT" or not port_text.isdigit():
                body = b"this proxy only does CONNECT\n"
                conn.sendall(response(405, "Method Not Allowed", "text/plain", body, close=True))
                return
            upstream_addr = upstream_address(host)
            if upstream_addr is None:
                body = b"loopback upstreams only\n"
                conn.sendall(response(403, "Forbidden", "text/plain", body, close=True))
                return
            if self.mode == "refuse":
                conn.sendall(response(403, "Forbidden", "text/plain", b"refused\n", close=True))
                return
            if self.mode == "auth" and not self._authorised(headers):
                conn.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="tlsenv"\r\n'
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                return
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if self.mode == "intercept":
                self._intercept(conn, rest, host, (upstream_addr, int(port_text)), peer)
            else:
                with socket.create_connection((upstream_addr, int(port_text)), IO_TIMEOUT) as up:
                    if rest:
                        up.sendall(rest)
                    relay(conn, up)

    def _authorised(self, headers: dict[str, str]) -> bool:
        if not self.credentials:
            return False
        scheme, _, value = headers.get("proxy-authorization", "").partition(" ")
        expected = base64.b64encode(str(self.credentials).encode()).decode()
        return scheme.lower() == "basic" and value.strip() == expected

    def _intercept(
        self, conn: socket.socket, rest: bytes, host: str, addr: tuple[str, int], peer: str
    ) -> None:
        assert self.forged is not None
        assert self.upstream is not None
        try:
            tls = self.forged.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as e:
            # The client refused the forged certificate: the fail-closed answer.
            self.log.write("handshakes.log", server="proxy", peer=peer, error=str(e))
            return
        with tls:
            self.log.write("handshakes.log", server="proxy", peer=peer, error=None)

            def leaked(data: bytes) -> None:
                self.log.write("leaked.log", peer=peer, bytes=len(data), head=data[:80].hex())

            if not self.forward:
                first = b""
                with contextlib.suppress(OSError, ssl.SSLError):
                    first = tls.recv(65536)
                if first:
                    leaked(first)
                    body = b"intercepted\n"
                    tls.sendall(response(502, "Bad Gateway", "text/plain", body, close=True))
                return
            name = host.strip("[]")
            with socket.create_connection(addr, IO_TIMEOUT) as raw_up:
                up = self.upstream.wrap_socket(raw_up, server_hostname=name)
                with up:
                    relay(tls, up, leaked)


class Server:
    """Accept loops for the origin (and proxy), one thread per connection, bounded life."""

    def __init__(self, bundle: Path, state: Path) -> None:
        scenario = json.loads(read_bundle_file(bundle, "scenario.json").decode("utf-8"))
        conf = scenario["servers"]
        self.log = Logbook(state)
        self.state = state
        self.origin = Origin(bundle, conf["origin"], self.log)
        self.proxy = Proxy(bundle, conf["proxy"], self.log) if conf.get("proxy") else None
        self.listeners: dict[socket.socket, Callable[[socket.socket, str], None]] = {}
        self.stopping = threading.Event()

    def start(self) -> dict[str, int]:
        ports: dict[str, int] = {}
        origin_socks = bind_loopback()
        ports["ORIGIN_PORT"] = origin_socks[0].getsockname()[1]
        for s in origin_socks:
            self.listeners[s] = self.origin.serve
        if self.proxy is not None:
            proxy_socks = bind_loopback(ipv6=False)
            ports["PROXY_PORT"] = proxy_socks[0].getsockname()[1]
            for s in proxy_socks:
                self.listeners[s] = self.proxy.serve
        # Written last and renamed into place: a reader never sees half a file.
        tmp = self.state / "ports.sh.tmp"
        tmp.write_text("".join(f"{k}={v}\n" for k, v in ports.items()), encoding="utf-8")
        os.replace(tmp, self.state / "ports.sh")
        return ports

    def loop(self, max_seconds: float) -> None:
        deadline = time.monotonic() + max_seconds
        try:
            while not self.stopping.is_set() and time.monotonic() < deadline:
                ready, _, _ = select.select(list(self.listeners), [], [], 0.2)
                for lsock in ready:
                    try:
                        conn, addr = lsock.accept()
                    except OSError:
                        continue
                    conn.settimeout(IO_TIMEOUT)
                    handler = self.listeners[lsock]
                    peer = f"{addr[0]}:{addr[1]}"
                    threading.Thread(
                        target=self._guard, args=(handler, conn, peer), daemon=True
                    ).start()
        finally:
            for s in self.listeners:
                s.close()

    def _guard(
        self, handler: Callable[[socket.socket, str], None], conn: socket.socket, peer: str
    ) -> None:
        try:
            handler(conn, peer)
        except Exception as e:  # noqa: BLE001 - a handler error is logged, never fatal
            self.log.write("errors.log", peer=peer, error=f"{type(e).__name__}: {e}")
        finally:
            conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="origin and proxy of a pytest-tlsenv bundle")
    parser.add_argument("--bundle", default=os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--state", required=True, help="directory for ports.sh and the logs")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args(argv)
    state = Path(args.state)
    state.mkdir(parents=True, exist_ok=True)
    try:
        server = Server(Path(args.bundle), state)
    except BundleError as e:
        print(f"server.py: {e}", file=sys.stderr)
        return 2

    def stop(_signum: int, _frame: object) -> None:
        server.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ports = server.start()
    print(f"origin: https://localhost:{ports['ORIGIN_PORT']}/", flush=True)
    if "PROXY_PORT" in ports:
        print(f"proxy: http://127.0.0.1:{ports['PROXY_PORT']}", flush=True)
    server.loop(args.max_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
