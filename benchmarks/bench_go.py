"""What the ``go`` preset adds to a warm run of its client, over the bare compiled binary.

Warm: the client is already compiled into the cache (the first ``go_client()`` of a version
builds it; that one-off cost is printed apart). The preset's run is ``tlsenv.client("go").run()``
in the healthy scenario (sandbox, hermetic environment, capability drop, evidence, verdict);
the bare run is the same binary against the same origin through ``subprocess.run`` with only
PATH, SSL_CERT_FILE and SSL_CERT_DIR. The two run interleaved, one of each per round, and the
cost is the median of the per-round differences. Goal: at most +10 ms. Printed, never asserted.

    python benchmarks/bench_go.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from pytest_tlsenv.clients.gobuild import go_builds, go_client, go_version
from pytest_tlsenv.pki import PKI
from pytest_tlsenv.scenarios import resolve
from pytest_tlsenv.tlsenv import TLSEnv

GOAL_MS = 10.0


def _ms(xs: list[float]) -> str:
    deciles = statistics.quantiles(xs, n=10)
    return (
        f"{statistics.median(xs) * 1e3:7.2f} ms  (p10-p90 {deciles[0] * 1e3:6.2f}-"
        f"{deciles[-1] * 1e3:6.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="10 runs (CI: checks it still runs)")
    args = parser.parse_args()
    if args.quick:
        args.runs = 10
    if shutil.which("go") is None:
        print("go is not installed on this machine: nothing to measure")
        return
    start = time.perf_counter()
    binary = go_client()
    print(
        f"go {go_version()}: client ready in {(time.perf_counter() - start) * 1e3:.1f} ms "
        f"({len(go_builds())} build(s) logged in this cache); {args.runs} rounds"
    )
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        env = stack.enter_context(
            TLSEnv.build(resolve(), pki=PKI(Path(tmp) / "pki"), root=Path(tmp) / "good")
        )
        client = env.client("go")
        # The same variables as the preset's env mode: with SSL_CERT_FILE alone Go would also
        # read every file of the host's /etc/ssl/certs.
        bare_env = {"PATH": "/usr/bin:/bin", **env.store.env}

        def bare() -> None:
            subprocess.run(
                [str(binary), env.origin.url],
                env=bare_env,
                capture_output=True,
                check=True,
                timeout=20,
            )

        def preset() -> None:
            client.run().assert_ok()

        def run() -> None:
            env.run([str(binary), env.origin.url]).assert_ok()

        configs = {
            "bare binary (subprocess.run)": bare,
            'tlsenv.client("go").run()': preset,
            "tlsenv.run(the same argv)": run,
        }
        times: dict[str, list[float]] = {name: [] for name in configs}
        names = list(configs)
        for i in range(args.runs):
            for name in names[i % 3 :] + names[: i % 3]:
                t0 = time.perf_counter()
                configs[name]()
                times[name].append(time.perf_counter() - t0)
    for name in names:
        print(f"  {name:<30} {_ms(times[name])}")
    diffs = [a - b for a, b in zip(times[names[1]], times[names[0]], strict=True)]
    added = statistics.median(diffs) * 1e3
    verdict = "met" if added <= GOAL_MS else "NOT met"
    print(f"  added by the preset: {_ms(diffs)}; goal <= +{GOAL_MS:.0f} ms: {verdict}")
    # What of that is any tlsenv.run (sandbox, environment, capability drop, verdict).
    generic = [a - b for a, b in zip(times[names[2]], times[names[0]], strict=True)]
    print(f"  added by tlsenv.run alone: {_ms(generic)}")


if __name__ == "__main__":
    main()
