"""The pytest plugin: fixtures, markers, options. The engine lives in the other modules.

Loaded as ``pytest -p tlsenv`` (entry point ``pytest11``: ``tlsenv = pytest_tlsenv.plugin``),
or automatically wherever the package is installed; it stays silent in sessions that use none
of its fixtures.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import shutil
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._checks import MAX_TIMEOUT
from .errors import NotApplicableError  # no dependencies: cheap at startup

if TYPE_CHECKING:
    from .pki import PKI
    from .report import Baseline, Change, Result
    from .scenarios import Spec
    from .tlsenv import Settings, TLSEnv

_spec_key = pytest.StashKey["Spec"]()
_failed_key = pytest.StashKey[bool]()
_factory_key = pytest.StashKey["TLSEnvFactory"]()
_session_key = pytest.StashKey["_Session"]()
_dirs_key = pytest.StashKey["_SessionDirs"]()

# Fixtures that make a test a tlsenv test (for --tlsenv-scenarios, the grid and silence).
FIXTURES = ("tlsenv", "make_tlsenv", "tlsenv_scenario")
# Groups the design names; a matrix over one that has no scenario yet says so.
DOCUMENTED_GROUPS = ("store", "proxy", "server", "reports")
REPORT_SUFFIXES = (".json", ".md")

MARKER_HELP = (
    "tlsenv(scenario=None, *, faults=(), placement='decoy', proxy=None, server='good', "
    "layout='debian', backend='disk', system_paths=False, user=None, timeout=None, "
    "extra_cas=0, trust=None): build the `tlsenv` fixture from a catalogue scenario (see "
    "`python -m pytest_tlsenv scenarios`); keywords beside it add faults or override the rest. "
    "trust='env' (the variables users of each client set), 'system' (no variable; the store "
    "at the layout's real paths) or 'flags' (explicit options such as curl --cacert); "
    "default: --tlsenv-trust / ini tlsenv_trust, else 'env'."
)
MATRIX_HELP = (
    "tlsenv_matrix(SPEC, **keywords): run the test once per scenario, with ids like "
    "test_x[unreadable-file]. SPEC is a group (store, proxy, server, reports, all), a "
    "scenario name, a list of names/groups, or a mapping {'scenarios': SPEC, keyword: value}; "
    "keywords are the tlsenv marker's, and a list value is an axis (placement=['decoy', "
    "'shadow'] doubles the matrix; faults takes a list of lists for an axis; trust=['env', "
    "'system'] runs each scenario in each trust mode, ids like test_x[good-trust=system]). The "
    "point reaches the `tlsenv` fixture, and `tlsenv_scenario` (its Spec, for "
    "make_tlsenv(tlsenv_scenario))."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tlsenv", "TLS environment scenarios (pytest-tlsenv)")
    group.addoption(
        "--tlsenv-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="default timeout of tlsenv.run/call; a client still running then is HUNG "
        "(default: ini tlsenv_timeout, 20)",
    )
    group.addoption(
        "--tlsenv-user",
        default=None,
        metavar="USER",
        help="run subprocess clients as this unprivileged user (real user switch, needs root; "
        "not uid 0) instead of as root without any capability (default: ini tlsenv_user)",
    )
    group.addoption(
        "--tlsenv-system-paths",
        action="store_true",
        default=False,
        help="system_paths=True for every scenario: clients see the fake store at /etc/ssl "
        "(and the layout's other real paths) in a private mount namespace",
    )
    group.addoption(
        "--tlsenv-trust",
        default=None,
        choices=("env", "system", "flags"),
        help="how the scenario's store reaches clients whose marker says nothing: env (the "
        "trust variables users of each client set), system (no variable; the store at the "
        "layout's real paths in a mount namespace), flags (explicit options, e.g. curl "
        "--cacert). A (client, scenario) pair the mode cannot apply to is skipped as not "
        "applicable (default: ini tlsenv_trust, else env)",
    )
    group.addoption(
        "--tlsenv-keep",
        action="store_true",
        default=False,
        help="keep the scenario roots of failing tests and print where they are",
    )
    group.addoption(
        "--tlsenv-root-dir",
        default=None,
        metavar="DIR",
        help="where scenario roots live: auto (a tmpfs: $XDG_RUNTIME_DIR, else /dev/shm, when "
        "usable; else pytest's basetemp), basetemp, or a directory (default: ini "
        "tlsenv_root_dir, else auto)",
    )
    group.addoption(
        "--tlsenv-scenarios",
        default=None,
        metavar="NAMES",
        help="run only tlsenv tests in these scenarios: comma-separated scenario or group "
        "names (store, proxy, server, reports, all); -NAME deselects (e.g. store,-fifo). "
        "Applies to tlsenv_matrix points and to tests using the tlsenv fixture "
        "(default: ini tlsenv_scenarios, else all)",
    )
    group.addoption(
        "--tlsenv-report",
        default=None,
        metavar="PATH",
        help="write the verdicts per test and scenario to PATH: JSON if it ends in .json, "
        "Markdown (grid + failures, for an issue) if .md",
    )
    group.addoption(
        "--tlsenv-baseline",
        default=None,
        metavar="PATH",
        help="JSON baseline of verdicts per test and scenario; a verdict that differs fails "
        "its test ('unreadable-file: OK -> CRASHED (baseline PATH)'); so does a result of "
        "another trust mode than its recorded entry (the error names both modes)",
    )
    group.addoption(
        "--tlsenv-update-baseline",
        action="store_true",
        default=False,
        help="write this run's verdicts into --tlsenv-baseline (creating it) instead of "
        "comparing; entries of tests that did not run are kept",
    )
    # Reproduction bundles: see _ReproHooks below.
    group.addoption(
        "--tlsenv-repro-dir",
        default=None,
        metavar="DIR",
        help="write a reproduction bundle (repro.sh, Dockerfile, ISSUE.md...; runs without "
        "pytest) for every tlsenv of every failing test into DIR/<test id>",
    )
    parser.addini(
        "tlsenv_fault_uid",
        "uid that owns files a permission fault makes unreadable (never the client's)",
        default="65533",
    )
    parser.addini("tlsenv_timeout", "default client timeout in seconds", default="20")
    parser.addini(
        "tlsenv_user",
        "default of --tlsenv-user: an unprivileged user (name or uid, not uid 0) subprocess "
        "clients switch to as root; a uid-0 client without capabilities still owns and may "
        "write root-owned files, a real user does not",
        default="",
    )
    parser.addini(
        "tlsenv_trust",
        "default of --tlsenv-trust: env, system or flags (how the store reaches clients)",
        default="env",
    )
    parser.addini(
        "tlsenv_grid_max_tests",
        "print the verdict grid only when at most this many tests ran a client (0: never); "
        "larger sessions get a one-line summary and --tlsenv-report has the full grid",
        default="40",
    )
    parser.addini(
        "tlsenv_root_dir",
        "default of --tlsenv-root-dir: auto (a usable tmpfs, $XDG_RUNTIME_DIR then /dev/shm, "
        "else pytest's basetemp), basetemp, or a directory; a full tmpfs falls back to the "
        "basetemp with one line in the terminal summary",
        default="auto",
    )
    parser.addini(
        "tlsenv_scenarios",
        "default of --tlsenv-scenarios (comma-separated scenario/group names, -NAME deselects)",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.addinivalue_line("markers", MATRIX_HELP)
    _knobs(config)  # a bad --tlsenv-timeout / ini value is a usage error before collection
    session = _Session.from_config(config)
    config.stash[_session_key] = session
    config.pluginmanager.register(session, "tlsenv-session")
    if config.getoption("tlsenv_repro_dir", None):
        repro_dir = config.invocation_params.dir / config.getoption("tlsenv_repro_dir")
        _check_creatable(repro_dir, "--tlsenv-repro-dir")
        config.pluginmanager.register(_ReproHooks(repro_dir), "tlsenv-repro")


def _check_creatable(directory: Path, option: str, shown: Path | None = None) -> None:
    """A usage error now rather than at the first failing test; leaves nothing behind."""
    missing = [p for p in (directory, *directory.parents) if not p.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = f"{e.strerror or e}: {e.filename}" if e.filename else (e.strerror or str(e))
        raise pytest.UsageError(f"{option} {shown or directory}: {why}") from None
    if missing:
        shutil.rmtree(missing[-1], ignore_errors=True)  # created just now, empty


def _check_writable_file(path: Path, option: str) -> None:
    if path.is_dir():
        raise pytest.UsageError(f"{option} {path}: is a directory")
    _check_creatable(path.parent, option, shown=path)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_session_key, None)
    if session is not None:
        config.pluginmanager.unregister(session)
        del config.stash[_session_key]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    dirs = item.config.stash.get(_dirs_key, None)
    if dirs is not None and dirs.note is not None and not dirs.note_sent:
        # To whoever prints the summary (the xdist controller too), once per process.
        report.tlsenv_root_note = dirs.note  # type: ignore[attr-defined]
        dirs.note_sent = True
    factory = item.stash.get(_factory_key, None)
    session = item.config.stash.get(_session_key, None)
    if report.when == "call" and factory is not None and session is not None:
        session.attach(item, report, factory)
    if report.failed:
        item.stash[_failed_key] = True
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A scenario that cannot apply to a (client, trust mode) pair is a skip, with why:
    running it would measure a healthy store."""
    try:
        return (yield)
    except NotApplicableError as e:
        pytest.skip(f"not applicable: {e}")


