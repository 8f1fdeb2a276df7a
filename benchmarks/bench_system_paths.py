"""What the private mount namespace costs per client start: env vs system trust mode.

A ``run`` in ``trust="system"`` (or with ``system_paths=True``) starts its client in a private
mount namespace that shows the store at /etc/ssl...; a ``run`` in a proxy scenario gets one
too, for its private /etc/hosts and resolv.conf (DNS isolation), even in env mode. The goal:
at most +10 ms per ``run`` over a plain env-mode run, so that system mode can be the default
where namespaces exist.

The configurations run interleaved, one of each per round, so that a busy machine slows them
all alike; the overhead is the median of the per-round differences against env mode, with
its 10th-90th percentile spread. Wall-clock time follows the machine's load; the CPU time
(user + system, this process and its children: what the run itself costs) hardly does. The
anchor is the route every run took before, the helper interpreter (``python -I -S
_nsexec.py``, ctypes), measured on the same plan in the same run.

    python benchmarks/bench_system_paths.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from pytest_tlsenv.namespace import probe
from pytest_tlsenv.pki import PKI
from pytest_tlsenv.runner import run_process
from pytest_tlsenv.scenarios import resolve
from pytest_tlsenv.tlsenv import TLSEnv

GOAL_MS = 10.0
TRUE = ["/bin/true"]


def _ms(xs: list[float]) -> str:
    deciles = statistics.quantiles(xs, n=10)
    return (
        f"{statistics.median(xs) * 1e3:6.2f} ms  (p10-p90 {deciles[0] * 1e3:5.2f}-"
        f"{deciles[-1] * 1e3:5.2f})"
    )


def _cpu() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="10 runs (CI: checks it still runs)")
    args = parser.parse_args()
    if args.quick:
        args.runs = 10
    reason = probe()
    if reason is not None:
        raise SystemExit(f"system paths unavailable here: {reason}")
    who = "root (namespace made in the spawning thread)" if os.geteuid() == 0 else (
        f"uid {os.geteuid()} (user namespace, made in the forked child)"
    )  # fmt: skip
    print(f"running as {who}; {args.runs} rounds")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        pki = PKI(Path(tmp) / "pki")

        def build(name: str, **kwargs: object) -> TLSEnv:
            return stack.enter_context(
                TLSEnv.build(resolve(**kwargs), pki=pki, root=Path(tmp) / name)
            )

        env_mode = build("env")
        system = build("system", trust="system")
        proxied = build("proxy-env", scenario="proxy-tunnel")
        proxied_system = build("proxy-system", scenario="proxy-tunnel", trust="system")
        plan = system.mount_plan()
        bare = {"PATH": "/usr/bin:/bin"}
        configs: dict[str, Callable[[], object]] = {
            "env mode: run /bin/true": lambda: env_mode.run(TRUE),
            "system mode: run /bin/true": lambda: system.run(TRUE),
            "proxy scenario, env mode (DNS isolation)": lambda: proxied.run(TRUE),
            "proxy scenario, system mode": lambda: proxied_system.run(TRUE),
            "run_process, no namespace": lambda: run_process(TRUE, environ=bare, timeout=20),
            "run_process, namespace (now)": lambda: run_process(
                TRUE, environ=bare, timeout=20, launcher=plan.launcher
            ),
            "run_process, helper interpreter (before)": lambda: run_process(
                TRUE, environ=bare, timeout=20, launcher=plan.helper_argv
            ),
            "env mode: call (lambda: None)": lambda: env_mode.call(lambda: None),
            "system mode: call (lambda: None)": lambda: system.call(lambda: None),
        }
        times: dict[str, list[float]] = {name: [] for name in configs}
        cpu: dict[str, list[float]] = {name: [] for name in configs}
        names = list(configs)
        for i in range(args.runs):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                before = _cpu()
                start = time.perf_counter()
                configs[name]()
                times[name].append(time.perf_counter() - start)
                cpu[name].append(_cpu() - before)
    width = max(map(len, names))
    print(f"{'wall clock per start':<{width}}  median     spread          CPU time median")
    for name in names:
        print(
            f"{name:<{width}}  {_ms(times[name])}  cpu {statistics.median(cpu[name]) * 1e3:6.2f} ms"
        )

    def over(name: str, base: str) -> list[float]:
        return [a - b for a, b in zip(times[name], times[base], strict=True)]

    print(f"\nadded per run (median of per-round differences, p10-p90), goal <= +{GOAL_MS:.0f} ms:")
    for name, base in (
        ("system mode: run /bin/true", "env mode: run /bin/true"),
        ("proxy scenario, env mode (DNS isolation)", "env mode: run /bin/true"),
        ("proxy scenario, system mode", "env mode: run /bin/true"),
        ("run_process, namespace (now)", "run_process, no namespace"),
        ("run_process, helper interpreter (before)", "run_process, no namespace"),
        ("system mode: call (lambda: None)", "env mode: call (lambda: None)"),
    ):
        diffs = over(name, base)
        added = statistics.median(diffs) * 1e3
        verdict = "met" if added <= GOAL_MS else "NOT met"
        cpu_added = (statistics.median(cpu[name]) - statistics.median(cpu[base])) * 1e3
        print(
            f"  {name:<{width}}  {_ms(diffs)}  = {added / GOAL_MS:4.2f}x the goal ({verdict}); "
            f"{statistics.median(times[name]) / statistics.median(times[base]):.2f}x its base; "
            f"cpu {cpu_added:+.2f} ms"
        )


if __name__ == "__main__":
    main()
