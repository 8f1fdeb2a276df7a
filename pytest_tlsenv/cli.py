"""``python -m pytest_tlsenv``: the catalogue and the survey, without writing a test.

``scenarios`` lists the catalogue; ``survey`` runs every scenario (in both placements where
that matters) against the clients found on this machine and prints the verdict grid.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .clients import get_preset, make_client, pinned, presets
from .errors import ClientUnavailableError, NotApplicableError
from .journal import Journal, recover
from .outcome import Outcome, Verdict
from .pki import PKI
from .report import trust_text
from .scenarios import CATALOGUE, resolve
from .tlsenv import Settings, TLSEnv

__all__ = ["main"]


def _cells(names: Sequence[str]) -> list[tuple[str, str]]:
    """(scenario, placement) pairs: store faults in both placements, the rest as they are."""
    cells: list[tuple[str, str]] = []
    for name in names:
        sc = CATALOGUE[name]
        cells.append((name, sc.placement))
        if sc.faults and "store" in sc.groups and "reports" not in sc.groups:
            other = "shadow" if sc.placement == "decoy" else "decoy"
            cells.append((name, other))
    return cells


@dataclass
class Cell:
    scenario: str
    placement: str
    expected: frozenset[Verdict]
    verdicts: dict[str, Outcome | None]  # None: not applicable to that client in this mode

    @property
    def label(self) -> str:
        sc = CATALOGUE[self.scenario]
        return (
            self.scenario if self.placement == sc.placement else f"{self.scenario}@{self.placement}"
        )


def _run_cell(
    name: str,
    placement: str,
    clients: list[tuple[str, str | None]],
    pki: PKI,
    tmp: Path,
    settings: Settings,
    n: int,
) -> Cell:
    spec = resolve(name, placement=placement)
    outcomes: dict[str, Outcome | None] = {}
    with TLSEnv.build(spec, pki=pki, root=tmp / f"s{n}", settings=settings) as env:
        for client, version in clients:
            try:
                ready = make_client(env, client, version)
            except NotApplicableError:
                outcomes[client] = None  # never a run against a healthy store
                continue
            outcomes[client] = ready.run(timeout=settings.timeout)
        expected = env.scenario.expected
    return Cell(name, placement, expected, outcomes)


def _available(args: argparse.Namespace) -> list[tuple[str, str | None, str]]:
    """(preset, pinned version or None, version shown) for every client to survey."""
    chosen = args.clients or sorted(presets())
    found: list[tuple[str, str | None, str]] = []
    for name in chosen:
        preset = get_preset(name)
        version = preset.detect()
        if version is not None:
            found.append((name, None, version))
        elif preset.installable is not None and name == "uv":
            try:
                pinned("uv", args.uv_version)
            except (ClientUnavailableError, RuntimeError) as e:
                print(f"survey: skipping uv: {e}", file=sys.stderr)
                continue
            found.append((name, args.uv_version, args.uv_version))
        else:
            print(f"survey: {name} not found on this machine: skipped", file=sys.stderr)
    return found


def _survey(args: argparse.Namespace) -> int:
    recover()
    clients = _available(args)
    names = args.scenarios or list(CATALOGUE)
    unknown = [n for n in names if n not in CATALOGUE]
    if unknown:
        print(f"survey: unknown scenario(s) {', '.join(unknown)}; see `scenarios`", file=sys.stderr)
        return 2
    if args.trust == "system":
        from .namespace import probe as namespaces

        why = namespaces()
        if why is not None:
            print(f"survey: --trust system needs mount namespaces: {why}", file=sys.stderr)
            return 2
    cells = _cells(names)
    tmp = Path(tempfile.mkdtemp(prefix="tlsenv-survey-"))
    journal = Journal()
    start = time.perf_counter()
    results: list[Cell] = []
    try:
        journal.write([tmp])  # killed, the next session removes it (and its keys)
        pki = PKI(tmp / "pki")
        settings = Settings(timeout=args.timeout, trust=args.trust)
        pairs = [(c, v) for c, v, _ in clients]
        workers = max(2, (os.cpu_count() or 1) * 2)
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="survey") as pool:
            futures = [
                pool.submit(_run_cell, name, placement, pairs, pki, tmp, settings, i)
                for i, (name, placement) in enumerate(cells)
            ]
            for done, fut in enumerate(concurrent.futures.as_completed(futures), 1):
                cell = fut.result()
                results.append(cell)
                if sys.stderr.isatty():
                    print(f"\r  {done}/{len(cells)} {cell.label:<40}", end="", file=sys.stderr)
        if sys.stderr.isatty():
            print("\r" + " " * 50 + "\r", end="", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        journal.discard()
    elapsed = time.perf_counter() - start
    order = {c: i for i, c in enumerate(cells)}
    results.sort(key=lambda c: order[(c.scenario, c.placement)])
    versions = {c: v for c, _, v in clients}
    # The mode is part of every verdict: the grid says which one it shows.
    print(f"{trust_text([args.trust])}; n/a: the scenario cannot reach that client in this mode")
    print(_grid(results, [c for c, _, _ in clients], colour=sys.stdout.isatty()))
    user = "root, clients without any capability" if os.geteuid() == 0 else "non-root"
    print(
        f"\n{len(results)} scenarios x {len(clients)} clients in {elapsed:.1f} s ({user}; "
        f"{ssl.OPENSSL_VERSION}; "
        + ", ".join(f"{c} {v}" for c, v in versions.items())
        + f"; {trust_text([args.trust])}).\n'!' marks a verdict outside the scenario's "
        "expected set; n/a: the scenario cannot reach that client in this trust mode."
    )
    if args.report:
        _write_report(Path(args.report), results, versions, elapsed, args.trust)
    return 0


_COLOURS = {
    "OK": "32",
    "REJECTED": "36",
    "FAILED": "33",
    "CRASHED": "31",
    "HUNG": "35",
    "LEAKED": "41",
}


def _grid(cells: list[Cell], clients: list[str], *, colour: bool) -> str:
    header = ["scenario", "expected", *clients]
    rows = [header]
    marks: list[list[bool]] = [[False] * len(header)]
    for cell in cells:
        exp = "/".join(sorted(v.value for v in cell.expected))
        row = [cell.label, exp]
        bad = [False, False]
        for client in clients:
            outcome = cell.verdicts[client]
            if outcome is None:
                row.append("n/a")
                bad.append(False)
                continue
            verdict = outcome.verdict
            wrong = verdict not in cell.expected
            row.append(verdict.value + (" !" if wrong else ""))
            bad.append(wrong)
        rows.append(row)
        marks.append(bad)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        parts = []
        for i, cell_text in enumerate(row):
            text = cell_text.ljust(widths[i])
            word = cell_text.split()[0] if cell_text else ""
            if colour and n and i >= 2 and word in _COLOURS:
                code = "1;" + _COLOURS[word] if marks[n][i] else _COLOURS[word]
                text = f"\x1b[{code}m{text}\x1b[0m"
            parts.append(text)
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _write_report(
    path: Path, cells: list[Cell], versions: dict[str, str], elapsed: float, trust: str = "env"
) -> None:
    if path.suffix == ".json":
        data = {
            "elapsed_s": round(elapsed, 3),
            "openssl": ssl.OPENSSL_VERSION,
            "trust": trust,
            "clients": versions,
            "cells": [
                {
                    "scenario": c.scenario,
                    "placement": c.placement,
                    "expected": sorted(v.value for v in c.expected),
                    "verdicts": {k: o.verdict.value if o else "n/a" for k, o in c.verdicts.items()},
                    # A client's reason may quote its stderr: no secret leaves in a report.
                    "reasons": {
                        k: o.redactor().text(o.reason) if o else "not applicable"
                        for k, o in c.verdicts.items()
                    },
                }
                for c in cells
            ],
        }
        path.write_text(json.dumps(data, indent=2) + "\n")
    else:
        clients = list(versions)
        lines = [
            "| scenario | expected | " + " | ".join(f"{c} {versions[c]}" for c in clients) + " |",
            "|---" * (len(clients) + 2) + "|",
        ]
        for c in cells:
            exp = ", ".join(sorted(v.value for v in c.expected))
            verdicts = []
            for client in clients:
                o = c.verdicts[client]
                if o is None:
                    verdicts.append("n/a")
                    continue
                v = o.verdict
                verdicts.append(f"**{v.value}** !" if v not in c.expected else v.value)
            lines.append(f"| `{c.label}` | {exp} | " + " | ".join(verdicts) + " |")
        path.write_text("\n".join(lines) + "\n")
    print(f"report written to {path}")


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
    survey.add_argument(
        "--clients",
        nargs="+",
        choices=sorted(presets()),
        metavar="CLIENT",
        help=f"presets to run (default: all found): {', '.join(sorted(presets()))}",
    )
    survey.add_argument("--scenarios", nargs="+", metavar="NAME", help="default: the catalogue")
    survey.add_argument("--timeout", type=float, default=5.0, help="per-run timeout (s)")
    survey.add_argument("--report", metavar="PATH", help="write the grid as .md or .json")
    survey.add_argument(
        "--trust",
        choices=("env", "system", "flags"),
        default="env",
        help="how the store reaches each client: env (the variables its users set; default), "
        "system (no variable; the store at the layout's real paths, needs mount namespaces), "
        "flags (explicit options, e.g. curl --cacert). n/a cells: the scenario cannot reach "
        "that client in this mode",
    )
    survey.add_argument(
        "--uv-version", default="0.13.9", help="uv to install into the cache when none is on PATH"
    )
    survey.set_defaults(func=_survey)
    scen = sub.add_parser("scenarios", help="list the scenario catalogue")
    scen.set_defaults(func=_scenarios)
    # `repro` and `serve` live in repro/; `repro SCENARIO [options] -- CMD...` takes the
    # client command after the first `--`, which argparse cannot split off by itself.
    from .repro import add_cli_commands

    add_cli_commands(sub)
    # `probe [options] -- CMD...` lives in probe/, like `repro`.
    from .probe import add_cli_command as add_probe_command

    add_probe_command(sub)
    words = list(sys.argv[1:] if argv is None else argv)
    cmd: list[str] = []
    if "--" in words:
        cut = words.index("--")
        words, cmd = words[:cut], words[cut + 1 :]
    args = parser.parse_args(words)
    args.cmd = cmd
    result: int = args.func(args)
    return result