def _knobs(config: pytest.Config) -> tuple[int, float]:
    """Validated fault uid and timeout; cheap (no engine import), so configure can call it."""
    try:
        fault_uid = int(config.getini("tlsenv_fault_uid"))
        option = config.getoption("tlsenv_timeout")
        timeout = option if option is not None else float(config.getini("tlsenv_timeout"))
    except ValueError as e:
        raise pytest.UsageError(f"pytest-tlsenv: bad ini value: {e}") from e
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):  # NaN and inf too
        raise pytest.UsageError(
            f"pytest-tlsenv: got {timeout}, not a finite number of seconds up to "
            f"{MAX_TIMEOUT:g}: --tlsenv-timeout must be positive"
        )
    if not 0 < fault_uid < 2**32 - 1:
        # As root, a permission fault gives its file to this uid: root's own (0) would let
        # the client (root without the DAC capabilities, but the owner) read it anyway.
        raise pytest.UsageError(
            f"pytest-tlsenv: tlsenv_fault_uid must be a uid other than root's, got {fault_uid}"
        )
    try:
        if int(config.getini("tlsenv_grid_max_tests")) < 0:
            raise ValueError("it must not be negative")
    except ValueError as e:
        raise pytest.UsageError(f"pytest-tlsenv: bad ini value tlsenv_grid_max_tests: {e}") from e
    _client_user(config)
    _trust_mode(config)
    return fault_uid, timeout


