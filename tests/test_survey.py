"""`python -m pytest_tlsenv survey|scenarios`: the one-command demo, run as users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
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
    # The grid says which trust mode its verdicts were measured in.
    assert out.stdout.startswith("trust: env (default); n/a: ")
    text = report.read_text()
    assert text.startswith("| scenario | expected | curl ")
    assert "| `good` | OK | OK |" in text
    assert "| `expired` | REJECTED | REJECTED |" in text


def test_survey_leaves_nothing_behind(tmp_path: Path) -> None:
    # A private TMPDIR: other workers run surveys into /tmp at the same time. Watching it while
    # the survey runs shows the check is not vacuous: the work directory exists, then is gone.
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    argv = [sys.executable, "-m", "pytest_tlsenv", "survey", "--clients", "curl"]
    argv += ["--scenarios", "unreadable-file", "fifo", "good"]
    seen: set[str] = set()
    with subprocess.Popen(
        argv,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmpdir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        while proc.poll() is None:
            seen.update(p.name for p in tmpdir.iterdir())
            time.sleep(0.001)
        stderr = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 0, stderr
    assert any(name.startswith("tlsenv-survey-") for name in seen), seen
    assert list(tmpdir.iterdir()) == []


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
