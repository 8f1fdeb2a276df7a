"""Scenario roots and the TLSEnvs built in them: what ``make_tlsenv`` hands a test.

Without pytest: the plugin passes in how to make a directory under its basetemp, how to fail
the current test, whether to keep its roots and where to say so.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from .pki import PKI
    from .scenarios import Spec
    from .tlsenv import Settings, TLSEnv


class SessionDirs:
    """Where a session's scenario roots live (:mod:`pytest_tlsenv.rootdir`).

    Each root is removed at its test's teardown, so the space used is bounded by the
    environments open at once. Roots are numbered here rather than by
    ``tmp_path_factory.mktemp``, which scans its parent directory on every call. When the
    tmpfs fills up (ENOSPC), the session moves to a directory under the basetemp
    (``make_base``) and :attr:`note` says so once.
    """

    def __init__(self, make_base: Callable[[], Path], setting: str, settings: Settings) -> None:
        from .journal import Journal
        from .rootdir import choose

        self._make_base = make_base
        self.settings = settings
        self._n = itertools.count()
        # If the session is killed, the next one removes all of it but the kept roots.
        self.journal = Journal(fault_uid=settings.fault_uid)
        self._kept: list[str] = []
        location = choose(setting)
        self.kind = location.kind
        self.note = location.note
        self.note_sent = False
        self._own_parent = location.own_parent
        self.bases: list[Path] = []
        self.base = self._add(location.base)

    def _add(self, base: Path | None) -> Path:
        if base is None:
            base = self._make_base()
        self.bases.append(base)
        self.journal.write(self.bases, keep=self._kept)
        return base

    def full(self, error: OSError) -> bool:
        """The tmpfs is full: move to the basetemp (True), or it was not a tmpfs (False)."""
        from .rootdir import FULL_ERRNOS

        if self.kind != "tmpfs" or error.errno not in FULL_ERRNOS:
            return False
        self.note = f"{self.base} is full ({error.strerror})"
        self.note_sent = False
        self.kind = "basetemp"
        self.base = self._add(None)
        return True

    def kept(self, root: Path) -> None:
        """``root`` stays for inspection (``--tlsenv-keep``), even after a kill."""
        self._kept.append(str(root))
        self.journal.write(self.bases, keep=self._kept)

    def new_root(self) -> Path:
        root = self.base / f"tlsenv{next(self._n)}"
        try:
            root.mkdir()
        except OSError as e:
            if not self.full(e):
                raise
            root = self.base / f"tlsenv{next(self._n)}"
            root.mkdir()
        return root

    def close(self) -> None:
        from .journal import MARKER

        self.journal.discard()
        for base in self.bases:
            with contextlib.suppress(OSError):
                (base / MARKER).unlink()
                base.rmdir()  # when nothing was kept
        if self._own_parent:
            with contextlib.suppress(OSError):
                self.bases[0].parent.rmdir()  # the per-user directory, when no session uses it


class TLSEnvFactory:
    """What ``make_tlsenv`` returns: call it with the marker's keywords to get a TLSEnv.

    ``fail`` ends the test with a message (bad arguments are the test's error, shown without
    a traceback); at :meth:`close_all`, ``keep()`` says whether its roots stay (a failed test
    under ``--tlsenv-keep``) and ``say`` tells the user where they are.
    """

    def __init__(
        self,
        nodeid: str,
        pki: PKI,
        dirs: SessionDirs,
        *,
        fail: Callable[[str], NoReturn],
        keep: Callable[[], bool],
        say: Callable[[str], None],
    ) -> None:
        self._nodeid = nodeid
        self._pki = pki
        self._dirs = dirs
        self._settings = dirs.settings
        self._fail = fail
        self._keep = keep
        self._say = say
        self.made: list[TLSEnv] = []

    def __call__(self, *args: Any, **kwargs: Any) -> TLSEnv:
        from .errors import ConfigError
        from .scenarios import Spec, resolve

        if args and isinstance(args[0], Spec):
            # make_tlsenv(tlsenv_scenario): the matrix point (or marker) as resolved.
            if len(args) > 1 or kwargs:
                problem = "a Spec (tlsenv_scenario) takes no further arguments"
                self._fail(f"{self._nodeid}: bad make_tlsenv(...) arguments: {problem}")
            return self.from_spec(args[0])
        try:
            spec = resolve(*args, **kwargs)
        except ConfigError as e:
            problem = str(e)
        else:
            return self.from_spec(spec)
        # Outside the except block, so the report shows no chained traceback.
        return self._fail(f"{self._nodeid}: bad make_tlsenv(...) arguments: {problem}")

    def from_spec(self, spec: Spec) -> TLSEnv:
        from .tlsenv import TLSEnv

        root = self._dirs.new_root()
        try:
            env = TLSEnv.build(spec, pki=self._pki, root=root, settings=self._settings)
        except OSError as e:
            shutil.rmtree(root, ignore_errors=True)  # what the constructor got to write
            # A full tmpfs is the session's problem, not the test's: build it on disk.
            if not self._dirs.full(e):
                raise
            root = self._dirs.new_root()
            try:
                env = TLSEnv.build(spec, pki=self._pki, root=root, settings=self._settings)
            except BaseException:
                shutil.rmtree(root, ignore_errors=True)
                raise
        except BaseException:
            # A scenario the constructor refused (an unknown client user, a mode this machine
            # cannot give) has no TLSEnv to close: its root would outlive the session.
            shutil.rmtree(root, ignore_errors=True)
            raise
        if env.root != root:
            os.rmdir(root)  # a client user's scenario lives where that user can reach it
        self.made.append(env)
        return env

    def close_all(self) -> None:
        keep = self._keep()
        errors: list[BaseException] = []
        for env in reversed(self.made):
            try:
                env.close(keep=keep)
            except Exception as e:  # noqa: BLE001 - close them all, then report the first
                errors.append(e)
            if keep:
                self._dirs.kept(env.root)
                self._say(f"tlsenv: kept {env.scenario.name} at {env.root}")
        self.made.clear()
        if errors:
            raise errors[0]
