"""The demo on a fresh machine: presets the machine lacks come from pinned environments.

A fresh interpreter has none of the Python libraries the presets drive (requests, httpx,
urllib3, aiohttp). The survey installs them into the client cache at the pinned versions and
runs them from there, and its footer names them. The "fresh machine" here is a real venv that
holds only the plugin's own dependencies, the plugin itself through a .pth file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pytest_tlsenv.clients import cache_dir
from pytest_tlsenv.survey import CACHE_PINS

pytestmark = [pytest.mark.slow, pytest.mark.nonroot]

ROOT = Path(__file__).resolve().parent.parent
FOOTER = "from the cache (pinned environments):"


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A venv's interpreter with the plugin and its declared dependencies only."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q",
         "--disable-pip-version-check", *dependencies],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"the package index is needed to build a fresh venv: {proc.stderr[-500:]}")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "tlsenv-checkout.pth").write_text(f"{ROOT}\n")
    lacks = subprocess.run(
        [python, "-c", "import importlib.util as u; print(u.find_spec('requests'))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert lacks.stdout.strip() == "None", "the fresh venv must not see the suite's requests"
    return python


def _survey(python: str, tmp_path: Path, *clients: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TLSENV_CACHE_DIR": str(cache_dir())}
    return subprocess.run(
        [python, "-m", "pytest_tlsenv", "survey", "--clients", *clients,
         "--scenarios", "good", "expired"],
        capture_output=True, text=True, check=False, timeout=600, cwd=tmp_path, env=env,
    )  # fmt: skip


def test_fresh_machine_runs_a_library_preset_from_the_cache(
    fresh_python: str, tmp_path: Path
) -> None:
    out = _survey(fresh_python, tmp_path, "requests", "httpx", "curl")
    if "package index unreachable" in out.stderr:
        pytest.skip(out.stderr.strip())
    assert out.returncode == 0, out.stderr
    pins = f"requests {CACHE_PINS['requests']}", f"httpx {CACHE_PINS['httpx']}"
    for pin in pins:
        assert pin in out.stdout, out.stdout
    # The pinned libraries really ran: OK in the healthy store, REJECTED by the expired leaf.
    assert re.search(r"^good\s+OK\s+OK\s+OK\s+OK\s*$", out.stdout, re.MULTILINE), out.stdout
    assert re.search(r"^expired\s+(REJECTED\s+){3}REJECTED\s*$", out.stdout, re.MULTILINE)
    footer = [line for line in out.stdout.splitlines() if line.startswith(FOOTER)]
    assert footer == [f"{FOOTER} {pins[0]}, {pins[1]}"], out.stdout
    assert "not found on this machine" not in out.stderr


def test_a_library_on_the_machine_is_not_taken_from_the_cache(tmp_path: Path) -> None:
    # The twin: the suite's own interpreter has requests, so the survey runs that one and
    # says nothing about the cache.
    import importlib.metadata

    out = _survey(sys.executable, tmp_path, "requests")
    assert out.returncode == 0, out.stderr
    assert f"requests {importlib.metadata.version('requests')}" in out.stdout
    assert FOOTER not in out.stdout
