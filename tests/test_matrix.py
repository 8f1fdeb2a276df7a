"""``@pytest.mark.tlsenv_matrix`` and ``--tlsenv-scenarios``, black-box through pytester."""

from __future__ import annotations

import json

import pytest

from pytest_tlsenv.scenarios import CATALOGUE, GROUPS

pytest_plugins = ["pytester"]

# Inner tests use cheap clients: python's ssl in-process, or curl with explicit flags.
FETCH = """
import ssl
import urllib.request

import pytest


def fetch(env):
    def get():
        ctx = ssl.create_default_context()
        with urllib.request.urlopen(env.origin.url, context=ctx, timeout=5) as r:
            return r.read()

    return env.call(get)
"""


def _ids(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if "::" in line]


def test_matrix_parametrizes_with_scenario_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        FETCH
        + """
@pytest.mark.tlsenv_matrix(["good", "unreadable-file"])
def test_x(tlsenv, tlsenv_scenario):
    assert tlsenv.scenario.name == tlsenv_scenario.scenario.name
    fetch(tlsenv).assert_expected()
"""
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*::test_x[[]good[]] PASSED*", "*::test_x[[]unreadable-file[]] PASSED*"]
    )


def test_scenario_reaches_the_test(pytester: pytest.Pytester) -> None:
    # Negative twin of the above: the point's scenario, not the default, is what tlsenv got.
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tlsenv_matrix(["unreadable-file"])
        def test_x(tlsenv):
            assert tlsenv.scenario.name == "good"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError*'unreadable-file' == 'good'*"])


@pytest.mark.parametrize("group", [*sorted(GROUPS), "all"])
def test_groups_expand_to_the_catalogue(pytester: pytest.Pytester, group: str) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.tlsenv_matrix({group!r})
        def test_x(tlsenv):
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q")
    expected = list(CATALOGUE) if group == "all" else list(GROUPS[group])
    assert _ids(result) == [
        f"test_groups_expand_to_the_catalogue.py::test_x[{n}]" for n in expected
    ]


def test_works_with_parametrize_and_k(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        FETCH
        + """
@pytest.mark.parametrize("client", ["curl", "python"])
@pytest.mark.tlsenv_matrix(["good", "unreadable-file"])
def test_x(tlsenv, client):
    if client == "curl":
        out = tlsenv.run(["curl", "-fsS", "--cacert", str(tlsenv.store.bundle), tlsenv.origin.url])
    else:
        out = fetch(tlsenv)
    out.assert_expected()
"""
    )
    collected = pytester.runpytest("--collect-only", "-q")
    assert sorted(_ids(collected)) == sorted(
        f"test_works_with_parametrize_and_k.py::test_x[{s}-{c}]"
        for s in ("good", "unreadable-file")
        for c in ("curl", "python")
    )
    result = pytester.runpytest("-v", "-k", "unreadable and curl")
    result.assert_outcomes(passed=1, deselected=3)
    result.stdout.fnmatch_lines(["*::test_x[[]unreadable-file-curl[]] PASSED*"])


