"""Directories only their owner can write: where the plugin keeps what it later trusts.

The fault journal names trees that a later (maybe root) session repairs, and the client cache
holds executables that tests run: whoever can write there runs code as the next session's
user. Other local users may be hostile, so a directory is used only if it is

* owned by the effective uid, a real directory (not a symlink), with no group/other write
  (the journal: no group/other access at all), and
* reached through ancestors that only root or this user can change (a world-writable
  ancestor must be sticky, as /tmp is, so nobody else can rename our entries).

In a world-writable place the directory is created exclusively (a plain ``mkdir``: if it is
already there, someone may have planted it, and it must pass the same checks). Otherwise
:class:`UnsafeDirectoryError` names the path and what is wrong with it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from .errors import TLSEnvError

__all__ = ["UnsafeDirectoryError", "check", "ensure", "ensure_in_tmp"]

# Ancestors already found safe in this process (they are root's or ours: they stay so).
_safe_ancestors: set[str] = set()


class UnsafeDirectoryError(TLSEnvError, PermissionError):
    """A directory the plugin must trust could have been written by another user."""


def _problem(st: os.stat_result, forbid: int) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return "a symlink"
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})"
    if st.st_mode & forbid:
        return f"mode {stat.S_IMODE(st.st_mode):04o}: other users may write or read it"
    return None


def _check_ancestors(path: Path, what: str) -> None:
    real = Path(os.path.realpath(path.parent))
    for ancestor in [real, *real.parents]:
        key = str(ancestor)
        if key in _safe_ancestors:
            break  # and so are its own ancestors
        st = os.lstat(ancestor)
        mode = stat.S_IMODE(st.st_mode)
        why = None
        if st.st_uid not in (0, os.geteuid()):
            why = f"is owned by uid {st.st_uid}, who could replace what is below it"
        elif mode & 0o022 and not mode & stat.S_ISVTX:
            why = f"has mode {mode:04o}: other users could rename what is below it"
        if why is not None:
            raise UnsafeDirectoryError(
                f"{what} {path} is unsafe: its ancestor {ancestor} {why}; choose a "
                "directory only you (or root) can change"
            )
    for ancestor in [real, *real.parents]:
        _safe_ancestors.add(str(ancestor))


def check(path: Path, *, what: str, forbid: int = 0o077) -> Path:
    """Raise :class:`UnsafeDirectoryError` unless ``path`` is this user's own directory."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise UnsafeDirectoryError(f"{what} {path} does not exist") from None
    why = _problem(st, forbid)
    if why is not None:
        raise UnsafeDirectoryError(
            f"{what} {path} is {why}: refusing to use it (another user may have planted it); "
            "remove it, or choose another directory that only you own (mode 0700)"
        )
    _check_ancestors(path, what)
    return path


def ensure(path: Path, *, what: str, forbid: int = 0o077) -> Path:
    """``path`` as this user's own directory: made (mode 0700) if missing, else checked.

    Raises :class:`UnsafeDirectoryError` if it exists and fails the checks, and ``OSError``
    if it cannot be made (the caller may fall back to :func:`ensure_in_tmp`).
    """
    for attempt in range(100):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, 0o700)
        try:
            return check(path, what=what, forbid=forbid)
        except UnsafeDirectoryError:
            if attempt == 99 or os.path.lexists(path):
                raise
            # Another process removed it, empty, between the two (a session's tidy-up of a
            # shared directory: xdist workers' journal): make it again.
    raise AssertionError("unreachable")


def ensure_in_tmp(name: str, *, what: str, forbid: int = 0o077) -> Path:
    """``<tmp>/name``, made exclusively with mode 0700, or refused if someone else's."""
    path = Path(tempfile.gettempdir()) / name
    with contextlib.suppress(FileExistsError):  # ours from an earlier session, or planted:
        os.mkdir(path, 0o700)  # check() tells
    return check(path, what=what, forbid=forbid)
