"""The plugin's command-line options, ini keys and marker help, as one table.

Kept apart from :mod:`pytest_tlsenv.plugin` (the hooks and fixtures) and free of pytest
imports: :func:`add` takes pytest's ``Parser`` (anything with ``getgroup`` and ``addini``),
so the whole surface a user configures reads as one list, and ``docs/api.md`` is checked
against it by the suite.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from ._checks import MAX_TIMEOUT
from .errors import ConfigError

if TYPE_CHECKING:
    from .tlsenv import Settings

__all__ = [
    "CLIENT_HELP",
    "MARKERS",
    "MARKER_HELP",
    "MATRIX_HELP",
    "add",
    "client_user",
    "knobs",
    "settings",
    "trust_mode",
]

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
    "test_x[unreadable-file]. SPEC is a group (store, proxy, server, reports, fallback, "
    "all), a "
    "scenario name, a list of names/groups, or a mapping {'scenarios': SPEC, keyword: value}; "
    "keywords are the tlsenv marker's, and a list value is an axis (placement=['decoy', "
    "'shadow'] doubles the matrix; faults takes a list of lists for an axis; trust=['env', "
    "'system'] runs each scenario in each trust mode, ids like test_x[good-trust=system]). The "
    "point reaches the `tlsenv` fixture, and `tlsenv_scenario` (its Spec, for "
    "make_tlsenv(tlsenv_scenario))."
)
CLIENT_HELP = (
    "tlsenv_client(CMD | preset, *, env=None, trust=None, version=None, timeout=None, "
    "expect=None): run this client in each of the test's scenarios (its tlsenv_matrix, else "
    "its tlsenv marker's, else good) and fail unless its verdict is in the scenario's "
    "expected set. CMD is a str or list of words with placeholders ({url}, {index_url}, "
    "{proxy_url}, {store}...); a CMD naming trust paths itself ({store}) runs in flags mode. "
    "expect={'scenario[@placement]': (['CRASHED'], 'reason')} accepts a divergence (a strict "
    "xfail: it fails once the client stops diverging). The test needs no fixture argument; "
    "one taking tlsenv_outcome gets the Outcome."
)

#: The plugin's markers, as ``pytest --markers`` lists them.
MARKERS = (MARKER_HELP, MATRIX_HELP, CLIENT_HELP)


def add(parser: Any) -> None:
    """Register every ``--tlsenv-*`` option and ``tlsenv_*`` ini key on pytest's ``parser``."""
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
        help="run only tlsenv tests in these scenarios: scenario or group names (store, proxy, "
        "server, reports, fallback, all), comma- or space-separated; -NAME deselects (e.g. "
        "store,-fifo; the syntax of survey --scenarios). "
        "Applies to tlsenv_matrix points and to tests using the tlsenv fixture "
        "(default: ini tlsenv_scenarios, else all)",
    )
    group.addoption(
        "--tlsenv-report",
        default=None,
        metavar="PATH",
        help="write the verdicts per test and scenario to PATH: JSON if it ends in .json, "
        "Markdown (grid + failures, for an issue) if .md, one self-contained HTML page (the "
        "grid with every cell's details on click) if .html",
    )
    group.addoption(
        "--tlsenv-grid",
        default="auto",
        metavar="MODE",
        help="the verdict grid in the terminal summary: auto (the grid, unless -q or more "
        "columns than ini tlsenv_grid_max_tests: then one line), full, summary (one line), "
        "off (default: auto)",
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
    group.addoption(
        "--tlsenv-client",
        action="append",
        default=[],
        metavar="CLIENT",
        help="collect one item per (client, scenario), no test file needed (repeatable): a "
        "preset (curl, uv@0.2.29), a command with placeholders ('mytool fetch {url}'), or "
        "LABEL=CMD; scenarios: --tlsenv-scenarios, else the store and proxy groups; ids like "
        "tlsenv::curl[unreadable-file-shadow-env] (default: ini tlsenv_clients when no test "
        "path is given)",
    )
    group.addoption(
        "--tlsenv-expect",
        default=None,
        metavar="FILE",
        help="accepted divergences of declared clients: a TOML file of [CLIENT] tables, "
        "'scenario[@placement]' = {verdicts = [...], reason = '...'} (added to pyproject.toml's "
        "[tool.tlsenv.expect]); each behaves like a strict xfail",
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
        "with --tlsenv-grid=auto, print the verdict grid only when it has at most this many "
        "columns (test functions that made a tlsenv; 0: never); larger sessions get a "
        "one-line summary and --tlsenv-report has the full grid",
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
        "tlsenv_clients",
        "default of --tlsenv-client, one client per line, used when the command line names "
        "no test path",
        type="linelist",
        default=[],
    )
    parser.addini(
        "tlsenv_scenarios",
        "default of --tlsenv-scenarios (scenario/group names, comma- or space-separated; -NAME "
        "deselects)",
        default="",
    )


# -- reading them back: each a ConfigError naming the option or key (the plugin makes it a
# usage error at configure time, before collection)


def knobs(config: Any) -> tuple[int, float]:
    """Validated fault uid and timeout; cheap (no engine import), so configure can call it."""
    fault_uid = int(_ini_number(config, "tlsenv_fault_uid", int))
    option = config.getoption("tlsenv_timeout")
    timeout = option if option is not None else _ini_number(config, "tlsenv_timeout", float)
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):  # NaN and inf too
        source = "--tlsenv-timeout" if option is not None else "ini tlsenv_timeout"
        raise ConfigError(
            f"pytest-tlsenv: got {timeout}, not a finite number of seconds up to "
            f"{MAX_TIMEOUT:g}: {source} must be positive"
        )
    if not 0 < fault_uid < 2**32 - 1:
        # As root, a permission fault gives its file to this uid: root's own (0) would let
        # the client (root without the DAC capabilities, but the owner) read it anyway.
        raise ConfigError(
            f"pytest-tlsenv: tlsenv_fault_uid must be a uid other than root's, got {fault_uid}"
        )
    try:
        if int(config.getini("tlsenv_grid_max_tests")) < 0:
            raise ValueError("it must not be negative")
    except ValueError as e:
        raise ConfigError(f"pytest-tlsenv: bad ini value tlsenv_grid_max_tests: {e}") from e
    client_user(config)
    trust_mode(config)
    return fault_uid, timeout


