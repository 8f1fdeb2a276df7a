"""Loopback-only guard for this suite (loaded by the root conftest.py).

An audit hook (PEP 578) sees every ``socket.connect``, ``socket.sendto`` and
``socket.getaddrinfo`` made by Python code in this process - the tests, in-process clients,
the plugin's servers. Any non-loopback destination is blocked (the call raises) and the test
that made it fails at teardown, even if the client swallowed the error. Subprocess clients are
outside its reach; they only ever get loopback URLs from the scenarios.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Generator
from typing import Any

import pytest

_violations: list[str] = []
_ALLOWED_NAMES = ("localhost",)
_ALLOWED_SUFFIXES = (".localhost", ".test")


class NonLoopbackError(ConnectionRefusedError):
    """Raised by the guard instead of letting a test reach another host."""


def is_loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").split("%", 1)[0].rstrip(".").lower()
    if name in _ALLOWED_NAMES or name.endswith(_ALLOWED_SUFFIXES):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event in ("socket.connect", "socket.sendto"):
        sock, address = args[0], args[-1]
        if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
            return
        host = address[0] if isinstance(address, tuple) else address
    elif event == "socket.getaddrinfo":
        host = args[0]
    else:
        return
    if not is_loopback(host):
        _violations.append(f"{event} to {host!r}")
        raise NonLoopbackError(f"pytest-tlsenv's suite is loopback-only: {event} to {host!r}")


sys.addaudithook(_hook)  # audit hooks cannot be removed: installed once, on import


@pytest.fixture(autouse=True)
def _tlsenv_loopback_only() -> Generator[None, None, None]:
    """Fail the test that tried to reach a non-loopback address."""
    start = len(_violations)
    yield
    seen = _violations[start:]
    if seen:
        pytest.fail("non-loopback network access: " + "; ".join(seen), pytrace=False)
