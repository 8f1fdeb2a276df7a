"""Per-test plugin overhead, as users pay it, against pytest-localserver's `httpsserver`.

Two measurements, both on the default path: no ``--basetemp``, no ``--tlsenv-root-dir``, no
environment override (the plugin picks its default root location: a usable tmpfs, else
pytest's basetemp; the line printed first says which), the default trust mode:

* **Whole sessions** (printed first): pytest run the way a user runs it, a small and a large
  session of the same test, ``slope = (T_large - T_small) / (N_large - N_small)`` is the
  marginal cost per test, and the intercept the fixed cost per session. Each kind is measured
  ``--runs`` times (minimum taken, spread printed), and the plugin's figures are given as the
  difference from bare pytest with ``tmp_path`` measured in the same run. Targets: healthy
  <= 2 ms per test, permission fault <= 3 ms per test, fixed <= 0.3 s per session.
* **Setup + teardown per test** from pytest's own durations (client excluded), with the
  anchor: a function-scoped ``httpsserver`` of pytest-localserver (~500 ms of werkzeug
  teardown per test). Target: >= 100x less.

pytest-localserver is installed for this benchmark only, into the pytest-tlsenv cache (never
into this interpreter).

    python benchmarks/bench_overhead.py [--quick] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECORDER = """
import json, os
_d = {}
def pytest_runtest_logreport(report):
    if report.when in ("setup", "teardown"):
        _d.setdefault(report.nodeid, 0.0)
        _d[report.nodeid] += report.duration
def pytest_sessionfinish(session):
    out = os.environ.get("BENCH_OUT")
    if out:
        with open(out, "w") as f:
            json.dump(_d, f)
"""

TESTS = {
    "bare": "def test_{i}(tmp_path):\n    pass\n",
    "tlsenv": "def test_{i}(tlsenv):\n    assert tlsenv.origin.port\n",
    "tlsenv-fault": (
        "import pytest\n@pytest.mark.tlsenv(scenario='unreadable-file')\n"
        "def test_{i}(tlsenv):\n    assert tlsenv.origin.port\n"
    ),
    "localserver-httpsserver": "def test_{i}(httpsserver):\n    assert httpsserver.url\n",
}
TARGET_SLOPE = {"tlsenv": 2.0, "tlsenv-fault": 3.0}
TARGET_FIXED_S = 0.3
_CPU_TIMES: dict[tuple[str, Path], list[float]] = {}


def _localserver_path() -> str | None:
    """pytest-localserver (+ werkzeug) installed with pip --target into the cache."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from pytest_tlsenv.clients import cache_dir

    target = cache_dir() / "bench" / "pytest-localserver"
    if (target / "pytest_localserver").exists():
        return str(target)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            "pytest-localserver==0.10.0.post0",
            "werkzeug",
            "markupsafe",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )
    return str(target) if proc.returncode == 0 else None


