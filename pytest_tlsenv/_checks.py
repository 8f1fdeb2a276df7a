"""Checks shared by the marker's keywords, ``run``/``call`` and the plugin's options.

Standard library only, so the plugin can validate ``--tlsenv-timeout`` at configure time
without importing the engine. Each check raises :class:`~pytest_tlsenv.errors.ConfigError`
naming the keyword, what it got and what it accepts.
"""

from __future__ import annotations

import errno
import inspect
import math
import numbers
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import ClientNotFoundError, ConfigError

__all__ = [
    "MAX_EXTRA_CAS",
    "MAX_TIMEOUT",
    "check_argv",
    "check_callable",
    "check_count",
    "check_timeout",
    "client_not_found",
    "did_you_mean",
]

#: The longest client timeout accepted, in seconds (a day). Beyond it a hung client is a hung
#: CI job, and thread/select waits overflow long before ``inf``.
MAX_TIMEOUT = 86_400.0

#: The most filler CAs ``extra_cas`` adds. Ten times the largest store this project measures
#: (10,000 CAs in about a second): more is a typo, and would fill the disk before it helped.
MAX_EXTRA_CAS = 100_000


def did_you_mean(value: object, valid: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for a near-miss string, else ``""``."""
    if not isinstance(value, str):
        return ""
    import difflib  # on a miss only: the plugin's import stays cheap

    close = difflib.get_close_matches(value, list(valid), n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_timeout(value: object, what: str = "timeout") -> float:
    """``value`` as a finite number of seconds in (0, MAX_TIMEOUT], or a ConfigError."""
    # bool is an int: timeout=True would silently mean one second.
    seconds = math.nan
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except (OverflowError, ValueError):  # 10**400 seconds: as out of range as inf
            seconds = math.inf
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT):
        raise ConfigError(
            f"{what} must be a positive number of seconds, got {value!r}; accepted: a finite "
            f"number in (0, {MAX_TIMEOUT:g}], not a bool"
        )
    return seconds


def check_count(value: object, what: str, maximum: int) -> int:
    """``value`` as an int in 0..maximum (not a bool, not a float), or a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ConfigError(f"{what} must be an int from 0 to {maximum:_}, got {value!r}")
    return int(value)


def client_not_found(program: str, path: str) -> ClientNotFoundError:
    """The error for a ``run`` client that is not there (``path``: the PATH it was given)."""
    if "/" in program:
        why = f"client {program!r} does not exist"
    else:
        why = f"client {program!r} is not on the PATH clients get ({path}): " + _where(program)
    return ClientNotFoundError(errno.ENOENT, why, program)


def _where(program: str) -> str:
    """Where ``program`` is after all, said only where it is true."""
    # A console script of this venv: on no PATH when the venv is not activated.
    import sysconfig

    script = Path(sysconfig.get_path("scripts")) / program
    if script.is_file() and os.access(script, os.X_OK):
        return f"this Python's environment has it at {script}: give that path"
    found = shutil.which(program)
    if found is not None:
        return f"give its absolute path (your PATH has it at {found}), or a PATH in env="
    return "nor on yours: install it, or give its absolute path"


def check_argv(argv: Sequence[str | os.PathLike[str]]) -> list[str]:
    """``argv`` as a list of strings, or a clear error for what subprocess would misread."""
    if isinstance(argv, (str, bytes)):
        raise TypeError(
            f"argv must be a list of words such as ['curl', url], not a {type(argv).__name__}: "
            f"{argv!r}"
        )
    words = [os.fspath(word) for word in argv]
    if not words:
        raise ConfigError("argv is empty: give the client's command, e.g. ['curl', url]")
    for word in words:
        if not isinstance(word, str):
            raise TypeError(f"argv words must be str or path-like, got {word!r}")
    return words


def check_callable(fn: object) -> None:
    """``call`` calls ``fn()``: anything else is the caller's mistake, not a client crash."""
    if not callable(fn):
        raise TypeError(f"call() takes a callable, got {type(fn).__name__}: {fn!r}")
    try:
        inspect.signature(fn).bind()
    except ValueError:
        return  # no signature to check (some builtins)
    except TypeError:
        raise TypeError(
            f"call() calls fn() with no arguments, but {fn!r} needs some: wrap it in a "
            "lambda or functools.partial"
        ) from None
