"""The trust-discovery probe: a whole probe of curl takes seconds, not minutes.

Every candidate variable (15), the control run and the precedence pairs, sequential (each
run's inotify opens must be its own). Also with ``--system-paths`` (7 default locations more),
and python's ssl in-process for comparison.

    python benchmarks/bench_probe.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import ssl
import statistics
import time
import urllib.request

from pytest_tlsenv.namespace import probe as namespace_probe
from pytest_tlsenv.probe import probe

CURL = ["curl", "-fsS", "--max-time", "10", "{url}"]


def _urllib(url: str) -> bytes:
    with urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=10) as r:
        data: bytes = r.read()
        return data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one round each")
    args = ap.parse_args()
    rounds = 1 if args.quick else 5
    cases: list[tuple[str, object, bool]] = [("python-ssl in-process", _urllib, False)]
    if shutil.which("curl"):
        cases.insert(0, ("curl", CURL, False))
        if namespace_probe() is None:
            cases.append(("curl --system-paths", CURL, True))
    for name, client, system in cases:
        walls: list[float] = []
        runs = 0
        for _ in range(rounds):
            start = time.perf_counter()
            report = probe(client, system_paths=system, timeout=10)  # type: ignore[arg-type]
            walls.append(time.perf_counter() - start)
            runs = report.runs
        med = statistics.median(walls)
        print(
            f"probe {name}: {med:.2f} s median wall over {rounds} (setup included), "
            f"{runs} runs, {med / runs * 1000:.0f} ms a run; order: {report.order_text}"
        )


if __name__ == "__main__":
    main()
