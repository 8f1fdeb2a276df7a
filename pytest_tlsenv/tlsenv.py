"""`TLSEnv`: one scenario made real (store, origin, proxy) and the ways to run a client in it.

Works without pytest::

    with PKI(tmp / "pki") as pki, TLSEnv.build(resolve("unreadable-file"), pki=pki,
                                               root=tmp / "scenario") as env:
        env.run(["curl", "-fsS", env.origin.url]).assert_ok()
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import venv
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .env import Sandbox, build_environ, scrubbed
from .errors import ConfigError
from .faults import Applied, Site, get_fault
from .outcome import Outcome, classify_call, classify_run
from .pki import PKI
from .runner import _user_ids, call_in_thread, must_drop_caps, run_process
from .scenarios import Scenario, Spec
from .servers import Origin
from .store import TrustStore, filler_cas

__all__ = ["DEFAULT_TIMEOUT", "Settings", "TLSEnv"]

DEFAULT_TIMEOUT = 20.0


@dataclass(frozen=True)
class Settings:
    """Session-wide knobs (pytest options and ini keys feed these)."""

    fault_uid: int = 65533
    timeout: float = DEFAULT_TIMEOUT
    user: str | None = None


class TLSEnv:
    """A scenario on disk and on loopback, plus ``run``/``call`` to put a client in it."""

    def __init__(
        self, spec: Spec, *, pki: PKI, root: Path, settings: Settings = Settings()
    ) -> None:
        self.spec = spec
        self.pki = pki
        self.settings = settings
        self.user = spec.user or settings.user
        self.timeout = spec.timeout or settings.timeout
        if self.user is not None:
            uid, _gid = _user_ids(self.user)
            if uid == settings.fault_uid:
                raise ConfigError(
                    f"the client user {self.user!r} has the fault uid {uid}: files it must not "
                    "read would be its own; set ini tlsenv_fault_uid to another uid"
                )
            # The user must traverse every directory down to the store; pytest's tmp dirs
            # are 0700, so such a scenario lives in a 0711 directory of its own.
            root = Path(tempfile.mkdtemp(prefix="tlsenv-user-"))
            os.chmod(root, 0o711)
            self._own_root = True
        else:
            root.mkdir(parents=True, exist_ok=True)
            self._own_root = False
        self.root = root
        self.store = TrustStore.create(root / "store", spec.layout, fault_uid=settings.fault_uid)
        self.applied: list[Applied] = []
        self.origin = Origin(pki.server_context(pki.origin_leaf))
        self.proxy: Any = None
        self._counter = itertools.count()
        self._threads: list[Any] = []
        self._closed = False
        # Every Outcome of run/call, in order: the plugin reports and baselines them per test.
        self.outcomes: list[Outcome] = []

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    def build(cls, spec: Spec, *, pki: PKI, root: Path, settings: Settings = Settings()) -> TLSEnv:
        """Create, materialise and start a TLSEnv (close it with :meth:`close`)."""
        env = cls(spec, pki=pki, root=root, settings=settings)
        try:
            env._materialise()
            env.origin.start()
        except BaseException:
            env.close()
            raise
        return env

    def _materialise(self) -> None:
        trusted = self.pki.authorities["trusted"]
        self.store.install(trusted)
        if self.spec.extra_cas:
            # Filler CAs from one template (store.filler_cas): 10,000 in about a second.
            self.store.install_many(filler_cas(self.spec.extra_cas))
        self.store.write_bundle()
        for n, name in enumerate(self.spec.faults):
            site = Site(self.store, self.spec.placement, trusted, self.pki.decoy(n))
            self.applied.append(get_fault(name).apply(site))

    def __enter__(self) -> TLSEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, *, keep: bool = False) -> None:
        """Stop servers, restore permissions, and delete the scenario root (unless ``keep``)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.origin.stop()
        finally:
            try:
                # Hooks first: a FIFO gets its writer, so blocked readers return.
                self.store.close()
            finally:
                self.store.restore()
            for t in self._threads:
                t.join(1.0)
            if not keep:
                shutil.rmtree(self.root, ignore_errors=True)

    # -- what it is -----------------------------------------------------------------------

    @property
    def scenario(self) -> Scenario:
        return self.spec.scenario

    @property
    def environ(self) -> dict[str, str]:
        """The scenario's variables: what every client gets on top of its sandbox."""
        return dict(self.store.env)

    def venv(self) -> str:
        """The interpreter of a fresh bare virtualenv (no pip), for package-manager clients."""
        path = self.root / f"venv-{next(self._counter)}"
        venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(path)
        if self.user is not None:
            _chown_tree(path, self.user)
        return str(path / "bin" / "python")

    # -- running clients ------------------------------------------------------------------

    def _sandbox(self) -> Sandbox:
        owner = _user_ids(self.user) if self.user is not None else None
        return Sandbox.create(self.root / f"run-{next(self._counter)}", owner=owner)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str | None] | None = None,
        timeout: float | None = None,
        user: str | None = None,
        passenv: Iterable[str] = (),
        cwd: str | None = None,
    ) -> Outcome:
        """Run ``argv`` as a subprocess in this scenario, hermetically; return its Outcome.

        ``env`` adds variables (None unsets one); ``passenv`` lets named outer variables
        through. As root, the child runs without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH unless
        ``user`` (or the marker's/option's user) switches to a real user.
        """
        user = user or self.user
        timeout = timeout or self.timeout
        sandbox = self._sandbox()
        environ = build_environ(
            sandbox=sandbox,
            scenario=self.environ,
            env=env,
            passenv=passenv,
            other_user=user is not None,
        )
        before = len(self.origin.received)
        done = run_process(
            argv, environ=environ, timeout=timeout, cwd=cwd or str(sandbox.home), user=user
        )
        reached = len(self.origin.received) > before
        verdict, reason = classify_run(
            returncode=done.returncode,
            stderr=done.stderr,
            stdout=done.stdout,
            timed_out=done.timed_out,
            timeout=timeout,
            reached_origin=reached,
        )
        outcome = Outcome(
            verdict=verdict,
            reason=reason,
            argv=list(argv),
            returncode=done.returncode,
            stdout=done.stdout,
            stderr=done.stderr,
            duration=done.duration,
            reached_origin=reached,
            environ=environ,
            env=self,
        )
        self.outcomes.append(outcome)
        return outcome

    def call(
        self,
        fn: Callable[[], Any],
        *,
        timeout: float | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> Outcome:
        """Call ``fn()`` in this process with the scenario's environment; return its Outcome.

        ``os.environ`` loses every trust/proxy/index variable (SSL_*, *_CA_BUNDLE, PIP_*...)
        and gains the scenario's, for the duration only. As root, ``fn`` runs in a fresh
        thread without the DAC capabilities, so a permission fault bites it as it would bite
        a non-root user; thread pools created before the call keep their capabilities.
        """
        timeout = timeout or self.timeout
        before = len(self.origin.received)
        overlay: dict[str, str | None] = dict(self.environ)
        overlay.update(env or {})
        with scrubbed(overlay) as environ:
            result = call_in_thread(fn, timeout=timeout, drop_caps=must_drop_caps(None))
        if result.timed_out:
            self._threads.append(result.thread)
        reached = len(self.origin.received) > before
        verdict, reason = classify_call(
            exception=result.exception,
            timed_out=result.timed_out,
            timeout=timeout,
            reached_origin=reached,
        )
        outcome = Outcome(
            verdict=verdict,
            reason=reason,
            exception=result.exception,
            value=result.value,
            duration=result.duration,
            reached_origin=reached,
            environ=environ,
            env=self,
        )
        self.outcomes.append(outcome)
        return outcome

    def __repr__(self) -> str:
        return f"<TLSEnv {self.scenario.name} at {self.root}>"


def _chown_tree(path: Path, user: str) -> None:
    uid, gid = _user_ids(user)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.chown(name, uid, gid, follow_symlinks=False)
