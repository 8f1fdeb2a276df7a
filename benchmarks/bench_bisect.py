"""Bisect wall time, cold (empty cache: every visited release installed) and warm (cached).

Full: the uv acceptance (0.2.25..0.2.35, unreadable-file, UV_NATIVE_TLS=1; goal: warm under
2 minutes) and the pip one (23.3..24.1, --trust system, as root) against PyPI, each in a
fresh private cache, then once more warm. --quick (CI, offline): the same against the test
suite's loopback index of a tiny client (tests/pkgindex.py).

    python benchmarks/bench_bisect.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UV = ["uv", "--good", "0.2.25", "--bad", "0.2.35", "--scenario", "unreadable-file",
      "--env", "UV_NATIVE_TLS=1", "--", "uv", "pip", "install", "--python", "{venv}",
      "--index-url", "{index_url}", "tlsenv-probe"]  # fmt: skip
PIP = ["pip", "--good", "23.3", "--bad", "24.1", "--scenario", "good", "--trust", "system",
       "--", "pip", "install", "--dry-run", "--no-deps", "--no-cache-dir",
       "--disable-pip-version-check", "--retries", "0", "--timeout", "10",
       "--use-feature=truststore", "--index-url", "{index_url}", "tlsenv-probe"]  # fmt: skip


def bisect(args: list[str], cache: Path) -> tuple[float, dict[str, object] | str]:
    report = cache / "result.json"
    cut = args.index("--")
    argv = [sys.executable, "-m", "pytest_tlsenv", "bisect", *args[:cut], "--json", str(report),
            *args[cut:]]  # fmt: skip
    env = {**os.environ, "TLSENV_CACHE_DIR": str(cache / "c")}
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return wall, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
    return wall, json.loads(report.read_text())


def measure(name: str, args: list[str]) -> None:
    cache = Path(tempfile.mkdtemp(prefix="tlsenv-bench-bisect-"))
    try:
        cold, first = bisect(args, cache)
        if isinstance(first, str):
            print(f"{name}: not measured ({first})")
            return
        warm, again = bisect(args, cache)
        assert not isinstance(again, str), again
        runs = sum(1 for e in first["evaluations"] if not e["skipped"])  # type: ignore[attr-defined]
        met = "met" if warm <= 120 else "MISSED"
        print(
            f"{name}: first bad {first['first_bad']}, last good {first['last_good']}; "
            f"{runs} releases run of {len(first['candidates'])} between "  # type: ignore[arg-type]
            f"({first['installs']} installed); cold {cold:.1f} s, warm {warm:.1f} s wall "
            f"(goal warm <= 120 s: {met})"
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="the loopback index only (offline)")
    args = ap.parse_args()
    if args.quick:
        sys.path.insert(0, str(ROOT / "tests"))
        import pkgindex

        with pkgindex.serve() as index:
            measure(
                "tinyclient 1.4..1.7 (loopback index)",
                ["tinyclient", "--index-url", index.url, "--good", "1.4", "--bad", "1.7",
                 "--scenario", "good", "--", "tinyclient", "{url}"],
            )  # fmt: skip
        return
    measure("uv 0.2.25..0.2.35 unreadable-file", UV)
    if os.geteuid() == 0:
        measure("pip 23.3..24.1 --trust system", PIP)
    else:
        print("pip --trust system: not measured (needs root's mount namespaces)")


if __name__ == "__main__":
    main()