def test_axes_and_the_mapping_form(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        SPEC = {"scenarios": "unreadable-file", "placement": ["decoy", "shadow"]}

        @pytest.mark.tlsenv_matrix(SPEC)
        def test_mapping(tlsenv, tlsenv_scenario):
            assert tlsenv.spec.placement in ("decoy", "shadow")
            assert tlsenv.scenario.name == tlsenv_scenario.scenario.name

        @pytest.mark.tlsenv_matrix(["good"], timeout=[3, 4])
        def test_unlabelled_axis(tlsenv):
            assert tlsenv.timeout in (3, 4)

        @pytest.mark.tlsenv(timeout=7)
        @pytest.mark.tlsenv_matrix(["good", "unreadable-file"])
        def test_beside_a_tlsenv_marker(tlsenv):
            assert tlsenv.timeout == 7
        """
    )
    collected = pytester.runpytest("--collect-only", "-q")
    ids = [i.split("::")[1] for i in _ids(collected)]
    assert ids == [
        "test_mapping[unreadable-file]",
        "test_mapping[unreadable-file@shadow]",
        "test_unlabelled_axis[good-timeout=3]",
        "test_unlabelled_axis[good-timeout=4]",
        "test_beside_a_tlsenv_marker[good]",
        "test_beside_a_tlsenv_marker[unreadable-file]",
    ]
    pytester.runpytest().assert_outcomes(passed=6)


def test_trust_is_an_axis_with_the_mode_in_every_id(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tlsenv_matrix(["good", "untrusted-root"], trust=["env", "flags"])
        def test_x(tlsenv, tlsenv_scenario, request):
            mode = request.node.callspec.id.rsplit("-trust=", 1)[1]
            assert tlsenv_scenario.trust == tlsenv.trust == mode
            bundle = tlsenv.store.env["SSL_CERT_FILE"]
            # The mode reaches the run: env sets the variable, flags sets none.
            assert ("SSL_CERT_FILE" in tlsenv.environ) == (mode == "env")
            out = tlsenv.run(["curl", "-fsS", "--cacert", bundle, tlsenv.origin.url])
            assert out.trust == mode
            out.assert_expected()

        @pytest.mark.tlsenv_matrix(["good"], trust=["system"])
        def test_one_mode(tlsenv_scenario):
            assert tlsenv_scenario.trust == "system"

        @pytest.mark.tlsenv(trust="flags")
        @pytest.mark.tlsenv_matrix(["good"])
        def test_fixed_mode(tlsenv):
            assert tlsenv.trust == "flags"
        """
    )
    collected = pytester.runpytest("--collect-only", "-q")
    ids = [i.split("::")[1] for i in _ids(collected)]
    assert ids == [
        "test_x[good-trust=env]",
        "test_x[good-trust=flags]",
        "test_x[untrusted-root-trust=env]",
        "test_x[untrusted-root-trust=flags]",
        # One mode on the axis still names it; a fixed mode (the marker's) is no axis.
        "test_one_mode[good-trust=system]",
        "test_fixed_mode[good]",
    ]
    result = pytester.runpytest("--tlsenv-report", "r.json")
    result.assert_outcomes(passed=6)
    # The grid keeps one row per scenario and mode: the modes' verdicts never share a cell.
    result.stdout.fnmatch_lines(
        [
            "tlsenv: *; trust: env (default), flags (mixed: per row); *",
            "good (env) *OK*",
            "good (flags) *OK*",
            "untrusted-root (env) *REJECTED*",
            "untrusted-root (flags) *REJECTED*",
        ]
    )
    data = json.loads((pytester.path / "r.json").read_text())
    modes = {r["nodeid"].split("::")[1]: r["trust"] for r in data["results"]}
    assert modes["test_x[good-trust=flags]"] == "flags"
    assert modes["test_x[good-trust=env]"] == "env"


def test_make_tlsenv_gets_the_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        FETCH
        + """
@pytest.mark.tlsenv_matrix(["good", "unreadable-file"])
def test_x(make_tlsenv, tlsenv_scenario, request):
    env = make_tlsenv(tlsenv_scenario)
    assert env.scenario.name == request.node.callspec.id
    fetch(env).assert_expected()
"""
    )
    pytester.runpytest().assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            '"unreadable-fiel"',
            "unknown scenario or group 'unreadable-fiel' (did you mean 'unreadable-file'?); "
            "groups: *",
        ),
        ('["good", "nope"]', "unknown scenario or group 'nope'; groups: *; scenarios: good*"),
        ('{"placement": "shadow"}', "the mapping form needs a 'scenarios' key*"),
        ('"good", colour="red"', "unknown keyword(s) colour; valid: faults*"),
        (
            '"good", placment="shadow"',
            "unknown keyword(s) placment; valid: *did you mean 'placement'?",
        ),
        ('"good", placement=[]', "placement=[]: an axis needs at least one value"),
        ('"good", trust=["env", "sytem"]', "trust must be one of env, system, flags, got 'sytem'*"),
        ('"good", trust=[]', "trust=[]: an axis needs at least one value"),
        ('"good", trust=["env", "env"]', "trust=*'env', 'env'*: a value appears twice on the axis"),
        ('"good", placement="sideways"', "placement must be one of decoy, shadow*"),
        ("42", "SPEC must be a group or scenario name*"),
    ],
)
def test_bad_matrix_is_a_collection_error(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.tlsenv_matrix({marker})
        def test_x(tlsenv):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_bad_matrix_is_a_collection_error.py::test_x: "
            f"bad @pytest.mark.tlsenv_matrix: {message}"
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_matrix_without_a_tlsenv_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tlsenv_matrix("store")
        def test_x():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*::test_x: @pytest.mark.tlsenv_matrix needs the tlsenv, make_tlsenv or tlsenv_scenario*"]
    )


