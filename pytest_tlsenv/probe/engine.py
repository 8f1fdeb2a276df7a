"""The probe itself: canaries, origins and watches for one client, and the runs that measure it."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
import time
import venv
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..env import ENVIRON_LOCK, Sandbox, build_environ, scrubbed
from ..errors import ConfigError
from ..journal import Journal
from ..keystore import java_tool_options, jks_truststore, trust_store_options
from ..outcome import Verdict, classify_call, classify_run
from ..pki import Authority, Leaf
from ..placeholders import check, substitute
from ..runner import call_in_thread, must_drop_caps, run_process
from ..servers import Origin
from ..store import Layout, TrustStore
from .results import (
    ERROR,
    IGNORED,
    INCONCLUSIVE,
    READ_ONLY,
    TRUSTED,
    PairResult,
    ProbeReport,
    SourceResult,
)
from .sources import PLACEHOLDERS, SYSTEM_SOURCES, TRUST_VARIABLES, Source
from .watch import OpenWatch

if TYPE_CHECKING:
    from ..namespace import MountPlan

__all__ = ["Client", "Probe", "probe"]

Client = Sequence[str] | Callable[[str], Any]


@dataclass
class _Canary:
    authority: Authority
    leaf: Leaf
    origin: Origin


class Probe:
    """Canaries, origins and watches for one client; :meth:`measure` runs it.

    ``client`` is an argv whose words may contain :data:`PLACEHOLDERS` (``{url}`` at least,
    or ``{index_url}`` for package managers; ``{venv}`` is a fresh bare virtualenv's
    interpreter per run) or a callable taking the URL. ``env`` adds fixed variables to every
    run (``UV_NATIVE_TLS=1``); it must not name a candidate variable. ``variables`` limits
    the candidate variables (default: all of :data:`TRUST_VARIABLES`); ``system_paths`` adds
    the layouts' default locations (:data:`SYSTEM_SOURCES`), shown in a private mount
    namespace (:mod:`pytest_tlsenv.namespace`).
    """

    def __init__(
        self,
        client: Client,
        *,
        root: Path | None = None,
        env: Mapping[str, str | None] | None = None,
        variables: Iterable[str] | None = None,
        system_paths: bool = False,
        timeout: float = 20.0,
        pairs: bool = True,
        label: str | None = None,
    ) -> None:
        if isinstance(client, str):
            raise ConfigError("give the client as an argv list, not a string")
        if not callable(client):
            words = list(client)
            if not words:
                raise ConfigError("the probe needs a command (argv) or a callable")
            check(words, PLACEHOLDERS)  # a typo ({ur}) fails here, not as a refused run
            if not any(p in w for w in words for p in ("{url}", "{index_url}")):
                raise ConfigError(
                    "the command must contain {url} or {index_url} (the canary origin's "
                    f"address), e.g. curl -fsS {{url}}; got: {' '.join(words)}"
                )
            self.argv: list[str] | None = words
            self.fn: Callable[[str], Any] | None = None
            self.label: str = label or " ".join(words)
        else:
            self.argv = None
            self.fn = client
            self.label = label or str(getattr(client, "__qualname__", repr(client)))
        names = list(TRUST_VARIABLES) if variables is None else list(variables)
        unknown = [n for n in names if n not in TRUST_VARIABLES]
        if unknown:
            raise ConfigError(
                f"unknown trust variable(s) {', '.join(unknown)}; known: "
                + ", ".join(TRUST_VARIABLES)
            )
        self.env = dict(env or {})
        clash = sorted(set(self.env) & set(names))
        if clash:
            raise ConfigError(
                f"env sets {', '.join(clash)}, which the probe sets itself as a candidate; "
                "leave it out of the candidates (--skip, variables=) or out of env"
            )
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout}")
        self.timeout = timeout
        self.pairs = pairs
        self.system_paths = system_paths
        if system_paths:
            from ..namespace import require

            require()
        if root is not None and root.exists() and (not root.is_dir() or any(root.iterdir())):
            # The probe deletes its root when done: never someone else's files.
            raise ConfigError(f"probe root {root} exists and is not an empty directory")
        self._journal: Journal | None = None
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="tlsenv-probe-"))
            # In tmp, nothing else would remove it (and its keys) if we were killed.
            self._journal = Journal()
            self._journal.write([root])
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.sources: list[Source] = [
            Source(n, TRUST_VARIABLES[n].kind, n, self._variable_path(n)) for n in names
        ]
        if system_paths:
            self.sources += [
                Source(p, kind, None, self.root / "system" / p.lstrip("/"))
                for p, kind in SYSTEM_SOURCES.items()
            ]
        self._canaries: dict[str, _Canary] = {}
        self._watch: OpenWatch | None = None
        self._plan: MountPlan | None = None
        self._counter = itertools.count()
        self._threads: list[threading.Thread] = []

    def _variable_path(self, name: str) -> Path:
        base = self.root / "sources" / name
        kind = TRUST_VARIABLES[name].kind
        return base if kind == "dir" else base / ("cacerts" if kind == "keystore" else "ca.pem")

    @staticmethod
    def _value(src: Source) -> str:
        """What ``src``'s variable is set to: its canary's path, or for a keystore the JVM
        properties naming it."""
        if src.kind == "keystore":
            return java_tool_options(trust_store_options(str(src.path)))
        return str(src.path)

    # -- setup / teardown -----------------------------------------------------------------

    def __enter__(self) -> Probe:
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _canary(self, key: str, label: str) -> _Canary:
        # A CN of at most 64 characters: the source's name goes into the label only.
        authority = Authority.create(label, common_name=f"tlsenv probe {label.split(':')[0]}")
        leaf = authority.issue()
        origin = Origin(leaf.server_context(self.root / "keys"))
        self._canaries[key] = _Canary(authority, leaf, origin)
        origin.start()
        return self._canaries[key]

    def _setup(self) -> None:
        self._canary("", "control: installed nowhere")
        for n, src in enumerate(self.sources):
            canary = self._canary(src.name, f"canary {n}: {src.name}")
            pem = canary.authority.cert_pem
            if src.kind == "file":
                src.path.parent.mkdir(parents=True, exist_ok=True)
                src.path.write_bytes(pem)
            elif src.kind == "keystore":
                src.path.parent.mkdir(parents=True, exist_ok=True)
                src.path.write_bytes(jks_truststore([canary.authority.cert]))
            else:
                # A hashed directory the way c_rehash leaves it; the link points inside the
                # directory, so inotify reports the open here (events go to the target's dir).
                src.path.mkdir(parents=True, exist_ok=True)
                real = src.path / f"tlsenv-canary-{n}.pem"
                real.write_bytes(pem)
                (src.path / f"{canary.authority.subject_hash}.0").symlink_to(real.name)
        if self.system_paths:
            from ..namespace import MountPlan

            # The default locations as a layout of "aliases" only: MountPlan binds or grafts
            # each at its real path and masks the host's other trust paths.
            layout = Layout(
                "probe",
                "the probe's canaries at every default location",
                bundle=None,
                cert_dir=None,
                aliases=tuple((p.lstrip("/"), "") for p in SYSTEM_SOURCES),
            )
            store = TrustStore(root=self.root / "system", layout=layout)
            self._plan = MountPlan.for_store(store, self.root / "ns-stage")
        dirs: list[Path] = []
        for top in (self.root / "sources", self.root / "system"):
            for dirpath, _dirnames, _files in os.walk(top):
                dirs.append(Path(dirpath))
        self._watch = OpenWatch(dirs)

    def close(self) -> None:
        """Stop the origins, close the watch, delete the probe's files."""
        errors: list[BaseException] = []
        for canary in self._canaries.values():
            try:
                canary.origin.stop()
            except Exception as e:  # noqa: BLE001 - re-raised below, after the others stopped
                errors.append(e)
        self._canaries.clear()
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        for t in self._threads:
            t.join(1.0)
        shutil.rmtree(self.root, ignore_errors=True)
        if self._journal is not None:
            self._journal.discard()
        if errors:
            raise errors[0]

    # -- one run ----------------------------------------------------------------------------

    def _argv(self, origin: Origin, run_dir: Path) -> list[str]:
        """The command for one run: placeholders -> the canary origin's address, and a fresh
        bare virtualenv for ``{venv}`` (made only if the command uses it)."""
        assert self.argv is not None

        def venv_python() -> str:
            path = run_dir / "venv"
            venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(path)
            return str(path / "bin" / "python")

        made: list[str] = []

        def venv_once() -> str:
            if not made:
                made.append(venv_python())
            return made[0]

        return substitute(
            self.argv,
            {
                "{index_url}": lambda: origin.index_url,
                "{url}": lambda: origin.url,
                "{host}": lambda: origin.host,
                "{port}": lambda: str(origin.port),
                "{venvdir}": lambda: str(Path(venv_once()).parent.parent),
                "{venv}": venv_once,
            },
        )

    def _run(self, setvars: Mapping[str, str], serve: str) -> tuple[Verdict, str, set[str], float]:
        """Run the client once with ``setvars``, against the origin of canary ``serve``."""
        assert self._watch is not None
        origin = self._canaries[serve].origin
        unset: dict[str, str | None] = dict.fromkeys(TRUST_VARIABLES)
        overlay: dict[str, str | None] = {**unset, **self.env, **setvars}
        run_dir = self.root / "runs" / str(next(self._counter))
        before = len(origin.received)
        self._watch.drain()
        if self.argv is not None:
            sandbox = Sandbox.create(run_dir / "sandbox")
            argv = self._argv(origin, run_dir)
            environ = build_environ(sandbox=sandbox, scenario={}, env=overlay)
            done = run_process(
                argv,
                environ=environ,
                timeout=self.timeout,
                cwd=str(sandbox.home),
                launcher=self._plan.launcher if self._plan is not None else None,
            )
            opened = self._watch.drain()
            verdict, reason = classify_run(
                returncode=done.returncode,
                stderr=done.stderr,
                stdout=done.stdout,
                timed_out=done.timed_out,
                timeout=self.timeout,
                reached_origin=len(origin.received) > before,
            )
            duration = done.duration
        else:
            verdict, reason, duration = self._call(overlay, origin.url, before, origin)
            opened = self._watch.drain()
        shutil.rmtree(run_dir, ignore_errors=True)
        return verdict, reason, opened, duration

    def _call(
        self, overlay: Mapping[str, str | None], url: str, before: int, origin: Origin
    ) -> tuple[Verdict, str, float]:
        fn = self.fn
        assert fn is not None
        with ENVIRON_LOCK, scrubbed(overlay):  # one in-process call at a time
            if self._plan is not None:
                from ..namespace import call_in_namespace

                drop = "dac" if must_drop_caps(None) else "all"
                result: Any = call_in_namespace(
                    lambda: fn(url), self._plan, timeout=self.timeout, drop=drop
                )
            else:
                result = call_in_thread(
                    lambda: fn(url),
                    timeout=self.timeout,
                    drop_caps=must_drop_caps(None),
                    name="tlsenv-probe-call",
                )
                if result.timed_out:
                    self._threads.append(result.thread)
        verdict, reason = classify_call(
            exception=result.exception,
            timed_out=result.timed_out,
            timeout=self.timeout,
            reached_origin=len(origin.received) > before,
        )
        return verdict, reason, float(result.duration)

    # -- the measurement ----------------------------------------------------------------------

    def _opened_of(self, src: Source, opened: set[str]) -> tuple[str, ...]:
        """The paths in ``opened`` that belong to ``src`` (the most specific source wins)."""
        mine: list[str] = []
        base = str(src.path)
        for path in sorted(opened):
            if path != base and not path.startswith(base + "/"):
                continue
            # Nested system sources: /etc/ssl/certs/ca-certificates.crt is its own source.
            inner = [
                s
                for s in self.sources
                if s is not src
                and len(str(s.path)) > len(base)
                and (path == str(s.path) or path.startswith(str(s.path) + "/"))
            ]
            if inner:
                continue
            mine.append("." if path == base else os.path.relpath(path, base))
        if src.kind in ("file", "keystore") and mine:
            return (src.path.name,)
        return tuple(mine)

    def measure(self) -> ProbeReport:
        """Control, one run per source, then the pairs of trusted sources."""
        if self._watch is None:
            self._setup()
        start = time.perf_counter()
        runs = 0
        verdict, reason, _opened, _d = self._run({}, "")
        runs += 1
        report = ProbeReport(self.label, self.system_paths, verdict, reason)
        for src in self.sources:
            setvars = {src.variable: self._value(src)} if src.variable else {}
            verdict, reason, opened, duration = self._run(setvars, src.name)
            runs += 1
            mine = self._opened_of(src, opened)
            if not report.valid:
                status = INCONCLUSIVE
            elif verdict == Verdict.OK:
                status = TRUSTED
            elif verdict == Verdict.REJECTED:
                status = READ_ONLY if mine else IGNORED
            else:
                status = ERROR
            report.results.append(SourceResult(src, status, verdict, reason, mine, duration))
        if self.pairs and report.valid:
            trusted = [r.source for r in report.results if r.status == TRUSTED]
            for a, b in itertools.combinations(trusted, 2):
                if a.system and b.system:
                    continue  # defaults are always present together: nothing to switch
                setvars = {s.variable: self._value(s) for s in (a, b) if s.variable}
                a_verdict, _r, a_seen, _d = self._run(setvars, a.name)
                b_verdict, _r, b_seen, _d = self._run(setvars, b.name)
                runs += 2
                seen = a_seen | b_seen
                report.pairs.append(
                    PairResult(
                        a.name,
                        b.name,
                        a_verdict == Verdict.OK,
                        b_verdict == Verdict.OK,
                        a_opened=bool(self._opened_of(a, seen)),
                        b_opened=bool(self._opened_of(b, seen)),
                    )
                )
        report.runs = runs
        report.duration = time.perf_counter() - start
        assert self._watch is not None
        report.overflowed = self._watch.overflowed
        return report


def probe(
    client: Client,
    *,
    root: Path | None = None,
    env: Mapping[str, str | None] | None = None,
    variables: Iterable[str] | None = None,
    system_paths: bool = False,
    timeout: float = 20.0,
    pairs: bool = True,
    label: str | None = None,
) -> ProbeReport:
    """Measure which trust sources ``client`` uses, and their precedence (see :class:`Probe`).

    ``client``: an argv with ``{url}`` (or ``{index_url}``, ``{venv}``...) or a callable
    taking the URL. Everything the probe wrote is removed before this returns.
    """
    with Probe(
        client,
        root=root,
        env=env,
        variables=variables,
        system_paths=system_paths,
        timeout=timeout,
        pairs=pairs,
        label=label,
    ) as p:
        return p.measure()