def _write_session(root: Path, kind: str, n: int) -> None:
    (root / "conftest.py").write_text(RECORDER)
    body = "".join(TESTS[kind].format(i=i) + "\n" for i in range(n))
    (root / "test_bench.py").write_text(body)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _pytest(root: Path, kind: str, extra_path: str | None, *args: str) -> float:
    """Run the session in ``root`` as a user would; its wall time in seconds (its CPU time
    goes to ``_CPU_TIMES``: on a machine others load, CPU seconds move less than wall time).
    """
    env = dict(os.environ)
    if kind.startswith("localserver"):
        # Its dist-info on PYTHONPATH registers the plugin through its entry point.
        env["PYTHONPATH"] = extra_path or ""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    argv.append("test_bench.py")
    start, cpu = time.perf_counter(), _cpu()
    proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    _CPU_TIMES.setdefault((kind, root), []).append(_cpu() - cpu)
    if proc.returncode != 0:
        raise SystemExit(
            f"{kind}: inner pytest failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return took


def per_test(kind: str, n: int, extra_path: str | None) -> list[float]:
    """Setup + teardown of each test, from pytest's durations (ms)."""
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as d:
        root = Path(d)
        _write_session(root, kind, n)
        out = root / "out.json"
        os.environ["BENCH_OUT"] = str(out)
        try:
            _pytest(root, kind, extra_path)
        finally:
            del os.environ["BENCH_OUT"]
        durations = json.loads(out.read_text())
        # The first test pays the session-scoped PKI; the per-test figure is the rest.
        return [v * 1000 for _, v in sorted(durations.items())][1:]


def sessions(kinds: list[str], small: int, large: int, runs: int) -> dict[str, dict[str, float]]:
    """Whole-session slope and intercept per kind: minimum over ``runs``, with the spread.

    The runs of all kinds are interleaved, so a slow patch of the machine (this VM's disk
    swings) hits every kind alike instead of one.
    """
    times: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sessions-") as d:
        roots = {}
        for kind in kinds:
            for n in (small, large):
                roots[kind, n] = Path(d) / f"{kind}-{n}"
                roots[kind, n].mkdir()
                _write_session(roots[kind, n], kind, n)
        for _ in range(runs):
            for key, root in roots.items():
                times.setdefault(key, []).append(_pytest(root, key[0], None))
    result: dict[str, dict[str, float]] = {}
    for kind in kinds:
        slopes = [
            (t_large - t_small) / (large - small) * 1000
            for t_small, t_large in zip(times[kind, small], times[kind, large], strict=True)
        ]
        t_small, t_large = min(times[kind, small]), min(times[kind, large])
        slope = (t_large - t_small) / (large - small) * 1000  # ms per test
        c_small = min(_CPU_TIMES[kind, roots[kind, small]])
        c_large = min(_CPU_TIMES[kind, roots[kind, large]])
        cpu_slope = (c_large - c_small) / (large - small) * 1000
        result[kind] = {
            "cpu_slope": cpu_slope,
            "cpu_fixed": c_small - cpu_slope * small / 1000,
            "slope": slope,
            "slope_lo": min(slopes),
            "slope_hi": max(slopes),
            "fixed": t_small - slope * small / 1000,  # seconds per session
            "small_min": t_small,
            "small_max": max(times[kind, small]),
        }
    return result


def _print_sessions(res: dict[str, dict[str, float]], small: int, large: int, runs: int) -> None:
    bare = res["bare"]
    print(
        f"whole sessions ({small} vs {large} tests, minimum of {runs} runs, "
        f"basetemp and roots at their defaults: roots in {_default_roots()}):"
    )
    for kind, r in res.items():
        print(
            f"  {kind:<14} {r['slope']:7.2f} ms/test"
            f" (runs {r['slope_lo']:.2f}..{r['slope_hi']:.2f})"
            f"   fixed {r['fixed']:.3f} s   {small}-test session {r['small_min']:.3f} s"
            f" (max {r['small_max']:.3f})"
        )
    for kind in ("tlsenv", "tlsenv-fault"):
        target = TARGET_SLOPE[kind]
        for what, key in (("wall", ""), ("CPU", "cpu_")):
            slope = res[kind][key + "slope"] - bare[key + "slope"]
            fixed = res[kind][key + "fixed"] - bare[key + "fixed"]
            print(
                f"  plugin {kind:<13} {what:<4} {slope:7.2f} ms per test over bare pytest "
                f"(target <= {target} ms: {'met' if slope <= target else 'MISSED'}); "
                f"fixed {fixed:+.3f} s per session (target <= {TARGET_FIXED_S} s: "
                f"{'met' if fixed <= TARGET_FIXED_S else 'MISSED'})"
            )


def _default_roots() -> str:
    """Where a session with no option puts its scenario roots (as the plugin decides)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from pytest_tlsenv.rootdir import choose

    location = choose("auto")
    if location.base is None:
        return f"pytest's basetemp ({location.note or 'no usable tmpfs'})"
    location.base.rmdir()
    return f"{location.base.parent} ({location.kind})"


def import_cost(runs: int) -> float:
    """ms to import the plugin module in a session that does not use it (minimum of runs)."""
    code = (
        "import time, pytest; t = time.perf_counter(); import pytest_tlsenv.plugin; "
        "print((time.perf_counter() - t) * 1000)"
    )
    # As installed from a wheel: bytecode cached (this machine exports PYTHONDONTWRITEBYTECODE,
    # which would make every run compile the plugin's source, ~15 ms).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    samples = []
    for _ in range(runs + 1):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        samples.append(float(out.stdout.strip() or "nan"))
    return min(samples[1:])


def _load() -> str:
    one, _, _ = os.getloadavg()
    return f"load average {one:.1f} on {os.cpu_count()} cores" + (
        ": the machine is busy, wall-clock figures are inflated"
        if one > (os.cpu_count() or 1)
        else ""
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sessions, fewer runs")
    ap.add_argument("--runs", type=int, default=None, help="runs per session size (default 5)")
    args = ap.parse_args()
    small, large = (10, 60) if args.quick else (20, 420)
    runs = args.runs or (2 if args.quick else 5)
    print(_load(), flush=True)
    res = sessions(["bare", "tlsenv", "tlsenv-fault"], small, large, runs)
    _print_sessions(res, small, large, runs)
    print(_load(), flush=True)
    print(f"  importing the plugin in a session that does not use it: {import_cost(5):.2f} ms")

    n = 8 if args.quick else 60
    path = _localserver_path()
    anchor = None
    if path:
        anchor = statistics.median(
            per_test("localserver-httpsserver", 4 if args.quick else 10, path)
        )
    results = {
        k: statistics.median(per_test(k, n, None)) for k in ("bare", "tlsenv", "tlsenv-fault")
    }
    bare = results["bare"]
    print(f"setup+teardown per test from pytest's durations, median of {n} tests (ms):")
    for kind, ms in results.items():
        print(f"  {kind:<26} {ms:8.3f}")
    for kind in ("tlsenv", "tlsenv-fault"):
        overhead = results[kind] - bare
        line = f"  overhead {kind:<17} {overhead:8.3f} ms"
        if anchor is not None:
            ratio = (anchor - bare) / max(overhead, 1e-6)
            line += f"; {ratio:.0f}x less than pytest-localserver httpsserver (target >= 100x)"
        print(line)
    if anchor is None:
        print("pytest-localserver could not be installed: no anchor ratio this run")
    else:
        print(f"pytest-localserver httpsserver (function scope): {anchor:8.3f} ms per test")


if __name__ == "__main__":
    main()
