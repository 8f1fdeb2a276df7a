"""Running a client: a subprocess (``run_process``) or a callable in-process (``call_in_thread``).

Root reads every file whatever its mode, so a permission fault means nothing to a client
running as root with full capabilities. On Linux, capabilities are per *thread*: a thread can
drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its effective, permitted, inheritable and
bounding sets without touching the rest of the process, and a child forked by that thread
inherits exactly that thread's credentials. So:

* ``run_process`` forks the child from a throwaway thread that dropped both capabilities: the
  child's bounding and inheritable sets lack them, so not even exec of a setuid-root or
  file-capability binary brings them back (what ``setpriv --inh-caps=-all
  --bounding-set=-dac_override,-dac_read_search`` does, without ``preexec_fn``, which is unsafe
  while server threads run, and without depending on setpriv being installed);
* ``call_in_thread`` runs the callable in such a thread and then lets the thread end, so the
  process's other threads (pytest's own) keep full capabilities. Thread pools created *before*
  the call keep their capabilities: work the client hands to them is not covered.

The client keeps uid 0, so interpreters and venvs under /root stay usable, and gets exactly
the EACCES a non-root user would get (uv issue 5448).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

__all__ = [
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "Finished",
    "Launcher",
    "ThreadResult",
    "call_in_thread",
    "caps_of",
    "drop_dac_caps",
    "must_drop_caps",
    "run_process",
]

CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
_DROPPED = (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)

_PR_CAPBSET_DROP = 24
_SYS_CAPGET = {"x86_64": 125, "aarch64": 90}
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _syscall_numbers() -> tuple[int, int]:
    machine = os.uname().machine
    try:
        return _SYS_CAPGET[machine], _SYS_CAPSET[machine]
    except KeyError:
        raise OSError(f"capability syscalls unknown on {machine}") from None


def drop_dac_caps() -> None:
    """Drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from *this thread*, all four sets.

    Uses raw syscalls: glibc's setuid-family wrappers broadcast to every thread, capset(2) and
    prctl(PR_CAPBSET_DROP) do not.
    """
    capget, capset = _syscall_numbers()
    for cap in _DROPPED:
        if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl(PR_CAPBSET_DROP, {cap}): {os.strerror(err)}")
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if _libc.syscall(capget, ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capget: {os.strerror(err)}")
    mask = 0xFFFFFFFF
    for cap in _DROPPED:
        mask &= ~(1 << cap)
    data[0].effective &= mask
    data[0].permitted &= mask
    data[0].inheritable &= mask
    if _libc.syscall(capset, ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


def caps_of(status_text: str) -> dict[str, int]:
    """Parse the ``Cap*`` lines of a ``/proc/<pid>/status`` text into integers."""
    caps: dict[str, int] = {}
    for line in status_text.splitlines():
        if line.startswith("Cap"):
            key, _, value = line.partition(":")
            caps[key] = int(value.strip(), 16)
    return caps


def must_drop_caps(user: str | None) -> bool:
    """Whether a client must lose the DAC capabilities: root, and no real user switch."""
    return os.geteuid() == 0 and user is None


@dataclass(frozen=True)
class ThreadResult:
    """What a callable run by :func:`call_in_thread` did."""

    value: Any
    exception: BaseException | None
    timed_out: bool
    duration: float
    thread: threading.Thread


def call_in_thread(
    fn: Callable[[], Any], *, timeout: float, drop_caps: bool, name: str = "tlsenv-call"
) -> ThreadResult:
    """Run ``fn`` in a fresh daemon thread (without DAC capabilities if asked), bounded.

    On timeout the thread is left blocked (it is a daemon); whoever caused the hang
    (a FIFO, a silent server) releases it at teardown.
    """
    box: dict[str, Any] = {}

    def body() -> None:
        start = time.perf_counter()
        try:
            if drop_caps:
                drop_dac_caps()
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - everything the client raises is evidence
            box["exception"] = e
        finally:
            box["duration"] = time.perf_counter() - start

    thread = threading.Thread(target=body, name=name, daemon=True)
    start = time.perf_counter()
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return ThreadResult(None, None, True, time.perf_counter() - start, thread)
    return ThreadResult(
        box.get("value"), box.get("exception"), False, box.get("duration", 0.0), thread
    )


# (argv, environ, switch) -> the argv that runs argv after some setup; see run_process.
Launcher = Callable[[Sequence[str], Mapping[str, str], "tuple[int, int] | None"], list[str]]


@dataclass(frozen=True)
class Finished:
    """A finished subprocess."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration: float


def _user_ids(user: str) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
    except KeyError:
        raise ConfigError(f"user {user!r} does not exist on this machine") from None
    return entry.pw_uid, entry.pw_gid


def _killpg(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_process(
    argv: Sequence[str],
    *,
    environ: Mapping[str, str],
    timeout: float,
    cwd: str | None = None,
    user: str | None = None,
    on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
    launcher: Launcher | None = None,
) -> Finished:
    """Run ``argv`` in its own session with exactly ``environ``; kill its group at the end.

    As root with no ``user``, the child is forked from a thread without the DAC capabilities.
    With ``user``, the child switches to that user (``Popen(user=...)``: done by the C fork
    path, no ``preexec_fn``).

    ``launcher(argv, environ, switch)`` returns the argv to spawn instead: a helper that
    prepares the child and then execs ``argv`` (system paths: a private mount namespace). It
    is spawned exactly as the client would be (same thread, same capability drop), and when a
    user switch is asked for it gets ``switch=(uid, gid)`` and does the switch itself after its
    setup, so it starts as root.
    """
    kwargs: dict[str, Any] = {}
    switch: tuple[int, int] | None = None
    if user is not None:
        uid, gid = _user_ids(user)
        if os.geteuid() != 0 and uid != os.geteuid():
            raise ConfigError(f"cannot run as {user!r}: switching users needs root")
        if os.geteuid() == 0:
            if launcher is None:
                kwargs.update(user=uid, group=gid, extra_groups=[])
            else:
                switch = (uid, gid)
    if launcher is not None:
        argv = launcher(argv, environ, switch)
    box: dict[str, Any] = {}

    def spawn() -> None:
        try:
            if must_drop_caps(user):
                drop_dac_caps()
            box["proc"] = subprocess.Popen(
                list(argv),
                env=dict(environ),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
                **kwargs,
            )
        except BaseException as e:  # noqa: BLE001 - re-raised on the caller's thread
            box["error"] = e

    start = time.perf_counter()
    # Never use PR_SET_PDEATHSIG here: it fires when the *forking thread* ends, i.e. at once.
    spawner = threading.Thread(target=spawn, name="tlsenv-spawn", daemon=True)
    spawner.start()
    spawner.join()
    if "error" in box:
        raise box["error"]
    proc: subprocess.Popen[bytes] = box["proc"]
    if on_start is not None:
        on_start(proc)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _killpg(proc)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a grandchild outside the group holds the pipes
            proc.kill()
            out, err = b"", b""
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
            proc.wait()
    finally:
        # Whatever the child left running in its group goes too.
        _killpg(proc)
    duration = time.perf_counter() - start
    return Finished(
        returncode=None if timed_out else proc.returncode,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        timed_out=timed_out,
        duration=duration,
    )
