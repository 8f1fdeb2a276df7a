"""The survey's go + java time: every scenario against the Go and Java presets, JVM starts
included, as ``python -m pytest_tlsenv survey --clients go java`` runs it (default timeouts:
each preset's minimum, so a slow JVM start is waited for).

Warm: the Go client is compiled and the Java client compiled before the clock starts (each is
a one-off per version, printed apart). Also printed: one bare JVM start (``java -version``)
and the number of cells each client was run in, HUNG among them. Goal: under a minute on the
full catalogue. Printed, never asserted.

    python benchmarks/bench_stacks.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import time

from pytest_tlsenv.clients.gobuild import go_client
from pytest_tlsenv.clients.jvm import compiled
from pytest_tlsenv.outcome import Verdict
from pytest_tlsenv.survey import run_timeout, survey

GOAL_S = 60.0
QUICK = ["good", "mitm-untrusted", "proxy-tunnel", "fifo", "keystore-empty"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few scenarios (CI: still runs)")
    args = parser.parse_args()
    clients = [
        c
        for c, tools in (("go", ("go",)), ("java", ("java", "javac")))
        if all(shutil.which(t) for t in tools)
    ]
    if not clients:
        print("neither go nor a JDK is installed on this machine: nothing to measure")
        return
    for client, ready in (("go", go_client), ("java", compiled)):
        if client in clients:
            start = time.perf_counter()
            ready()
            took = time.perf_counter() - start
            print(f"{client}: client ready in {took:.2f} s (a build is once per version)")
    if "java" in clients:
        starts = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run(["java", "-version"], capture_output=True, check=True)
            starts.append(time.perf_counter() - t0)
        print(f"one bare JVM start (java -version): median {statistics.median(starts):.2f} s")
    timeouts = ", ".join(f"{c} {run_timeout(c):g} s" for c in clients)
    scenarios = QUICK if args.quick else None
    start = time.perf_counter()
    cells = survey(clients, scenarios)
    elapsed = time.perf_counter() - start
    for client in clients:
        ran = [c.verdicts[client] for c in cells if c.verdicts[client] is not None]
        hung = sum(1 for o in ran if o is not None and o.verdict is Verdict.HUNG)
        runs = [o.duration for o in ran if o is not None]
        median = f", median run {statistics.median(runs):.2f} s" if runs else ""
        print(f"  {client}: run in {len(ran)} of {len(cells)} cells, {hung} HUNG{median}")
    what = f"{len(cells)} cells" + (" (--quick)" if args.quick else ", the whole catalogue")
    verdict = "met" if elapsed < GOAL_S else "NOT met"
    print(
        f"  survey --clients {' '.join(clients)}: {elapsed:.1f} s for {what} "
        f"(per-run timeouts: {timeouts}); goal < {GOAL_S:.0f} s: {verdict}"
    )


if __name__ == "__main__":
    main()