def _client_user(config: pytest.Config) -> str | None:
    """--tlsenv-user, else ini tlsenv_user: validated (exists, not uid 0, switchable)."""
    option: str | None = config.getoption("tlsenv_user")
    user = option or str(config.getini("tlsenv_user")).strip() or None
    if user is None:
        return None
    from .errors import ConfigError
    from .runner import client_ids  # the same check as TLSEnv's, here at startup

    source = "--tlsenv-user" if option else "ini tlsenv_user ="
    try:
        uid, _gid = client_ids(user)
    except ConfigError as e:
        raise pytest.UsageError(f"{source} {user}: {e}") from None
    if os.geteuid() != 0 and uid != os.geteuid():
        raise pytest.UsageError(f"{source} {user}: switching users needs root")
    return user


def _settings(config: pytest.Config) -> Settings:
    from .tlsenv import Settings

    fault_uid, timeout = _knobs(config)
    return Settings(
        fault_uid=fault_uid,
        timeout=timeout,
        user=_client_user(config),
        system_paths=config.getoption("tlsenv_system_paths"),
        trust=_trust_mode(config),
    )


def _trust_mode(config: pytest.Config) -> str:
    """--tlsenv-trust, else ini tlsenv_trust; a bad ini value is a usage error."""
    trust = config.getoption("tlsenv_trust", None) or str(config.getini("tlsenv_trust")).strip()
    if trust not in ("env", "system", "flags"):
        raise pytest.UsageError(
            f"pytest-tlsenv: bad ini value tlsenv_trust: {trust!r} (env, system or flags)"
        )
    return trust


def _spec_for(item: pytest.Item) -> Spec:
    """Parse the item's ``tlsenv`` marker once (kept in ``item.stash``)."""
    from .errors import ConfigError
    from .scenarios import resolve

    if _spec_key not in item.stash:
        marker = item.get_closest_marker("tlsenv")
        try:
            spec = resolve(*marker.args, **marker.kwargs) if marker else resolve()
        except ConfigError as e:
            problem = str(e)
        else:
            item.stash[_spec_key] = spec
            return spec
        # Outside the except block, so the report shows no chained traceback.
        pytest.fail(f"{item.nodeid}: bad @pytest.mark.tlsenv: {problem}", pytrace=False)
    return item.stash[_spec_key]


# -- matrices -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MatrixPoint:
    """One test of a ``tlsenv_matrix``: its id, catalogue scenario and resolved Spec.

    ``problem`` is set for a point whose feature has not landed yet (NotYetSupportedError):
    that test fails at setup with it, the rest of the matrix runs.
    """

    id: str
    scenario: str
    keywords: Mapping[str, Any]
    spec: Spec | None
    problem: str | None = None


def _known_groups() -> dict[str, tuple[str, ...]]:
    from .scenarios import CATALOGUE, GROUPS

    groups: dict[str, tuple[str, ...]] = dict.fromkeys(DOCUMENTED_GROUPS, ())
    groups.update(GROUPS)
    groups["all"] = tuple(CATALOGUE)
    return groups


def _names_help() -> str:
    from .scenarios import CATALOGUE

    return f"groups: {', '.join(sorted(_known_groups()))}; scenarios: {', '.join(CATALOGUE)}"


