"""The pytest plugin: fixtures, markers, options. The engine lives in the other modules.

Loaded as ``pytest -p tlsenv`` (entry point ``pytest11``: ``tlsenv = pytest_tlsenv.plugin``),
or automatically wherever the package is installed; it stays silent in sessions that use none
of its fixtures.
"""

from __future__ import annotations

import shutil
import types
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

# All cheap at startup: no engine (cryptography, trustme, the catalogue) until a test uses it.
from . import factory, matrix, options, session
from .errors import ConfigError, NotApplicableError

if TYPE_CHECKING:
    from . import declarative
    from .loopback import SharedAcceptor
    from .outcome import Outcome
    from .pki import PKI
    from .scenarios import Spec
    from .tlsenv import TLSEnv

_spec_key = pytest.StashKey["Spec"]()
_failed_key = pytest.StashKey[bool]()
_factory_key = pytest.StashKey["factory.TLSEnvFactory"]()
_session_key = pytest.StashKey["session.ReportSession"]()
_dirs_key = pytest.StashKey["factory.SessionDirs"]()
_declared_key = pytest.StashKey["_Declared"]()
_client_key = pytest.StashKey["declarative.ClientSpec"]()
_judgement_key = pytest.StashKey["declarative.Judgement"]()

# Fixtures that make a test a tlsenv test (for --tlsenv-scenarios, the grid and silence).
FIXTURES = ("tlsenv", "make_tlsenv", "tlsenv_scenario", "tlsenv_outcome")

# Names that moved to the engine modules; importing them from here still works, with a
# DeprecationWarning, for one release.
_MOVED = {
    **dict.fromkeys(
        ("DOCUMENTED_GROUPS", "MatrixPoint", "matrix_points", "row_key", "select_scenarios"), matrix
    ),
    "REPORT_SUFFIXES": session,
    "TLSEnvFactory": factory,
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"pytest_tlsenv.plugin.{name} moved to {module.__name__}.{name}; the old place goes "
        "in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(module, name)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # Loaded already (entry point "tlsenv", or -p tlsenv), a conftest's
    # `pytest_plugins = ["pytest_tlsenv.plugin"]` would register this module a second time,
    # under its module name, and pytest would stop with "Plugin already registered". Blocking
    # that name makes pytest skip the second import: both spellings work.
    if not pluginmanager.has_plugin(__name__):
        pluginmanager.set_blocked(__name__)
    options.add(parser)


def pytest_configure(config: pytest.Config) -> None:
    for line in options.MARKERS:
        config.addinivalue_line("markers", line)
    try:
        # A bad --tlsenv-timeout / ini value is a usage error before collection.
        options.knobs(config)
        reports = session.ReportSession.from_options(
            scenarios=config.getoption("tlsenv_scenarios") or config.getini("tlsenv_scenarios"),
            report=config.getoption("tlsenv_report"),
            baseline=config.getoption("tlsenv_baseline"),
            update_baseline=bool(config.getoption("tlsenv_update_baseline")),
            is_worker=hasattr(config, "workerinput"),
            cwd=config.invocation_params.dir,
            grid_max_tests=int(config.getini("tlsenv_grid_max_tests")),  # checked by options.knobs
            grid_mode=config.getoption("tlsenv_grid"),
        )
        repro_dir = None
        if config.getoption("tlsenv_repro_dir", None):
            repro_dir = config.invocation_params.dir / config.getoption("tlsenv_repro_dir")
            session.check_creatable(repro_dir, "--tlsenv-repro-dir")
        config.stash[_declared_key] = _Declared.from_config(config)
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from None
    config.stash[_session_key] = reports
    config.pluginmanager.register(_SessionHooks(reports), "tlsenv-session")
    if repro_dir is not None:
        config.pluginmanager.register(_ReproHooks(repro_dir), "tlsenv-repro")


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_session_key, None) is not None:
        config.pluginmanager.unregister(name="tlsenv-session")
        del config.stash[_session_key]


class _SessionHooks:
    """The report session's hooks: registered per config (pytester runs several in one
    process), they hand it the plain data of each report and the terminal."""

    def __init__(self, reports: session.ReportSession) -> None:
        self.reports = reports

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        note = getattr(report, "tlsenv_root_note", None)
        results = getattr(report, "tlsenv_results", None)
        self.reports.collect(note if isinstance(note, str) else None, results, report.outcome)

    def pytest_sessionfinish(self) -> None:
        self.reports.finish()

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        self.reports.summary(
            terminalreporter,
            width=terminalreporter._tw.fullwidth,
            quiet=terminalreporter.verbosity < 0,
        )