def _ini_number(config: Any, key: str, kind: type[int] | type[float]) -> float:
    """The ini value ``key`` as a number; a usage error naming the key and the value."""
    value = str(config.getini(key)).strip()
    try:
        return kind(value)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"pytest-tlsenv: bad ini value {key} = {value!r}: not {what}") from None


def client_user(config: Any) -> str | None:
    """--tlsenv-user, else ini tlsenv_user: validated (exists, not uid 0, switchable)."""
    option: str | None = config.getoption("tlsenv_user")
    user = option or str(config.getini("tlsenv_user")).strip() or None
    if user is None:
        return None
    from .runner import client_ids  # the same check as TLSEnv's, here at startup

    source = "--tlsenv-user" if option else "ini tlsenv_user ="
    try:
        uid, _gid = client_ids(user)
    except ConfigError as e:
        raise ConfigError(f"{source} {user}: {e}") from None
    if os.geteuid() != 0 and uid != os.geteuid():
        raise ConfigError(f"{source} {user}: switching users needs root")
    return user


def settings(config: Any) -> Settings:
    from .tlsenv import Settings

    fault_uid, timeout = knobs(config)
    return Settings(
        fault_uid=fault_uid,
        timeout=timeout,
        user=client_user(config),
        system_paths=config.getoption("tlsenv_system_paths"),
        trust=trust_mode(config),
        keep=bool(config.getoption("tlsenv_keep")),
    )


def trust_mode(config: Any) -> str:
    """--tlsenv-trust, else ini tlsenv_trust; a bad ini value is a usage error."""
    trust = config.getoption("tlsenv_trust", None) or str(config.getini("tlsenv_trust")).strip()
    if trust not in ("env", "system", "flags"):
        raise ConfigError(
            f"pytest-tlsenv: bad ini value tlsenv_trust: {trust!r} (env, system or flags)"
        )
    return trust
