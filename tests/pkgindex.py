"""A package index on loopback, built by the test: releases of ``tinyclient``, a tiny HTTPS
client whose behaviour changes at known releases, so bisecting is tested without the network.

``tinyclient URL`` fetches URL with Python's ``ssl``. Releases up to 1.5 build their context
the usual way (``ssl.create_default_context()``: SSL_CERT_FILE is honoured); from 1.6 on it
loads no CA at all, so every server is rejected. From 1.2 on, a run also prints a warning to
stderr while still succeeding (a wording-only regression). Pre-release 1.5rc1 and yanked
1.5.1 are broken too (included only when asked, they would be the first bad); 1.3.1 is an
sdist only and 1.4.5 has a wheel for Windows only (neither installable here).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

PACKAGE = "tinyclient"
BROKEN_FROM = (1, 6)
WARNS_FROM = (1, 2)
WARNING = "warning: SSL_CERT_DIR is set but empty"

_SOURCE = """\
import ssl
import sys
import urllib.request

VERSION = {version!r}


def main():
    url = sys.argv[1]
    if {broken}:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA at all: the regression
    else:
        context = ssl.create_default_context()
    if {warns}:
        print({warning!r}, file=sys.stderr)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({{}}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=10) as response:
            response.read()
    except OSError as e:
        print("tinyclient " + VERSION + ": " + str(e), file=sys.stderr)
        sys.exit(1)
    print("tinyclient " + VERSION + ": ok")
"""


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("rc")[0].split("."))


def wheel(version: str, tag: str = "py3-none-any") -> tuple[str, bytes]:
    """A wheel of tinyclient ``version`` (file name, bytes)."""
    key = _key(version)
    broken = key >= BROKEN_FROM or "rc" in version or version == "1.5.1"
    source = _SOURCE.format(
        version=version, broken=broken, warns=key >= WARNS_FROM, warning=WARNING
    )
    info = f"{PACKAGE}-{version}.dist-info"
    files = {
        f"{PACKAGE}/__init__.py": source.encode(),
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {version}\n"
        ).encode(),
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ).encode(),
        f"{info}/entry_points.txt": f"[console_scripts]\n{PACKAGE} = {PACKAGE}:main\n".encode(),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return f"{PACKAGE}-{version}-{tag}.whl", buf.getvalue()


@dataclass
class IndexFile:
    name: str
    data: bytes
    yanked: str | None = None


@dataclass
class Index:
    """The served index: ``url`` (``http://127.0.0.1:PORT/simple``) and its files."""

    files: list[IndexFile]
    json: bool = True
    url: str = ""
    requests: list[str] = field(default_factory=list)
    #: While set, file downloads wait (a test kills an install mid-way).
    hold: threading.Event | None = None
    release: threading.Event = field(default_factory=threading.Event)


def default_files() -> list[IndexFile]:
    files = [
        IndexFile(*wheel(v))
        for v in ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "2.0", "1.5rc1")
    ]
    files.append(IndexFile(*wheel("1.5.1"), yanked="broken trust"))
    files.append(IndexFile(*wheel("1.4.5", "py3-none-win_amd64")))
    files.append(IndexFile(f"{PACKAGE}-1.3.1.tar.gz", b"not a real sdist: never built"))
    return files


def _handler(index: Index) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            del format, args  # quiet: pytest would show it as stderr noise

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            index.requests.append(self.path)
            if self.path.rstrip("/") == f"/simple/{PACKAGE}":
                base = index.url.rsplit("/simple", 1)[0]
                if index.json and "application/vnd.pypi.simple.v1+json" in self.headers.get(
                    "Accept", ""
                ):
                    body = {
                        "meta": {"api-version": "1.0"},
                        "name": PACKAGE,
                        "files": [
                            {
                                "filename": f.name,
                                "url": f"{base}/files/{f.name}",
                                "hashes": {"sha256": hashlib.sha256(f.data).hexdigest()},
                                "yanked": f.yanked if f.yanked is not None else False,
                            }
                            for f in index.files
                        ],
                    }
                    self._send(
                        200, "application/vnd.pypi.simple.v1+json", json.dumps(body).encode()
                    )
                    return
                links = "".join(
                    f'<a href="{base}/files/{f.name}#sha256={hashlib.sha256(f.data).hexdigest()}"'
                    + (f' data-yanked="{f.yanked}"' if f.yanked is not None else "")
                    + f">{f.name}</a><br>\n"
                    for f in index.files
                )
                self._send(200, "text/html", f"<html><body>\n{links}</body></html>".encode())
                return
            if self.path.startswith("/files/"):
                name = self.path[len("/files/") :]
                for f in index.files:
                    if f.name == name:
                        if index.hold is not None:
                            index.hold.set()
                            index.release.wait(30)
                        self._send(200, "application/octet-stream", f.data)
                        return
            self._send(404, "text/plain", b"not found")

    return Handler


@contextmanager
def serve(files: list[IndexFile] | None = None, *, json_api: bool = True) -> Iterator[Index]:
    """Serve an index of ``files`` (default: :func:`default_files`) on 127.0.0.1."""
    index = Index(files if files is not None else default_files(), json=json_api)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(index))
    index.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    thread = threading.Thread(target=server.serve_forever, name="pkgindex", daemon=True)
    thread.start()
    try:
        yield index
    finally:
        index.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
