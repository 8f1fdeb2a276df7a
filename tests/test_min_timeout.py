"""A preset's minimum timeout: a run given no specific timeout waits at least that long.

A verdict must describe the client, not the machine's load: a JVM that takes seconds to start
on a busy machine is not HUNG. The survey's default per-run timeout is raised to each preset's
``min_timeout``; a timeout the caller gives is used as given. The client here is a real
process that never exits, so the HUNG reason shows the limit it was actually given.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from pytest_tlsenv import ConfigError, TLSEnv, Verdict
from pytest_tlsenv.clients import PRESETS, Client, Preset, Wiring
from pytest_tlsenv.survey import SURVEY_TIMEOUT, run_timeout, survey

pytestmark = pytest.mark.nonroot

SLOW = SURVEY_TIMEOUT + 1.5


def _sleeper(env: TLSEnv, version: str | None, wiring: Wiring) -> Client:
    return Client("slow-start", env, argv=(str(shutil.which("sleep")), "60"), version=version)


@pytest.fixture
def slow_start(monkeypatch: pytest.MonkeyPatch) -> str:
    """A preset whose client never exits, with a minimum above the survey's default."""
    preset = Preset("slow-start", "sleeps", (), lambda: "1", _sleeper, min_timeout=SLOW)
    monkeypatch.setitem(PRESETS, preset.name, preset)
    return preset.name


def test_the_survey_default_is_raised_to_the_presets_minimum(slow_start: str) -> None:
    assert run_timeout(slow_start) == SLOW
    [cell] = survey([slow_start], ["good"])
    out = cell.verdicts[slow_start]
    assert out is not None
    assert out.verdict is Verdict.HUNG
    assert f"no exit within {SLOW:g} s" in out.reason
    assert out.duration >= SLOW


def test_a_timeout_the_caller_gives_is_used_as_given(slow_start: str) -> None:
    # The twin: an explicit timeout below the minimum is the caller's choice.
    [cell] = survey([slow_start], ["good"], timeout=1)
    out = cell.verdicts[slow_start]
    assert out is not None
    assert out.verdict is Verdict.HUNG
    assert "no exit within 1 s" in out.reason


@pytest.mark.parametrize("bad", [0, -1, float("nan")])
def test_a_bad_survey_timeout_is_refused_before_anything_runs(bad: float) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        survey(["curl"], ["good"], timeout=bad)


def test_the_cli_names_a_bad_timeout_and_runs_nothing() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest_tlsenv", "survey", "--clients", "curl", "--timeout", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert "--timeout must be a positive number of seconds, got -1" in out.stderr
    assert "Traceback" not in out.stderr
