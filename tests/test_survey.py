"""`python -m pytest_tlsenv survey|scenarios`: the one-command demo, run as users run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_tlsenv.scenarios import CATALOGUE

pytestmark = pytest.mark.nonroot


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_tlsenv", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
    )


def test_survey_grid_and_json_report(tmp_path: Path) -> None:
    report = tmp_path / "survey.json"
    out = _cli("survey", "--clients", "python-ssl", "curl", "--report", str(report), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "scenario" in out.stdout
    assert "python-ssl" in out.stdout
    data = json.loads(report.read_text())
    cells = {(c["scenario"], c["placement"]): c for c in data["cells"]}
    # Agrees with the per-preset tests (tests/test_clients.py).
    for client in ("python-ssl", "curl"):
        assert cells[("good", "decoy")]["verdicts"][client] == "OK"
        assert cells[("unreadable-file", "decoy")]["verdicts"][client] == "OK"
        assert cells[("mitm-untrusted", "decoy")]["verdicts"][client] == "REJECTED"
        assert cells[("expired", "decoy")]["verdicts"][client] == "REJECTED"
    # Every catalogue scenario is surveyed, store faults in both placements.
    assert {s for s, _ in cells} == set(CATALOGUE)
    assert ("unreadable-file", "shadow") in cells
    assert data["elapsed_s"] < 120


def test_survey_markdown_report(tmp_path: Path) -> None:
    report = tmp_path / "survey.md"
    out = _cli(
        "survey",
        "--clients",
        "curl",
        "--scenarios",
        "good",
        "expired",
        "--report",
        str(report),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    text = report.read_text()
    assert text.startswith("| scenario | expected | curl ")
    assert "| `good` | OK | OK |" in text
    assert "| `expired` | REJECTED | REJECTED |" in text


def test_survey_leaves_nothing_behind(tmp_path: Path) -> None:
    before = set(Path("/tmp").glob("tlsenv-survey-*"))
    out = _cli("survey", "--clients", "curl", "--scenarios", "unreadable-file", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert set(Path("/tmp").glob("tlsenv-survey-*")) == before


def test_scenarios_lists_the_catalogue(tmp_path: Path) -> None:
    out = _cli("scenarios", cwd=tmp_path)
    assert out.returncode == 0
    for name in CATALOGUE:
        assert name in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bogus"], "invalid choice: 'bogus'"),
        (["survey", "--clients", "kurl"], "invalid choice: 'kurl'"),
        (["survey", "--scenarios", "nope"], "unknown scenario(s) nope"),
        ([], "the following arguments are required: command"),
    ],
)
def test_cli_mistakes_are_usage_messages(tmp_path: Path, args: list[str], message: str) -> None:
    out = _cli(*args, cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
