"""The report session's option checks as plain functions, without pytester (the plugin turns
each ConfigError into a usage error; tests/test_report.py and test_baseline.py cover that)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_tlsenv.errors import ConfigError
from pytest_tlsenv.session import ReportSession, check_creatable


def _options(cwd: Path, **overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "scenarios": "",
        "report": None,
        "baseline": None,
        "update_baseline": False,
        "is_worker": False,
        "cwd": cwd,
        "grid_max_tests": 40,
    }
    return {**options, **overrides}


def test_defaults_make_a_session_that_selects_and_writes_nothing(tmp_path: Path) -> None:
    reports = ReportSession.from_options(**_options(tmp_path))
    assert reports.selection is None
    assert reports.report_path is None
    assert reports.baseline is None
    reports.finish()  # nothing ran: nothing is written
    assert list(tmp_path.iterdir()) == []


def test_scenarios_become_a_selection(tmp_path: Path) -> None:
    reports = ReportSession.from_options(**_options(tmp_path, scenarios="store,-fifo"))
    assert reports.selection is not None
    assert reports.selection.keeps("unreadable-file")
    assert not reports.selection.keeps("fifo")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scenarios": "store,-fifoo"}, "--tlsenv-scenarios: unknown scenario or group 'fifoo'"),
        ({"report": "r.txt"}, "--tlsenv-report r.txt: unknown suffix '.txt'; use .json"),
        ({"update_baseline": True}, "--tlsenv-update-baseline needs --tlsenv-baseline PATH"),
        ({"baseline": "missing.json"}, "--tlsenv-baseline: "),
    ],
)
def test_bad_options_name_the_option(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ReportSession.from_options(**_options(tmp_path, **overrides))


def test_an_unwritable_report_is_found_at_startup_by_the_controller_only(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    bad = {"report": "file/r.json"}
    with pytest.raises(ConfigError, match=r"--tlsenv-report .*file/r\.json: File exists: "):
        ReportSession.from_options(**_options(tmp_path, **bad))
    # An xdist worker writes no files: it does not check.
    worker = ReportSession.from_options(**_options(tmp_path, is_worker=True, **bad))
    assert worker.report_path == Path("file/r.json")


def test_check_creatable_leaves_nothing_behind(tmp_path: Path) -> None:
    check_creatable(tmp_path / "a" / "b" / "c", "--opt")
    assert not (tmp_path / "a").exists()
    # Its twin: a path under a file cannot be created, and says so with the option.
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match=r"^--opt .*/f/d: Not a directory"):
        check_creatable(tmp_path / "f" / "d", "--opt")
