"""Cleanup holds when a test fails, errors in setup, is interrupted, or the process is killed."""

from __future__ import annotations

from pathlib import Path

import pytest
from leakcheck import altered_files

pytestmark = pytest.mark.nonroot


def test_keyboard_interrupt_mid_test_restores(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tlsenv(scenario="unreadable-file")
        def test_interrupted(tlsenv):
            raise KeyboardInterrupt

        def test_never_runs():
            pass
        """
    )
    base = pytester.path / "bt"
    result = pytester.runpytest_subprocess("--basetemp", str(base), "--tlsenv-root-dir=basetemp")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    assert altered_files(base) == []


def test_setup_error_restores(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def broken(tlsenv):
            raise RuntimeError("setup goes wrong after the scenario is built")

        @pytest.mark.tlsenv(scenario="unreadable-file")
        def test_x(broken):
            pass
        """
    )
    base = pytester.path / "bt"
    result = pytester.runpytest("--basetemp", str(base), "--tlsenv-root-dir=basetemp")
    result.assert_outcomes(errors=1)
    assert altered_files(base) == []


KILLED = """
import os, signal, pytest

@pytest.mark.tlsenv(scenario="unreadable-file")
def test_killed(tlsenv):
    os.kill(os.getpid(), signal.SIGKILL)
"""

LATER = """
def test_later(tlsenv):
    pass
"""


JOURNALLED = """
import os, pytest

@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.tlsenv(scenario="unreadable-file")
def test_journalled(tlsenv, n):
    # While the fault is applied its undo record exists (the journal is kept between tests).
    assert [p for p in os.listdir(os.environ["TLSENV_JOURNAL_DIR"]) if p.endswith(".json")]
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_journal_directory_is_gone_after_the_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workers: list[str]
) -> None:
    journal = tmp_path / "journal"
    monkeypatch.setenv("TLSENV_JOURNAL_DIR", str(journal))
    pytester.makepyfile(test_journalled=JOURNALLED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *workers)
    result.assert_outcomes(passed=2)
    assert not journal.exists()


KILLED_WHILE_BUILDING = """
import os, signal
import pytest
import pytest_tlsenv.world as world_module

real = world_module.get_fault


class KillAfterApply:
    def __init__(self, fault):
        self.fault = fault

    def apply(self, site):
        self.fault.apply(site)
        os.kill(os.getpid(), signal.SIGKILL)  # mid-build: the next fault never comes


world_module.get_fault = lambda name: KillAfterApply(real(name)) if name == "fifo" else real(name)


@pytest.mark.tlsenv(faults=["unreadable-file", "unreadable-dir", "fifo", "garbage-file"])
def test_killed_while_building(tlsenv):
    pass
"""


@pytest.mark.parametrize(
    ("source", "fifo", "others"),
    [
        pytest.param(KILLED, False, 1, id="mid-test"),
        # The journal is written before the first fault: no window in which a fault exists
        # that no record covers, even when the kill comes while they are being applied.
        pytest.param(KILLED_WHILE_BUILDING, True, 2, id="mid-build"),
    ],
)
def test_killed_session_is_repaired_by_the_next(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    source: str,
    fifo: bool,
    others: int,
) -> None:
    monkeypatch.setenv("TLSENV_JOURNAL_DIR", str(tmp_path / "journal"))
    pytester.makepyfile(test_killed=source)
    base = pytester.path / "bt1"
    killed = pytester.runpytest_subprocess("--basetemp", str(base), "--tlsenv-root-dir=basetemp")
    assert killed.ret != 0
    # Negative twin: SIGKILL left the faults behind, and the journal.
    left = altered_files(base)
    assert any(s.startswith("FIFO ") for s in left) == fifo, left
    assert len([s for s in left if not s.startswith("FIFO ")]) >= others, left
    assert list((tmp_path / "journal").glob("*.json"))
    pytester.makepyfile(test_later=LATER)
    later = pytester.runpytest_subprocess("--basetemp", str(pytester.path / "bt2"), "test_later.py")
    later.assert_outcomes(passed=1)
    assert altered_files(base) == []
    assert not (tmp_path / "journal").exists()
