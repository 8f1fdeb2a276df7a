"""inotify: which canary files a client opened (IN_OPEN/IN_ACCESS, via libc)."""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Iterable
from pathlib import Path

__all__ = ["OpenWatch"]

_IN_ACCESS = 0x1
_IN_OPEN = 0x20
_IN_Q_OVERFLOW = 0x4000
_IN_ONLYDIR = 0x01000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")


class OpenWatch:
    """Record IN_OPEN/IN_ACCESS on the files of some directories (inotify via libc).

    Watches are on directories: the kernel reports events on their entries (with the entry's
    name) and on the directory itself (a listing). A file opened through a symlink is reported
    in the directory of the link's *target*. No privileges needed, only read access.
    """

    def __init__(self, directories: Iterable[Path]) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd: int = fd
        self.overflowed = False
        self._dirs: dict[int, str] = {}
        try:
            for d in directories:
                wd = libc.inotify_add_watch(fd, os.fsencode(d), _IN_OPEN | _IN_ACCESS | _IN_ONLYDIR)
                if wd < 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"inotify_add_watch({d}): {os.strerror(err)}")
                self._dirs[wd] = str(d)
        except BaseException:
            self.close()
            raise

    def drain(self) -> set[str]:
        """Paths opened or read since the last drain (a directory's own path: it was listed)."""
        seen: set[str] = set()
        while True:
            try:
                buf = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return seen
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                raise
            off = 0
            while off + _EVENT.size <= len(buf):
                wd, mask, _cookie, length = _EVENT.unpack_from(buf, off)
                name = buf[off + _EVENT.size : off + _EVENT.size + length].rstrip(b"\0")
                off += _EVENT.size + length
                if mask & _IN_Q_OVERFLOW:
                    self.overflowed = True
                    continue
                base = self._dirs.get(wd)
                if base is not None:
                    seen.add(os.path.join(base, os.fsdecode(name)) if name else base)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> OpenWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