def _attach(
    item: pytest.Item,
    report: pytest.TestReport,
    made: factory.TLSEnvFactory,
    reports: session.ReportSession,
) -> None:
    """The test's results go with its call report (to the xdist controller too); a verdict
    that differs from the baseline fails a test that passed."""
    point = _point(item)
    row = matrix.row_key(item.nodeid, point.id if point is not None else None)
    attached = reports.attach(item.nodeid, row, made.made)
    if attached.problem is not None:
        report.sections.append(("tlsenv", attached.problem))
    message = attached.baseline_message
    if message:
        if report.passed:
            report.outcome = "failed"
            report.longrepr = message
        elif report.failed:
            report.sections.append(("tlsenv baseline", message))
    report.tlsenv_results = attached.results  # type: ignore[attr-defined]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    judgement = item.stash.get(_judgement_key, None)
    if judgement is not None and judgement.status == "accepted" and report.when == "call":
        report.tlsenv_accepted = judgement.message  # type: ignore[attr-defined]
    dirs = item.config.stash.get(_dirs_key, None)
    if dirs is not None and dirs.note is not None and not dirs.note_sent:
        # To whoever prints the summary (the xdist controller too), once per process.
        report.tlsenv_root_note = dirs.note  # type: ignore[attr-defined]
        dirs.note_sent = True
    made = item.stash.get(_factory_key, None)
    reports = item.config.stash.get(_session_key, None)
    if report.when == "call" and made is not None and reports is not None:
        _attach(item, report, made, reports)
        accepted = getattr(report, "tlsenv_accepted", None)
        for result in getattr(report, "tlsenv_results", None) or ():
            result["accepted"] = accepted
    if report.failed:
        item.stash[_failed_key] = True
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A scenario that cannot apply to a (client, trust mode) pair is a skip, with why:
    running it would measure a healthy store. A declared client's verdict is judged first
    (its ``tlsenv_outcome`` ran at setup)."""
    judgement = item.stash.get(_judgement_key, None)
    if judgement is not None and judgement.status == "failed":
        pytest.fail(judgement.message, pytrace=False)
    if judgement is not None and judgement.status == "accepted":
        pytest.xfail(judgement.message)
    try:
        return (yield)
    except NotApplicableError as e:
        pytest.skip(f"not applicable: {e}")


def _spec_for(item: pytest.Item) -> Spec:
    """Parse the item's ``tlsenv`` marker once (kept in ``item.stash``)."""
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("tlsenv_matrix")
    nodeid = metafunc.definition.nodeid
    client = metafunc.definition.get_closest_marker("tlsenv_client")
    # A marker on the test itself that no fixture reads would run the test against the
    # host's store, silently. (A module's or class's pytestmark may cover other tests too;
    # a tlsenv_client test gets its tlsenv from the marker.)
    own = any(m.name == "tlsenv" for m in metafunc.definition.own_markers)
    if own and client is None and not set(FIXTURES) & set(metafunc.fixturenames):
        raise pytest.Collector.CollectError(
            f"{nodeid}: @pytest.mark.tlsenv has no effect: the test uses none of the "
            f"{', '.join(FIXTURES)} fixtures (add tlsenv to its arguments)"
        )
    if client is not None:
        from . import declarative  # only where a declared client is: plugin load stays cheap

        try:
            declarative.spec_from_marker(client.args, client.kwargs)
        except ConfigError as e:
            problem = str(e)
        else:
            problem = ""
            if marker is not None and "tlsenv_scenario" not in metafunc.fixturenames:
                metafunc.fixturenames.append("tlsenv_scenario")  # tlsenv_outcome's, pulled in
        if problem:
            raise pytest.Collector.CollectError(
                f"{nodeid}: bad @pytest.mark.tlsenv_client: {problem}"
            )
    if marker is None:
        return
    if "tlsenv_scenario" not in metafunc.fixturenames:
        raise pytest.Collector.CollectError(
            f"{nodeid}: @pytest.mark.tlsenv_matrix needs the tlsenv, make_tlsenv or "
            "tlsenv_scenario fixture"
        )
    base = metafunc.definition.get_closest_marker("tlsenv")
    try:
        if base is not None and (base.args or "scenario" in base.kwargs):
            raise ConfigError("a @pytest.mark.tlsenv beside tlsenv_matrix cannot name a scenario")
        points = matrix.matrix_points(marker.args, marker.kwargs, base.kwargs if base else None)
    except ConfigError as e:
        problem = str(e)
    else:
        metafunc.parametrize("tlsenv_scenario", points, ids=[p.id for p in points], indirect=True)
        return
    raise pytest.Collector.CollectError(f"{nodeid}: bad @pytest.mark.tlsenv_matrix: {problem}")


