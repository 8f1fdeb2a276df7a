"""Running a client: a subprocess (``run_process``) or a callable in-process (``call_in_thread``).

Root reads every file whatever its mode, so a permission fault means nothing to a client
running as root with its capabilities. On Linux, capabilities, the bounding set and
no_new_privs are per *thread*: a thread can shed them without touching the rest of the
process, and a child forked by that thread inherits exactly that thread's credentials. So:

* ``run_process`` forks every child from a throwaway thread that emptied its capability sets
  (effective, permitted, inheritable, ambient and bounding) and set no_new_privs: what
  ``setpriv --inh-caps=-all --ambient-caps=-all --bounding-set=-all --no-new-privs`` does,
  without ``preexec_fn`` (unsafe while server threads run) and without setpriv. Not even exec
  of a setuid-root or file-capability binary brings a capability back. Two exceptions keep
  what a later step needs, and that step drops the rest: a user switch (``Popen(user=...)``)
  keeps CAP_SETUID/CAP_SETGID, which the uid change then clears; system paths keep what
  mounting needs until the mounts are made (:mod:`.namespace`): as root in that same
  thread, which then drops everything before it forks. (As non-root the mounts need a user
  namespace, made in the forked child by a ``preexec_fn`` that only makes system calls:
  :class:`InChild`.);
* ``call_in_thread`` runs the test author's callable in a thread that dropped only
  CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (all four sets), then lets the thread end, so the
  process's other threads (pytest's own) keep full capabilities. Thread pools created *before*
  the call keep their capabilities: work the client hands to them is not covered.

A root client keeps uid 0, so interpreters and venvs under /root stay usable, and gets exactly
the EACCES a non-root user would get (astral-sh/uv#5448). Where that ends: uid 0 still owns every
root-owned file and may write the ones whose mode lets the owner write (/etc/passwd, a cached
client), capabilities or not. A real unprivileged user (``user=``) does not; then every path
the client needs must be usable by that user, which :func:`check_usable` says up front.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import pwd
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, TLSEnvError

__all__ = [
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "Finished",
    "InChild",
    "InThread",
    "Launcher",
    "ThreadResult",
    "call_in_thread",
    "caps_of",
    "check_usable",
    "client_ids",
    "drop_caps_for_exec",
    "drop_dac_caps",
    "must_drop_caps",
    "run_process",
]

CAP_CHOWN = 0
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_SETGID = 6
CAP_SETUID = 7
CAP_SETPCAP = 8
CAP_SYS_ADMIN = 21
_DROPPED = (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)
# What the user switch of Popen(user=...) needs in the forked child: setgroups, setgid, setuid.
SWITCH_CAPS = (CAP_SETGID, CAP_SETUID)
# What the system-paths helper needs until it has mounted: unshare and mount, chown of a
# grafted tmpfs, and emptying the bounding set itself afterwards.
MOUNT_CAPS = (CAP_SYS_ADMIN, CAP_CHOWN, CAP_SETPCAP)

_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
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


def _capget() -> tuple[_CapHeader, ctypes.Array[_CapData]]:
    capget, _capset = _syscall_numbers()
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if _libc.syscall(capget, ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capget: {os.strerror(err)}")
    return header, data


def _capset(header: _CapHeader, data: ctypes.Array[_CapData]) -> None:
    _capget_nr, capset = _syscall_numbers()
    if _libc.syscall(capset, ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


def _prctl(option: int, arg: int, what: str) -> None:
    if _libc.prctl(option, arg, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({what}): {os.strerror(err)}")


@functools.cache
def _last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def drop_dac_caps() -> None:
    """Drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from *this thread*, all four sets.

    Uses raw syscalls: glibc's setuid-family wrappers broadcast to every thread, capset(2) and
    prctl(PR_CAPBSET_DROP) do not.
    """
    for cap in _DROPPED:
        _prctl(_PR_CAPBSET_DROP, cap, f"PR_CAPBSET_DROP, {cap}")
    header, data = _capget()
    mask = 0xFFFFFFFF
    for cap in _DROPPED:
        mask &= ~(1 << cap)
    data[0].effective &= mask
    data[0].permitted &= mask
    data[0].inheritable &= mask
    _capset(header, data)


def drop_caps_for_exec(keep: Sequence[int] = (), *, through_exec: bool = False) -> None:
    """Leave *this thread* no capability but ``keep``, and set its no_new_privs.

    The bounding and ambient sets are emptied, the inheritable set too, and the effective and
    permitted sets keep only ``keep``: what the step before the client's exec needs (a uid
    change, which then clears it). ``through_exec``: that step runs in a program exec'd first
    (the system-paths helper), so ``keep`` stays in the bounding set too, and that program
    drops it. Per-thread, like :func:`drop_dac_caps`. Without CAP_SETPCAP (non-root) the
    bounding set cannot be emptied; no_new_privs then keeps exec from using it.
    """
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, "PR_CAP_AMBIENT_CLEAR_ALL")
    header, data = _capget()
    if data[0].effective & (1 << CAP_SETPCAP):
        for cap in range(_last_cap() + 1):
            if not (through_exec and cap in keep):
                _prctl(_PR_CAPBSET_DROP, cap, f"PR_CAPBSET_DROP, {cap}")
    _prctl(_PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")
    kept = [0, 0]
    for cap in keep:
        word, bit = divmod(cap, 32)
        kept[word] |= 1 << bit
    for word in (0, 1):
        data[word].effective &= kept[word]
        data[word].permitted &= kept[word]
        data[word].inheritable = 0
    _capset(header, data)


def caps_of(status_text: str) -> dict[str, int]:
    """Parse the ``Cap*`` lines of a ``/proc/<pid>/status`` text into integers."""
    caps: dict[str, int] = {}
    for line in status_text.splitlines():
        if line.startswith("Cap"):
            key, _, value = line.partition(":")
            caps[key] = int(value.strip(), 16)
    return caps


def must_drop_caps(user: str | None) -> bool:
    """Whether an in-process client (``call``) must lose the DAC capabilities: root, and no
    real user switch. (A subprocess client loses every capability, always.)"""
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

    Only the DAC capabilities go: ``fn`` is the test author's own code, run in this process,
    and nothing keeps it from using what the process can (it is not isolated). On timeout the
    thread is left blocked (it is a daemon); whoever caused the hang (a FIFO, a silent server)
    releases it at teardown.
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
class InThread:
    """A launcher whose setup runs in the spawning thread itself, before the fork.

    ``setup()`` runs in :func:`run_process`'s throwaway thread while it still holds
    :data:`MOUNT_CAPS` (as root), and changes what that thread alone sees (a mount namespace
    of its own: ``unshare(CLONE_NEWNS)`` is allowed per thread). The child forked from the
    thread inherits that view; no helper program runs, and no Python code runs in a forked
    child. The thread then drops every capability as usual before the fork.
    """

    setup: Callable[[], None]


@dataclass(frozen=True)
class InChild:
    """A launcher whose setup runs in the forked child, just before it execs the client.

    For what one thread cannot do for itself: as non-root a mount namespace needs a user
    namespace, and only a single-threaded process may unshare one (the forked child is).
    ``setup`` is run as ``Popen``'s ``preexec_fn``, after the child made its session and
    before it closes the other descriptors and execs; the garbage collector is off there. It
    must take no lock another thread may hold (no logging, no import, no print: ``os`` calls
    and calls through an already loaded library only), and it must leave the child without
    any capability: the forking thread's own drop applies to the child's namespace entry,
    not to what a new user namespace grants. If it raises, the child exits before exec and
    ``run_process`` raises a :class:`~pytest_tlsenv.errors.TLSEnvError` with the message, as
    for an :class:`InThread` setup: the client never ran, so there is no verdict to give.
    """

    setup: Callable[[], None]


def _in_child(setup: Callable[[], None], report: int) -> Callable[[], None]:
    """``setup`` as a ``preexec_fn``: a failure goes to the ``report`` pipe, then exit 125."""

    def run() -> None:
        try:
            setup()
        except BaseException as e:  # noqa: BLE001 - reported to the parent, then exit
            os.write(report, str(e).encode(errors="replace")[:4000] or b"(no message)")
            os._exit(125)

    return run


def _setup_report(proc: subprocess.Popen[bytes], report: int) -> None:
    """Raise what an :class:`InChild` setup reported, if it did (after reaping the child).

    Popen returned, so the child has exec'd (its end of the pipe closed, close-on-exec) or
    exited: reading to EOF does not block.
    """
    chunks = []
    while chunk := os.read(report, 4096):
        chunks.append(chunk)
    if chunks:
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        raise TLSEnvError(b"".join(chunks).decode("utf-8", "replace"))


@dataclass(frozen=True)
class Finished:
    """A finished subprocess."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration: float


