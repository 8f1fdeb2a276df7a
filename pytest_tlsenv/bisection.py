"""Bisecting a client's releases: the first release whose verdict in a scenario changed.

:func:`bisect` lists the releases of a package between a good and a bad one on the package
index, checks the two endpoints really differ, then binary-searches the releases between
with pinned environments (the cache the survey and ``tlsenv.client("uv@0.2.29")`` use). It
parses nothing and prints nothing but through its ``progress`` callback
(``python -m pytest_tlsenv bisect`` is its command line).

A release is "bad" when its verdict differs from the good endpoint's; with ``stderr`` (a
regular expression) a release whose stderr newly matches it counts as changed too.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from .clients import is_pinned, pinned, presets
from .clients.index import DEFAULT_INDEX, Release, check_index_url, releases
from .errors import ConfigError
from .journal import Journal, recover
from .outcome import Outcome, Verdict
from .pki import PKI
from .placeholders import PLACEHOLDERS, TOKEN, check, env_values, substitute
from .scenarios import resolve
from .tlsenv import Settings, TLSEnv

__all__ = ["BisectResult", "Evaluation", "bisect", "max_evaluations"]

_PACKAGE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_EXCERPT_LINES = 6


@dataclass
class Evaluation:
    """One release run in the scenario (or skipped: it could not be installed here)."""

    version: str
    verdict: Verdict | None = None
    reason: str = ""
    stderr: str = ""
    #: Whether the ``stderr`` pattern matched (False without one).
    matched: bool = False
    #: Why the release was not run (no wheel for this platform...), else None.
    skipped: str | None = None
    seconds: float = 0.0

    @property
    def signature(self) -> tuple[Verdict | None, bool]:
        return (self.verdict, self.matched)

    @property
    def excerpt(self) -> str:
        """The last lines of stderr (what a bug report quotes)."""
        return "\n".join(self.stderr.strip().splitlines()[-_EXCERPT_LINES:])

    def describe(self) -> str:
        if self.skipped is not None:
            return f"skipped ({self.skipped})"
        assert self.verdict is not None
        warn = " + stderr match" if self.matched else ""
        return f"{self.verdict.value}{warn}"


@dataclass
class BisectResult:
    """What :func:`bisect` found: the first bad release, the last good one, and the work done."""

    package: str
    scenario: str
    trust: str
    good: Evaluation
    bad: Evaluation
    first_bad: Evaluation
    last_good: Evaluation
    #: Every release run or skipped, in the order the search took them (endpoints first).
    evaluations: list[Evaluation]
    #: The releases strictly between the endpoints that the search could consider.
    candidates: list[str]
    #: Releases left out before the search, with why (pre-release, yanked, no wheel).
    excluded: dict[str, str]
    #: Skipped releases between last_good and first_bad: the change may be in one of them.
    unresolved: list[str]
    installs: int
    seconds: float
    repro: Path | None = None
    index_url: str = DEFAULT_INDEX

    @property
    def evaluated(self) -> int:
        """How many releases were run (skipped ones not counted)."""
        return sum(1 for e in self.evaluations if e.skipped is None)

    def summary(self) -> str:
        """The report: first bad, last good, both verdicts with their stderr excerpts, cost."""
        lines = [
            f"first bad: {self.package} {self.first_bad.version} "
            f"({self.first_bad.describe()}: {self.first_bad.reason})",
            f"last good: {self.package} {self.last_good.version} "
            f"({self.last_good.describe()}: {self.last_good.reason})",
        ]
        if self.unresolved:
            lines.append(
                "  (could not be installed here, so the change may be in: "
                + ", ".join(self.unresolved)
                + ")"
            )
        for ev in (self.first_bad, self.last_good):
            if ev.excerpt:
                lines.append(f"stderr of {ev.version}:")
                lines.extend(f"  | {line}" for line in ev.excerpt.splitlines())
        lines.append(
            f"{self.evaluated} releases run ({len(self.candidates)} between the endpoints, "
            f"bound {max_evaluations(len(self.candidates))}), {self.installs} installed, "
            f"in {self.seconds:.1f} s; scenario {self.scenario}, trust {self.trust}"
        )
        if self.repro is not None:
            lines.append(f"bundle: {self.repro}  (run: sh {self.repro / 'repro.sh'})")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        def one(ev: Evaluation) -> dict[str, Any]:
            return {
                "version": ev.version,
                "verdict": ev.verdict.value if ev.verdict else None,
                "reason": ev.reason,
                "stderr_match": ev.matched,
                "skipped": ev.skipped,
                "seconds": round(ev.seconds, 3),
            }

        return {
            "package": self.package,
            "scenario": self.scenario,
            "trust": self.trust,
            "index_url": self.index_url,
            "first_bad": self.first_bad.version,
            "last_good": self.last_good.version,
            "unresolved": self.unresolved,
            "installs": self.installs,
            "seconds": round(self.seconds, 3),
            "candidates": self.candidates,
            "excluded": self.excluded,
            "evaluations": [one(e) for e in self.evaluations],
        }


def max_evaluations(between: int) -> int:
    """The most releases a search over ``between`` releases runs (both endpoints included),
    when none has to be skipped: ``ceil(log2(between + 1)) + 2``."""
    return math.ceil(math.log2(between + 1)) + 2


def _version(text: str, what: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise ConfigError(f"{what} {text!r} is not a version (e.g. 0.2.28)") from None


def _executable(package: str) -> str:
    """The program a package's command runs: its preset's, else the package's name."""
    for preset in presets().values():
        if preset.installable is not None and preset.installable[0].lower() == package.lower():
            return preset.installable[1]
    return package


