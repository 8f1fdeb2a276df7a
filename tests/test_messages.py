"""What the plugin says when the user got something wrong: true, naming the bad input, pointing
at the user's own line."""

from __future__ import annotations

import re
import sysconfig
from pathlib import Path

import pytest

from pytest_tlsenv import TLSEnv
from pytest_tlsenv.errors import ClientNotFoundError, ConfigError

SCRIPT = Path(sysconfig.get_path("scripts")) / "tlsenv"

# A frame of the package in a traceback pytest prints: "pytest_tlsenv/tlsenv.py:412: in run".
PACKAGE_FRAME = re.compile(r"pytest_tlsenv/[\w/]+\.py:\d+")


@pytest.mark.nonroot
def test_a_console_script_of_this_venv_is_named_where_it_is(tlsenv: TLSEnv) -> None:
    # An unactivated venv: its bin is on no PATH, so the clients' PATH does not have it either.
    assert SCRIPT.is_file()
    with pytest.raises(ClientNotFoundError) as info:
        tlsenv.run(["tlsenv", "--help"], env={"PATH": "/usr/bin:/bin"})
    message = str(info.value)
    assert f"this Python's environment has it at {SCRIPT}: give that path" in message
    assert "shutil.which" not in message
    # Twin: that path runs (no fetch, so no verdict to judge: its exit status says it ran).
    assert tlsenv.run([str(SCRIPT), "--help"]).returncode == 0


@pytest.mark.nonroot
def test_a_missing_client_is_not_said_to_be_on_your_path(tlsenv: TLSEnv, tmp_path: Path) -> None:
    with pytest.raises(ClientNotFoundError) as info:
        tlsenv.run(["tlsenv-no-such-client"])
    assert "nor on yours: install it, or give its absolute path" in str(info.value)
    # Twin: a program on the user's PATH but not on the one given to the client.
    with pytest.raises(ClientNotFoundError) as info:
        tlsenv.run(["sh", "-c", "true"], env={"PATH": str(tmp_path)})
    assert re.search(r"your PATH has it at /\S*/sh\b", str(info.value)), info.value


@pytest.mark.nonroot
def test_an_unknown_preset_suggests_the_closest(tlsenv: TLSEnv) -> None:
    with pytest.raises(ConfigError, match=r"unknown client 'kurl'.*; did you mean 'curl'\?"):
        tlsenv.client("kurl")
    with pytest.raises(ConfigError) as info:
        tlsenv.client("zzzzzz")
    assert "did you mean" not in str(info.value)


MARKED = """
import pytest

@pytest.mark.tlsenv("expired")
def test_forgot_the_fixture():
    pass

@pytest.fixture
def fetched(tlsenv):
    return tlsenv.scenario.name

@pytest.mark.tlsenv("expired")
def test_indirect(fetched):
    assert fetched == "expired"
"""


def test_a_tlsenv_marker_without_its_fixtures_is_a_collection_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(MARKED)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_a_tlsenv_marker_without_its_fixtures_is_a_collection_error.py::"
            "test_forgot_the_fixture: @pytest.mark.tlsenv has no effect: the test uses none of "
            "the tlsenv, make_tlsenv, tlsenv_scenario* fixtures (add tlsenv to its arguments)"
        ]
    )
    # Twin: through another fixture, the marker is used; and so the test runs.
    pytester.makepyfile(MARKED.replace("def test_forgot_the_fixture():", "def test_ok(tlsenv):"))
    pytester.runpytest().assert_outcomes(passed=2)


def test_a_module_pytestmark_may_cover_tests_without_the_fixture(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.tlsenv("expired")
        def test_helper():
            pass
        def test_env(tlsenv):
            assert tlsenv.scenario.name == "expired"
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


FAILING = """
import pytest

@pytest.mark.tlsenv("expired")
def test_fails(tlsenv):
    tlsenv.run(["curl", "-fsS", "--max-time", "5", tlsenv.origin.url]).assert_ok()
"""


@pytest.mark.skipif(not Path("/usr/bin/curl").exists(), reason="curl is not installed")
def test_the_failure_footer_does_not_suggest_the_option_already_given(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(FAILING)
    args = ("--tlsenv-root-dir=basetemp", "-p", "no:randomly")
    kept = pytester.runpytest("--tlsenv-keep", *args)
    kept.assert_outcomes(failed=1)
    assert "--tlsenv-keep keeps" not in kept.stdout.str()
    kept.stdout.fnmatch_lines(["*the scenario root stays if the test fails: *"])
    plain = pytester.runpytest(*args)
    plain.assert_outcomes(failed=1)
    plain.stdout.fnmatch_lines(["*--tlsenv-keep keeps the scenario root (*"])


MISTAKES = """
def test_string_argv(tlsenv):
    tlsenv.run("curl https://localhost/")

def test_missing_client(tlsenv):
    tlsenv.run(["tlsenv-no-such-client"])

def test_unknown_preset(tlsenv):
    tlsenv.client("kurl")

def test_call_without_a_callable(tlsenv):
    tlsenv.call(42)
"""


def test_mistakes_in_a_call_show_the_users_line_not_the_plugins(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(MISTAKES)
    result = pytester.runpytest("--tb=long", "-p", "no:randomly")
    result.assert_outcomes(failed=4)
    out = result.stdout.str()
    for line in ('tlsenv.run("curl https://localhost/")', 'tlsenv.client("kurl")'):
        assert f">       {line}" in out
    for error in ("E       TypeError: argv must be", "E       pytest_tlsenv.errors.Client"):
        assert error in out
    assert PACKAGE_FRAME.findall(out) == []
    # Twin: the check sees the package's frames when pytest shows them (the one wrapper left).
    full = pytester.runpytest("--tb=long", "--fulltrace", "-p", "no:randomly").stdout.str()
    assert "pytest_tlsenv/tlsenv.py" in " ".join(PACKAGE_FRAME.findall(full))


def test_pytest_plugins_naming_the_module_works_beside_the_entry_point(
    pytester: pytest.Pytester,
) -> None:
    # The plugin is loaded by its entry point already (as in every session of this suite).
    pytester.makeconftest('pytest_plugins = ["pytest_tlsenv.plugin"]\n')
    pytester.makepyfile("def test_x(tlsenv):\n    assert tlsenv.scenario.name == 'good'\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "already registered" not in result.stdout.str() + result.stderr.str()
