"""A journal of what a session leaves on disk and running, so a killed session's leftovers go.

Before it applies its first fault (or, for a root outside pytest's temp dirs, when it makes
it), a TLSEnv writes ``<journal dir>/<pid>-<n>-<version>.json`` naming its root, and deletes it
once it has restored and removed it; a subprocess client's process group is added when it
starts. The plugin records its session directories (the PKI's keys, the scenario roots) the
same way. If the process is killed first (SIGKILL, OOM, a CI timeout; even while the faults
are being applied), the next session that uses pytest-tlsenv finds the record of a dead
process and, before anything else, kills the recorded process groups that are still the same
processes, gives each FIFO a writer (so a blocked reader returns) and removes it, gives every
entry back to its owner, and removes the roots.

The journal is trusted only because nobody else can write it: it is ``$TLSENV_JOURNAL_DIR``,
else ``$XDG_STATE_HOME/pytest-tlsenv/journal`` (``~/.local/state/...``), else, when the home
directory is not writable, ``<tmp>/.pytest-tlsenv-journal-<uid>`` made exclusively; each must
be this user's own directory with mode 0700 (:mod:`pytest_tlsenv.privdir`). Even so a record
is acted on only within roots that carry the record's random token in a marker file owned by
this user; repair never follows a symlink, never enters a directory owned by anyone but this
user or the fault uid, never chowns to anyone but the recorded owner, and clears setuid and
setgid bits instead of restoring them.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import itertools
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import privdir

__all__ = ["MARKER", "Journal", "covered", "journal_dir", "recover", "tidy"]

#: The file in each recorded root that carries its record's token.
MARKER = ".tlsenv-journal"

_WHAT = "the fault journal"
_counter = itertools.count()
_tidy_at_exit: set[Path] = set()
_ensured: set[Path] = set()
# Roots named by this process's live records, with how many records name each.
_covering: dict[str, int] = {}


def covered(path: str | os.PathLike[str]) -> bool:
    """Whether a live record of this process already names ``path`` or a directory above it.

    Recovery repairs a recorded root's whole tree, so a scenario root inside the plugin's
    session directory needs no record (and no marker file) of its own.
    """
    path = os.fspath(path)
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in _covering)


def _home_location() -> Path:
    xdg = os.environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path(os.path.expanduser("~")) / ".local" / "state"
    return base / "pytest-tlsenv" / "journal"


def _tmp_name() -> str:
    return f".pytest-tlsenv-journal-{os.geteuid()}"


def _creatable(path: Path) -> bool:
    """Whether ``path`` exists or its nearest existing ancestor is writable by us."""
    for p in [path, *path.parents]:
        if os.path.lexists(p):
            return p == path or os.access(p, os.W_OK | os.X_OK)
    return False


def journal_dir(*, create: bool = False) -> Path:
    """Where this user's journal lives; with ``create``, made and checked (it may not be
    created otherwise). Raises :class:`~pytest_tlsenv.privdir.UnsafeDirectoryError` for a
    directory another user could have written."""
    explicit = os.environ.get("TLSENV_JOURNAL_DIR")
    if explicit:
        path = Path(explicit)
        return privdir.ensure(path, what=f"{_WHAT} ($TLSENV_JOURNAL_DIR)") if create else path
    home = _home_location()
    if home.is_absolute() and _creatable(home):
        if not create:
            return home
        try:
            return privdir.ensure(home, what=_WHAT)
        except privdir.UnsafeDirectoryError:
            raise
        except OSError:
            pass  # a read-only home: the tmp fallback below
    what = f"{_WHAT} (in tmp: {home} cannot be made)"
    if create:
        return privdir.ensure_in_tmp(_tmp_name(), what=what)
    return Path(tempfile.gettempdir()) / _tmp_name()


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command: [state, ppid, pgrp, session, ...]."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


_own: dict[int, str | None] = {}


def _own_start() -> str | None:
    pid = os.getpid()  # a forked child is another process: keyed by pid
    if pid not in _own:
        _own[pid] = _start_time(pid)
    return _own[pid]


def _write_private(path: Path, data: bytes, flags: int = os.O_TRUNC) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | flags, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> None:
    _write_private(path, data, os.O_EXCL)


class Journal:
    """The journal record of one owner of roots and client processes (a TLSEnv, a session).

    ``fault_uid`` is the uid that faults gave files to: recovery gives those back to this user.
    """

    def __init__(self, directory: Path | None = None, *, fault_uid: int | None = None) -> None:
        self._directory = directory
        self.stem = f"{os.getpid()}-{next(_counter)}"
        self._version = itertools.count()
        self._current: Path | None = None
        self.token = secrets.token_hex(16)
        self.fault_uid = fault_uid
        self.roots: list[str] = []
        self.keep: list[str] = []
        self.groups: dict[int, str] = {}
        self._marked: set[str] = set()

    @property
    def directory(self) -> Path:
        if self._directory is None:
            self._directory = journal_dir(create=True)
            _ensured.add(self._directory)
        return self._directory

    @property
    def path(self) -> Path | None:
        """The record's file, while there is one."""
        return self._current

    def write(self, roots: Sequence[str | os.PathLike[str]], *, keep: Sequence[str] = ()) -> None:
        """Record the trees to repair and remove if this process dies (replaces the last).

        Written before the faults exist. Each root gets a marker holding this record's token:
        recovery touches only roots that carry it. Entries named in ``keep`` (direct children
        of a root) are repaired but not removed.
        """
        self._uncover()
        self.roots = [os.fspath(r) for r in roots]
        for root in self.roots:
            _covering[root] = _covering.get(root, 0) + 1
        self.keep = [os.fspath(k) for k in keep]
        for root in self.roots:
            if root not in self._marked:
                _write_private(Path(root) / MARKER, self.token.encode())
                self._marked.add(root)
        self._flush()

    def started(self, proc: subprocess.Popen[bytes]) -> None:
        """A client's process group began (``run_process(on_start=...)``): record it."""
        start = _start_time(proc.pid)
        if start is not None:
            self.groups[proc.pid] = start
            self._flush()

    def ended(self, pid: int) -> None:
        """The group is gone: forgotten here, and in the file at its next write (a stale
        entry is harmless: recovery kills only a group whose leader has the same start time).
        """
        self.groups.pop(pid, None)

    def _uncover(self) -> None:
        for root in self.roots:
            left = _covering.get(root, 0) - 1
            if left > 0:
                _covering[root] = left
            else:
                _covering.pop(root, None)

    def _flush(self) -> None:
        if not self.roots and not self.groups:
            self._drop_file()
            return
        record = {
            "pid": os.getpid(),
            "start": _own_start(),
            "owner": [os.geteuid(), os.getegid()],
            "fault_uid": self.fault_uid,
            "token": self.token,
            "roots": self.roots,
            "keep": self.keep,
            "groups": sorted(self.groups.items()),
        }
        directory = self.directory
        if directory not in _tidy_at_exit:
            _tidy_at_exit.add(directory)
            atexit.register(tidy, directory)
        data = json.dumps(record).encode()
        # Each version is a new file, and the previous one goes once it is complete: no
        # moment without a whole record, and no rename over an existing file, which ext4
        # turns into a synchronous flush (~7 ms per client run on a slow disk).
        path = directory / f"{self.stem}-{next(self._version)}.json"
        for attempt in range(3):
            # Another process's tidy() may remove the (empty) directory between two writes:
            # make it again, exclusively, and check it again.
            if directory not in _ensured:
                privdir.ensure(directory, what=_WHAT)
                _ensured.add(directory)
            try:
                _write_new(path, data)
                break
            except FileNotFoundError:
                _ensured.discard(directory)
                if attempt == 2:
                    raise
        self._drop_file()
        self._current = path

    def discard(self) -> None:
        """Everything was undone: forget the record.

        The directory stays for the next record (an rmdir and a mkdir per test cost ~0.15 ms
        on a slow disk); :func:`tidy` removes it when empty, at exit at the latest.
        """
        self._uncover()
        self.roots = []
        self._drop_file()

    def _drop_file(self) -> None:
        if self._current is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._current)
            self._current = None