def _check_command(package: str, command: Sequence[str]) -> None:
    """Refuse a command that cannot reach the scenario."""
    if not command:
        raise ConfigError("give the client command after --, e.g.: -- uv pip install ...")
    check(command, PLACEHOLDERS)
    if not any(TOKEN.search(w) for w in command):
        raise ConfigError(
            f"command {' '.join(command)!r} has no placeholder ({{url}}, {{index_url}}...): "
            "it would not reach the scenario's origin"
        )


def _check_program(package: str, command: Sequence[str]) -> None:
    """Refuse a command whose program is not the package's: the same at every release."""
    program = command[0]
    allowed = {_executable(package), "python", "python3"}
    if os.sep in program or program not in allowed:
        raise ConfigError(
            f"command runs {program!r}, not {package}: it would be the same program at every "
            f"release (run one of: {', '.join(sorted(allowed))})"
        )


def _pick_endpoints(
    listed: list[Release], good: Version, bad: Version, package: str
) -> tuple[Release, Release]:
    by_version = {r.key: r for r in listed}
    for v, what in ((good, "--good"), (bad, "--bad")):
        if v not in by_version:
            near = sorted(by_version, key=lambda k: abs(_distance(k, v)))[:3]
            hint = ", ".join(str(k) for k in sorted(near)) or "none"
            raise ConfigError(f"{what} {v}: {package} has no such release (nearest: {hint})")
    return by_version[good], by_version[bad]


def _distance(a: Version, b: Version) -> float:
    ra, rb = (*a.release, 0, 0, 0), (*b.release, 0, 0, 0)
    return sum(
        (x - y) * 1000.0 ** (-i) for i, (x, y) in enumerate(zip(ra[:4], rb[:4], strict=True))
    )


def _candidates(
    listed: list[Release], good: Version, bad: Version, prereleases: bool, yanked: bool
) -> tuple[list[str], dict[str, str]]:
    keep: list[str] = []
    excluded: dict[str, str] = {}
    for rel in listed:
        if not good < rel.key < bad:
            continue
        if rel.prerelease and not prereleases:
            excluded[rel.version] = "pre-release"
        elif rel.yanked is not None and not yanked:
            excluded[rel.version] = "yanked" + (f": {rel.yanked}" if rel.yanked else "")
        elif not rel.wheels:
            excluded[rel.version] = "no wheel (only wheels are installed)"
        else:
            keep.append(rel.version)
    return keep, excluded


