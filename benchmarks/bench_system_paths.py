"""What ``system_paths=True`` costs per client start: ``run`` and ``call`` with and without.

``run`` launches the stdlib-only namespace helper (``python -I -S _nsexec.py``), which
unshares, mounts and execs the client: the difference is mostly one bare interpreter start.
``call`` forks a child that unshares and mounts. Prints medians and the overhead.

    python benchmarks/bench_system_paths.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from pytest_tlsenv.namespace import probe
from pytest_tlsenv.pki import PKI
from pytest_tlsenv.scenarios import resolve
from pytest_tlsenv.tlsenv import TLSEnv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="5 runs (CI: checks it still runs)")
    args = parser.parse_args()
    if args.quick:
        args.runs = 5
    reason = probe()
    if reason is not None:
        raise SystemExit(f"system paths unavailable here: {reason}")
    medians: dict[bool, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pki = PKI(Path(tmp) / "pki")
        for system_paths in (False, True):
            spec = resolve(system_paths=system_paths)
            with TLSEnv.build(spec, pki=pki, root=Path(tmp) / f"sp-{system_paths}") as env:
                runs, calls = [], []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    env.run(["/bin/true"])
                    runs.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    env.call(lambda: None)
                    calls.append(time.perf_counter() - start)
            medians[system_paths] = (statistics.median(runs), statistics.median(calls))
            run_ms, call_ms = (m * 1e3 for m in medians[system_paths])
            print(
                f"system_paths={system_paths!s:5}  run /bin/true {run_ms:6.1f} ms   "
                f"call (lambda: None) {call_ms:6.2f} ms   (medians of {args.runs})"
            )
    (run_off, call_off), (run_on, call_on) = medians[False], medians[True]
    print(
        f"overhead: run +{(run_on - run_off) * 1e3:.1f} ms ({run_on / run_off:.1f}x), "
        f"call +{(call_on - call_off) * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
