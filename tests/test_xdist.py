"""pytest-xdist: ``-n 2`` gives the verdicts, report and grid of a serial run (subprocess mode)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

SUITE = """
import hashlib
import os
import pathlib
import ssl
import urllib.request

import pytest


def fetch(env):
    def get():
        ctx = ssl.create_default_context()
        with urllib.request.urlopen(env.origin.url, context=ctx, timeout=5) as r:
            return r.read()

    return env.call(get)


def note(tlsenv, tlsenv_pki):
    # Which worker used which CA and port (checked by the outer test).
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    ca = hashlib.sha256(tlsenv_pki.trusted.cert_pem.bytes()).hexdigest()
    with open(pathlib.Path(os.environ["NOTES"]) / f"{worker}-{os.getpid()}", "a") as f:
        f.write(f"{ca} {tlsenv.origin.port}\\n")


@pytest.mark.tlsenv_matrix(["good", "unreadable-file"])
@pytest.mark.parametrize("client", ["curl", "python"])
def test_fetch(tlsenv, tlsenv_pki, client):
    note(tlsenv, tlsenv_pki)
    if client == "curl":
        out = tlsenv.run(["curl", "-fsS", "--cacert", str(tlsenv.store.bundle), tlsenv.origin.url])
    else:
        out = fetch(tlsenv)
    out.assert_expected()


@pytest.mark.tlsenv_matrix(["good", "unreadable-file"])
def test_crash(tlsenv, tlsenv_pki):
    note(tlsenv, tlsenv_pki)
    tlsenv.run(["sh", "-c", "echo 'thread main panicked at src/lib.rs:1:1' >&2; exit 101"])


def test_refused(tlsenv, tlsenv_pki):
    note(tlsenv, tlsenv_pki)
    msg = "SSL certificate problem: unable to get local issuer certificate"
    tlsenv.run(["sh", "-c", f"echo '{msg}' >&2; exit 60"])
"""

# What must not depend on -n: everything but durations, paths and ports.
STABLE = (
    "nodeid",
    "test",
    "scenario",
    "expected",
    "verdict",
    "mismatch",
    "reason",
    "client",
    "version",
    "user_mode",
    "test_outcome",
    "baseline",
)


def _stable(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "top": {k: v for k, v in report.items() if k != "results"},
        "results": [
            {
                **{k: r[k] for k in STABLE},
                "outcomes": [o["verdict"] for o in r["outcomes"]],
                # In-process calls see the worker's own os.environ (PYTEST_XDIST_WORKER...).
                "environment": sorted(
                    k for k in r["environment"] if r["argv"] is not None or k.startswith("SSL_")
                ),
                "store": len(r["store"]),
            }
            for r in report["results"]
        ],
    }


def _grid(stdout: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(stdout) if "= tlsenv =" in line)
    end = next(i for i in range(start + 1, len(stdout)) if stdout[i].startswith("="))
    return stdout[start:end]


def _run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, notes: Path, *args: str
) -> pytest.RunResult:
    notes.mkdir(exist_ok=True)
    monkeypatch.setenv("NOTES", str(notes))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--color=no", *args)


def test_n2_equals_serial(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_suite=SUITE)
    serial = _run(
        pytester, monkeypatch, pytester.path / "notes0", "-n", "0", "--tlsenv-report", "r0.json"
    )
    serial.assert_outcomes(passed=7)
    parallel = _run(
        pytester, monkeypatch, pytester.path / "notes2", "-n", "2", "--tlsenv-report", "r2.json"
    )
    parallel.assert_outcomes(passed=7)
    r0 = json.loads((pytester.path / "r0.json").read_text())
    r2 = json.loads((pytester.path / "r2.json").read_text())
    assert len(r0["results"]) == 7
    assert _stable(r2)["top"] == _stable(r0)["top"]
    for a, b in zip(_stable(r2)["results"], _stable(r0)["results"], strict=True):
        assert a == b
    # One grid, the same grid.
    assert parallel.stdout.str().count("= tlsenv =") == 1
    assert _grid(parallel.stdout.lines)[:-1] == _grid(serial.stdout.lines)[:-1]
    assert _grid(parallel.stdout.lines)[-1] == "tlsenv: report written to r2.json"
    parallel.stdout.fnmatch_lines(
        [
            "scenario         test_crash  test_fetch[[]curl[]]  test_fetch[[]python[]]  "
            "test_refused",
            "good             CRASHED!    OK                OK                  REJECTED!",
            "unreadable-file  CRASHED!    OK                OK",
        ]
    )
    # Each worker has its own session CA; ports are port-0 binds and never shared at once.
    per_worker: dict[str, set[str]] = {}
    for f in (pytester.path / "notes2").iterdir():
        worker = f.name.split("-")[0]
        per_worker.setdefault(worker, set()).update(
            line.split()[0] for line in f.read_text().splitlines()
        )
    assert sorted(per_worker) == ["gw0", "gw1"]
    assert all(len(cas) == 1 for cas in per_worker.values())
    assert per_worker["gw0"] != per_worker["gw1"]


def test_n2_baseline_changes_fail_and_update(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    notes = pytester.path / "notes"
    baseline = pytester.path / "b.json"
    created = _run(
        pytester,
        monkeypatch,
        notes,
        "-n",
        "2",
        "--tlsenv-baseline",
        "b.json",
        "--tlsenv-update-baseline",
    )
    created.assert_outcomes(passed=7)
    verdicts = json.loads(baseline.read_text())["verdicts"]
    assert len(verdicts) == 7
    assert verdicts["test_suite.py::test_crash[unreadable-file]"] == {"unreadable-file": "CRASHED"}
    # Pretend the crash is new: the baseline had OK there.
    verdicts["test_suite.py::test_crash[unreadable-file]"] = {"unreadable-file": "OK"}
    baseline.write_text(json.dumps({"format": "pytest-tlsenv baseline 1", "verdicts": verdicts}))
    result = _run(pytester, monkeypatch, notes, "-n", "2", "--tlsenv-baseline", "b.json")
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"unreadable-file: OK -> CRASHED (baseline {baseline})",
            "*= tlsenv =*",
            "unreadable-file  CRASHED![*]  *",
            "tlsenv: 1 verdict(s) differ from the baseline:",
            "  test_suite.py::test_crash[[]unreadable-file[]]: unreadable-file: OK -> CRASHED (*",
            "FAILED test_suite.py::test_crash[[]unreadable-file[]] - unreadable-file: OK -> CR*",
        ]
    )
