"""The command line as users meet it: the `tlsenv` script, the plugin's selection syntax, and
output fit for a terminal, a log and NO_COLOR."""

from __future__ import annotations

import errno
import json
import os
import pty
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from pytest_tlsenv.clients import Client, Preset, presets, register
from pytest_tlsenv.clients.registry import PRESETS
from pytest_tlsenv.scenarios import GROUPS
from pytest_tlsenv.survey import available

pytestmark = pytest.mark.nonroot

SCRIPT = Path(sysconfig.get_path("scripts")) / "tlsenv"


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
        env={**os.environ, **env},
    )


def _in_a_terminal(argv: list[str], cwd: Path, **env: str) -> tuple[int, str]:
    """Run ``argv`` with stdout and stderr on a pseudo-terminal; its exit status and output."""
    main, child = pty.openpty()
    try:
        with subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=child,
            stderr=child,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "200", **env},
        ) as proc:
            os.close(child)
            child = -1
            chunks = []
            while True:
                try:
                    chunk = os.read(main, 65536)
                except OSError as e:  # EIO: the child closed the terminal
                    if e.errno != errno.EIO:
                        raise
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            status = proc.wait(timeout=300)
    finally:
        os.close(main)
        if child >= 0:
            os.close(child)
    return status, b"".join(chunks).decode(errors="replace")


def test_the_tlsenv_script_takes_the_plugins_selection_syntax(tmp_path: Path) -> None:
    report = tmp_path / "s.json"
    argv = [str(SCRIPT), "survey", "--clients", "curl,wget", "--scenarios", "store,-fifo"]
    out = _run([*argv, "--report", str(report)], tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(report.read_text())
    assert set(data["clients"]) == {"curl", "wget"}
    surveyed = {c["scenario"] for c in data["cells"]}
    assert surveyed == set(GROUPS["store"]) - {"fifo"}
    assert "2 clients in" in out.stdout
    # Negative twin: a near-miss word is refused before anything runs, with the closest name.
    bad = _run(
        [str(SCRIPT), "survey", "--clients", "curl", "--scenarios", "store,-fifoo"], tmp_path
    )
    assert bad.returncode == 2
    assert "survey: --scenarios: unknown scenario or group 'fifoo' (did you mean 'fifo'?)" in (
        bad.stderr
    )


def test_the_script_and_python_m_are_one_command(tmp_path: Path) -> None:
    script = _run([str(SCRIPT), "survey", "--help"], tmp_path)
    module = _run([sys.executable, "-m", "pytest_tlsenv", "survey", "--help"], tmp_path)
    assert script.returncode == module.returncode == 0
    assert script.stdout.startswith("usage: tlsenv survey")
    assert module.stdout.startswith("usage: python -m pytest_tlsenv survey")
    # The usage lines wrap differently; the rest is the same text.
    assert script.stdout.partition("\n\n")[2] == module.stdout.partition("\n\n")[2]
    # The default of every numeric option is in its help.
    help_text = " ".join(script.stdout.split())
    assert "per-run timeout (s); default 5, raised to a client's minimum" in help_text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clients", "kurl"], "survey: --clients: unknown client 'kurl' (did you mean 'curl'?)"),
        (["--clients", "curl@8.0"], "--clients curl@8.0: curl is not installable from the index"),
        (["--clients", "curl,-curl"], "survey: --clients: that selection leaves no client"),
        (["--scenarios", "good,-good"], "survey: --scenarios: that selection leaves no scenario"),
        (["--report", "s.txt"], "survey: --report s.txt: unknown suffix '.txt'; use .md, .json"),
        (["--report", "no/such/s.md", "--scenarios", "good"], None),
    ],
)
def test_survey_refuses_bad_input_before_running(
    tmp_path: Path, args: list[str], message: str | None
) -> None:
    out = _run([str(SCRIPT), "survey", *args], tmp_path)
    if message is None:
        # Negative twin: a report in a directory that can be made is fine, and written.
        assert out.returncode == 0, out.stderr
        assert (tmp_path / "no/such/s.md").read_text().startswith("| scenario |")
        return
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert "survey: 1/" not in out.stderr  # nothing ran
    assert list(tmp_path.iterdir()) == []  # no s.txt, nothing else


def test_survey_in_a_log_prints_one_line_per_finished_scenario(tmp_path: Path) -> None:
    out = _run(
        [str(SCRIPT), "survey", "--clients", "curl", "--scenarios", "good expired"], tmp_path
    )
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("survey: ")]
    assert sorted(lines) == ["survey: 1/2 expired", "survey: 2/2 good"] or sorted(lines) == [
        "survey: 1/2 good",
        "survey: 2/2 expired",
    ]
    assert "\r" not in out.stderr
    # One scenario, one client: no plural.
    assert "2 scenarios x 1 client in" in out.stdout


def test_survey_on_a_terminal_rewrites_one_line_and_honours_no_color(tmp_path: Path) -> None:
    argv = [str(SCRIPT), "survey", "--clients", "curl", "--scenarios", "good"]
    status, coloured = _in_a_terminal(argv, tmp_path)
    assert status == 0, coloured
    assert "\r  1/1 good" in coloured
    assert "survey: 1/1" not in coloured
    assert "1 scenario x 1 client in" in coloured
    assert "\x1b[" in coloured  # the twin: a terminal gets colour...
    status, plain = _in_a_terminal(argv, tmp_path, NO_COLOR="1")
    assert status == 0, plain
    assert "\x1b" not in plain  # ...unless NO_COLOR says otherwise
    assert "OK" in plain


def test_a_missing_python_library_says_how_to_install_it() -> None:
    def build(env: object, version: str | None) -> Client:
        raise AssertionError("never built: it is not installed")

    absent = Preset(
        "tlsenv-test-absent-lib",
        "a library that is not installed",
        ("SSL_CERT_FILE",),
        lambda: None,
        build,
        installable=("tlsenv-test-absent-lib", "python"),
    )
    tool = Preset("tlsenv-test-absent-tool", "a program that is not here", (), lambda: None, build)
    register(absent)
    register(tool)
    try:
        assert absent.name in presets()
        found, notes = available([absent.name, tool.name])
    finally:
        del PRESETS[absent.name], PRESETS[tool.name]
    assert found == []
    assert notes == [
        f"{absent.name} is not installed in this Python ({sys.executable}): "
        f"pip install tlsenv-test-absent-lib; skipped",
        # A program is not pip's business.
        f"{tool.name} not found on this machine: skipped",
    ]


def test_words_starting_with_a_minus_stay_in_the_list(tmp_path: Path) -> None:
    # argparse alone would take "-good" for an option and refuse it.
    argv = [str(SCRIPT), "survey", "--scenarios", "expired", "good", "-good", "--clients", "curl"]
    out = _run(argv, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "1 scenario x 1 client in" in out.stdout
    assert "\nexpired " in out.stdout
    assert "\ngood " not in out.stdout
    # Twin: without the drop, both run.
    out = _run([*argv[:5], "--clients", "curl"], tmp_path)
    assert "2 scenarios x 1 client in" in out.stdout