def select_scenarios(spec: object) -> list[str]:
    """Catalogue names for a group name, a scenario name, or a list of either (in order)."""
    from .errors import ConfigError
    from .scenarios import CATALOGUE

    if isinstance(spec, str):
        tokens: Sequence[object] = [spec]
    elif isinstance(spec, (list, tuple)):
        tokens = spec
    else:
        raise ConfigError(
            f"SPEC must be a group or scenario name, a list of them, or a mapping; got {spec!r}"
        )
    groups = _known_groups()
    names: list[str] = []
    for token in tokens:
        if not isinstance(token, str):
            raise ConfigError(f"scenario names are strings, got {token!r}")
        if token in groups:
            found = list(groups[token])
        elif token in CATALOGUE:
            found = [token]
        else:
            raise ConfigError(f"unknown scenario or group {token!r}; {_names_help()}")
        names += [n for n in found if n not in names]
    if not names:
        raise ConfigError(f"{spec!r} selects no scenario in this version; {_names_help()}")
    return names


def _axis_values(keyword: str, value: object) -> list[object] | None:
    # faults is list-valued already: a list of lists is its axis.
    if keyword == "faults":
        if (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(v, (list, tuple)) for v in value)
        ):
            return list(value)
        return None
    return list(value) if isinstance(value, (list, tuple)) else None


def matrix_points(
    args: Sequence[Any], kwargs: Mapping[str, Any], base: Mapping[str, Any] | None = None
) -> list[MatrixPoint]:
    """Expand ``tlsenv_matrix(SPEC, **keywords)`` (``base``: a ``tlsenv`` marker's keywords)."""
    from .errors import ConfigError, NotYetSupportedError
    from .scenarios import KEYWORDS, resolve

    if len(args) != 1:
        raise ConfigError(f"tlsenv_matrix takes one SPEC, got {len(args)} positional arguments")
    spec, keywords = args[0], dict(kwargs)
    if isinstance(spec, Mapping):
        if "scenarios" not in spec:
            raise ConfigError(
                "the mapping form needs a 'scenarios' key, e.g. {'scenarios': 'store'}"
            )
        keywords = {**{k: v for k, v in spec.items() if k != "scenarios"}, **keywords}
        spec = spec["scenarios"]
    if "scenario" in keywords:
        raise ConfigError("the matrix chooses the scenario: give SPEC, not scenario=")
    unknown = sorted(set(keywords) - set(KEYWORDS))
    if unknown:
        raise ConfigError(
            f"unknown keyword(s) {', '.join(unknown)}; valid: {', '.join(KEYWORDS[1:])}"
        )
    names = select_scenarios(spec)
    axes = {k: vals for k, v in keywords.items() if (vals := _axis_values(k, v)) is not None}
    for k, vals in axes.items():
        if not vals:
            raise ConfigError(f"{k}=[]: an axis needs at least one value")
        if len({repr(v) for v in vals}) < len(vals):
            raise ConfigError(f"{k}={vals!r}: a value appears twice on the axis")
    fixed = {**(base or {}), **{k: v for k, v in keywords.items() if k not in axes}}
    points: list[MatrixPoint] = []
    for name in names:
        for combo in itertools.product(*axes.values()):
            point_kw = {**fixed, **dict(zip(axes, combo, strict=True)), "scenario": name}
            try:
                resolved: Spec | None = resolve(**point_kw)
                problem = None
            except NotYetSupportedError as e:
                resolved, problem = None, str(e)
            label = resolved.scenario.name if resolved is not None else name
            if "trust" in axes:
                # A verdict is a verdict in one mode: the id always names it.
                label += f"-trust={point_kw['trust']}"
            points.append(MatrixPoint(label, name, point_kw, resolved, problem))
    # Axes that leave no trace in the scenario label (timeout, user...) go into the id.
    if len({p.id for p in points}) < len(points):
        points = [
            MatrixPoint(
                p.id + "".join(f"-{k}={p.keywords[k]}" for k in axes if k not in _LABELLED),
                p.scenario,
                p.keywords,
                p.spec,
                p.problem,
            )
            for p in points
        ]
    return points


_LABELLED = ("faults", "placement", "layout", "trust")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("tlsenv_matrix")
    if marker is None:
        return
    from .errors import ConfigError

    nodeid = metafunc.definition.nodeid
    if "tlsenv_scenario" not in metafunc.fixturenames:
        raise pytest.Collector.CollectError(
            f"{nodeid}: @pytest.mark.tlsenv_matrix needs the tlsenv, make_tlsenv or "
            "tlsenv_scenario fixture"
        )
    base = metafunc.definition.get_closest_marker("tlsenv")
    try:
        if base is not None and (base.args or "scenario" in base.kwargs):
            raise ConfigError("a @pytest.mark.tlsenv beside tlsenv_matrix cannot name a scenario")
        points = matrix_points(marker.args, marker.kwargs, base.kwargs if base else None)
    except ConfigError as e:
        problem = str(e)
    else:
        metafunc.parametrize("tlsenv_scenario", points, ids=[p.id for p in points], indirect=True)
        return
    raise pytest.Collector.CollectError(f"{nodeid}: bad @pytest.mark.tlsenv_matrix: {problem}")


