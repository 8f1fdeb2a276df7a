"""A journal of permission changes and FIFOs, so a killed session's leftovers get fixed.

Before it applies its first fault, a TLSEnv writes ``<journal dir>/<pid>-<n>.json`` naming its
store's root, and deletes the file once it has restored the store. If the process is killed
first (SIGKILL, OOM, a CI timeout; even while the faults are being applied), the next session
that uses pytest-tlsenv finds the journal of a dead process and walks that tree before
anything else: every entry ours and owner-accessible again, FIFOs removed. pytest's own
cleanup of old temp dirs then deletes ordinary files only.

The directory is ``$TLSENV_JOURNAL_DIR``, else ``<tmp>/.pytest-tlsenv-journal-<uid>``.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["Journal", "journal_dir", "recover", "tidy"]

_counter = itertools.count()
_tidy_at_exit: set[Path] = set()


def journal_dir() -> Path:
    explicit = os.environ.get("TLSENV_JOURNAL_DIR")
    if explicit:
        return Path(explicit)
    return Path(tempfile.gettempdir()) / f".pytest-tlsenv-journal-{os.geteuid()}"


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class Journal:
    """The journal of one TLSEnv."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or journal_dir()
        self.path = self.directory / f"{os.getpid()}-{next(_counter)}.json"

    def write(self, roots: Sequence[str]) -> None:
        """Record the trees to repair if this process dies (replaces the previous record).

        Written before the faults exist: at recovery every entry of each root is made ours
        and owner-accessible again, and FIFOs are removed.
        """
        if not roots:
            self.discard()
            return
        record = {"pid": os.getpid(), "start": _start_time(os.getpid()), "roots": list(roots)}
        if self.directory not in _tidy_at_exit:
            _tidy_at_exit.add(self.directory)
            atexit.register(tidy, self.directory)
        tmp = self.path.with_suffix(".tmp")
        for attempt in range(3):
            # The shared directory may be removed (empty) by another process's discard()
            # between our mkdir and our write: make it again and retry.
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                tmp.write_text(json.dumps(record))
                tmp.replace(self.path)
                return
            except FileNotFoundError:
                if attempt == 2:
                    raise

    def discard(self) -> None:
        """Everything was undone: forget the record.

        The directory stays for the next record (an rmdir and a mkdir per test cost ~0.15 ms
        on a slow disk); :func:`tidy` removes it when empty, at exit at the latest.
        """
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def tidy(directory: Path | None = None) -> None:
    """Remove the journal directory if it is empty (another process may still use it)."""
    with contextlib.suppress(OSError):
        (directory or journal_dir()).rmdir()


def _repair(root: str, done: list[str]) -> None:
    """Make every entry under ``root`` ours and owner-accessible again; remove FIFOs.

    Top-down, each directory repaired before it is listed (an unreadable-dir fault); symlinks
    are never followed (dangling and looping ones are faults too).
    """
    uid, gid = os.geteuid(), os.getegid()
    pending = [root]
    while pending:
        path = pending.pop()
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        if stat.S_ISFIFO(st.st_mode):
            with contextlib.suppress(OSError):
                os.unlink(path)
                done.append(f"removed FIFO {path}")
            continue
        is_dir = stat.S_ISDIR(st.st_mode)
        need = stat.S_IRWXU if is_dir else stat.S_IRUSR | stat.S_IWUSR
        with contextlib.suppress(OSError):
            if st.st_uid != uid and os.geteuid() == 0:
                os.chown(path, uid, gid, follow_symlinks=False)
                done.append(f"restored owner {uid} {path}")
            if st.st_mode & need != need:
                os.chmod(path, stat.S_IMODE(st.st_mode) | need)
                done.append(f"restored {oct(stat.S_IMODE(st.st_mode) | need)} {path}")
        if is_dir:
            with contextlib.suppress(OSError):
                pending += [entry.path for entry in os.scandir(path)]


def _alive(record: dict[str, object]) -> bool:
    pid = record.get("pid")
    if not isinstance(pid, int):
        return False
    return _start_time(pid) == record.get("start")


def recover(directory: Path | None = None) -> list[str]:
    """Undo what dead processes left: restore owners/modes, remove FIFOs. Returns what it did."""
    directory = directory or journal_dir()
    done: list[str] = []
    try:
        files = sorted(directory.glob("*.json"))
    except OSError:
        return done
    for file in files:
        try:
            record = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        if _alive(record):
            continue
        for root in record.get("roots", []):
            _repair(root, done)
        with contextlib.suppress(OSError):
            file.unlink()
    with contextlib.suppress(OSError):
        directory.rmdir()
    return done
