"""The acceptance bisects against the real package index (PyPI), run as users run them.

Cold, each installs its releases into the cache (uv: ~100 s, pip: ~170 s on a loaded 2-core
machine); warm they take seconds (the listing is the only request that leaves the machine).
They skip when the index cannot be reached, and only then; ``TLSENV_NETWORK_TESTS=0`` turns
them off for a quick local run of a cold machine (the skip says so).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_tlsenv.clients import is_pinned

pytestmark = [pytest.mark.slow, pytest.mark.network]

UV_CMD = ["uv", "pip", "install", "--python", "{venv}", "--index-url", "{index_url}",
          "tlsenv-probe"]  # fmt: skip
PIP_CMD = ["pip", "install", "--dry-run", "--no-deps", "--no-cache-dir",
           "--disable-pip-version-check", "--retries", "0", "--timeout", "10",
           "--use-feature=truststore", "--index-url", "{index_url}", "tlsenv-probe"]  # fmt: skip


def _wanted(package: str, visited: tuple[str, ...]) -> None:
    if os.environ.get("TLSENV_NETWORK_TESTS") != "0":
        return
    missing = [v for v in visited if not is_pinned(package, v)]
    if missing:
        pytest.skip(
            f"TLSENV_NETWORK_TESTS=0 and {package} {', '.join(missing)} not in the cache "
            "(cold: minutes of installs)"
        )


def _bisect(tmp_path: Path, *args: str) -> tuple[dict[str, object], str]:
    report = tmp_path / "bisect.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_tlsenv", "bisect", *args[:-1], "--json", str(report),
         "--", *args[-1].split("\0")],
        capture_output=True, text=True, timeout=1200, check=False, cwd=tmp_path,
    )  # fmt: skip
    if proc.returncode == 2 and "unreachable" in proc.stderr:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr
    return json.loads(report.read_text()), proc.stdout


def test_uv_bisect_finds_0_2_29(tmp_path: Path) -> None:
    _wanted("uv", ("0.2.25", "0.2.35", "0.2.30", "0.2.28", "0.2.29"))
    result, out = _bisect(
        tmp_path, "uv", "--good", "0.2.25", "--bad", "0.2.35", "--scenario", "unreadable-file",
        "--env", "UV_NATIVE_TLS=1", "\0".join(UV_CMD),
    )  # fmt: skip
    assert (result["last_good"], result["first_bad"]) == ("0.2.28", "0.2.29")
    n = len(result["candidates"])  # type: ignore[arg-type]
    assert n == 9
    runs = [e for e in result["evaluations"] if not e["skipped"]]  # type: ignore[union-attr,index]
    assert len(runs) <= math.ceil(math.log2(n + 1)) + 2
    verdicts = {e["version"]: e["verdict"] for e in runs}
    assert verdicts["0.2.28"] == "OK"
    assert verdicts["0.2.29"] == "CRASHED"
    assert "first bad: uv 0.2.29 (CRASHED" in out


@pytest.mark.skipif(os.geteuid() != 0, reason="--trust system needs root's mount namespaces")
def test_pip_bisect_finds_24_1_in_system_mode(tmp_path: Path) -> None:
    _wanted("pip", ("23.3", "24.1", "23.3.2", "24.0"))
    result, out = _bisect(
        tmp_path, "pip", "--good", "23.3", "--bad", "24.1", "--scenario", "good",
        "--trust", "system", "\0".join(PIP_CMD),
    )  # fmt: skip
    assert (result["last_good"], result["first_bad"]) == ("24.0", "24.1")
    verdicts = {e["version"]: e["verdict"] for e in result["evaluations"]}  # type: ignore[union-attr,index]
    assert verdicts["24.0"] == "OK"
    assert verdicts["24.1"] == "REJECTED"
    assert "first bad: pip 24.1 (REJECTED" in out
