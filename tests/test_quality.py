"""Lint, format and types run as part of the test command (ruff, mypy --strict)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    # Installed by the `test` extra next to this interpreter; a missing tool is a failure,
    # not a skip, so a broken install cannot turn this green.
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[test]'"
    return found


# The project's own paths, not ".": a checkout may hold venvs, caches or a HOME.
PATHS = ["pytest_tlsenv", "tests", "benchmarks", "examples", "conftest.py"]


@pytest.mark.parametrize(
    "args",
    [
        ["ruff", "check", "--no-cache", *PATHS],
        ["ruff", "format", "--no-cache", "--check", *PATHS],
    ],
    ids=["ruff-lint", "ruff-format"],
)
def test_ruff(args: list[str]) -> None:
    proc = subprocess.run(
        [_tool(args[0]), *args[1:]], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict(tmp_path: Path) -> None:
    proc = subprocess.run(
        [_tool("mypy"), "--strict", "--cache-dir", str(tmp_path / "mypy"), "pytest_tlsenv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
