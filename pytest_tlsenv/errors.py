"""The exceptions pytest-tlsenv raises.

One base class, :class:`TLSEnvError`, and each subclass also derives from the builtin it
means (the way attrs' ``FrozenError`` is an ``AttributeError``), so callers can catch either.
"""

from __future__ import annotations


class TLSEnvError(Exception):
    """Base class of every error raised by pytest-tlsenv."""


class ConfigError(TLSEnvError, ValueError):
    """A marker, option or argument asks for something that does not exist or cannot work."""


class NotYetSupportedError(ConfigError):
    """A documented keyword whose feature has not landed yet (never silently ignored)."""


class ServerError(TLSEnvError, RuntimeError):
    """A loopback server failed on its own thread, or did not stop when asked."""


class ClientUnavailableError(TLSEnvError, LookupError):
    """A client (or a pinned version of it) is neither on the machine nor installable."""


class NotApplicableError(ClientUnavailableError):
    """The scenario cannot apply to this (client, trust mode) pair: its faults break no
    source the client reads that way (a broken cert dir for a client given only a bundle), the
    client has no such mode (wget reads no trust variable), or its compiled-in paths are not
    the layout's (Debian's curl in ``trust="system"`` on an ``rhel`` layout). Running it would
    measure a healthy store, so it is reported as not applicable (pytest: a skip with this
    reason; the survey: ``n/a``)."""


class ClientNotFoundError(FileNotFoundError, ClientUnavailableError):
    """``run`` was given a program that does not exist: not on the PATH clients get, or not
    at the path given. Also a FileNotFoundError (what ``subprocess`` would have raised)."""

    def __str__(self) -> str:
        return str(self.strerror)
