"""Run every benchmark in one go and print their figures.

    python benchmarks/run.py            # full figures (a few minutes)
    python benchmarks/run.py --quick    # CI: checks every benchmark still runs, fewer rounds

Each ``bench_*.py`` prints medians and ratios against the anchors it measures in the same
run. Figures are printed, never asserted; the README carries the latest table.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    failed = []
    for bench in sorted(HERE.glob("bench_*.py")):
        print(f"== {bench.name}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(bench), *(["--quick"] if quick else [])], check=False
        )
        print(f"   ({time.perf_counter() - start:.1f} s)", flush=True)
        if proc.returncode != 0:
            failed.append(bench.name)
    if failed:
        print(f"benchmarks that failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