def tidy(directory: Path | None = None) -> None:
    """Remove the journal directory if it is empty (another process may still use it)."""
    directory = directory or journal_dir()
    _ensured.discard(directory)
    with contextlib.suppress(OSError):
        directory.rmdir()


# -- recovery -------------------------------------------------------------------------------


def _alive(pid: object, start: object) -> bool:
    """Whether ``pid`` is the same process as recorded and not a zombie."""
    if not isinstance(pid, int):
        return False
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in "ZX" and fields[19] == start


def _kill_group(pgid: int, start: str, done: list[str]) -> None:
    """Kill a recorded client group, only if it is still the one we started."""
    leader = _stat_fields(pgid)
    if leader is not None:
        if leader[19] != start or int(leader[2]) != pgid:
            return  # the pid was reused: another process, not ours to kill
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
            done.append(f"killed process group {pgid}")
        return
    # The leader is gone, members may remain. The kernel does not reuse a pid that is still
    # some process's group id, so members of group pgid that started after the leader are its.
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is None or int(fields[2]) != pgid or int(fields[3]) != pgid:
            continue
        if int(fields[19]) >= int(start):
            with contextlib.suppress(OSError):
                os.kill(int(entry), signal.SIGKILL)
                done.append(f"killed process {entry} of group {pgid}")


