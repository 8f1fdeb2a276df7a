"""`python -m pytest_tlsenv survey|scenarios`: the one-command demo, run as users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_tlsenv import Verdict
from pytest_tlsenv.errors import ConfigError
from pytest_tlsenv.scenarios import CATALOGUE
from pytest_tlsenv.survey import survey, to_text

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
        (["survey", "--clients", "kurl"], "unknown client 'kurl' (did you mean 'curl'?)"),
        (["survey", "--scenarios", "nope"], "unknown scenario or group 'nope'"),
        ([], "the following arguments are required: command"),
    ],
)
def test_cli_mistakes_are_usage_messages(tmp_path: Path, args: list[str], message: str) -> None:
    out = _cli(*args, cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


# -- the engine, from Python ----------------------------------------------------------------------


def test_survey_engine_returns_cells_without_printing(capfd: pytest.CaptureFixture[str]) -> None:
    cells = survey(["python-ssl", ("curl", None)], ["good", "expired", "unreadable-file"])
    assert capfd.readouterr() == ("", "")
    assert [c.label for c in cells] == [
        "good",
        "expired",
        "unreadable-file",
        "unreadable-file@shadow",
    ]
    by = {c.label: c for c in cells}
    for client in ("python-ssl", "curl"):
        good, expired = by["good"].verdicts[client], by["expired"].verdicts[client]
        assert good is not None
        assert good.verdict is Verdict.OK
        # The twin: a real refusal, for the right reason (the origin's leaf has expired).
        assert expired is not None
        assert expired.verdict is Verdict.REJECTED
        assert "expired" in expired.reason.lower()
    assert all(c.unavailable is None for c in cells)
    text = to_text(cells, ["python-ssl", "curl"])
    assert text.splitlines()[2].split() == ["good", "OK", "OK", "OK"]


def test_survey_engine_refuses_an_unknown_scenario() -> None:
    with pytest.raises(ConfigError, match="nope"):
        survey(["curl"], ["good", "nope"])


# The survey of a fallback scenario (it needs the store at its real paths) where user
# namespaces are capped below ours, as a non-root uid: no namespace can be made.
RESTRICTED = (
    "echo 1 > /proc/sys/user/max_user_namespaces && "
    'exec unshare --user --map-user=1000 --map-group=1000 "$0" -m pytest_tlsenv survey '
    "--clients python-ssl --scenarios good fallback-missing fallback-empty --report r.json"
)


@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="as non-root the outer user namespace can map only our own uid: every root-owned "
    "directory above the journal then shows the overflow uid, and the journal (rightly) "
    "refuses such ancestors before the survey starts",
)
def test_survey_without_namespaces_shows_fallback_scenarios_as_unavailable(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)  # the unprivileged uid inside writes the report and its TMPDIR here
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "sh", "-c", RESTRICTED, sys.executable],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            **os.environ,
            "TMPDIR": str(tmp_path),
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        },
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if line}
    assert rows["good"][-1] == "OK"  # the twin: what needs no namespace still runs
    assert rows["fallback-missing"][-1] == rows["fallback-empty"][-1] == "n/a"
    assert "n/a for every client in fallback-missing, fallback-empty: system_paths=True needs" in (
        done.stdout
    )
    data = json.loads((tmp_path / "r.json").read_text())
    reasons = {c["scenario"]: c["reasons"]["python-ssl"] for c in data["cells"]}
    assert reasons["fallback-missing"].startswith("unavailable: system_paths=True needs")
    assert not reasons["good"].startswith("unavailable")
