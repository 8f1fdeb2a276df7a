"""Raw-socket client helpers the server tests share (the tests directory is on sys.path)."""

from __future__ import annotations

import socket
import ssl


def read_head(sock: socket.socket) -> bytes:
    """An HTTP response head, up to and including its blank line (or what came before EOF)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(1)  # byte by byte: never eat into the TLS that follows
        if not chunk:
            break
        buf += chunk
    return buf


def read_all(sock: socket.socket) -> bytes:
    """Everything until the peer closes, fails or the socket's timeout runs out."""
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except (ssl.SSLError, OSError):
        pass
    return out