def _marker_ok(root: str, token: str, uid: int) -> str | None:
    """Why ``root`` is not a root this record made (None if it is)."""
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return "gone"
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
        return "not a directory of ours"
    try:
        fd = os.open(os.path.join(root, MARKER), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return "no marker"
    try:
        mst = os.fstat(fd)
        if not stat.S_ISREG(mst.st_mode) or mst.st_uid != uid:
            return "a marker that is not ours"
        if not secrets.compare_digest(os.read(fd, 64), token.encode()):
            return "another record's marker"
    finally:
        os.close(fd)
    return None


def _fix(path: str, st: os.stat_result, mode: int, owner: tuple[int, int] | None) -> bool:
    """chown/chmod the very inode ``st`` describes (through an O_PATH fd: no symlink, no
    swap between the look and the change). False if it is no longer there."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or stat.S_ISLNK(now.st_mode):
            return False
        inode = f"/proc/self/fd/{fd}"
        if owner is not None:
            os.chown(inode, *owner)
        os.chmod(inode, mode)  # after chown, which may clear bits: exactly this mode
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _release_fifo(path: str, done: list[str]) -> None:
    """Give a FIFO a writer (a reader blocked on it returns) and remove it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as e:
        if e.errno != errno.ENXIO:  # ENXIO: nobody is reading it
            done.append(f"could not open FIFO {path}: {e.strerror}")
    else:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(path)
        done.append(f"removed FIFO {path}")


def _repair(root: str, owner: tuple[int, int], fault_uid: int | None, done: list[str]) -> None:
    """Give every entry under ``root`` back to ``owner``, owner-accessible, no setuid/setgid;
    release and remove FIFOs.

    Top-down, each directory repaired before it is listed (an unreadable-dir fault). Symlinks
    are never followed, and an entry owned by anyone but the owner or the fault uid is left
    alone and, if a directory, not entered.
    """
    uid = owner[0]
    ours = {uid} if fault_uid is None else {uid, fault_uid}
    pending = [root]
    while pending:
        path = pending.pop()
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if st.st_uid not in ours or not (
            stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode) or stat.S_ISFIFO(st.st_mode)
        ):
            continue  # symlinks, sockets, devices, others' entries: removal only
        is_dir = stat.S_ISDIR(st.st_mode)
        need = stat.S_IRWXU if is_dir else stat.S_IRUSR | stat.S_IWUSR
        mode = stat.S_IMODE(st.st_mode)
        new = (mode & ~(stat.S_ISUID | stat.S_ISGID)) | need
        chown = st.st_uid != uid and os.geteuid() == 0
        if (new != mode or chown) and _fix(path, st, new, owner if chown else None):
            if chown:
                done.append(f"restored owner {uid} {path}")
            if new != mode:
                done.append(f"restored {oct(new)} {path}")
        if stat.S_ISFIFO(st.st_mode):
            _release_fifo(path, done)
        elif is_dir:
            with contextlib.suppress(OSError):
                pending += [entry.path for entry in os.scandir(path)]


