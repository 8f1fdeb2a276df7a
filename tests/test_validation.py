"""Every marker keyword and every timeout is checked: a ConfigError that teaches, or a Spec.

Before these checks, ``timeout=nan`` was accepted and crashed every run in select(),
``faults=None`` or ``layout={}`` raised a bare TypeError, and ``timeout=True`` or
``extra_cas=True`` silently meant 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_tlsenv.errors import ConfigError
from pytest_tlsenv.faults import FAULTS, PLACEMENTS
from pytest_tlsenv.outcome import Verdict
from pytest_tlsenv.pki import PKI
from pytest_tlsenv.scenarios import (
    BACKENDS,
    CATALOGUE,
    GROUPS,
    KEYWORDS,
    MAX_EXTRA_CAS,
    MAX_TIMEOUT,
    Scenario,
    Spec,
    resolve,
)
from pytest_tlsenv.store import LAYOUTS
from pytest_tlsenv.tlsenv import Settings, TLSEnv

pytest_plugins = ["pytester"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": math.nan}, r"timeout must be a positive number of seconds, got nan; "
         r"accepted: a finite number in \(0, 86400\], not a bool"),
        ({"timeout": math.inf}, r"timeout must be .* got inf"),
        ({"timeout": -math.inf}, r"timeout must be .* got -inf"),
        ({"timeout": True}, r"timeout must be .*got True; .*not a bool"),
        ({"timeout": 0}, r"timeout must be .* got 0"),
        ({"timeout": MAX_TIMEOUT + 1}, r"timeout must be .* got 86401"),
        ({"timeout": 10**400}, r"timeout must be .* got 1000"),
        ({"timeout": "5"}, r"timeout must be .* got '5'"),
        ({"extra_cas": True}, r"extra_cas must be an int from 0 to 100_000, got True"),
        ({"extra_cas": 9_999_999}, r"extra_cas must be an int from 0 to 100_000, got 9999999"),
        ({"extra_cas": -1}, r"extra_cas must be an int .* got -1"),
        ({"extra_cas": 2.0}, r"extra_cas must be an int .* got 2.0"),
        ({"faults": None}, r"faults takes a list \(or tuple\) of fault names, "
         r"got None; \[\] for none"),
        ({"faults": 123}, r"faults takes a list .* got 123"),
        ({"faults": {"fifo"}}, r"faults takes a list .* got \{'fifo'\}"),
        ({"faults": [["fifo"]]}, r"faults holds names \(str\), got \['fifo'\]; valid names: "),
        ({"faults": "fifo"}, r"faults takes a list of names, got the string 'fifo': "
         r"write faults=\['fifo'\]"),
        ({"layout": {}}, r"layout must be one of debian, .* got \{\}"),
        ({"layout": "windows"}, r"unknown layout 'windows'; valid: debian, "),
        ({"placement": None}, r"placement must be one of decoy, shadow, got None"),
        ({"backend": "ram"}, r"backend must be one of disk, fakefs, got 'ram'"),
        ({"proxy": ["mitm-trusted"]}, r"proxy takes a name from the proxy group, "
         r"got \['mitm-trusted'\]"),
        ({"server": None}, r"server takes a name from the server group, got None"),
        ({"system_paths": 1}, r"system_paths must be True or False, got 1"),
        ({"user": 0}, r"user must be None or a user name or uid .* got 0"),
        ({"user": ""}, r"user must be .* got ''"),
        ({"user": "no\x00body"}, r"user must be .* got 'no\\x00body'"),
        ({"scenario": 5}, r"scenario must be None or a scenario name \(str\), got 5"),
        ({"scenario": ""}, r"unknown scenario ''; valid names: "),
        ({"trust": "environment"}, r"trust must be one of env, system, flags, "
         r"got 'environment'"),
        ({"trust": ["env"]}, r"trust must be one of env, system, flags, got \['env'\]"),
    ],
)  # fmt: skip
def test_bad_keyword_is_a_config_error_naming_it(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "hint"),
    [
        ({"scenario": "unreadable-fiel"}, "did you mean 'unreadable-file'?"),
        ({"faults": ["garbage-fil"]}, "did you mean 'garbage-file'?"),
        ({"layout": "debain"}, "did you mean 'debian'?"),
        ({"proxy": "mitm-untrusetd"}, "did you mean 'mitm-untrusted'?"),
        ({"server": "expird"}, "did you mean 'expired'?"),
        ({"placement": "shadows"}, "did you mean 'shadow'?"),
        ({"fault": ["fifo"]}, "did you mean 'faults'?"),
        ({"trust": "sytem"}, "did you mean 'system'?"),
    ],
)
def test_near_miss_names_get_a_suggestion(kwargs: dict[str, Any], hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(**kwargs)
    assert str(info.value).endswith(hint)


def test_far_off_names_get_no_suggestion() -> None:
    # The twin of the suggestion: nothing close, nothing suggested (just the valid names).
    with pytest.raises(ConfigError, match="unknown scenario 'zzz'; valid names: ") as info:
        resolve("zzz")
    assert "did you mean" not in str(info.value)


def test_the_edges_of_the_ranges_are_accepted() -> None:
    assert resolve(timeout=MAX_TIMEOUT).timeout == MAX_TIMEOUT
    assert resolve(timeout=Fraction(1, 4)).timeout == 0.25
    assert resolve(timeout=1).timeout == 1.0
    assert isinstance(resolve(timeout=1).timeout, float)
    assert resolve(extra_cas=MAX_EXTRA_CAS).extra_cas == MAX_EXTRA_CAS
    assert resolve(faults=("fifo",), user="nobody").faults == ("fifo",)
    assert resolve(user="65534").user == "65534"


# -- property: any value of any keyword gives a well-typed Spec or a ConfigError -------------

_NAMES = sorted(
    {*CATALOGUE, *FAULTS, *LAYOUTS, *PLACEMENTS, *BACKENDS, "nobody", "root", "65534", ""}
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.fractions(),
    st.text(max_size=12),
    st.sampled_from(_NAMES),
    st.binary(max_size=4),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.frozensets(st.sampled_from(_NAMES), max_size=2),
        st.dictionaries(st.text(max_size=3), inner, max_size=2),
    ),
    max_leaves=6,
)
_FUZZ = settings(max_examples=300, deadline=None, database=None)


def _check_spec(spec: Spec) -> None:
    assert isinstance(spec.scenario, Scenario)
    assert isinstance(spec.faults, tuple)
    assert all(f in FAULTS for f in spec.faults)
    assert spec.placement in PLACEMENTS
    assert spec.proxy is None or spec.proxy in GROUPS["proxy"]
    # A server group name, or the scenario's own variant (requests-6969: self-signed-cn-only).
    assert spec.server in GROUPS["server"] or spec.server == spec.scenario.server
    assert spec.layout in LAYOUTS
    assert spec.backend in BACKENDS
    assert type(spec.system_paths) is bool
    assert spec.user is None or (isinstance(spec.user, str) and spec.user)
    if spec.timeout is not None:
        assert type(spec.timeout) is float
        assert 0 < spec.timeout <= MAX_TIMEOUT
    assert type(spec.extra_cas) is int
    assert 0 <= spec.extra_cas <= MAX_EXTRA_CAS
    assert spec.scenario.expected  # a set of verdicts, never empty


@_FUZZ
@given(keyword=st.sampled_from(KEYWORDS), value=_VALUES)
def test_any_value_of_one_keyword_resolves_or_is_a_config_error(keyword: str, value: Any) -> None:
    try:
        spec = resolve(**{keyword: value})
    except ConfigError as e:
        problem = str(e)
    else:
        _check_spec(spec)
        return
    assert keyword.rstrip("s") in problem, problem  # the message names the keyword


@_FUZZ
@given(kwargs=st.dictionaries(st.sampled_from(KEYWORDS), _VALUES, max_size=len(KEYWORDS)))
def test_any_mix_of_keywords_resolves_or_is_a_config_error(kwargs: dict[str, Any]) -> None:
    try:
        spec = resolve(**kwargs)
    except ConfigError:
        return
    _check_spec(spec)


@settings(max_examples=100, deadline=None, database=None)
@given(
    kwargs=st.fixed_dictionaries(
        {},
        optional={
            "scenario": st.sampled_from(sorted(CATALOGUE)),
            "faults": st.lists(st.sampled_from(sorted(FAULTS)), max_size=3, unique=True),
            "placement": st.sampled_from(PLACEMENTS),
            "proxy": st.none() | st.sampled_from(GROUPS["proxy"]),
            "server": st.sampled_from(GROUPS["server"]),
            "layout": st.sampled_from(sorted(LAYOUTS)),
            "timeout": st.floats(min_value=0.001, max_value=MAX_TIMEOUT),
            "extra_cas": st.integers(0, MAX_EXTRA_CAS),
        },
    )
)
def test_valid_keywords_always_resolve(kwargs: dict[str, Any]) -> None:
    # The other half of the property: the checks never refuse a valid combination.
    _check_spec(resolve(**kwargs))


# -- run/call and Settings: the same timeout checks ------------------------------------------


@pytest.mark.parametrize("timeout", [math.nan, math.inf, True, 0, -1.0, MAX_TIMEOUT * 2, "1"])
@pytest.mark.parametrize(
    "use",
    [
        lambda env, t: env.run(["true"], timeout=t),
        lambda env, t: env.call(lambda: None, timeout=t),
    ],
    ids=["run", "call"],
)
def test_run_and_call_refuse_a_bad_timeout(
    tlsenv: TLSEnv, use: Callable[[TLSEnv, object], object], timeout: object
) -> None:
    with pytest.raises(ConfigError, match=r"timeout must be a positive number of seconds"):
        use(tlsenv, timeout)
    assert tlsenv.outcomes == []  # nothing ran


def test_run_accepts_a_finite_timeout(tlsenv: TLSEnv) -> None:
    # The twin: the same call with a sane timeout runs the client.
    out = tlsenv.run(["true"], timeout=Fraction(30))  # type: ignore[arg-type]
    out.assert_verdict(out.verdict)
    assert out.returncode == 0


@pytest.mark.parametrize("timeout", [math.nan, math.inf, 0.0])
def test_settings_timeout_is_checked_when_used(
    tlsenv_pki: PKI, tmp_path: Path, timeout: float
) -> None:
    with pytest.raises(ConfigError, match=r"Settings.timeout must be a positive number"):
        TLSEnv(resolve(), pki=tlsenv_pki, root=tmp_path / "s", settings=Settings(timeout=timeout))
    assert not (tmp_path / "s").exists()  # refused before anything was made


# -- through pytest: a clean setup error naming the test --------------------------------------


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('timeout=float("nan")', "timeout must be a positive number of seconds, got nan; "
         "accepted: a finite number in (0, 86400[]], not a bool"),
        ("timeout=True", "timeout must be * got True; *"),
        ("faults=None", "faults takes a list (or tuple) of fault names, got None; [[][]] for none"),
        ('faults=[["fifo"]]', "faults holds names (str), got [[]'fifo'[]]; valid names: *"),
        ("layout={}", "layout must be one of debian, *, got {}"),
        ("extra_cas=True", "extra_cas must be an int from 0 to 100_000, got True"),
        ("extra_cas=9_999_999", "extra_cas must be an int from 0 to 100_000, got 9999999"),
        ('"unreadable-fiel"', "unknown scenario 'unreadable-fiel'; "
         "*did you mean 'unreadable-file'?"),
    ],
)  # fmt: skip
def test_bad_marker_value_is_a_clean_setup_error(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.tlsenv({marker})
        def test_x(tlsenv):
            pass

        def test_untouched():
            pass
        """
    )
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_x*",
            f"*test_x: bad @pytest.mark.tlsenv: {message}",
            "ERROR test_bad_marker_value_is_a_clean_setup_error.py::test_x - *",
        ]
    )
    out = result.stdout.str()
    assert "Traceback" not in out
    assert "TypeError" not in out


@pytest.mark.parametrize("value", ["nan", "inf", "0"])
def test_bad_timeout_option_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest(f"--tlsenv-timeout={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*got {float(value)}, not a finite number of seconds up to 86400: "
            "--tlsenv-timeout must be positive"
        ]
    )


def test_a_scenario_with_its_own_server_variant_takes_a_proxy() -> None:
    # Found by the property above: the variant is no catalogue scenario, and resolve looked
    # its expected set up there (KeyError) once a proxy changed the scenario.
    spec = resolve(scenario="requests-6969", proxy="mitm-untrusted")
    assert spec.server == "self-signed-cn-only"
    assert spec.proxy == "mitm-untrusted"
    assert Verdict.REJECTED in spec.scenario.expected
