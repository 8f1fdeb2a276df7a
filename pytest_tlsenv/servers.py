"""The origin: an HTTPS server on loopback that records what it is asked.

It binds 127.0.0.1 and ::1 on one port (port 0, read back), signals readiness before
:meth:`Origin.start` returns, serves each connection on its own thread with bounded waits,
sends close_notify, and :meth:`Origin.stop` closes every socket, joins every thread and raises
if one survived or if a handler thread failed (urllib3's dummyserver and pytest-httpserver's
``check_assertions`` are the models); that lifecycle is :mod:`pytest_tlsenv.loopback`'s.

Besides ``/`` it serves a PEP 503 simple index with one wheel, ``tlsenv-probe``, built at run
time (nothing binary is committed), so ``pip install`` and ``uv pip install`` work offline
against it.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import socket
import ssl
import tarfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import ClassVar

from .errors import ConfigError
from .loopback import (
    IO_TIMEOUT,
    Job,
    LoopbackServer,
    ipv6_loopback_available,
    run_handshakes,
    sweep,
    wrap_socket,
)
from .pki import PKI, SERVER_VARIANTS

__all__ = [
    "BACKEND_PROJECT",
    "Deadlines",
    "Origin",
    "Request",
    "backend_wheel",
    "handshake_within",
    "ipv6_loopback_available",
    "probe_sdist",
    "probe_wheel",
    "sweep",
    "wrap_socket",
]

PROBE_PROJECT = "tlsenv-probe"
PROBE_VERSION = "0.1"
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


def _zip_wheel(dist: str, files: dict[str, bytes]) -> bytes:
    """A wheel of ``files`` (paths -> bytes; its RECORD is added), the same bytes every time."""
    record_lines = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record_lines.append(f"{name},sha256={digest},{len(data)}")
    record_lines.append(f"{dist}.dist-info/RECORD,,")
    files = {**files, f"{dist}.dist-info/RECORD": ("\n".join(record_lines) + "\n").encode()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _metadata(project: str, version: str, summary: str) -> bytes:
    return (
        f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\nSummary: {summary}\n".encode()
    )


_WHEEL_FILE = (
    b"Wheel-Version: 1.0\nGenerator: pytest-tlsenv\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
)
_PROBE_INIT = b'"""Installed from a pytest-tlsenv origin."""\nOK = True\n'
_PROBE_SUMMARY = "probe package served by pytest-tlsenv's loopback origin"


@cache
def probe_wheel() -> tuple[str, bytes]:
    """The ``tlsenv-probe`` wheel (file name, bytes): a pure-Python package built in memory."""
    dist = f"tlsenv_probe-{PROBE_VERSION}"
    files = {
        "tlsenv_probe/__init__.py": _PROBE_INIT,
        f"{dist}.dist-info/METADATA": _metadata(PROBE_PROJECT, PROBE_VERSION, _PROBE_SUMMARY),
        f"{dist}.dist-info/WHEEL": _WHEEL_FILE,
    }
    return f"{dist}-py3-none-any.whl", _zip_wheel(dist, files)


#: The build backend the probe's sdist names: a package on the same index, so building the
#: sdist (``--no-binary``) fetches a build dependency the way the scenario lets the client
#: fetch anything: its trust settings, its proxy.
BACKEND_PROJECT = "tlsenv-backend"

# The backend: PEP 517's two required hooks, standard library only. It builds the probe's
# wheel from the unpacked sdist (PKG-INFO and the package's directory).
_BACKEND_SOURCE = b"""# PEP 517 build backend served by pytest-tlsenv's loopback origin.
import base64
import hashlib
import os
import zipfile


def _field(meta, key):
    for line in meta.splitlines():
        if line.startswith(key + ": "):
            return line[len(key) + 2 :].strip()
    raise ValueError("PKG-INFO has no " + key)


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open("PKG-INFO", encoding="utf-8") as f:
        meta = f.read()
    name = _field(meta, "Name").replace("-", "_")
    dist = name + "-" + _field(meta, "Version")
    files = {}
    for root, _dirs, names in os.walk(name):
        for n in sorted(names):
            path = os.path.join(root, n)
            with open(path, "rb") as f:
                files[path.replace(os.sep, "/")] = f.read()
    files[dist + ".dist-info/METADATA"] = meta.encode()
    files[dist + ".dist-info/WHEEL"] = (
        b"Wheel-Version: 1.0\\nGenerator: tlsenv-backend\\nRoot-Is-Purelib: true\\n"
        b"Tag: py3-none-any\\n"
    )
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        record.append(path + ",sha256=" + digest.decode() + "," + str(len(data)))
    record.append(dist + ".dist-info/RECORD,,")
    files[dist + ".dist-info/RECORD"] = ("\\n".join(record) + "\\n").encode()
    wheel = dist + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel
"""


@cache
def backend_wheel() -> tuple[str, bytes]:
    """The ``tlsenv-backend`` wheel (file name, bytes): the build backend of the probe's sdist."""
    dist = f"tlsenv_backend-{PROBE_VERSION}"
    summary = "build backend of the tlsenv-probe sdist"
    files = {
        "tlsenv_backend.py": _BACKEND_SOURCE,
        f"{dist}.dist-info/METADATA": _metadata(BACKEND_PROJECT, PROBE_VERSION, summary),
        f"{dist}.dist-info/WHEEL": _WHEEL_FILE,
    }
    return f"{dist}-py3-none-any.whl", _zip_wheel(dist, files)


