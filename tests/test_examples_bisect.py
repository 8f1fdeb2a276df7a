"""The tox recipe, without tox: examples/ under uv 0.2.28 records a baseline, 0.2.29 diffs.

tox.ini's uv0228/uv0229 envs install uv into the env; here the two versions come from the
suite's cache (tests/conftest.py) and are put first on PATH, which is all the tox envs do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.nonroot]

ROOT = Path(__file__).resolve().parent.parent


def _examples(uv: str, baseline: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(uv).parent}{os.pathsep}{env['PATH']}"
    env["TLSENV_EXAMPLE_CLIENT"] = "uv"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tlsenv",
            "-p",
            "no:cacheprovider",
            str(ROOT / "examples"),
            "-q",
            "-k",
            "unreadable-file or good",
            "--tlsenv-baseline",
            str(baseline),
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
        check=False,
    )


def test_uv_0_2_28_baseline_then_0_2_29_diff(
    uv_pinned: Callable[[str], str], tmp_path: Path
) -> None:
    baseline = tmp_path / "uv.json"
    ref = _examples(uv_pinned("0.2.28"), baseline, "--tlsenv-update-baseline")
    assert ref.returncode == 0, ref.stdout[-3000:]
    assert '"unreadable-file": "OK"' in baseline.read_text().replace("\n", " ").replace("  ", "")
    new = _examples(uv_pinned("0.2.29"), baseline)
    assert new.returncode == 1
    assert "unreadable-file: OK -> CRASHED (baseline" in new.stdout
    # Negative twin: the reference version against its own baseline changes nothing.
    again = _examples(uv_pinned("0.2.28"), baseline)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "differ from the baseline" not in again.stdout
