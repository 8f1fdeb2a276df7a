"""`TLSEnv`: one scenario made real (store, origin, proxy) and the ways to run a client in it.

Works without pytest::

    with PKI(tmp / "pki") as pki, TLSEnv.build(resolve("unreadable-file"), pki=pki,
                                               root=tmp / "scenario") as env:
        env.run(["curl", "-fsS", env.origin.url]).assert_ok()
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from . import namespace, proxyenv
from ._checks import check_argv, check_callable, check_timeout, client_not_found
from .env import ENVIRON_LOCK, Sandbox, build_environ, scrubbed
from .errors import ClientUnavailableError, ConfigError, ServerError
from .evidence import Evidence, untrusted_hint
from .fallback import Overrides
from .faults import Applied
from .journal import Journal
from .namespace import MountPlan, SystemPathsUnavailableError, call_in_namespace
from .namespace import require as require_namespaces
from .outcome import Outcome, Verdict, classify_call, classify_run
from .pki import PKI, TEST_DOMAIN
from .proxy import Proxy
from .runner import call_in_thread, check_usable, client_ids, must_drop_caps, run_process
from .scenarios import TRUST_MODES, Scenario, Spec
from .servers import Origin
from .store import TrustStore
from .world import World, make_venv

if TYPE_CHECKING:
    from .clients import Client
    from .probe import ProbeReport

__all__ = ["DEFAULT_TIMEOUT", "Settings", "TLSEnv"]

DEFAULT_TIMEOUT = 20.0

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _from_checks(tb: TracebackType | None) -> bool:
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_globals.get("__name__") == f"{__package__}._checks"


def _shown_from_the_caller(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """A mistake in the call (a ConfigError, a client that is not there, a TypeError of the
    argument checks) is shown at the caller's line: the package's frames below it explain
    nothing to the user, so they leave the traceback (and pytest hides this wrapper)."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        __tracebackhide__ = True
        try:
            return method(*args, **kwargs)
        except (ConfigError, ClientUnavailableError) as e:
            raise e.with_traceback(None) from e.__cause__
        except TypeError as e:
            if _from_checks(e.__traceback__):
                raise e.with_traceback(None) from e.__cause__
            raise

    return wrapper


@dataclass(frozen=True)
class Settings:
    """Session-wide knobs (pytest options and ini keys feed these)."""

    fault_uid: int = 65533
    timeout: float = DEFAULT_TIMEOUT
    user: str | None = None
    system_paths: bool = False
    #: The trust mode of scenarios whose marker gives none (``--tlsenv-trust``).
    trust: str = "env"
    #: A failed test's scenario roots stay (``--tlsenv-keep``): failure texts say so.
    keep: bool = False