def _remove(root: str, keep: Sequence[str], done: list[str]) -> None:
    kept = [k for k in keep if os.path.dirname(k) == root]
    if not kept:
        shutil.rmtree(root, ignore_errors=True)
        done.append(f"removed {root}")
        return
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            if entry.path in kept:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
    done.append(f"removed {root} (but for {len(kept)} kept root(s))")


def _valid(record: Any) -> bool:
    """Whether a record has the shape :meth:`Journal.write` gives it."""
    if not isinstance(record, dict):
        return False
    owner = record.get("owner")
    groups = record.get("groups")
    return (
        isinstance(record.get("pid"), int)
        and isinstance(record.get("token"), str)
        and owner == [os.geteuid(), os.getegid()]
        and (record.get("fault_uid") is None or isinstance(record.get("fault_uid"), int))
        and isinstance(record.get("roots"), list)
        and all(isinstance(r, str) and os.path.isabs(r) for r in record["roots"])
        and isinstance(record.get("keep"), list)
        and all(isinstance(k, str) for k in record["keep"])
        and isinstance(groups, list)
        and all(
            isinstance(g, list)
            and len(g) == 2
            and isinstance(g[0], int)
            and g[0] > 1
            and isinstance(g[1], str)
            and g[1].isdigit()
            for g in groups
        )
    )


def _read_record(path: str) -> Any:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return json.loads(f.read(1 << 20))
    except ValueError:
        return None
    finally:
        os.close(fd)


def recover(directory: Path | None = None) -> list[str]:
    """Undo what dead processes left: kill their client groups, release and remove FIFOs,
    restore owners/modes, remove their roots. Returns what it did.

    Raises :class:`~pytest_tlsenv.privdir.UnsafeDirectoryError` if the journal directory is
    not this user's own (mode 0700, not a symlink): its records could be anyone's.
    """
    directory = directory or journal_dir()
    if not os.path.lexists(directory):
        return []  # the common case: nothing was ever left behind
    privdir.check(directory, what=_WHAT)
    names = os.listdir(directory)
    done: list[str] = []
    for name in sorted(names):
        path = os.path.join(directory, name)
        if not name.endswith(".json"):
            continue
        try:
            record = _read_record(path)
        except OSError:
            continue
        if not _valid(record):
            # Not something this plugin wrote (or an older format): never acted upon. It may
            # be a live process's record being written: removed only once that one is dead.
            pid = name.split("-", 1)[0]
            if not (pid.isdigit() and _stat_fields(int(pid)) is not None):
                with contextlib.suppress(OSError):
                    os.unlink(path)
                done.append(f"discarded {path}: not a record of this user's sessions")
            continue
        if _alive(record["pid"], record.get("start")):
            continue
        for pgid, start in record["groups"]:
            _kill_group(pgid, start, done)
        owner = (record["owner"][0], record["owner"][1])
        for root in record["roots"]:
            why = _marker_ok(root, record["token"], owner[0])
            if why == "gone":
                continue
            if why is not None:
                done.append(f"left {root} alone: {why}")
                continue
            _repair(root, owner, record["fault_uid"], done)
            _remove(root, record["keep"], done)
        with contextlib.suppress(OSError):
            os.unlink(path)
    with contextlib.suppress(OSError):
        directory.rmdir()
    return done
