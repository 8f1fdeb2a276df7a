"""The plugin surface, black-box through pytester (as pytest-xdist tests its hooks)."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["pytester"]


def test_default_example_from_the_design(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_default(tlsenv):
            tlsenv.run(["curl", "-fsS", tlsenv.origin.url]).assert_ok()
        """
    )
    pytester.runpytest("-W", "error").assert_outcomes(passed=1)


def test_unknown_scenario_fails_at_setup_listing_valid_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tlsenv(scenario="unreadable-fiel")
        def test_x(tlsenv):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*test_x: bad @pytest.mark.tlsenv: unknown scenario 'unreadable-fiel'; valid names:*"]
    )
    assert "unreadable-file" in result.stdout.str()
    assert "During handling" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('faults=["no-such-fault"]', "unknown fault 'no-such-fault'*valid names*"),
        ('faults="unreadable-file"', "faults takes a list*"),
        ('faults=["fifo", "fifo"]', "*fault(s) listed more than once: fifo*"),
        ("colour='red'", "unknown tlsenv keyword(s) colour*"),
        ("placement='sideways'", "placement must be one of decoy, shadow*"),
        ("timeout=-1", "timeout must be a positive number*"),
        ("layout='windows'", "unknown layout 'windows'*"),
        ("proxy='squid'", "*proxy takes a name from the proxy group, got 'squid'; valid:*"),
        ("server='badssl'", "*server takes a name from the server group, got 'badssl'*"),
        ("system_paths='yes'", "*system_paths must be True or False, got 'yes'*"),
    ],
)
def test_bad_marker_arguments_are_setup_errors(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.tlsenv({marker})
        def test_x(tlsenv):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{message}"])


def test_make_tlsenv_bad_arguments_fail_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_x(make_tlsenv):
            make_tlsenv("nope")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*bad make_tlsenv(...) arguments: unknown scenario 'nope'*"])


def test_make_tlsenv_builds_several(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_two(make_tlsenv):
            a = make_tlsenv()
            b = make_tlsenv("unreadable-file")
            assert a.origin.port != b.origin.port
            assert a.root != b.root
            assert b.scenario.name == "unreadable-file"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_markers_are_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.tlsenv(scenario=None, *, faults=(), *catalogue*"])


def test_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--fixtures")
    # Each fixture with its docstring (pytest lists them in its own order).
    for name, doc in [
        ("tlsenv_pki [[]session scope[]]", "*The session's CAs*"),
        ("make_tlsenv", "*Factory*"),
        ("tlsenv", "*The test's TLS environment*"),
        ("tlsenv_scenario", "*The resolved scenario*"),
    ]:
        result.stdout.fnmatch_lines([f"{name} -- *", doc])


def test_options_are_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["*TLS environment scenarios*", "*--tlsenv-timeout=SECONDS*", "*--tlsenv-user=USER*"]
    )


def test_explicit_load_without_autoload(pytester: pytest.Pytester) -> None:
    # `pytest -p tlsenv` must work where plugin autoloading is disabled.
    pytester.makepyfile(
        """
        def test_default(tlsenv):
            tlsenv.run(["curl", "-fsS", tlsenv.origin.url]).assert_ok()
        """
    )
    env_backup = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        without = pytester.runpytest_subprocess()
        with_p = pytester.runpytest_subprocess("-p", "tlsenv")
    finally:
        if env_backup is None:
            del os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"]
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = env_backup
    # Negative twin: with autoload disabled and no -p, the fixture does not exist.
    without.stdout.fnmatch_lines(["*fixture 'tlsenv' not found*"])
    with_p.assert_outcomes(passed=1)


def test_assert_message_carries_the_evidence(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tlsenv(scenario="unreadable-file")
        def test_x(tlsenv):
            out = tlsenv.run(["sh", "-c", "echo 'certificate verify failed' >&2; exit 3"])
            out.assert_ok()
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*expected {OK}, got REJECTED: certificate verify failed*",
            "*scenario: unreadable-file (expected {OK})*",
            "*store:*",
            "*tlsenv-unreadable-file.pem*",
            "*command: sh -c*",
            "*exit status: 3*",
            "*SSL_CERT_FILE=*",
            "*stderr (tail):*",
        ]
    )
    # The helper hides its own frames: the user's line is what the traceback shows.
    assert "def assert_verdict" not in result.stdout.str()
