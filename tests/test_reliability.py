"""The suite's own guards catch what they promise to catch."""

from __future__ import annotations

import socket

import pytest
from netguard import NonLoopbackError, is_loopback

LEAKY = """
import socket, threading, time

_keep = []

def test_leaks_a_socket():
    _keep.append(socket.socket())

def test_leaks_a_thread():
    ev = threading.Event()
    _keep.append(ev)
    threading.Thread(target=ev.wait, args=(5,), name="tlsenv-leaky", daemon=True).start()

def test_clean():
    with socket.socket():
        pass

def teardown_module():
    for k in _keep:
        if hasattr(k, "set"):
            k.set()
        else:
            k.close()
"""


def test_leak_checker_catches_leaking_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(LEAKY)
    result = pytester.runpytest("-p", "leakcheck", "-p", "no:netguard")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_a_socket*",
            "*LEAK: file descriptors left open: {*socket:*",
            "*ERROR at teardown of test_leaks_a_thread*",
            "*LEAK: threads still running: [[]'tlsenv-leaky'[]]*",
        ]
    )


def test_leak_checker_passes_a_clean_test(pytester: pytest.Pytester) -> None:
    # Negative twin: the same checker says nothing about a test that cleans up.
    pytester.makepyfile(test_leaky=LEAKY)
    result = pytester.runpytest("-p", "leakcheck", "-k", "clean")
    result.assert_outcomes(passed=1, deselected=2)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.5.6.7", "::1", "[::1]", "localhost", "origin.tlsenv.test"]
)
def test_loopback_names_are_allowed(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["192.0.2.1", "10.0.0.1", "2001:db8::1", "pypi.org", "localhost.example"]
)
def test_other_names_are_not(host: str) -> None:
    assert not is_loopback(host)


def test_guard_blocks_a_non_loopback_connect(pytester: pytest.Pytester) -> None:
    # 192.0.2.1 is TEST-NET-1: even if the guard failed, nothing would answer; the guard must
    # refuse before any packet leaves, and fail the test even though the test swallowed it.
    pytester.makepyfile(
        """
        import socket

        def test_sneaky():
            s = socket.socket()
            s.settimeout(0.2)
            try:
                s.connect(("192.0.2.1", 9))
            except OSError as e:
                assert type(e).__name__ == "NonLoopbackError"
            finally:
                s.close()

        def test_loopback_is_fine():
            with socket.create_server(("127.0.0.1", 0)) as srv, socket.create_connection(
                srv.getsockname()
            ):
                pass
        """
    )
    import netguard

    start = len(netguard._violations)
    result = pytester.runpytest("-p", "netguard")
    # The inner run shares this process's audit hook: forget its (deliberate) violation.
    del netguard._violations[start:]
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*non-loopback network access: socket.connect to '192.0.2.1'*"])


def test_guard_is_active_in_this_suite() -> None:
    with socket.socket() as s, pytest.raises(NonLoopbackError):
        s.connect(("192.0.2.1", 9))
    # Forget this deliberate violation so this test itself passes.
    import netguard

    netguard._violations.pop()
