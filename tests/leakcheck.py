"""A leak checker around every test of this suite (loaded by the root conftest.py).

After each test's teardown it fails the test that left behind:

* a ``tlsenv*`` thread still running (servers, spawners, hung calls not released),
* a socket or FIFO file descriptor that was not open before the test,
* a child process of this process that was not there before,
* under the session's temp root: a FIFO, or a file with the fault uid's owner or a mode that
  the owner cannot read (a permission fault that was not restored).

Load it into any pytest run with ``-p leakcheck`` (tests/ on sys.path).
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Generator
from pathlib import Path

import pytest

_SETTLE = 2.0  # seconds a thread or child may take to finish its teardown


def _fds() -> dict[int, str]:
    out: dict[int, str] = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
    return out


def _leaky_fd(target: str) -> bool:
    if target.startswith(("socket:", "pipe:")):
        return True
    try:
        return stat.S_ISFIFO(os.stat(target).st_mode)
    except OSError:
        return False


def _children() -> set[int]:
    me = os.getpid()
    kids: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state, fields[1] the parent pid; zombies are reaped by Popen later.
        if int(fields[1]) == me and fields[0] != "Z":
            kids.add(int(entry))
    return kids


def _tlsenv_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("tlsenv") and t.is_alive()}


def altered_files(root: Path, fault_uid: int = 65533) -> list[str]:
    """FIFOs, fault-owned files and owner-unreadable files under ``root``."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISFIFO(st.st_mode):
                found.append(f"FIFO {path}")
            elif st.st_uid == fault_uid:
                found.append(f"owned by fault uid {fault_uid}: {path}")
            elif not stat.S_ISLNK(st.st_mode) and not st.st_mode & stat.S_IRUSR:
                found.append(f"mode {stat.filemode(st.st_mode)}: {path}")
    return found


@pytest.fixture(autouse=True)
def _tlsenv_leakcheck(request: pytest.FixtureRequest) -> Generator[None, None, None]:
    """Fail the test (at teardown) if it leaked a thread, fd, child, or altered file.

    Autouse fixtures are set up first and torn down last, so this runs after the tlsenv
    fixtures have closed their environments.
    """
    threads = _tlsenv_threads()
    fds = _fds()
    kids = _children()
    yield
    problems: list[str] = []
    deadline = time.monotonic() + _SETTLE
    while True:
        new_threads = _tlsenv_threads() - threads
        new_kids = _children() - kids
        new_fds = {fd: t for fd, t in _fds().items() if fds.get(fd) != t and _leaky_fd(t)}
        if not (new_threads or new_kids or new_fds) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if new_threads:
        problems.append(f"threads still running: {sorted(t.name for t in new_threads)}")
    if new_kids:
        problems.append(f"child processes still running: {sorted(new_kids)}")
    if new_fds:
        problems.append(f"file descriptors left open: {new_fds}")
    basetemp = request.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    left = altered_files(basetemp)
    if "_tlsenv_dirs" in request.fixturenames:
        # Scenario roots live on a tmpfs by default: this session's own directories there.
        for base in request.getfixturevalue("_tlsenv_dirs").bases:
            if not base.is_relative_to(basetemp):
                left += altered_files(base)
    if left:
        problems.append("altered files left under the temp root:\n  " + "\n  ".join(left))
    if problems:
        pytest.fail("LEAK: " + "\n".join(problems), pytrace=False)