def _item_scenario(item: pytest.Item) -> str | None:
    """The catalogue scenario of a tlsenv test (None for others and make_tlsenv-only ones)."""
    callspec = getattr(item, "callspec", None)
    point = callspec.params.get("tlsenv_scenario") if callspec is not None else None
    if isinstance(point, MatrixPoint):
        return point.scenario
    if "tlsenv" not in getattr(item, "fixturenames", ()):
        return None
    marker = item.get_closest_marker("tlsenv")
    if marker is None:
        return "good"
    name = marker.args[0] if marker.args else marker.kwargs.get("scenario")
    return name if isinstance(name, str) else "good"


def _matrix_id(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    point = callspec.params.get("tlsenv_scenario") if callspec is not None else None
    return point.id if isinstance(point, MatrixPoint) else None


def row_key(nodeid: str, matrix_id: str | None) -> str:
    """The grid's test key: ``nodeid`` without the matrix's part of the parameter id."""
    if matrix_id is None or not nodeid.endswith("]") or "[" not in nodeid:
        return nodeid
    head, _, inner = nodeid[:-1].partition("[")
    if inner == matrix_id:
        return head
    for before, after in ((f"{matrix_id}-", ""), ("", f"-{matrix_id}")):
        if before and inner.startswith(before):
            return f"{head}[{inner[len(before) :]}]"
        if after and inner.endswith(after):
            return f"{head}[{inner[: -len(after)]}]"
    middle = f"-{matrix_id}-"
    if middle in inner:
        return f"{head}[{inner.replace(middle, '-', 1)}]"
    return nodeid


def _parse_selection(text: str) -> tuple[set[str] | None, set[str]]:
    """``store,-fifo`` -> (names to keep or None for all, names to drop)."""
    from .errors import ConfigError

    include: set[str] | None = None
    exclude: set[str] = set()
    for raw in text.split(","):
        token = raw.strip()
        if not token:
            continue
        drop = token.startswith("-")
        name = token[1:] if drop else token
        try:
            names = (
                set(select_scenarios(name))
                if name not in DOCUMENTED_GROUPS
                else set(_known_groups()[name])
            )
        except ConfigError as e:
            raise pytest.UsageError(f"--tlsenv-scenarios: {e}") from None
        if drop:
            exclude |= names
        else:
            include = (include or set()) | names
    return include, exclude


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    session = config.stash.get(_session_key, None)
    if session is None or session.selection is None:
        return
    include, exclude = session.selection
    keep, drop = [], []
    for item in items:
        name = _item_scenario(item)
        if name is None or ((include is None or name in include) and name not in exclude):
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# -- session: results, baseline, grid, report ------------------------------------------------


class _Session:
    """Collects the results of tlsenv tests (from xdist workers too) and reports them.

    Workers attach their results to the call-phase TestReport (``report.tlsenv_results``, a
    JSON-ready list that pytest-xdist serialises with the report); whoever shows the terminal
    (the controller, or the only process) merges them in ``pytest_runtest_logreport``.
    """

    def __init__(
        self,
        config: pytest.Config,
        *,
        selection: tuple[set[str] | None, set[str]] | None,
        report_path: Path | None,
        baseline: Baseline | None,
        update_baseline: bool,
    ) -> None:
        self.config = config
        self.selection = selection
        self.report_path = report_path
        self.baseline = baseline
        self.update_baseline = update_baseline
        self.is_worker = hasattr(config, "workerinput")
        self.used = False
        self.results: dict[tuple[str, str], Result] = {}
        self.changes: list[Change] = []
        self.mode_errors: list[str] = []  # results compared with a baseline of another mode
        self.updated: int | None = None
        # Why scenario roots went to disk instead of a tmpfs (from every worker): one line.
        self.root_notes: dict[str, None] = {}

    @classmethod
    def from_config(cls, config: pytest.Config) -> _Session:
        from .errors import ConfigError

        text = config.getoption("tlsenv_scenarios") or config.getini("tlsenv_scenarios")
        selection = _parse_selection(text) if text else None
        report = config.getoption("tlsenv_report")
        report_path = Path(report) if report else None
        if report_path is not None and report_path.suffix not in REPORT_SUFFIXES:
            raise pytest.UsageError(
                f"--tlsenv-report {report}: unknown suffix {report_path.suffix!r}; "
                "use .json (machine-readable) or .md (grid and failures for an issue)"
            )
        controller = not hasattr(config, "workerinput")  # xdist workers write no files
        if report_path is not None and controller:
            # Found out now, not after the whole session ran.
            _check_writable_file(config.invocation_params.dir / report_path, "--tlsenv-report")
        baseline_arg = config.getoption("tlsenv_baseline")
        update = bool(config.getoption("tlsenv_update_baseline"))
        if update and not baseline_arg:
            raise pytest.UsageError("--tlsenv-update-baseline needs --tlsenv-baseline PATH")
        if update and controller:
            path = config.invocation_params.dir / baseline_arg
            _check_writable_file(path, "--tlsenv-baseline")
        baseline = None
        if baseline_arg:
            from .report import Baseline

            path = Path(baseline_arg)
            if not path.is_absolute():
                path = config.invocation_params.dir / path
            try:
                baseline = Baseline.load(path, missing_ok=update)
            except ConfigError as e:
                raise pytest.UsageError(f"--tlsenv-baseline: {e}") from None
        return cls(
            config,
            selection=selection,
            report_path=report_path,
            baseline=baseline,
            update_baseline=update,
        )

    # -- in the process that ran the test --------------------------------------------------

    def attach(self, item: pytest.Item, report: pytest.TestReport, factory: TLSEnvFactory) -> None:
        from .report import results_for

        matrix_id = _matrix_id(item)
        try:
            results = results_for(item.nodeid, row_key(item.nodeid, matrix_id), factory.made)
        except Exception as e:  # noqa: BLE001 - a reporting bug must not abort the session
            report.sections.append(("tlsenv", f"could not record this test's results: {e!r}"))
            results = []
        if self.baseline is not None and not self.update_baseline:
            from .report import BaselineError

            try:
                changes = self.baseline.changes(results)
            except BaselineError as e:
                # Recorded in another trust mode: no comparison is honest, so the test fails
                # with the usage error instead of passing unchecked.
                message = f"tlsenv baseline: {e}"
            else:
                reasons = {r["scenario"]: r.get("reason", "") for r in results}
                message = "\n".join(f"{c}\n  now: {reasons.get(c.scenario, '')}" for c in changes)
            if message:
                if report.passed:
                    report.outcome = "failed"
                    report.longrepr = message
                elif report.failed:
                    report.sections.append(("tlsenv baseline", message))
        report.tlsenv_results = results  # type: ignore[attr-defined]

    # -- where the terminal is ----------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        note = getattr(report, "tlsenv_root_note", None)
        if isinstance(note, str) and not self.is_worker:
            self.root_notes[note] = None
        results = getattr(report, "tlsenv_results", None)
        if results is None or self.is_worker:
            return
        self.used = True
        for r in results:
            r["test_outcome"] = report.outcome
            self.results[(r["nodeid"], r["scenario"])] = r
        if self.baseline is not None and not self.update_baseline:
            from .report import BaselineError

            try:
                self.changes += self.baseline.changes(results)
            except BaselineError as e:
                self.mode_errors.append(str(e))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker or not self.used:
            return
        results = list(self.results.values())
        if self.baseline is not None and self.update_baseline:
            self.updated = self.baseline.update(results)
            self.baseline.dump()
        if self.report_path is not None:
            from .report import write_report

            write_report(
                self.report_path,
                results,
                self.changes,
                baseline=str(self.baseline.path) if self.baseline else None,
            )

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.root_notes and not self.is_worker:
            # A line, not a warning: suites run with -W error, and nothing failed.
            terminalreporter.write_line(
                "tlsenv: scenario roots went to disk (pytest's basetemp) instead of a tmpfs: "
                + "; ".join(self.root_notes)
            )
        if self.is_worker or not self.used:
            return
        from .report import LEGEND, grid, header_line, session_meta

        tr = terminalreporter
        results = list(self.results.values())
        tr.write_sep("=", "tlsenv")
        tr.write_line(header_line(session_meta(results)))
        styles: dict[str, dict[str, bool]] = {
            "header": {"bold": True},
            "expected": {"green": True},
            "mismatch": {"red": True, "bold": True},
            "changed": {"yellow": True, "bold": True},
            "missing": {},
        }
        tests = {r["nodeid"] for r in results}
        limit = int(tr.config.getini("tlsenv_grid_max_tests"))  # validated at configure
        if results and len(tests) > limit:
            scenarios = {r["scenario"] for r in results}
            outside = sum(
                1 for r in results if r["verdict"] is not None and r["verdict"] not in r["expected"]
            )
            tr.write_line(
                f"tlsenv: grid of {len(tests)} tests x {len(scenarios)} scenarios not shown "
                f"(tlsenv_grid_max_tests={limit}); {outside} verdict(s) outside their expected "
                "set; --tlsenv-report PATH.md writes the full grid"
            )
        elif results:
            for block in grid(results, self.changes, width=tr._tw.fullwidth):
                for row in block:
                    for n, cell in enumerate(row):
                        markup = styles["header"] if n == 0 else styles[cell.style]
                        tr.write(cell.text, **markup)
                    tr.line("")
            tr.write_line(LEGEND)
        if self.changes and self.baseline is not None:
            tr.write_line(f"tlsenv: {len(self.changes)} verdict(s) differ from the baseline:")
            for c in self.changes:
                tr.write_line(f"  {c.nodeid}: {c}", red=True)
        for error in self.mode_errors:
            tr.write_line(f"tlsenv: {error}", red=True)
        if self.updated is not None and self.baseline is not None:
            tr.write_line(
                f"tlsenv: baseline {self.baseline.path} updated ({self.updated} verdict(s) "
                "added or changed)"
            )
        if self.report_path is not None:
            tr.write_line(f"tlsenv: report written to {self.report_path}")


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tlsenv_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    """The session's CAs: ``.trusted`` (root of every healthy store), ``.mitm`` (signs the
    interceptor's forged certificates) and ``.untrusted``; each a :class:`trustme.CA`.

    All are ECDSA P-256, valid for two days, and name-constrained to localhost, ``*.test``,
    127.0.0.0/8 and ::1, so trusting one by accident opens nothing else.
    """
    from .journal import Journal, recover, tidy
    from .pki import PKI

    # A session killed mid-test (SIGKILL, CI timeout) left faults unrestored, clients running,
    # keys and stores on disk (pytest's lock keeps its temp dirs for days): undo that first.
    recover()
    directory = tmp_path_factory.mktemp("tlsenv-pki")
    journal = Journal()
    journal.write([directory])  # the keys go when we do, even if we are killed
    yield PKI(directory)
    shutil.rmtree(directory, ignore_errors=True)
    journal.discard()
    tidy()  # the journal directory, if no other session is using it


class _SessionDirs:
    """Where a session's scenario roots live (:mod:`pytest_tlsenv.rootdir`).

    Each root is removed at its test's teardown, so the space used is bounded by the
    environments open at once. Roots are numbered here rather than by
    ``tmp_path_factory.mktemp``, which scans its parent directory on every call. When the
    tmpfs fills up (ENOSPC), the session moves to a directory under the basetemp and
    :attr:`note` says so once.
    """

    def __init__(self, factory: pytest.TempPathFactory, setting: str, settings: Settings) -> None:
        from .journal import Journal
        from .rootdir import choose

        self._factory = factory
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
            base = self._factory.mktemp("tlsenv-roots")
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


@pytest.fixture(scope="session")
def _tlsenv_dirs(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[_SessionDirs]:
    setting = pytestconfig.getoption("tlsenv_root_dir", None) or str(
        pytestconfig.getini("tlsenv_root_dir")
    )
    dirs = _SessionDirs(tmp_path_factory, setting, _settings(pytestconfig))
    pytestconfig.stash[_dirs_key] = dirs
    yield dirs
    dirs.close()


class TLSEnvFactory:
    """What ``make_tlsenv`` returns: call it with the marker's keywords to get a TLSEnv."""

    def __init__(self, request: pytest.FixtureRequest, pki: PKI, dirs: _SessionDirs) -> None:
        self._request = request
        self._pki = pki
        self._dirs = dirs
        self._settings = dirs.settings
        self.made: list[TLSEnv] = []

    def __call__(self, *args: Any, **kwargs: Any) -> TLSEnv:
        from .errors import ConfigError
        from .scenarios import Spec, resolve

        if args and isinstance(args[0], Spec):
            # make_tlsenv(tlsenv_scenario): the matrix point (or marker) as resolved.
            if len(args) > 1 or kwargs:
                problem = "a Spec (tlsenv_scenario) takes no further arguments"
                nodeid = self._request.node.nodeid
                pytest.fail(f"{nodeid}: bad make_tlsenv(...) arguments: {problem}", pytrace=False)
            return self.from_spec(args[0])
        try:
            spec = resolve(*args, **kwargs)
        except ConfigError as e:
            problem = str(e)
        else:
            return self.from_spec(spec)
        nodeid = self._request.node.nodeid
        pytest.fail(f"{nodeid}: bad make_tlsenv(...) arguments: {problem}", pytrace=False)

    def from_spec(self, spec: Spec) -> TLSEnv:
        from .tlsenv import TLSEnv

        root = self._dirs.new_root()
        try:
            env = TLSEnv.build(spec, pki=self._pki, root=root, settings=self._settings)
        except OSError as e:
            # A full tmpfs is the session's problem, not the test's: build it on disk.
            if not self._dirs.full(e):
                raise
            shutil.rmtree(root, ignore_errors=True)  # what the constructor got to write
            root = self._dirs.new_root()
            env = TLSEnv.build(spec, pki=self._pki, root=root, settings=self._settings)
        if env.root != root:
            os.rmdir(root)  # a client user's scenario lives where that user can reach it
        self.made.append(env)
        return env

    def close_all(self) -> None:
        request = self._request
        keep = bool(request.config.getoption("tlsenv_keep")) and request.node.stash.get(
            _failed_key, False
        )
        errors: list[BaseException] = []
        for env in reversed(self.made):
            try:
                env.close(keep=keep)
            except Exception as e:  # noqa: BLE001 - close them all, then report the first
                errors.append(e)
            if keep:
                self._dirs.kept(env.root)
                reporter = request.config.pluginmanager.get_plugin("terminalreporter")
                if reporter is not None:
                    reporter.write_line(f"tlsenv: kept {env.scenario.name} at {env.root}")
        self.made.clear()
        if errors:
            raise errors[0]


@pytest.fixture
def tlsenv_scenario(request: pytest.FixtureRequest) -> Spec:
    """The resolved scenario (a ``Spec``) of this test: its ``tlsenv_matrix`` point, else its
    ``@pytest.mark.tlsenv`` marker, else the healthy default. ``.scenario.name``,
    ``.scenario.expected``... ; ``make_tlsenv(tlsenv_scenario)`` builds another TLSEnv from it.
    """
    point = getattr(request, "param", None)
    if isinstance(point, MatrixPoint):
        if point.spec is None:
            pytest.fail(f"{request.node.nodeid}: {point.problem}", pytrace=False)
        return point.spec
    return _spec_for(request.node)


@pytest.fixture
def make_tlsenv(
    request: pytest.FixtureRequest,
    tlsenv_pki: PKI,
    _tlsenv_dirs: _SessionDirs,
    tlsenv_scenario: Spec,
) -> Iterator[TLSEnvFactory]:
    """Factory: ``make_tlsenv(scenario=None, **keywords)`` builds and starts a TLSEnv with the
    ``tlsenv`` marker's keywords; several per test are fine; ``make_tlsenv(tlsenv_scenario)``
    builds the test's own (matrix) scenario. Each is closed at teardown (servers stopped,
    permissions restored, files removed); their outcomes go to the grid and reports.
    """
    factory = TLSEnvFactory(request, tlsenv_pki, _tlsenv_dirs)
    request.node.stash[_factory_key] = factory
    yield factory
    factory.close_all()


@pytest.fixture
def tlsenv(make_tlsenv: TLSEnvFactory, tlsenv_scenario: Spec) -> TLSEnv:
    """The test's TLS environment, built from its ``@pytest.mark.tlsenv(...)`` marker (or the
    healthy default: the origin's CA in a Debian-layout store, no faults, no proxy).

    ``.origin.url`` / ``.origin.index_url`` address the loopback origin; ``.run(argv)`` runs a
    CLI hermetically, ``.call(fn)`` runs a callable in-process; both return an Outcome with a
    verdict (OK, REJECTED, CRASHED, HUNG, LEAKED, FAILED) and ``assert_*`` helpers.
    """
    return make_tlsenv.from_spec(tlsenv_scenario)


# -- reproduction bundles for failing tests (--tlsenv-repro-dir) ---------------------------------


class _ReproHooks:
    """Writes a bundle for every TLSEnv of a test whose call phase failed.

    Runs while the test's environments are still open (makereport comes before teardown), so
    the bundle records exactly the runs the test made; the report gets a section naming it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        factory = item.stash.get(_factory_key, None)
        if report.when == "call" and report.failed and factory is not None and factory.made:
            from .repro import export

            lines = []
            base = self.directory / "".join(
                c if c.isalnum() or c in "._-" else "_" for c in item.nodeid
            )
            for n, env in enumerate(factory.made):
                target = base if len(factory.made) == 1 else base.with_name(f"{base.name}-{n}")
                shutil.rmtree(target, ignore_errors=True)  # a bundle of an earlier run
                try:
                    export(env, target)
                except Exception as e:  # noqa: BLE001 - a failed export must not hide the failure
                    lines.append(f"{env.scenario.name}: no bundle ({type(e).__name__}: {e})")
                else:
                    lines.append(f"{env.scenario.name}: sh {target}/repro.sh (see ISSUE.md)")
            report.sections.append(("tlsenv reproduction bundle", "\n".join(lines)))
        return report
