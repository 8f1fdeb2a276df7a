"""Where a session's scenario roots live: a tmpfs when one is usable, else pytest's basetemp.

A scenario root is a few dozen small files and directories that live for one test. On a
tmpfs creating and removing them costs a fraction of what it costs on a disk file system
(no journal, no writeback), so by default (``tlsenv_root_dir = auto``) the roots go to the
first usable tmpfs of

1. ``$XDG_RUNTIME_DIR`` (the user's own 0700 runtime directory, when the login manager made
   one), then
2. ``/dev/shm``,

and to pytest's basetemp when neither is usable. A candidate is usable when it is a tmpfs
(``/proc/self/mountinfo``), is not mounted ``noexec`` (clients run programs out of their
venvs), and ``statvfs`` shows at least :data:`MIN_FREE_BYTES` and :data:`MIN_FREE_INODES`
free. Each root is removed at its test's teardown, so the space used is bounded by the
environments open at once, never by the length of the session.

/dev/shm is writable by every user: the plugin uses only its own directory there,
``pytest-tlsenv-<uid>``, created exclusively with mode 0700 and checked (owned by this user,
not a symlink; :mod:`pytest_tlsenv.privdir`); one that fails the checks (someone planted it)
is refused, and the roots go to the basetemp.

``tlsenv_root_dir = basetemp`` keeps the roots under pytest's basetemp (where they always
were before the tmpfs default); any other value is a directory to use (made if missing, and
checked the same way).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import privdir

__all__ = [
    "MIN_FREE_BYTES",
    "MIN_FREE_INODES",
    "SHARED_TMPFS",
    "Location",
    "choose",
    "is_tmpfs",
    "tmpfs_free",
]

#: A tmpfs with less free space than this is not used (a root needs tens of KiB; a store of
#: 10,000 filler CAs about 50 MiB, and a full tmpfs falls back at the first ENOSPC anyway).
MIN_FREE_BYTES = 16 << 20
#: ... nor one with fewer free inodes than this.
MIN_FREE_INODES = 4096
#: Errors that mean "this file system is full": the roots move to the basetemp.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

#: The shared tmpfs tried after $XDG_RUNTIME_DIR.
SHARED_TMPFS = Path("/dev/shm")


@dataclass
class Location:
    """The directory the session's roots go in, and why it is there.

    ``base`` is ``None`` for the basetemp (the caller makes it with ``tmp_path_factory``).
    ``note`` is the one line a user should read about the choice (a tmpfs that was too full
    or unsafe); None when nothing surprising happened.
    """

    base: Path | None
    kind: str  # "tmpfs", "dir" (a chosen directory that is not a tmpfs), "basetemp"
    note: str | None = None
    #: ``base``'s parent is the plugin's own per-user directory (removed when empty).
    own_parent: bool = False


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as ``\\ooo``."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mount_of(path: str) -> tuple[str, str, str] | None:
    """(mount point, fstype, mount options) of the mount ``path`` is on, the topmost one."""
    real = os.path.realpath(path)
    best: tuple[str, str, str] | None = None
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 6:
            continue
        point = _unescape(fields[4])
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        # Later lines are mounted on top of earlier ones at the same point.
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, right.split()[0], fields[5])
    return best


def is_tmpfs(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is on a tmpfs (memory: fast to create and remove files on)."""
    mount = _mount_of(os.fspath(path))
    return mount is not None and mount[1] == "tmpfs"


def tmpfs_free(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Free bytes and free inodes for this user on the file system of ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize, st.f_favail


def _usable(candidate: Path) -> str | None:
    """Why ``candidate`` cannot hold roots (None: it can)."""
    if not candidate.is_absolute() or not candidate.is_dir():
        return "missing"
    mount = _mount_of(str(candidate))
    if mount is None or mount[1] != "tmpfs":
        return "not a tmpfs"
    if "noexec" in mount[2].split(","):
        return "mounted noexec"
    try:
        free, inodes = tmpfs_free(candidate)
    except OSError as e:
        return f"statvfs failed: {e.strerror}"
    if free < MIN_FREE_BYTES or inodes < MIN_FREE_INODES:
        return f"full: {free >> 10} KiB and {inodes} inodes free"
    return None


def _session_dir(parent: Path) -> Path:
    """A fresh 0700 directory for one session under ``parent``."""
    return Path(tempfile.mkdtemp(prefix="session-", dir=parent))


def _own_dir(candidate: Path, *, runtime: bool) -> Path:
    """This user's directory under ``candidate``: ``pytest-tlsenv`` in the user's own
    runtime dir, ``pytest-tlsenv-<uid>`` (made exclusively, checked) in a shared one."""
    name = "pytest-tlsenv" if runtime else f"pytest-tlsenv-{os.geteuid()}"
    path = candidate / name
    with contextlib.suppress(FileExistsError):  # ours from an earlier session, or planted:
        os.mkdir(path, 0o700)  # check() tells
    return privdir.check(path, what="the scenario root directory")


def _in(parent: Path) -> Path:
    """A session directory under ``parent``; another session's cleanup may remove an empty
    ``parent`` between the check and the mkdtemp: then it is made again."""
    for attempt in range(3):
        try:
            return _session_dir(parent)
        except FileNotFoundError:
            if attempt == 2:
                raise
            with contextlib.suppress(FileExistsError):
                os.mkdir(parent, 0o700)
            privdir.check(parent, what="the scenario root directory")
    raise AssertionError("unreachable")


def choose(setting: str) -> Location:
    """Where this session's roots go for ``setting`` (ini ``tlsenv_root_dir``).

    ``auto``: the first usable tmpfs of ``$XDG_RUNTIME_DIR`` and ``/dev/shm``, else the
    basetemp; ``basetemp``: the basetemp; a path: that directory, unless it is a tmpfs too
    full to use (then the basetemp, with a note).
    """
    setting = setting.strip() or "auto"
    if setting == "basetemp":
        return Location(None, "basetemp")
    notes: list[str] = []
    if setting == "auto":
        runtime = os.environ.get("XDG_RUNTIME_DIR", "")
        candidates = [(Path(runtime), True)] if os.path.isabs(runtime) else []
        candidates.append((SHARED_TMPFS, False))
        for candidate, is_runtime in candidates:
            why = _usable(candidate)
            if why == "missing" or why == "not a tmpfs" or why == "mounted noexec":
                continue  # not a place for roots here: nothing to tell
            if why is not None:
                notes.append(f"{candidate} is {why}")
                continue
            try:
                own = _own_dir(candidate, runtime=is_runtime)
                return Location(_in(own), "tmpfs", own_parent=True)
            except privdir.UnsafeDirectoryError as e:
                notes.append(str(e))
            except OSError as e:
                notes.append(f"{candidate}: {e.strerror or e}")
        return Location(None, "basetemp", "; ".join(notes) or None)
    chosen = Path(setting).expanduser()
    privdir.ensure(chosen, what="tlsenv_root_dir", forbid=0o022)
    if is_tmpfs(chosen):
        why = _usable(chosen)
        if why is not None:
            return Location(None, "basetemp", f"{chosen} is {why}")
        return Location(_in(chosen), "tmpfs")
    return Location(_in(chosen), "dir")
