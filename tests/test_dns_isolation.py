"""Invented names never leave the machine: a ``run`` client in a scenario with invented names
(every proxy scenario addresses the origin as origin.tlsenv.test) gets a private /etc/hosts
and an /etc/resolv.conf naming only 127.0.0.1, where private mount namespaces work.

No test here sends a DNS query anywhere but 127.0.0.1: the unprotected variant (a lookup from
outside the namespace) is only ever shown by reading the host's /etc/resolv.conf.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_tlsenv import namespace
from pytest_tlsenv.tlsenv import TLSEnv

pytestmark = pytest.mark.skipif(
    namespace.probe() is not None, reason=f"no private mount namespaces: {namespace.probe()}"
)

LOOPBACK_ONLY = "nameserver 127.0.0.1\n"
LOOKUP = "import socket, sys; print(socket.getaddrinfo(sys.argv[1], 443, socket.AF_INET)[0][4][0])"


class LoopbackDNS:
    """A UDP listener on 127.0.0.1:53 that records each query's name and answers NXDOMAIN."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind(("127.0.0.1", 53))
        except OSError as e:
            self.sock.close()
            pytest.skip(f"cannot listen on 127.0.0.1:53 (needs root, and the port free): {e}")
        self.sock.settimeout(0.1)
        self.names: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="loopback-dns", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            labels, i = [], 12
            while i < len(data) and data[i]:
                labels.append(data[i + 1 : i + 1 + data[i]].decode("ascii", "replace"))
                i += 1 + data[i]
            self.names.append(".".join(labels).lower())
            # Same id, QR+RD+RA, RCODE 3 (NXDOMAIN), the question echoed: the client stops
            # at once instead of retrying for seconds.
            question = data[12 : i + 5]
            reply = data[:2] + b"\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00" + question
            self.sock.sendto(reply, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def loopback_dns() -> Iterator[LoopbackDNS]:
    server = LoopbackDNS()
    try:
        yield server
    finally:
        server.close()


def _inode(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


@pytest.mark.tlsenv(proxy="proxy-tunnel")
def test_a_proxy_scenario_client_sees_only_a_loopback_resolver(tlsenv: TLSEnv) -> None:
    resolv = tlsenv.run(["/bin/cat", "/etc/resolv.conf"])
    assert resolv.stdout == LOOPBACK_ONLY, resolv.stderr
    assert tlsenv.names_isolated
    # Not the host's file with the same text: another file, bound over it.
    inode = tlsenv.run(["/usr/bin/stat", "-L", "-c", "%d %i", "/etc/resolv.conf"]).stdout
    assert tuple(map(int, inode.split())) != _inode("/etc/resolv.conf")
    hosts = tlsenv.run(["/bin/cat", "/etc/hosts"]).stdout
    assert "127.0.0.1\torigin.tlsenv.test\n::1\torigin.tlsenv.test\n" in hosts
    # The host's own lines follow ours (its hostname keeps resolving from the file).
    with open("/etc/hosts") as f:
        assert hosts.endswith(f.read())


def test_twin_a_plain_subprocess_reads_the_hosts_resolv_conf() -> None:
    # The same reader outside any namespace sees the machine's file: the test above can tell.
    with open("/etc/resolv.conf") as f:
        host = f.read()
    if host == LOOPBACK_ONLY:
        pytest.skip("this machine's own /etc/resolv.conf names only 127.0.0.1")
    out = subprocess.run(["/bin/cat", "/etc/resolv.conf"], capture_output=True, text=True)
    assert out.stdout == host
    assert out.stdout != LOOPBACK_ONLY


def test_a_scenario_without_invented_names_keeps_the_hosts_files(tlsenv: TLSEnv) -> None:
    # No .test name to protect: no namespace, no cost; the client reads the host's file.
    assert not tlsenv.names_isolated
    out = tlsenv.run(["/bin/cat", "/etc/resolv.conf"])
    with open("/etc/resolv.conf") as f:
        assert out.stdout == f.read()


@pytest.mark.tlsenv(proxy="proxy-tunnel")
def test_without_namespaces_runs_go_on_with_the_hosts_files(
    tlsenv: TLSEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a machine without namespaces does: the probe's answer, not a failure of the run.
    monkeypatch.setattr(namespace, "probe", lambda: "namespaces are off on this machine")
    assert not tlsenv.names_isolated
    out = tlsenv.run(["/bin/cat", "/etc/resolv.conf"])
    assert out.returncode == 0
    with open("/etc/resolv.conf") as f:
        assert out.stdout == f.read()


@pytest.mark.skipif(os.geteuid() != 0, reason="listening on port 53 needs root")
@pytest.mark.tlsenv(proxy="proxy-tunnel")
def test_an_unknown_name_is_asked_of_loopback_only(
    tlsenv: TLSEnv, loopback_dns: LoopbackDNS
) -> None:
    # Safe by construction: no lookup unless the client's resolver is loopback only (on code
    # without the private files this stops here instead of asking the machine's resolver).
    guard = tlsenv.run(["/bin/cat", "/etc/resolv.conf"])
    assert guard.stdout == LOOPBACK_ONLY, "refusing to look a name up: " + guard.stdout
    out = tlsenv.run([sys.executable, "-I", "-c", LOOKUP, "nowhere.tlsenv.test"], timeout=15)
    assert out.returncode != 0  # NXDOMAIN from our listener
    assert "gaierror" in out.stderr, out.stderr
    assert any(n.startswith("nowhere.tlsenv.test") for n in loopback_dns.names), loopback_dns.names
    # A second client resolves the invented name from the private hosts file: no query.
    asked = len(loopback_dns.names)
    found = tlsenv.run([sys.executable, "-I", "-c", LOOKUP, "origin.tlsenv.test"], timeout=15)
    assert found.stdout.strip() == "127.0.0.1", found.stderr
    assert loopback_dns.names[asked:] == []


@pytest.mark.parametrize(
    ("nsswitch", "hosts_line"),
    [
        ("passwd: files\nhosts: files dns\n", None),
        ("hosts:   files [NOTFOUND=return] dns  # comment\n", None),
        ("passwd: files systemd\n", None),  # no hosts line: the C library asks files, dns
        ("passwd: files systemd\nhosts: files mdns4_minimal [NOTFOUND=return] dns myhostname\n",
         "hosts: files dns"),
        ("hosts: resolve [!UNAVAIL=return] files dns\n", "hosts: files dns"),
    ],
)  # fmt: skip
def test_nsswitch_keeps_only_files_and_dns(nsswitch: str, hosts_line: str | None) -> None:
    from pytest_tlsenv._nsplan import _nsswitch_without_other_sources

    out = _nsswitch_without_other_sources(nsswitch)
    if hosts_line is None:
        assert out is None  # nothing to change: no bind
    else:
        assert out is not None
        assert hosts_line in out.splitlines()
        others = [line for line in nsswitch.splitlines() if not line.startswith("hosts")]
        assert [line for line in out.splitlines() if not line.startswith("hosts")] == others


def test_a_hidden_nscd_socket_refuses_connections() -> None:
    # How nscd is hidden: a regular file bound over its socket, so the C library's connect
    # fails at once and it asks NSS itself. Shown on a socket of our own.
    from pytest_tlsenv.namespace import MountPlan
    from pytest_tlsenv.runner import run_process

    # A socket path must fit in 108 bytes: a private directory (mkdtemp: 0700, ours) in /tmp.
    with tempfile.TemporaryDirectory(prefix="tlsenv-nscd-") as tmp:
        base = Path(tmp)
        sock_path, empty = str(base / "nscd.sock"), str(base / "empty")
        Path(empty).write_text("")
        connect = (
            "import socket, sys\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "try:\n    s.connect(sys.argv[1]); print('connected')\n"
            "except OSError as e:\n    print(type(e).__name__)\n"
            "finally:\n    s.close()\n"
        )
        listener = socket.socket(socket.AF_UNIX)
        try:
            listener.bind(sock_path)
            listener.listen(1)
            argv = [sys.executable, "-I", "-c", connect, sock_path]
            plain = run_process(argv, environ={"PATH": "/usr/bin:/bin"}, timeout=20)
            assert plain.stdout.strip() == "connected"  # the twin: the socket works outside
            plan = MountPlan(binds=((empty, sock_path),), stage=str(base / "stage"))
            hidden = run_process(
                argv, environ={"PATH": "/usr/bin:/bin"}, timeout=20, launcher=plan.launcher
            )
            assert hidden.stdout.strip() == "ConnectionRefusedError", hidden.stderr
        finally:
            listener.close()