class TLSEnv:
    """A scenario on disk and on loopback, plus ``run``/``call`` to put a client in it."""

    def __init__(
        self, spec: Spec, *, pki: PKI, root: Path, settings: Settings = Settings()
    ) -> None:
        self.spec = spec
        self.pki = pki
        self.settings = settings
        self.user = spec.user or settings.user
        # A Spec or Settings built by hand skips resolve's checks: check what is used.
        self.timeout = check_timeout(
            spec.timeout if spec.timeout is not None else settings.timeout,
            "timeout" if spec.timeout is not None else "Settings.timeout",
        )
        # Show the store at /etc/ssl... to clients in a private mount namespace (namespace.py);
        # where that is impossible, fail here rather than let clients read the host's store.
        # The fallback group needs the default store at its real paths in every mode: that
        # is where the CA is, and where a client that ignores the user's override looks.
        self.system_paths = (
            spec.system_paths or settings.system_paths or spec.scenario.fallback is not None
        )
        # How the store reaches clients (scenarios.TRUST_MODES): "system" means no variable
        # and the store at its real paths, so it needs the namespace too.
        self.trust = spec.trust or settings.trust
        if self.trust not in TRUST_MODES:
            raise ConfigError(f"trust must be one of {', '.join(TRUST_MODES)}, got {self.trust!r}")
        if self.system_paths or self.trust == "system":
            require_namespaces()
        self._require_private_names(spec)
        self._journal = Journal(fault_uid=settings.fault_uid)
        if self.user is not None:
            self._client_ids(self.user)
            # The user must traverse every directory down to the store; pytest's tmp dirs
            # are 0700, so such a scenario lives in a 0711 directory of its own.
            root = Path(tempfile.mkdtemp(prefix="tlsenv-user-"))
            # Outside pytest's temp dirs nothing else would remove it after a kill.
            self._journal.write([root])
            os.chmod(root, 0o711)
            self._own_root = True
        else:
            if not os.path.isdir(root):  # the plugin's factory made it already
                root.mkdir(parents=True, exist_ok=True)
            self._own_root = False
        self.root = root
        #: The store, its faults and the fallback store (:mod:`pytest_tlsenv.world`).
        self.world = World(spec, pki=pki, root=root, fault_uid=settings.fault_uid)
        # Behind a proxy the origin is addressed by a .test name that only the proxy resolves:
        # some clients (Go) never send localhost through a proxy.
        self.origin = Origin.variant(
            pki, spec.server, host=TEST_DOMAIN if spec.proxy is not None else "localhost"
        )
        self.proxy: Proxy | None = None
        #: Every proxy of the scenario by role: ``"proxy"`` (:attr:`proxy`); a case conflict
        #: adds ``"HTTPS_PROXY"`` and ``"https_proxy"``, the proxy each variable names.
        self.proxies: dict[str, Proxy] = {}
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
            env.world.materialise(env._journal)
            env.origin.start()
            env._start_proxy()
        except BaseException:
            env.close()
            raise
        return env

    def materialise(self, *, before_faults: Callable[[], None] | None = None) -> None:
        """Deprecated: :meth:`build` materialises; bundles use :class:`~.world.World`."""
        warnings.warn(
            "TLSEnv.materialise() is deprecated: TLSEnv.build() fills the store, and "
            "pytest_tlsenv.world.World.materialise() builds a store without servers",
            DeprecationWarning,
            stacklevel=2,
        )
        self.world.materialise(self._journal, before_faults=before_faults)

    def __enter__(self) -> TLSEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, *, keep: bool = False, trash: Path | None = None) -> None:
        """Stop servers, restore permissions, and delete the scenario root (unless ``keep``).

        With ``trash`` (a directory on the same filesystem), the restored tree is moved there
        instead of deleted: one rename instead of a dozen rmdirs in the test's teardown; the
        owner of ``trash`` empties it later (the plugin does at session end).
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._stop_servers()
        finally:
            self.world.close()
            for t in self._threads:
                t.join(1.0)
            if not keep:
                self._remove_root(trash)
            self._journal.discard()

    def _remove_root(self, trash: Path | None) -> None:
        if trash is not None and not self._own_root:
            try:
                os.rename(self.root, trash / f"{self.root.name}-{id(self):x}")
                return
            except OSError:
                pass  # another filesystem, or trash vanished: delete in place
        # The store as made goes with a few unlinks and rmdirs; anything else (a client's
        # sandbox, a venv, a fault's leftovers) with a tree walk.
        if self.store.remove_created():
            try:
                os.rmdir(self.root)
                return
            except OSError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    # -- what it is -----------------------------------------------------------------------

    @property
    def scenario(self) -> Scenario:
        return self.spec.scenario

    @property
    def keeps_root(self) -> bool:
        """Whether this scenario's root stays when its test fails (``--tlsenv-keep``)."""
        return self.settings.keep

    @property
    def store(self) -> TrustStore:
        return self.world.store

    @property
    def applied(self) -> list[Applied]:
        """What each fault (and an admin-installed proxy CA) did, in order."""
        return self.world.applied

    @property
    def fallback(self) -> Overrides | None:
        """The broken store every variable and option names (the fallback group), else None."""
        return self.world.fallback

    @property
    def proxy_name(self) -> str | None:
        """The proxy scenario this TLSEnv runs (``"socks5"``...), or None without a proxy."""
        return self.spec.proxy

    @property
    def invented_names(self) -> tuple[str, ...]:
        """The names only this scenario knows (a proxy's origin.tlsenv.test)."""
        return self.world.invented_names

    @property
    def environ(self) -> dict[str, str]:
        """The scenario's variables: what every client gets on top of its sandbox (in this
        TLSEnv's trust mode: no trust variable in ``system`` and ``flags`` modes)."""
        return self.environ_for(self.trust)

    def environ_for(self, trust: str) -> dict[str, str]:
        """The scenario's variables in trust mode ``trust``: ``env`` gives SSL_CERT_FILE
        and/or SSL_CERT_DIR as the layout has them (env faults included); ``system`` and
        ``flags`` give none (the paths, or the client's own options, carry the store). The
        proxy's variables are in every mode."""
        trust_vars = self.store.env if trust == "env" else {}
        return {**trust_vars, **self._proxy_environ()}

    def _call_environ(self, trust: str) -> dict[str, str]:
        """``call``'s variables: in env mode also REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE, so
        requests-based code (certifi otherwise) trusts the scenario's store as well."""
        env = self.environ_for(trust)
        if trust == "env":
            healthy = self.store.layout.variables(self.store.root)
            source = "SSL_CERT_FILE" if "SSL_CERT_FILE" in healthy else "SSL_CERT_DIR"
            target = self.store.env.get(source)
            if target is not None:
                env["REQUESTS_CA_BUNDLE"] = env["CURL_CA_BUNDLE"] = target
        return env

    def _trust(self, trust: str | None) -> str:
        trust = trust or self.trust
        if trust not in TRUST_MODES:
            raise ConfigError(f"trust must be one of {', '.join(TRUST_MODES)}, got {trust!r}")
        if trust == "system" and not (self.system_paths or self.trust == "system"):
            require_namespaces()  # a client asked for system mode in an env-mode TLSEnv
        return trust

    def _namespaced(self, trust: str) -> bool:
        return self.system_paths or trust == "system"

    def venv(self) -> str:
        """The interpreter of a fresh bare virtualenv (no pip), for package-manager clients.

        With a client ``user``, the venv is that user's, and is made from this interpreter if
        that user can run it, else from the first ``python3`` on the clients' PATH that it
        can run (this one may live under /root, mode 0700); a ConfigError if none.
        """
        return make_venv(self.root / f"venv-{next(self._counter)}", self.user)

    # -- running clients ------------------------------------------------------------------

    @_shown_from_the_caller
    def client(self, name: str, *, version: str | None = None, trust: str | None = None) -> Client:
        """A ready client preset for this scenario: ``.argv`` or ``.fn``, ``.env``, ``.run()``.

        ``version`` pins a PyPI-installable client (uv, pip, requests, httpx, urllib3, aiohttp),
        installed into the cache; a pinned library runs out of process. ``trust``
        (default: this TLSEnv's) picks how the store reaches it: ``env`` (the variables its
        users set), ``system`` (its compiled-in paths) or ``flags`` (explicit options).
        Raises :class:`~pytest_tlsenv.errors.NotApplicableError` when the scenario cannot
        apply to that client in that mode (the plugin turns it into a skip).
        ``name@version`` (``"uv@0.2.29"``) is the same as ``version=``.
        """
        from .clients import make_client

        if "@" in name:
            from .selection import parse_client

            ref = parse_client(name)
            if version is not None and version != ref.version:
                raise ConfigError(
                    f"client {name!r} with version={version!r}: two versions; give one"
                )
            name, version = ref.name, ref.version
        return make_client(self, name, version, trust=self._trust(trust))

    def _client_ids(self, user: str) -> tuple[int, int]:
        """``user``'s uid and gid, or a ConfigError: not uid 0, not the fault uid."""
        uid, gid = client_ids(user)
        if uid == self.settings.fault_uid:
            raise ConfigError(
                f"the client user {user!r} has the fault uid {uid}: files it must not "
                "read would be its own; set ini tlsenv_fault_uid to another uid"
            )
        return uid, gid

    def _sandbox(self, user: str | None) -> Sandbox:
        owner = self._client_ids(user) if user is not None else None
        return Sandbox.create(self.root / f"run-{next(self._counter)}", owner=owner)

    def _check_reachable(self, user: str) -> None:
        """A user given to one ``run`` only must reach the scenario (store, sandbox)."""
        if user == self.user or os.geteuid() != 0:
            return
        uid, gid = self._client_ids(user)
        try:
            check_usable(str(self.root), uid, gid, want=os.X_OK, what="the scenario", user=user)
        except ConfigError as e:
            raise ConfigError(
                f"{e} (give user={user!r} where the scenario is made: the tlsenv marker, "
                "make_tlsenv(user=...), ini tlsenv_user or --tlsenv-user; its store then "
                "lives where that user can reach it)"
            ) from None

    def _timeout(self, timeout: float | None) -> float:
        if timeout is None:
            return self.timeout
        # NaN or inf would reach select/communicate and crash every run there.
        return check_timeout(timeout)

    @_shown_from_the_caller
    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str | None] | None = None,
        timeout: float | None = None,
        user: str | None = None,
        passenv: Iterable[str] = (),
        cwd: str | None = None,
        trust: str | None = None,
    ) -> Outcome:
        """Run ``argv`` as a subprocess in this scenario, hermetically; return its Outcome.

        ``env`` adds variables (None unsets one); ``passenv`` lets named outer variables
        through. As root, the child runs as uid 0 without any capability (and with
        no_new_privs), unless ``user`` (or the marker's, ini's or option's user) switches to a
        real unprivileged user, who must be able to run ``argv[0]`` and enter ``cwd`` (a
        ConfigError names the path otherwise); uid 0 is refused there. With system paths
        (``system_paths=True``), the client runs in a private mount namespace that shows the
        store at the layout's real paths (:mod:`pytest_tlsenv.namespace`). ``trust`` (default:
        this TLSEnv's) ``"system"`` gives no trust variable and shows the store at its real
        paths; ``"flags"`` gives no trust variable (``argv`` carries its options). In a
        scenario with invented names (a proxy's origin.tlsenv.test), the client gets a private
        /etc/hosts and a loopback-only /etc/resolv.conf where namespaces work
        (:attr:`names_isolated`).
        """
        argv = check_argv(argv)
        trust = self._trust(trust)
        user = user or self.user
        timeout = self._timeout(timeout)
        if user is not None:
            self._check_reachable(user)
        sandbox = self._sandbox(user)
        environ = build_environ(
            sandbox=sandbox,
            scenario=self.environ_for(trust),
            env=env,
            passenv=passenv,
            other_user=user is not None,
        )
        evidence = Evidence(self.origin, self.proxy)
        route = self._route()
        groups: list[int] = []

        def started(proc: subprocess.Popen[bytes]) -> None:
            groups.append(proc.pid)
            self._journal.started(proc)

        try:
            done = run_process(
                argv,
                environ=environ,
                timeout=timeout,
                cwd=cwd or str(sandbox.home),
                user=user,
                # The group goes into the journal: killed with us, it is killed by the next
                # session (it may be blocked on a FIFO forever).
                on_start=started,
                launcher=plan.launcher if (plan := self._client_plan(trust)) is not None else None,
            )
        except FileNotFoundError as e:
            if e.filename != argv[0]:
                raise  # e.g. a cwd that does not exist
            raise client_not_found(argv[0], environ.get("PATH", "")) from None
        finally:
            for pid in groups:
                self._journal.ended(pid)
        judged = evidence.judge(
            functools.partial(
                classify_run,
                returncode=done.returncode,
                stderr=done.stderr,
                stdout=done.stdout,
                timed_out=done.timed_out,
                timeout=timeout,
            )
        )
        verdict, reason = route.judge(judged.verdict, judged.reason, judged.reached_origin)
        outcome = Outcome(
            verdict=verdict,
            reason=reason,
            argv=list(argv),
            returncode=done.returncode,
            stdout=done.stdout,
            stderr=done.stderr,
            duration=done.duration,
            reached_origin=judged.reached_origin,
            environ=environ,
            env=self,
            trust=trust,
        )
        self.outcomes.append(outcome)
        return outcome

    @_shown_from_the_caller
    def call(
        self,
        fn: Callable[[], Any],
        *,
        timeout: float | None = None,
        env: Mapping[str, str | None] | None = None,
        trust: str | None = None,
    ) -> Outcome:
        """Call ``fn()`` in this process with the scenario's environment; return its Outcome.

        ``os.environ`` loses every trust/proxy/index variable (SSL_*, *_CA_BUNDLE, PIP_*...)
        and gains the scenario's, for the duration only. As root, ``fn`` runs in a fresh
        thread without the DAC capabilities, so a permission fault bites it as it would bite
        a non-root user; it keeps every other capability (``fn`` is the test's own code, not a
        contained client), and thread pools created before the call keep all of theirs.
        With system paths, ``fn`` runs in a forked child inside the mount namespace instead,
        and its value/exception come back pickled (caveats: ``namespace.call_in_namespace``).
        In env mode (the default) the overlay is SSL_CERT_FILE and/or SSL_CERT_DIR (as the
        layout has them) plus REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE, all naming the scenario's
        store; ``trust="system"`` runs ``fn`` in the namespace child with none of them.
        """
        check_callable(fn)
        timeout = self._timeout(timeout)
        trust = self._trust(trust)
        evidence = Evidence(self.origin, self.proxy)
        route = self._route()
        overlay: dict[str, str | None] = dict(self._call_environ(trust))
        overlay.update(env or {})
        # os.environ is process-wide: two calls at once (survey workers, threads in a test)
        # would see each other's scenario. One call at a time.
        with ENVIRON_LOCK, scrubbed(overlay) as environ:
            if self._namespaced(trust) or self._names_required:
                # A forked child in the namespace; DAC caps dropped as root, all as non-root.
                # Proxy-environment scenarios need it for the private /etc/hosts alone.
                drop = "dac" if must_drop_caps(None) else "all"
                plan = self.mount_plan() if self._namespaced(trust) else self.world.names_plan()
                result: Any = call_in_namespace(fn, plan, timeout=timeout, drop=drop)
            else:
                with self._backend():
                    result = call_in_thread(fn, timeout=timeout, drop_caps=must_drop_caps(None))
        if result.timed_out and not (self._namespaced(trust) or self._names_required):
            self._threads.append(result.thread)
        judged = evidence.judge(
            functools.partial(
                classify_call,
                exception=result.exception,
                timed_out=result.timed_out,
                timeout=timeout,
            )
        )
        verdict, reason = route.judge(judged.verdict, judged.reason, judged.reached_origin)
        if verdict is Verdict.REJECTED and self.scenario.expected == {Verdict.OK}:
            reason += untrusted_hint(environ, trust)
        outcome = Outcome(
            verdict=verdict,
            reason=reason,
            exception=result.exception,
            value=result.value,
            duration=result.duration,
            reached_origin=judged.reached_origin,
            environ=environ,
            env=self,
            trust=trust,
        )
        self.outcomes.append(outcome)
        return outcome

    def _backend(self) -> contextlib.AbstractContextManager[Any]:
        """``backend="fakefs"``: ``call`` sees the store inside pyfakefs (fakefs.py)."""
        if self.spec.backend == "fakefs":
            from .fakefs import fake_store  # pyfakefs is an extra: import it only when asked

            return fake_store(self.store)
        return contextlib.nullcontext()

    def repro(self, path: str | os.PathLike[str], *, pip_requirement: str | None = None) -> Path:
        """Write a reproduction bundle of this scenario and its recorded runs to ``path``.

        ``repro.sh``, a ``Dockerfile``, ``ISSUE.md``, ``scenario.json``, the bundle's own
        fresh certificates and a stdlib-only ``server.py``: it runs without pytest
        (:mod:`pytest_tlsenv.repro`). ``pip_requirement`` (``"uv==0.2.29"``) tells the
        Dockerfile how to install the client when it cannot be guessed.
        """
        from .repro import export

        return export(self, path, pip_requirement=pip_requirement)

    def probe(
        self,
        client: Sequence[str] | Callable[[str], Any],
        *,
        env: Mapping[str, str | None] | None = None,
        variables: Iterable[str] | None = None,
        system_paths: bool | None = None,
        timeout: float | None = None,
    ) -> ProbeReport:
        """Measure which trust variables (and default paths) ``client`` trusts, and their order.

        ``client`` is an argv with ``{url}`` (``{index_url}``, ``{venv}``...) or a callable
        taking the URL. The probe brings its own canary CAs and origins (:mod:`.probe`); it
        uses this TLSEnv's root, timeout and ``system_paths``, not its store or origin.
        """
        from .probe import probe

        return probe(
            client,
            root=self.root / f"probe-{next(self._counter)}",
            env=env,
            variables=variables,
            system_paths=self.system_paths if system_paths is None else system_paths,
            timeout=timeout or self.timeout,
        )

    def mount_plan(self) -> MountPlan:
        """What ``system_paths=True`` mounts where (computed once, after the faults).

        With invented names, it also keeps name lookups on loopback (:attr:`names_isolated`).
        """
        return self.world.mount_plan()

    @property
    def names_isolated(self) -> bool:
        """Whether ``run`` clients get a private /etc/hosts and an /etc/resolv.conf naming
        only 127.0.0.1, so that a lookup of an invented name (``origin.tlsenv.test``) stays on
        this machine. True in scenarios with invented names (every proxy scenario) where
        private mount namespaces work (probed once); elsewhere clients use the host's files.
        """
        if not self.invented_names:
            return False
        return self.system_paths or namespace.probe() is None

    def _client_plan(self, trust: str) -> MountPlan | None:
        """The namespace a ``run`` client starts in, or None for none."""
        if self._namespaced(trust):
            return self.mount_plan()
        if not self.names_isolated:
            return None
        return self.world.names_plan()

    # -- the proxy (proxy group scenarios) ------------------------------------------------

    def _start_proxy(self) -> None:
        if self.spec.proxy is None:
            return
        self.proxies = proxyenv.start(self.spec.proxy, self.pki)
        self.proxy = self.proxies["proxy"]

    def _stop_servers(self) -> None:
        try:
            failed: list[ServerError] = []
            for proxy in {id(p): p for p in self.proxies.values()}.values():
                try:  # every proxy stops, the first failure is raised
                    proxy.stop()
                except ServerError as e:
                    failed.append(e)
            if failed:
                raise failed[0]
        finally:
            self.origin.stop()

    def _proxy_environ(self) -> dict[str, str]:
        # Both spellings (unless the scenario is about them): clients differ in which they
        # read. NO_PROXY empty unless the scenario names the origin in it (proxyenv.py).
        if self.proxy is None or self.spec.proxy is None:
            return {}
        return proxyenv.variables(self.spec.proxy, self.proxies, self.origin.port)

    def _route(self) -> proxyenv.Route:
        """What the proxies had seen before a client starts: its OK is checked against it."""
        return proxyenv.Route(self.spec.proxy or "", self.proxies)

    @property
    def _names_required(self) -> bool:
        """Whether clients must resolve invented names (a proxy-environment scenario)."""
        return self.spec.proxy in proxyenv.ENVIRONMENTS

    def _require_private_names(self, spec: Spec) -> None:
        if spec.proxy not in proxyenv.ENVIRONMENTS:
            return
        reason = namespace.probe()
        if reason is not None:
            # Never the host's resolver instead: it would be asked about the invented names.
            raise SystemPathsUnavailableError(
                f"proxy scenario {spec.proxy!r} needs clients to resolve invented names "
                f"through a private /etc/hosts in a mount namespace, and {reason}"
            )

    def __repr__(self) -> str:
        return f"<TLSEnv {self.scenario.name} at {self.root}>"