def _point(item: pytest.Item) -> matrix.MatrixPoint | None:
    callspec = getattr(item, "callspec", None)
    point = callspec.params.get("tlsenv_scenario") if callspec is not None else None
    return point if isinstance(point, matrix.MatrixPoint) else None


def _item_scenario(item: pytest.Item) -> str | None:
    """The catalogue scenario of a tlsenv test (None for others and make_tlsenv-only ones)."""
    if (point := _point(item)) is not None:
        return point.scenario
    names = getattr(item, "fixturenames", ())
    if "tlsenv" not in names and "tlsenv_outcome" not in names:
        return None  # a declared client's test runs its marker's scenario, like a tlsenv one
    marker = item.get_closest_marker("tlsenv")
    if marker is None:
        return "good"
    name = marker.args[0] if marker.args else marker.kwargs.get("scenario")
    return name if isinstance(name, str) else "good"


_acceptor_key: pytest.StashKey[SharedAcceptor] = pytest.StashKey()


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    # A session whose tests start loopback servers gets one accepting thread for all of them
    # (loopback.SharedAcceptor): no thread start and join per test. Started before the first
    # test, so no test sees it appear; a session without such tests starts nothing.
    wanted = {*FIXTURES, "tlsenv_pki"}
    if any(wanted.intersection(getattr(item, "fixturenames", ())) for item in session.items):
        from .loopback import SharedAcceptor

        session.config.stash[_acceptor_key] = SharedAcceptor.install()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    acceptor = session.config.stash.get(_acceptor_key, None)
    if acceptor is not None:  # after the fixtures' teardown (trylast): every test's servers
        del session.config.stash[_acceptor_key]
        acceptor.uninstall()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        # The marker pulls in its fixture: the test needs no argument (its body may be pass).
        names = getattr(item, "fixturenames", None)
        if names is None or "tlsenv_outcome" in names:
            continue
        if item.get_closest_marker("tlsenv_client") is not None:
            names.append("tlsenv_outcome")
    reports = config.stash.get(_session_key, None)
    if reports is None or reports.selection is None:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (keep if reports.selection.keeps(_item_scenario(item)) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# -- declared clients (--tlsenv-client, ini tlsenv_clients, the tlsenv_client marker) ------


class _Declared:
    """The session's declared clients, their scenarios and the accepted divergences."""

    def __init__(
        self,
        clients: list[declarative.ClientSpec],
        expect: dict[str, dict[str, declarative.Accepted]],
        scenarios: list[str],
    ) -> None:
        self.clients = clients
        self.expect = expect
        self.scenarios = scenarios

    @classmethod
    def from_config(cls, config: pytest.Config) -> _Declared:
        values: list[str] = list(config.getoption("tlsenv_client", None) or [])
        what = "--tlsenv-client"
        if not values and _use_ini_clients(config):
            values, what = list(config.getini("tlsenv_clients")), "ini tlsenv_clients"
        expect: dict[str, dict[str, declarative.Accepted]] = {}
        pyproject = config.rootpath / "pyproject.toml"
        if config.inipath is not None and config.inipath.name == "pyproject.toml":
            pyproject = config.inipath
        try:
            # A cheap look first: most sessions have no table to parse.
            wanted = "tlsenv" in pyproject.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            wanted = False
        option = config.getoption("tlsenv_expect", None)
        if not (values or wanted or option):
            return cls([], expect, [])  # nothing declared: the engine is not even imported
        from . import declarative

        if wanted:
            expect = declarative.pyproject_expect(pyproject)
        if option:
            extra = declarative.load_expect_file(config.invocation_params.dir / option)
            for label, entries in extra.items():
                expect.setdefault(label, {}).update(entries)
        if not values:
            return cls([], expect, [])
        from dataclasses import replace

        from .selection import parse_scenarios

        clients = [
            replace(c, expect={**expect.get(c.label, {}), **c.expect})
            for c in declarative.parse_clients(values, what=what)
        ]
        chosen = config.getoption("tlsenv_scenarios") or config.getini("tlsenv_scenarios")
        return cls(clients, expect, parse_scenarios(chosen or declarative.DEFAULT_SCENARIOS))


def _use_ini_clients(config: pytest.Config) -> bool:
    """ini tlsenv_clients applies when the command line names no test path (an xdist worker
    is always given paths: it asks its controller)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return bool(workerinput.get("tlsenv_ini_clients", False))
    return config.args_source is not pytest.Config.ArgsSource.ARGS


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: a worker collects the ini's clients exactly when its controller does."""
    node.workerinput["tlsenv_ini_clients"] = _use_ini_clients(node.config)


def _client_item(tlsenv_outcome: Outcome) -> None:
    """A declared client in one scenario: ``tlsenv_outcome`` runs it, the plugin judges it."""


class _ClientItems(pytest.Module):
    """``tlsenv``: the items of ``--tlsenv-client`` (no test file behind them), one function
    per client, parametrized like a ``tlsenv_matrix`` so ids read ``tlsenv::curl[good-env]``."""

    def _getobj(self) -> types.ModuleType:
        from . import declarative

        declared = self.config.stash[_declared_key]
        module = types.ModuleType("tlsenv")
        for client in declared.clients:
            trust = client.mode(options.trust_mode(self.config))
            points = declarative.client_points(declared.scenarios, trust)
            fn = types.FunctionType(_client_item.__code__, _client_item.__globals__, client.label)
            fn.__doc__ = _client_item.__doc__
            fn.pytestmark = [  # type: ignore[attr-defined]
                pytest.mark.tlsenv_client(client),
                pytest.mark.parametrize(
                    "tlsenv_scenario", points, ids=[p.id for p in points], indirect=True
                ),
            ]
            setattr(module, client.label, fn)
        return module

    def istestfunction(self, obj: object, name: str) -> bool:
        return isinstance(obj, types.FunctionType) and obj.__code__ is _client_item.__code__


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """The session's collector gains ``tlsenv`` when clients are declared: their items need
    no test file, and run, select (-k, --lf) and report like written ones."""
    report = yield
    declared = collector.config.stash.get(_declared_key, None)
    if isinstance(collector, pytest.Session) and declared is not None and declared.clients:
        report.result.append(
            _ClientItems.from_parent(
                collector, path=collector.config.rootpath, name="tlsenv", nodeid="tlsenv"
            )
        )
    return report


def _client_for(item: pytest.Item) -> declarative.ClientSpec:
    """The item's ``tlsenv_client`` marker, parsed once, with the project's accepted
    divergences for its label under its own ``expect=``."""
    from . import declarative

    if _client_key not in item.stash:
        marker = item.get_closest_marker("tlsenv_client")
        assert marker is not None
        try:
            client = declarative.spec_from_marker(marker.args, marker.kwargs)
        except ConfigError as e:
            pytest.fail(f"{item.nodeid}: bad @pytest.mark.tlsenv_client: {e}", pytrace=False)
        declared = item.config.stash.get(_declared_key, None)
        project = declared.expect.get(client.label, {}) if declared is not None else {}
        if project and not isinstance(marker.args[0], declarative.ClientSpec):
            from dataclasses import replace

            client = replace(client, expect={**project, **client.expect})
        item.stash[_client_key] = client
    return item.stash[_client_key]


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


@pytest.fixture(scope="session")
def _tlsenv_dirs(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[factory.SessionDirs]:
    setting = pytestconfig.getoption("tlsenv_root_dir", None) or str(
        pytestconfig.getini("tlsenv_root_dir")
    )
    dirs = factory.SessionDirs(
        lambda: tmp_path_factory.mktemp("tlsenv-roots"), setting, options.settings(pytestconfig)
    )
    pytestconfig.stash[_dirs_key] = dirs
    yield dirs
    dirs.close()


@pytest.fixture
def tlsenv_scenario(request: pytest.FixtureRequest) -> Spec:
    """The resolved scenario (a ``Spec``) of this test: its ``tlsenv_matrix`` point, else its
    ``@pytest.mark.tlsenv`` marker, else the healthy default. ``.scenario.name``,
    ``.scenario.expected``... ; ``make_tlsenv(tlsenv_scenario)`` builds another TLSEnv from it.
    """
    point = getattr(request, "param", None)
    if isinstance(point, matrix.MatrixPoint):
        if point.spec is None:
            pytest.fail(f"{request.node.nodeid}: {point.problem}", pytrace=False)
        return point.spec
    return _spec_for(request.node)


@pytest.fixture
def make_tlsenv(
    request: pytest.FixtureRequest,
    tlsenv_pki: PKI,
    _tlsenv_dirs: factory.SessionDirs,
    tlsenv_scenario: Spec,
) -> Iterator[factory.TLSEnvFactory]:
    """Factory: ``make_tlsenv(scenario=None, **keywords)`` builds and starts a TLSEnv with the
    ``tlsenv`` marker's keywords; several per test are fine; ``make_tlsenv(tlsenv_scenario)``
    builds the test's own (matrix) scenario. Each is closed at teardown (servers stopped,
    permissions restored, files removed); their outcomes go to the grid and reports.
    """
    node, config = request.node, request.config

    def fail(message: str) -> NoReturn:
        pytest.fail(message, pytrace=False)

    def say(line: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)

    made = factory.TLSEnvFactory(
        node.nodeid,
        tlsenv_pki,
        _tlsenv_dirs,
        fail=fail,
        # A failed test's roots stay under --tlsenv-keep (decided at teardown).
        keep=lambda: bool(config.getoption("tlsenv_keep")) and node.stash.get(_failed_key, False),
        say=say,
    )
    node.stash[_factory_key] = made
    yield made
    made.close_all()


@pytest.fixture
def tlsenv(make_tlsenv: factory.TLSEnvFactory, tlsenv_scenario: Spec) -> TLSEnv:
    """The test's TLS environment, built from its ``@pytest.mark.tlsenv(...)`` marker (or the
    healthy default: the origin's CA in a Debian-layout store, no faults, no proxy).

    ``.origin.url`` / ``.origin.index_url`` address the loopback origin; ``.run(argv)`` runs a
    CLI hermetically, ``.call(fn)`` runs a callable in-process; both return an Outcome with a
    verdict (OK, REJECTED, CRASHED, HUNG, LEAKED, FAILED) and ``assert_*`` helpers. A
    proxy-environment scenario (``socks5``, ``no-proxy-*``...) is skipped, with why, where
    mount namespaces are unavailable: its clients need a private /etc/hosts.
    """
    from .namespace import SystemPathsUnavailableError
    from .proxyenv import ENVIRONMENTS

    try:
        return make_tlsenv.from_spec(tlsenv_scenario)
    except SystemPathsUnavailableError as e:
        if tlsenv_scenario.proxy not in ENVIRONMENTS or tlsenv_scenario.system_paths:
            raise
        problem = str(e)
    pytest.skip(f"unavailable here: {problem}")


@pytest.fixture
def tlsenv_outcome(
    request: pytest.FixtureRequest, make_tlsenv: factory.TLSEnvFactory, tlsenv_scenario: Spec
) -> Outcome:
    """The Outcome of the test's ``@pytest.mark.tlsenv_client`` in its scenario (the marker
    requests this fixture itself; take it as an argument to assert more). After the body,
    the plugin fails the test unless the verdict is in the scenario's expected set or an
    accepted divergence; a client the scenario cannot apply to is skipped, with why."""
    from dataclasses import replace

    from . import declarative
    from .errors import ClientUnavailableError

    node = request.node
    if node.get_closest_marker("tlsenv_client") is None:
        pytest.fail(
            f"{node.nodeid}: tlsenv_outcome needs a @pytest.mark.tlsenv_client", pytrace=False
        )
    client = _client_for(node)
    trust = client.mode(options.trust_mode(request.config))
    spec = replace(tlsenv_scenario, trust=trust)
    env = make_tlsenv.from_spec(spec)
    try:
        outcome, added = declarative.run_client(env, client, trust, None)
    except NotApplicableError as e:
        pytest.skip(f"not applicable: {e}")
    except ClientUnavailableError as e:
        pytest.fail(f"{node.nodeid}: {e}", pytrace=False)
    point = _point(node)
    if point is not None:
        scenario = point.scenario
    else:
        marker = node.get_closest_marker("tlsenv")
        named = (
            (marker.args[0] if marker.args else marker.kwargs.get("scenario")) if marker else None
        )
        scenario = named if isinstance(named, str) else spec.scenario.name
    accepted = client.accepted(scenario, spec.placement)
    repro = declarative.repro_line(outcome, scenario, spec.placement, client, added)
    node.stash[_judgement_key] = declarative.judge(outcome, env.scenario.expected, accepted, repro)
    return outcome


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
        made = item.stash.get(_factory_key, None)
        if report.when == "call" and report.failed and made is not None and made.made:
            from .repro import export

            lines = []
            base = self.directory / "".join(
                c if c.isalnum() or c in "._-" else "_" for c in item.nodeid
            )
            for n, env in enumerate(made.made):
                target = base if len(made.made) == 1 else base.with_name(f"{base.name}-{n}")
                shutil.rmtree(target, ignore_errors=True)  # a bundle of an earlier run
                try:
                    export(env, target)
                except Exception as e:  # noqa: BLE001 - a failed export must not hide the failure
                    lines.append(f"{env.scenario.name}: no bundle ({type(e).__name__}: {e})")
                else:
                    lines.append(f"{env.scenario.name}: sh {target}/repro.sh (see ISSUE.md)")
            report.sections.append(("tlsenv reproduction bundle", "\n".join(lines)))
        return report