@cache
def probe_sdist() -> tuple[str, bytes]:
    """The ``tlsenv-probe`` sdist (file name, bytes): the wheel's package, built by
    ``tlsenv-backend``, a build dependency on the same index."""
    dist = f"tlsenv_probe-{PROBE_VERSION}"
    files = {
        "PKG-INFO": _metadata(PROBE_PROJECT, PROBE_VERSION, _PROBE_SUMMARY),
        "pyproject.toml": (
            f'[build-system]\nrequires = ["{BACKEND_PROJECT}"]\n'
            'build-backend = "tlsenv_backend"\n\n'
            f'[project]\nname = "{PROBE_PROJECT}"\nversion = "{PROBE_VERSION}"\n'
        ).encode(),
        "tlsenv_probe/__init__.py": _PROBE_INIT,
    }
    raw = io.BytesIO()
    # A fixed mtime in the gzip header and every member: the same bytes every session.
    with (
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, data in files.items():
            info = tarfile.TarInfo(f"{dist}/{name}")
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1704067200
            tar.addfile(info, io.BytesIO(data))
    return f"{dist}.tar.gz", raw.getvalue()


def _links(files: list[tuple[str, bytes]]) -> bytes:
    anchors = "".join(
        f'<a href="/files/{name}#sha256={hashlib.sha256(data).hexdigest()}">{name}</a>\n'
        for name, data in files
    )
    return f"<!DOCTYPE html><html><body>\n{anchors}</body></html>\n".encode()


def handshake_within(tls: ssl.SSLSocket, seconds: float) -> None:
    """Run ``tls``'s handshake to its end within ``seconds`` in total, or raise its error.

    A peer that sends its ClientHello a byte at a time is cut off when ``seconds`` are up
    (a TimeoutError), not waited for read by read.
    """
    error = run_handshakes([tls], seconds)[tls]
    if error is not None:
        raise error


Handler = Callable[["Origin", Request], tuple[int, str, bytes]]


@dataclass(eq=False)
class Origin(LoopbackServer):
    """An HTTPS origin on loopback. Use as a context manager, or ``start()``/``stop()``."""

    kind: ClassVar[str] = "origin"

    context: ssl.SSLContext
    host: str = "localhost"
    deadlines: Deadlines = field(default_factory=Deadlines)
    received: list[Request] = field(default_factory=list)
    handshakes: list[Handshake] = field(default_factory=list)
    port: int = 0
    #: The PEM of the certificate the origin presents (its leaf; what a user of a
    #: self-signed server gives ``--cacert``). Empty for an origin built from a bare context.
    leaf_pem: bytes = b""

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
        leaf = pki.server_leaf(name)
        return cls(
            pki.server_context(leaf),
            host=host,
            deadlines=deadlines or Deadlines(),
            leaf_pem=leaf.cert_pem,
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

    # -- serving ----------------------------------------------------------------------------

    def settle(self, timeout: float = 1.0) -> bool:
        """Wait until the handshake of every connection accepted so far is in ``handshakes``.

        The origin records on its own threads: a client that refused the certificate may exit
        before the alert it sent is written down. False if some are still unrecorded.
        """
        return super().settle(timeout)

    def _record(self, handshake: Handshake) -> None:
        with self._lock:
            self.handshakes.append(handshake)
        self._settled()

    def _serve(self, raw: socket.socket, job: Job) -> None:
        # wrap_socket detaches `raw`: from here on the SSLSocket owns the fd.
        tls = wrap_socket(self.context, raw, server_side=True, do_handshake_on_connect=False)
        self._swap(job, raw, tls)
        try:
            handshake_within(tls, self.deadlines.handshake)
        except (ssl.SSLError, OSError) as e:
            self._record(Handshake(job.peer, None, f"{type(e).__name__}: {e}"))
            return
        self._record(Handshake(job.peer, None, None))
        self._http(tls, job.peer, None)
        with contextlib.suppress(OSError, ValueError):
            # close_notify; unwrap then waits for the client's, bounded: a client that
            # keeps its end open must not hold this thread.
            tls.settimeout(1.0)
            tls.unwrap()

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
            tls.settimeout(IO_TIMEOUT)  # not what was left of the request's deadline
            tls.sendall(head.encode() + body)

    def respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        """The response for ``path``: ``/``, the simple index (the probe's wheel and sdist, the
        sdist's build backend), their files, or 404."""
        path = path.split("?", 1)[0]
        projects = {
            PROBE_PROJECT: [probe_wheel(), probe_sdist()],
            BACKEND_PROJECT: [backend_wheel()],
        }
        if path == "/":
            return 200, "text/plain", b"tlsenv origin: ok\n"
        if path == "/tlsenv-probe.git/info/refs":
            # An empty repository over git's "dumb" HTTP protocol: `git ls-remote` exits 0.
            return 200, "text/plain", b""
        if path == "/simple/":
            links = "".join(f'<a href="{p}/">{p}</a>' for p in projects)
            body = f"<!DOCTYPE html><html><body>{links}</body></html>\n"
            return 200, "text/html", body.encode()
        for project, files in projects.items():
            if path in (f"/simple/{project}/", f"/simple/{project}"):
                return 200, "text/html", _links(files)
            for name, data in files:
                if path == f"/files/{name}":
                    gz = name.endswith(".tar.gz")
                    return 200, "application/gzip" if gz else "application/octet-stream", data
        return 404, "text/plain", b"not found\n"
