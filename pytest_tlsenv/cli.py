"""``python -m pytest_tlsenv``: the catalogue and the survey, without writing a test.

``scenarios`` lists the catalogue; ``survey`` runs every scenario (in both placements where
that matters) against the clients found on this machine and prints the verdict grid.
"""

from __future__ import annotations

import argparse
import os
import shutil
import ssl
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .outcome import Outcome, Verdict
from .pki import PKI
from .scenarios import CATALOGUE, resolve
from .tlsenv import Settings, TLSEnv

__all__ = ["main"]


@dataclass(frozen=True)
class SurveyClient:
    """A client the survey knows how to run against a TLSEnv."""

    name: str
    available: Callable[[], bool]
    run: Callable[[TLSEnv], Outcome]


def _python_ssl(env: TLSEnv) -> Outcome:
    def fetch() -> bytes:
        ctx = ssl.create_default_context()
        with urllib.request.urlopen(env.origin.url, context=ctx, timeout=5) as r:
            data: bytes = r.read()
            return data

    return env.call(fetch)


def _curl(env: TLSEnv) -> Outcome:
    # Explicit flags: Debian's curl also loads its compiled-in bundle otherwise.
    argv = ["curl", "-fsS", "--max-time", "5"]
    if env.store.bundle is not None:
        argv += ["--cacert", str(env.store.bundle)]
    if env.store.cert_dir is not None:
        argv += ["--capath", str(env.store.cert_dir)]
    return env.run([*argv, env.origin.url])


def _openssl(env: TLSEnv) -> Outcome:
    argv = ["openssl", "s_client", "-connect", f"localhost:{env.origin.port}"]
    argv += ["-servername", "localhost", "-verify_return_error", "-brief"]
    if env.store.bundle is not None:
        argv += ["-CAfile", str(env.store.bundle)]
    if env.store.cert_dir is not None:
        argv += ["-CApath", str(env.store.cert_dir)]
    # s_client sends nothing by itself: one HTTP request on stdin, via sh.
    script = "printf 'GET / HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' | " + " ".join(
        f"'{a}'" for a in argv
    )
    return env.run(["sh", "-c", script])


CLIENTS: dict[str, SurveyClient] = {
    c.name: c
    for c in (
        SurveyClient("python-ssl", lambda: True, _python_ssl),
        SurveyClient("curl", lambda: shutil.which("curl") is not None, _curl),
        SurveyClient("openssl", lambda: shutil.which("openssl") is not None, _openssl),
    )
}


def _cells() -> list[tuple[str, str]]:
    cells: list[tuple[str, str]] = []
    for name, sc in CATALOGUE.items():
        cells.append((name, sc.placement))
        if sc.faults:
            cells.append((name, "shadow"))
    return cells


def _survey(args: argparse.Namespace) -> int:
    clients = [CLIENTS[c] for c in args.clients] if args.clients else list(CLIENTS.values())
    clients = [c for c in clients if c.available()]
    cells = _cells()
    if args.scenarios:
        cells = [c for c in cells if c[0] in args.scenarios]
    tmp = Path(tempfile.mkdtemp(prefix="tlsenv-survey-"))
    start = time.perf_counter()
    rows: list[tuple[str, str, list[Verdict]]] = []
    try:
        pki = PKI(tmp / "pki")
        settings = Settings(timeout=args.timeout)
        for i, (name, placement) in enumerate(cells):
            spec = resolve(name, placement=placement)
            verdicts: list[Verdict] = []
            with TLSEnv.build(spec, pki=pki, root=tmp / f"s{i}", settings=settings) as env:
                for client in clients:
                    verdicts.append(client.run(env).verdict)
                expected = env.scenario.expected
            label = name if placement == "decoy" else f"{name}@{placement}"
            rows.append((label, "/".join(sorted(v.value for v in expected)), verdicts))
            print(f"  [{i + 1}/{len(cells)}] {label}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - start
    header = ["scenario", "expected", *(c.name for c in clients)]
    table = [header] + [
        [label, exp, *(v.value + ("" if v.value in exp.split("/") else " !") for v in verdicts)]
        for label, exp, verdicts in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for n, row in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    user = "root, clients without CAP_DAC_OVERRIDE" if os.geteuid() == 0 else "non-root"
    print(
        f"\n{len(rows)} scenarios x {len(clients)} clients in {elapsed:.1f} s ({user}; "
        f"{ssl.OPENSSL_VERSION}). '!' marks a verdict outside the expected set."
    )
    return 0


def _scenarios(_args: argparse.Namespace) -> int:
    width = max(len(n) for n in CATALOGUE)
    for name, sc in CATALOGUE.items():
        print(f"{name.ljust(width)}  [{','.join(sc.groups)}] {sc.description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_tlsenv", description="TLS environment scenarios and survey"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    survey = sub.add_parser("survey", help="run the catalogue against the clients found here")
    survey.add_argument("--clients", nargs="+", choices=sorted(CLIENTS), metavar="CLIENT")
    survey.add_argument("--scenarios", nargs="+", choices=sorted(CATALOGUE), metavar="NAME")
    survey.add_argument("--timeout", type=float, default=5.0, help="per-run timeout (s)")
    survey.set_defaults(func=_survey)
    scen = sub.add_parser("scenarios", help="list the scenario catalogue")
    scen.set_defaults(func=_scenarios)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result