def client_ids(user: str) -> tuple[int, int]:
    """The uid and gid of the client user ``user`` (a name or a number), or a ConfigError.

    A user whose uid is 0 is refused: it reads every file whatever its mode (the capability
    drop that makes a permission fault bite is for root's own clients, and a switch to uid 0
    would keep every capability), so each fault of the store would silently be healthy.
    """
    try:
        entry = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
    except KeyError:
        raise ConfigError(f"user {user!r} does not exist on this machine") from None
    if entry.pw_uid == 0:
        raise ConfigError(
            f"user {user!r} has uid 0, and a client whose uid is 0 reads every file whatever "
            "its mode: permission faults would not bite. Leave user unset (as root the client "
            "then runs as uid 0 without any capability) or name an unprivileged user "
            "(user='nobody')"
        )
    return entry.pw_uid, entry.pw_gid


def _denied(st: os.stat_result, uid: int, gid: int, want: int) -> bool:
    """Whether the mode bits of ``st`` deny ``want`` (``os.R_OK``...) to uid/gid (no other
    groups: the switch clears them). The owner class alone applies to the owner, as in Linux."""
    if st.st_uid == uid:
        bits = st.st_mode >> 6
    elif st.st_gid == gid:
        bits = st.st_mode >> 3
    else:
        bits = st.st_mode
    return bits & want != want


