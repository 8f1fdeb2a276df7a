"""Checks shared by the marker's keywords, ``run``/``call`` and the plugin's options.

Standard library only, so the plugin can validate ``--tlsenv-timeout`` at configure time
without importing the engine. Each check raises :class:`~pytest_tlsenv.errors.ConfigError`
naming the keyword, what it got and what it accepts.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable

from .errors import ConfigError

__all__ = ["MAX_EXTRA_CAS", "MAX_TIMEOUT", "check_count", "check_timeout", "did_you_mean"]

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