class _Runner:
    """Installs and runs releases in one built scenario."""

    def __init__(
        self,
        env: TLSEnv,
        package: str,
        command: Sequence[str],
        environ: Mapping[str, str],
        index_url: str,
        pattern: re.Pattern[str] | None,
        trust: str,
    ) -> None:
        self.env, self.package, self.command = env, package, list(command)
        self.environ, self.index_url, self.pattern, self.trust = environ, index_url, pattern, trust
        self.installed: set[str] = set()

    def install(self, version: str) -> Path:
        """The release's bin directory (installed into the cache once)."""
        index = None if self.index_url == DEFAULT_INDEX else self.index_url
        cached = is_pinned(self.package, version, index)
        exe = pinned(self.package, version, "python", index_url=index)
        if not cached:
            self.installed.add(version)
        return exe.parent

    def run(self, version: str) -> Evaluation:
        start = time.perf_counter()
        try:
            bindir = self.install(version)
        except (ConfigError, RuntimeError) as e:
            why = str(e).strip().splitlines()[0]
            return Evaluation(version, skipped=why, seconds=time.perf_counter() - start)
        if not (bindir / self.command[0]).exists():
            raise ConfigError(
                f"{self.package} {version} has no program {self.command[0]!r} "
                f"(its environment's bin: {', '.join(sorted(p.name for p in bindir.iterdir()))})"
            )
        values = env_values(self.env)  # per run: a fresh {venv} each time
        argv = substitute(self.command, values)
        environ: dict[str, str | None] = {
            k: substitute([v], values)[0] for k, v in self.environ.items()
        }
        # The release's programs first on PATH: the command names them as users do, and a
        # bundle written from this run says `uv ...`, not this machine's cache path.
        environ["PATH"] = f"{bindir}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
        outcome: Outcome = self.env.run(argv, env=environ, trust=self.trust)
        red = outcome.redactor()
        stderr = red.text(outcome.stderr)
        matched = bool(self.pattern and self.pattern.search(outcome.stderr))
        return Evaluation(
            version,
            outcome.verdict,
            red.text(outcome.reason),
            stderr,
            matched,
            seconds=time.perf_counter() - start,
        )