def _has_acl(path: str) -> bool:
    try:
        return "system.posix_acl_access" in os.listxattr(path)
    except OSError:
        return False


def check_usable(path: str, uid: int, gid: int, *, want: int, what: str, user: str) -> None:
    """A ConfigError naming ``path`` and ``user`` if that user cannot use ``path``.

    Every directory on the way (as written, and once symlinks are resolved) must be
    searchable, and ``path`` itself must grant ``want`` (``os.X_OK`` to execute a program or
    enter a directory): checked from the mode bits, up front, instead of a client that fails
    in a confusing way (a venv under /root, mode 0700). A path with an ACL on the way is let
    through (the kernel will decide).
    """
    lexical = os.path.abspath(path)
    real = os.path.realpath(lexical)
    steps: list[tuple[str, int]] = []
    for chain in (lexical, real):
        parents = [chain]
        while parents[-1] != "/":
            parents.append(os.path.dirname(parents[-1]))
        steps += [(d, os.X_OK) for d in reversed(parents[1:])]
    steps.append((real, want))
    for step, need in steps:
        try:
            st = os.stat(step)
        except OSError:
            return  # absent: the usual FileNotFoundError says so later
        if step == real and need == os.X_OK and stat.S_ISREG(st.st_mode) and not st.st_mode & 0o111:
            return  # executable by nobody at all: exec says so for every user alike
        if _denied(st, uid, gid, need) and not _has_acl(step):
            mode = stat.filemode(st.st_mode)
            raise ConfigError(
                f"{what} {path!r} is not usable by user {user!r} (uid {uid}): {step} is "
                f"{mode} owned by uid {st.st_uid}. Put it where that user can reach it, or "
                "run without user="
            )


def _check_program(argv0: str, path: str, uid: int, gid: int, user: str) -> None:
    """``argv0`` as the switched user's execvp will find it, or a ConfigError naming it."""
    if "/" in argv0:
        check_usable(argv0, uid, gid, want=os.X_OK, what="the client", user=user)
        return
    found: list[str] = []
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory or ".", argv0)
        if os.path.isfile(candidate):
            try:
                check_usable(candidate, uid, gid, want=os.X_OK, what="the client", user=user)
            except ConfigError:
                found.append(candidate)
                continue
            return
    if found:  # only copies this user cannot run: say which, rather than "not found"
        check_usable(found[0], uid, gid, want=os.X_OK, what="the client", user=user)


