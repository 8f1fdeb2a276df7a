"""What version a client program is: one detector for the report, the presets and repro.

:func:`version_of` runs a program once to ask its version and keeps the answer for as long as
the executable file stays the same (its path, inode, size and mtime), so a session asks each
client once, and a client upgraded in place mid-session is asked again.

The run is as careful as any client run here, although it is not one: no shell; a scrubbed
environment (``PATH`` and ``LC_ALL=C`` only, so none of the host's trust variables, such as
SSL_CERT_FILE or NODE_EXTRA_CA_CERTS, nor anything else of the caller's); stdin closed; its
own session, killed as a whole group when it outlives the timeout. An unknown program is
never started with guessed flags.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess

__all__ = ["DEFAULT_TIMEOUT", "KNOWN", "version_of"]

#: Seconds a version query may take (``python -m pip --version`` on a loaded machine: ~1 s).
DEFAULT_TIMEOUT = 10.0

#: Programs known to answer a version query, and how they are asked. Any ``python``,
#: ``python3``, ``python3.11``... is asked ``--version`` too.
KNOWN: dict[str, tuple[str, ...]] = {
    "curl": ("--version",),
    "wget": ("--version",),
    "openssl": ("version",),
    "uv": ("--version",),
    "pip": ("--version",),
    "pip3": ("--version",),
    "node": ("--version",),
    "git": ("--version",),
    "httpie": ("--version",),
    "http": ("--version",),
    "go": ("version",),
}
_PYTHON = re.compile(r"python[0-9.]*")
# A version somewhere in the line: two numbers or more joined by dots ("v20.19.2", "3.0.19").
_HAS_VERSION = re.compile(r"\d+\.\d+")


def _query(name: str) -> tuple[str, ...] | None:
    return ("--version",) if _PYTHON.fullmatch(name) else KNOWN.get(name)


def version_of(executable: str, *args: str, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """The first line ``executable`` prints when asked its version, or None.

    With no ``args``, ``executable`` must be a :data:`KNOWN` program (by its base name) or a
    python, and is asked the known way (``curl --version``, ``openssl version``); any other
    program gives None without being started. With ``args``, exactly ``[executable, *args]``
    runs (``python -m pip --version``, ``python -I -c SCRIPT LIBRARY``). A bare name is found
    on PATH.

    The line is stdout's first, or stderr's when stdout is empty, stripped. None when the
    program is missing or not executable, cannot start, exits non-zero, outlives ``timeout``
    seconds, or its line holds no version number (``N.N``). Answers are cached per executable
    file (path, inode, size, mtime) and argv.
    """
    if not args:
        query = _query(os.path.basename(executable))
        if query is None:
            return None
        args = query
    path = executable if os.sep in executable else shutil.which(executable)
    if path is None or not os.access(path, os.X_OK):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    return _cached(path, identity, args, timeout)


@functools.lru_cache(maxsize=256)
def _cached(
    path: str, identity: tuple[int, ...], args: tuple[str, ...], timeout: float
) -> str | None:
    del identity  # only part of the cache key: another file at the same path asks again
    line = _first_line([path, *args], timeout)
    return line if line is not None and _HAS_VERSION.search(line) else None


def _first_line(argv: list[str], timeout: float) -> str | None:
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"},
            start_new_session=True,  # a group to kill whole: no grandchild outlives the timeout
        )
    except OSError:
        return None
    with proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # The child leads its own session, so its pgid is its pid.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            # Reap it; a grandchild that left the group may still hold the pipes: stop waiting.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=1)
            return None
    if proc.returncode != 0:
        return None
    text = (out or err).decode(errors="replace").strip()
    return text.splitlines()[0].strip() if text else None