def bisect(
    package: str,
    good: str,
    bad: str,
    scenario: str,
    command: Sequence[str],
    *,
    trust: str = "env",
    env: Mapping[str, str] | None = None,
    index_url: str | None = None,
    stderr: str | None = None,
    prereleases: bool = False,
    yanked: bool = False,
    repro_dir: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
    jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> BisectResult:
    """Find the first release of ``package`` after ``good`` whose verdict in ``scenario``
    differs from ``good``'s (``bad`` must differ, or nothing is searched).

    ``command`` runs each release (its program is the package's, found first on PATH from
    the release's pinned environment; placeholders as in ``repro``: ``{url}``,
    ``{index_url}``, ``{venv}``...), with ``env`` on top of the scenario's variables, in trust
    mode ``trust``. Releases come from ``index_url`` (default PyPI) only, as wheels; pre-releases
    and yanked ones are left out unless asked. A release that cannot be installed here is
    skipped and the search goes on around it. ``stderr``, a regular expression, makes a new
    match in stderr count as a change. ``repro_dir`` gets a reproduction bundle of the first
    bad release. ``jobs`` installs run at once (default: the cores, at most 4): the endpoints
    together, and the search's next two releases while one runs. ``progress`` receives one
    line per release run (``[3/6] uv 0.2.29: CRASHED``).

    Raises :class:`ConfigError` for bad input (unknown package, scenario or version, a command
    without a placeholder, endpoints with the same verdict) and
    :class:`~pytest_tlsenv.errors.ClientUnavailableError` when the index cannot be reached.
    """
    start = time.perf_counter()
    if not _PACKAGE.fullmatch(package):
        raise ConfigError(f"package {package!r} is not a package name")
    good_v, bad_v = _version(good, "--good"), _version(bad, "--bad")
    if not good_v < bad_v:
        raise ConfigError(f"--good {good} must be an older release than --bad {bad}")
    if trust not in ("env", "system", "flags"):
        raise ConfigError(f"trust must be env, system or flags, got {trust!r}")
    command = list(command)
    _check_command(package, command)
    environ = dict(env or {})
    for name in environ:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ConfigError(f"--env {name!r}: not a variable name")
    check(environ.values(), PLACEHOLDERS)
    pattern = None
    if stderr is not None:
        try:
            pattern = re.compile(stderr)
        except re.error as e:
            raise ConfigError(f"--stderr {stderr!r}: not a regular expression ({e})") from None
    spec = resolve(scenario, trust=trust)  # an unknown scenario: ConfigError, before the index
    index = DEFAULT_INDEX if index_url is None else check_index_url(index_url)
    if repro_dir is not None:
        out = Path(repro_dir)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ConfigError(f"{out} exists and is not an empty directory: choose another")
    listed = releases(package, index)
    good_rel, bad_rel = _pick_endpoints(listed, good_v, bad_v, package)
    _check_program(package, command)
    for rel, what in ((good_rel, "--good"), (bad_rel, "--bad")):
        if not rel.wheels:
            raise ConfigError(f"{what} {rel.version}: {package} has no wheel of that release")
    candidates, excluded = _candidates(listed, good_v, bad_v, prereleases, yanked)
    for version, why in excluded.items():
        _say(progress, f"skipping {package} {version}: {why}")
    workers = max(1, min(4, jobs or os.cpu_count() or 1))
    bound = max_evaluations(len(candidates))

    recover()
    tmp = Path(tempfile.mkdtemp(prefix="tlsenv-bisect-"))
    journal = Journal()
    evaluations: list[Evaluation] = []
    try:
        journal.write([tmp])
        pki = PKI(tmp / "pki")
        with (
            TLSEnv.build(
                spec, pki=pki, root=tmp / "scenario", settings=Settings(timeout=timeout)
            ) as tlsenv,
            concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="bisect") as pool,
        ):
            runner = _Runner(tlsenv, package, command, environ, index, pattern, trust)
            prefetched: dict[str, concurrent.futures.Future[Path]] = {}

            def prefetch(versions: Sequence[str]) -> None:
                for v in versions[:workers]:
                    if v not in prefetched:
                        prefetched[v] = pool.submit(runner.install, v)

            def evaluate(version: str) -> Evaluation:
                fut = prefetched.get(version)
                if fut is not None:
                    # A failed install: run() tries again and says why the release is skipped.
                    with contextlib.suppress(ConfigError, RuntimeError):
                        fut.result()
                ev = runner.run(version)
                evaluations.append(ev)
                done = sum(1 for e in evaluations if e.skipped is None)
                if ev.skipped is not None:
                    _say(progress, f"skipping {package} {version}: {ev.skipped}")
                else:
                    _say(progress, f"[{done}/{bound}] {package} {version}: {ev.describe()}")
                return ev

            prefetch([good_rel.version, bad_rel.version])
            good_ev = evaluate(good_rel.version)
            bad_ev = evaluate(bad_rel.version)
            for ev, what in ((good_ev, "--good"), (bad_ev, "--bad")):
                if ev.skipped is not None:
                    raise ConfigError(f"{what} {ev.version} cannot be installed: {ev.skipped}")
            if good_ev.signature == bad_ev.signature:
                raise ConfigError(
                    f"{package} {good_ev.version} and {bad_ev.version} give the same verdict in "
                    f"{scenario} ({good_ev.describe()}): nothing to bisect"
                )
            lo, hi = -1, len(candidates)  # candidates[lo] good, candidates[hi] bad
            skipped: set[int] = set()
            while True:
                open_ = [i for i in range(lo + 1, hi) if i not in skipped]
                if not open_:
                    break
                mid = open_[len(open_) // 2]
                # While mid runs, install the two releases the next step may want.
                left = [i for i in open_ if i < mid]
                right = [i for i in open_ if i > mid]
                nxt = [candidates[mid]]
                if left:
                    nxt.append(candidates[left[len(left) // 2]])
                if right:
                    nxt.append(candidates[right[len(right) // 2]])
                prefetch(nxt if workers > 1 else nxt[:1])
                ev = evaluate(candidates[mid])
                if ev.skipped is not None:
                    skipped.add(mid)
                elif ev.signature == good_ev.signature:
                    lo = mid
                else:
                    hi = mid
            by_version = {e.version: e for e in evaluations}
            first_bad = bad_ev if hi == len(candidates) else by_version[candidates[hi]]
            last_good = good_ev if lo == -1 else by_version[candidates[lo]]
            unresolved = [candidates[i] for i in sorted(skipped) if lo < i < hi]
            for fut in prefetched.values():
                fut.cancel()
        repro = None
        if repro_dir is not None:
            runner_args = (package, command, environ, index, trust)
            repro = _bundle(
                spec, pki, tmp, runner_args, first_bad.version, Path(repro_dir), timeout
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        journal.discard()
    return BisectResult(
        package=package,
        scenario=scenario,
        trust=trust,
        good=good_ev,
        bad=bad_ev,
        first_bad=first_bad,
        last_good=last_good,
        evaluations=evaluations,
        candidates=candidates,
        excluded=excluded,
        unresolved=unresolved,
        installs=len(runner.installed),
        seconds=time.perf_counter() - start,
        repro=repro,
        index_url=index,
    )


def _bundle(
    spec: Any,
    pki: PKI,
    tmp: Path,
    runner_args: tuple[str, list[str], dict[str, str], str, str],
    version: str,
    out: Path,
    timeout: float,
) -> Path:
    """A reproduction bundle of ``version`` alone: a fresh scenario, one run, exported."""
    package, command, environ, index, trust = runner_args
    with TLSEnv.build(
        spec, pki=pki, root=tmp / "repro", settings=Settings(timeout=timeout)
    ) as tlsenv:
        _Runner(tlsenv, package, command, environ, index, None, trust).run(version)
        return tlsenv.repro(out, pip_requirement=f"{package}=={version}")


def _say(progress: Callable[[str], None] | None, line: str) -> None:
    if progress is not None:
        progress(line)