def _killpg(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _popen(
    argv: Sequence[str], environ: Mapping[str, str], cwd: str | None, kwargs: dict[str, Any]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
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


def run_process(
    argv: Sequence[str],
    *,
    environ: Mapping[str, str],
    timeout: float,
    cwd: str | None = None,
    user: str | None = None,
    on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
    launcher: Launcher | InThread | InChild | None = None,
) -> Finished:
    """Run ``argv`` in its own session with exactly ``environ``; kill its group at the end.

    The child is forked from a thread without any capability and with no_new_privs set
    (:func:`drop_caps_for_exec`). With ``user``, the child switches to that user
    (``Popen(user=...)``: done by the C fork path, no ``preexec_fn``; the thread keeps only
    CAP_SETUID/CAP_SETGID for it, and the uid change clears them); that user must be able to
    run ``argv[0]`` and enter ``cwd`` (a ConfigError naming the path says otherwise).

    ``launcher(argv, environ, switch)`` returns the argv to spawn instead: a helper that
    prepares the child and then execs ``argv`` (system paths: a private mount namespace). It
    is spawned from the same thread, which keeps for it only what mounting needs
    (CAP_SYS_ADMIN, CAP_CHOWN, CAP_SETPCAP) and the switch capabilities; the helper drops
    everything itself after mounting. When a user switch is asked for it gets
    ``switch=(uid, gid)`` and does the switch itself after its setup, so it starts as root.
    An :class:`InThread` launcher instead prepares the spawning thread itself (holding only
    what mounting needs), which then drops every capability (but the switch ones, for
    ``Popen(user=...)``) and sets no_new_privs before it forks the client directly. An
    :class:`InChild` launcher (non-root) runs its setup in the forked child before exec.
    """
    kwargs: dict[str, Any] = {}
    switch: tuple[int, int] | None = None
    keep: tuple[int, ...] = ()
    in_thread = launcher if isinstance(launcher, InThread) else None
    in_child = launcher if isinstance(launcher, InChild) else None
    helper = None if isinstance(launcher, (InThread, InChild)) else launcher
    if user is not None:
        uid, gid = client_ids(user)
        if os.geteuid() != 0 and uid != os.geteuid():
            raise ConfigError(f"cannot run as {user!r}: switching users needs root")
        if os.geteuid() == 0:
            # Paths the caller chose must be usable by that user: say so now, by name.
            _check_program(argv[0], environ.get("PATH", os.defpath), uid, gid, user)
            if cwd is not None:
                check_usable(cwd, uid, gid, want=os.X_OK, what="the working directory", user=user)
            if helper is None:
                kwargs.update(user=uid, group=gid, extra_groups=[])
                keep = SWITCH_CAPS
            else:
                switch = (uid, gid)
    setup_keep: tuple[int, ...] | None = None  # what the in-thread setup holds, then `keep`
    if helper is not None:
        argv = helper(argv, environ, switch)
        if os.geteuid() == 0:
            keep = MOUNT_CAPS + (SWITCH_CAPS if switch is not None else ())
    elif in_thread is not None and os.geteuid() == 0:
        setup_keep = MOUNT_CAPS + keep
    box: dict[str, Any] = {}

    def spawn() -> None:
        try:
            if in_thread is not None:
                if setup_keep is not None:
                    drop_caps_for_exec(setup_keep)
                in_thread.setup()
            drop_caps_for_exec(keep, through_exec=helper is not None)
            if in_child is None:
                box["proc"] = _popen(argv, environ, cwd, kwargs)
                return
            report_r, report_w = os.pipe()  # close-on-exec: the client never holds it
            try:
                kwargs["preexec_fn"] = _in_child(in_child.setup, report_w)
                proc = _popen(argv, environ, cwd, kwargs)
                os.close(report_w)
                report_w = -1
                _setup_report(proc, report_r)
                box["proc"] = proc
            finally:
                os.close(report_r)
                if report_w != -1:
                    os.close(report_w)
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
