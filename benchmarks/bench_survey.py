"""Survey wall time: the whole catalogue against python's ssl and curl (target <= 10 s).

Budget: the survey's own per-run timeout is short (5 s) and a HUNG cell counts
its timeout. Also prints the full survey (every preset found) for reference.

    python benchmarks/bench_survey.py [--quick]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time


def survey(*clients: str) -> tuple[float, str]:
    args = [sys.executable, "-m", "pytest_tlsenv", "survey"]
    if clients:
        args += ["--clients", *clients]
    start = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(
            f"survey failed ({out.returncode}):\n{out.stdout[-2000:]}{out.stderr[-3000:]}"
        )
    wall = time.perf_counter() - start
    summary = re.search(r"^\d+ scenarios x \d+ clients in [\d.]+ s", out.stdout, re.MULTILINE)
    return wall, summary.group(0) if summary else "(no summary line)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="python-ssl and curl only")
    args = ap.parse_args()
    wall, line = survey("python-ssl", "curl")
    verdict = "met" if wall <= 10 else "MISSED"
    print(f"survey python-ssl+curl: {wall:.2f} s wall ({line}); target <= 10 s: {verdict}")
    if not args.quick:
        wall, line = survey()
        print(f"survey, every preset found: {wall:.2f} s wall ({line})")


if __name__ == "__main__":
    main()