SELECTION = """
import pytest

@pytest.mark.tlsenv_matrix(["good", "unreadable-file"])
def test_matrix(tlsenv):
    pass

def test_default(tlsenv):
    pass

@pytest.mark.tlsenv("unreadable-file")
def test_marked(tlsenv):
    pass

def test_builds_its_own(make_tlsenv):
    pass

def test_unrelated():
    pass
"""


@pytest.mark.parametrize(
    ("selection", "kept"),
    [
        (
            "store",
            [
                "test_matrix[unreadable-file]",
                "test_marked",
                "test_builds_its_own",
                "test_unrelated",
            ],
        ),
        ("good", ["test_matrix[good]", "test_default", "test_builds_its_own", "test_unrelated"]),
        (
            "all,-unreadable-file",
            ["test_matrix[good]", "test_default", "test_builds_its_own", "test_unrelated"],
        ),
        (
            "-good",
            [
                "test_matrix[unreadable-file]",
                "test_marked",
                "test_builds_its_own",
                "test_unrelated",
            ],
        ),
    ],
)
def test_scenarios_option_selects(
    pytester: pytest.Pytester, selection: str, kept: list[str]
) -> None:
    pytester.makepyfile(SELECTION)
    result = pytester.runpytest("-v", f"--tlsenv-scenarios={selection}")
    result.assert_outcomes(passed=len(kept), deselected=6 - len(kept))
    ran = [line.split("::")[1].split()[0] for line in result.stdout.lines if " PASSED" in line]
    assert ran == kept


def test_scenarios_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SELECTION)
    pytester.makeini("[pytest]\ntlsenv_scenarios = -unreadable-file\n")
    pytester.runpytest().assert_outcomes(passed=4, deselected=2)
    # The option wins over the ini key.
    pytester.runpytest("--tlsenv-scenarios=store").assert_outcomes(passed=4, deselected=2)
    pytester.runpytest("--tlsenv-scenarios=all").assert_outcomes(passed=6)


def test_scenarios_option_unknown_name_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SELECTION)
    result = pytester.runpytest("--tlsenv-scenarios=store,-fifoo")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--tlsenv-scenarios: unknown scenario or group 'fifoo' (did you mean 'fifo'?); "
            "groups: *all*store*; scenarios: good*"
        ]
    )


def test_markers_document_the_matrix(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.tlsenv_matrix(SPEC, **keywords): run the test once per scenario*"]
    )


def test_fixtures_document_tlsenv_scenario(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--fixtures")
    result.stdout.fnmatch_lines(["tlsenv_scenario -- *", "*The resolved scenario*tlsenv_matrix*"])


def test_help_documents_every_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*TLS environment scenarios*",
            "*--tlsenv-timeout=SECONDS*",
            "*--tlsenv-user=USER*",
            "*--tlsenv-keep*",
            "*--tlsenv-root-dir=DIR*",
            "*--tlsenv-scenarios=NAMES*",
            "*--tlsenv-report=PATH*",
            "*--tlsenv-baseline=PATH*",
            "*--tlsenv-update-baseline*",
        ]
    )
    result.stdout.fnmatch_lines(["*tlsenv_fault_uid (string):*", "*tlsenv_scenarios (string):*"])
