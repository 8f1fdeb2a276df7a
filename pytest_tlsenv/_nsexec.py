"""Enter a private mount namespace, show a trust store at the system paths, drop caps, exec.

This file is the whole of the namespace helper, and imports nothing but the standard library:
reproduction bundles run it *by path* (``python -I -S nsexec.py PLAN... -- ARGV...``). In a
session nothing execs it: ``run`` applies the plan in the thread that forks the client
(root) or in the forked child before exec (non-root), and ``call`` in a forked child; each
start of it as a program cost a bare interpreter plus ctypes (about 20 ms). Hence system
calls only, through raw descriptors, in :func:`apply`. The plan, a list of words
(:func:`apply`), is built by
:mod:`pytest_tlsenv.namespace`, which documents the design; this file only executes it:

1. ``unshare(CLONE_NEWNS)`` (root) or ``unshare(CLONE_NEWUSER | CLONE_NEWNS)`` with the
   caller's own uid and gid mapped to themselves (non-root), then ``mount --make-rprivate /``
   so nothing done here propagates back to the host;
2. the plan's mounts: ``bind`` (store path over host path), ``robind`` (the same, read-only:
   an empty stand-in that masks a host path) and ``graft`` (a host directory that must gain
   entries it lacks: a tmpfs over it, every original entry bound back *read-only*, then the
   tmpfs itself made read-only). What is the host's stays unwritable through the client's
   view even for a uid-0 client that owns it (MS_BIND, then MS_REMOUNT|MS_BIND|MS_RDONLY);
3. capabilities: ``all`` empties every set (effective, permitted, inheritable, ambient and
   bounding) and sets no_new_privs: as root, so the client cannot chmod its fault away
   (CAP_FOWNER) nor unmount the store to see the host's (CAP_SYS_ADMIN); in a new user
   namespace, where a process holds every capability *there* and would read a chmod-000 file
   it owns. ``dac`` (only for ``call``'s forked child, the test author's own code) drops
   CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH. A switch to another uid/gid (root only) keeps
   CAP_SETUID/CAP_SETGID until the switch, which clears them;
4. ``execvpe`` the client. Cleanup is implicit: the namespace dies with its last process.
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_SETGID = 6
CAP_SETUID = 7
_SYS_CAPGET = {"x86_64": 125, "aarch64": 90}
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]


class SetupError(OSError):
    """A step of the namespace setup failed (the message names the step)."""


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise SetupError(err, f"{what}: {os.strerror(err)}")


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    ret = _libc.mount(_b(source), _b(target), _b(fstype), flags, data.encode() or None)
    _check(ret, f"mount({source!r}, {target!r}, {fstype!r}, {flags:#x})")


def enter(userns: bool) -> None:
    """Unshare a mount namespace (and a user namespace mapping our own ids), make it private."""
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWNS | (CLONE_NEWUSER if userns else 0)), "unshare")
    if userns:
        # setgroups must be denied before an unprivileged process may write gid_map.
        # Raw descriptors, no io objects: ``run`` may call this in a child forked from a
        # threaded process, where only system calls are safe.
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                           ("gid_map", f"{gid} {gid} 1")):  # fmt: skip
            fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
            try:
                os.write(fd, text.encode())
            finally:
                os.close(fd)
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def bind(source: str, target: str, *, readonly: bool = False) -> None:
    """Show ``source`` (file or directory) at ``target``; unwritable there if ``readonly``."""
    mount(source, target, None, MS_BIND | MS_REC)
    if readonly:
        make_readonly(target)


def make_readonly(target: str) -> None:
    """Remount the mount at ``target`` read-only (that mount point only, not its submounts).

    A bind mount takes MS_RDONLY only in a remount. The nosuid/nodev/noexec flags it has are
    passed again: in a user namespace they are locked, and a remount that drops them fails.
    """
    have = os.statvfs(target).f_flag
    keep = 0
    for st_flag, ms_flag in ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV),
                             (os.ST_NOEXEC, MS_NOEXEC)):  # fmt: skip
        if have & st_flag:
            keep |= ms_flag
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep)


def _stub(source: str, target: str, *, readonly: bool) -> None:
    """Make ``target`` (in a fresh tmpfs) look like ``source``: same symlink, or a bind of it."""
    st = os.lstat(source)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(source), target)
        return
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(target)
    else:
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
    bind(source, target, readonly=readonly)


def graft(parent: str, stage: str, additions: list[list[str]]) -> None:
    """Give the host directory ``parent`` new entries without touching the host.

    ``parent`` is bound to ``stage`` (a directory of ours), a tmpfs with ``parent``'s mode goes
    over ``parent``, every original entry is bound back read-only (symlinks are copied), then
    each ``[name, source]`` of ``additions`` is added the same way (as it is), and the tmpfs
    becomes read-only. The tmpfs root is owned by the mounting uid: as root it is chowned back
    to ``parent``'s owner; in a user namespace the original owner is not mapped, so it stays
    ours (mode is kept).
    """
    bind(parent, stage)
    st = os.stat(stage)
    mount("tlsenv", parent, "tmpfs", 0, f"mode={stat.S_IMODE(st.st_mode):o}")
    if os.geteuid() == 0:
        os.chown(parent, st.st_uid, st.st_gid)
    for name in sorted(os.listdir(stage)):
        _stub(os.path.join(stage, name), os.path.join(parent, name), readonly=True)
    for name, source in additions:
        _stub(source, os.path.join(parent, name), readonly=False)
    make_readonly(parent)
    _check(_libc.umount2(_b(stage), MNT_DETACH), f"umount2({stage!r})")


def _syscalls() -> tuple[int, int]:
    machine = os.uname().machine
    if machine not in _SYS_CAPGET:
        raise SetupError(0, f"capability syscalls unknown on {machine}")
    return _SYS_CAPGET[machine], _SYS_CAPSET[machine]


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_caps(which: str, keep: tuple[int, ...] = ()) -> None:
    """Drop ``all`` capabilities (but ``keep``) and set no_new_privs, or only the ``dac`` ones.

    From the bounding set (so an exec cannot bring them back), the ambient set, and the
    effective, permitted and inheritable sets; ``keep`` stays effective and permitted only
    (what a user switch needs; the switch clears it). ``none`` keeps everything.
    """
    if which == "none":
        return
    if which == "dac":
        caps = [CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH]
    elif which == "all":
        fd = os.open("/proc/sys/kernel/cap_last_cap", os.O_RDONLY)
        try:
            caps = list(range(int(os.read(fd, 32)) + 1))
        finally:
            os.close(fd)
    else:
        raise SetupError(0, f"unknown capability drop {which!r}")
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient")
    for cap in caps:
        _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"PR_CAPBSET_DROP {cap}")
    if which == "all":
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    capget, capset = _syscalls()
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    _check(_libc.syscall(capget, ctypes.byref(header), data), "capget")
    for cap in caps:
        word, bit = divmod(cap, 32)
        data[word].inheritable &= ~(1 << bit) & 0xFFFFFFFF
        if cap not in keep:
            data[word].effective &= ~(1 << bit) & 0xFFFFFFFF
            data[word].permitted &= ~(1 << bit) & 0xFFFFFFFF
    _check(_libc.syscall(capset, ctypes.byref(header), data), "capset")


def apply(words: list[str]) -> None:
    """Everything but the exec: namespace, mounts, capability drop, user switch.

    ``words``: ``USERNS DROP SWITCH`` (``0``/``1``, ``none``/``dac``/``all``, ``-`` or
    ``UID:GID``), then operations: ``bind SOURCE TARGET``, ``robind SOURCE TARGET`` (read-only)
    and ``graft PARENT STAGE N NAME1 SOURCE1 ... NAMEn SOURCEn``.
    """
    if len(words) < 3:
        raise SetupError(0, f"a plan starts with USERNS DROP SWITCH, got {words!r}")
    userns, drop, switch = words[:3]
    enter(userns == "1")
    i = 3
    while i < len(words):
        op = words[i]
        if op in ("bind", "robind"):
            bind(words[i + 1], words[i + 2], readonly=op == "robind")
            i += 3
        elif op == "graft":
            n = int(words[i + 3])
            flat = words[i + 4 : i + 4 + 2 * n]
            graft(words[i + 1], words[i + 2], [flat[k : k + 2] for k in range(0, 2 * n, 2)])
            i += 4 + 2 * n
        else:
            raise SetupError(0, f"unknown mount operation {op!r}")
    if switch != "-":
        # Bounding, ambient, inheritable sets emptied and no_new_privs set first; the setuid
        # away from 0 then clears the two capabilities it needed (no PR_SET_KEEPCAPS).
        drop_caps("all", keep=(CAP_SETGID, CAP_SETUID))
        uid, _, gid = switch.partition(":")
        os.setgroups([])
        os.setgid(int(gid))
        os.setuid(int(uid))
    else:
        drop_caps(drop)


def which(name: str, path: str) -> str:
    """``name`` looked up in ``path`` as ``execvp`` would, for the uid we now have.

    Not ``os.execvpe``: it imports ``warnings`` lazily, and after a switch to another user
    the interpreter's own stdlib may be out of reach (pyenv under /root, mode 0700).
    """
    if "/" in name:
        return name
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return name


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: _nsexec.py USERNS DROP SWITCH [OPERATION...] -- ARGV...", file=sys.stderr)
        return 2
    sep = argv.index("--")
    try:
        apply(argv[1:sep])
    except (OSError, ValueError, IndexError) as e:
        print(f"tlsenv-nsexec: namespace setup failed: {e}", file=sys.stderr)
        return 125
    args = argv[sep + 1 :]
    try:
        os.execve(which(args[0], os.environ.get("PATH", os.defpath)), args, os.environ)
    except OSError as e:
        print(f"tlsenv-nsexec: cannot exec {args[0]!r}: {e}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv))
