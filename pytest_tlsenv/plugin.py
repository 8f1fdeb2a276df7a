"""The pytest plugin: fixtures, markers, options. The engine lives in the other modules.

Loaded as ``pytest -p tlsenv`` (entry point ``pytest11``: ``tlsenv = pytest_tlsenv.plugin``),
or automatically wherever the package is installed; it stays silent in sessions that use none
of its fixtures.
"""

from __future__ import annotations

import shutil
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .pki import PKI
    from .scenarios import Spec
    from .tlsenv import Settings, TLSEnv

_spec_key = pytest.StashKey["Spec"]()
_failed_key = pytest.StashKey[bool]()

MARKER_HELP = (
    "tlsenv(scenario=None, *, faults=(), placement='decoy', proxy=None, server='good', "
    "layout='debian', backend='disk', system_paths=False, user=None, timeout=None, "
    "extra_cas=0): build the `tlsenv` fixture from a catalogue scenario (see "
    "`python -m pytest_tlsenv scenarios`); keywords beside it add faults or override the rest."
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
        help="run clients as this user (real user switch, needs root) instead of root "
        "without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH",
    )
    group.addoption(
        "--tlsenv-keep",
        action="store_true",
        default=False,
        help="keep the scenario roots of failing tests and print where they are",
    )
    parser.addini(
        "tlsenv_fault_uid",
        "uid that owns files a permission fault makes unreadable (never the client's)",
        default="65533",
    )
    parser.addini("tlsenv_timeout", "default client timeout in seconds", default="20")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[_failed_key] = True
    return report


def _settings(config: pytest.Config) -> Settings:
    from .tlsenv import Settings

    try:
        fault_uid = int(config.getini("tlsenv_fault_uid"))
        timeout = config.getoption("tlsenv_timeout") or float(config.getini("tlsenv_timeout"))
    except ValueError as e:
        raise pytest.UsageError(f"pytest-tlsenv: bad ini value: {e}") from e
    if timeout <= 0:
        raise pytest.UsageError("pytest-tlsenv: --tlsenv-timeout must be positive")
    return Settings(fault_uid=fault_uid, timeout=timeout, user=config.getoption("tlsenv_user"))


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


@pytest.fixture(scope="session")
def tlsenv_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    """The session's CAs: ``.trusted`` (root of every healthy store), ``.mitm`` (signs the
    interceptor's forged certificates) and ``.untrusted``; each a :class:`trustme.CA`.

    All are ECDSA P-256, valid for two days, and name-constrained to localhost, ``*.test``,
    127.0.0.0/8 and ::1, so trusting one by accident opens nothing else.
    """
    from .pki import PKI

    directory = tmp_path_factory.mktemp("tlsenv-pki")
    yield PKI(directory)
    shutil.rmtree(directory, ignore_errors=True)


class TLSEnvFactory:
    """What ``make_tlsenv`` returns: call it with the marker's keywords to get a TLSEnv."""

    def __init__(
        self, request: pytest.FixtureRequest, pki: PKI, tmp: pytest.TempPathFactory
    ) -> None:
        self._request = request
        self._pki = pki
        self._tmp = tmp
        self._settings = _settings(request.config)
        self.made: list[TLSEnv] = []

    def __call__(self, *args: Any, **kwargs: Any) -> TLSEnv:
        from .errors import ConfigError
        from .scenarios import resolve

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

        env = TLSEnv.build(
            spec, pki=self._pki, root=self._tmp.mktemp("tlsenv"), settings=self._settings
        )
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
                reporter = request.config.pluginmanager.get_plugin("terminalreporter")
                if reporter is not None:
                    reporter.write_line(f"tlsenv: kept {env.scenario.name} at {env.root}")
        self.made.clear()
        if errors:
            raise errors[0]


@pytest.fixture
def make_tlsenv(
    request: pytest.FixtureRequest, tlsenv_pki: PKI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TLSEnvFactory]:
    """Factory: ``make_tlsenv(scenario=None, **keywords)`` builds and starts a TLSEnv with the
    ``tlsenv`` marker's keywords; several per test are fine. Each is closed at teardown
    (servers stopped, permissions restored, files removed).
    """
    factory = TLSEnvFactory(request, tlsenv_pki, tmp_path_factory)
    yield factory
    factory.close_all()


@pytest.fixture
def tlsenv(request: pytest.FixtureRequest, make_tlsenv: TLSEnvFactory) -> TLSEnv:
    """The test's TLS environment, built from its ``@pytest.mark.tlsenv(...)`` marker (or the
    healthy default: the origin's CA in a Debian-layout store, no faults, no proxy).

    ``.origin.url`` / ``.origin.index_url`` address the loopback origin; ``.run(argv)`` runs a
    CLI hermetically, ``.call(fn)`` runs a callable in-process; both return an Outcome with a
    verdict (OK, REJECTED, CRASHED, HUNG, LEAKED, FAILED) and ``assert_*`` helpers.
    """
    return make_tlsenv.from_spec(_spec_for(request.node))
