"""``python -m pytest_tlsenv survey``: parse, run :func:`pytest_tlsenv.survey.survey`, print."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import sys
import time
from pathlib import Path
from typing import Any

from ..clients import presets
from ..report import trust_text
from ..scenarios import CATALOGUE
from ..survey import Cell, available, survey, to_json, to_markdown, to_text

__all__ = ["add_commands", "write_report"]


def add_commands(sub: Any) -> None:
    """Add the ``survey`` subcommand to ``python -m pytest_tlsenv``."""
    p = sub.add_parser("survey", help="run the catalogue against the clients found here")
    p.add_argument(
        "--clients",
        nargs="+",
        choices=sorted(presets()),
        metavar="CLIENT",
        help=f"presets to run (default: all found): {', '.join(sorted(presets()))}",
    )
    p.add_argument("--scenarios", nargs="+", metavar="NAME", help="default: the catalogue")
    p.add_argument("--timeout", type=float, default=5.0, help="per-run timeout (s)")
    p.add_argument(
        "--report",
        metavar="PATH",
        help="write the grid as .md, .json or .html (one self-contained page: the grid, "
        "filters, each cell's details on click)",
    )
    p.add_argument(
        "--trust",
        choices=("env", "system", "flags"),
        default="env",
        help="how the store reaches each client: env (the variables its users set; default), "
        "system (no variable; the store at the layout's real paths, needs mount namespaces), "
        "flags (explicit options, e.g. curl --cacert). n/a cells: the scenario cannot reach "
        "that client in this mode",
    )
    p.add_argument(
        "--uv-version", default="0.13.9", help="uv to install into the cache when none is on PATH"
    )
    p.set_defaults(func=_survey)


def _progress(done: int, total: int, cell: Cell) -> None:
    print(f"\r  {done}/{total} {cell.label:<40}", end="", file=sys.stderr)


def _survey(args: argparse.Namespace) -> int:
    clients, notes = available(args.clients, uv_version=args.uv_version)
    for note in notes:
        print(f"survey: {note}", file=sys.stderr)
    names = args.scenarios or list(CATALOGUE)
    unknown = [n for n in names if n not in CATALOGUE]
    if unknown:
        print(f"survey: unknown scenario(s) {', '.join(unknown)}; see `scenarios`", file=sys.stderr)
        return 2
    if args.trust == "system":
        from ..namespace import probe as namespaces

        why = namespaces()
        if why is not None:
            print(f"survey: --trust system needs mount namespaces: {why}", file=sys.stderr)
            return 2
    tty = sys.stderr.isatty()
    start = time.perf_counter()
    results = survey(
        [(c, v) for c, v, _ in clients],
        names,
        trust=args.trust,
        timeout=args.timeout,
        progress=_progress if tty else None,
    )
    if tty:
        print("\r" + " " * 50 + "\r", end="", file=sys.stderr)
    elapsed = time.perf_counter() - start
    versions = {c: v for c, _, v in clients}
    # The mode is part of every verdict: the grid says which one it shows.
    print(f"{trust_text([args.trust])}; n/a: the scenario cannot reach that client in this mode")
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    print(to_text(results, list(versions), colour=_colour(), width=width))
    unavailable: dict[str, list[str]] = {}
    for cell in results:
        if cell.unavailable:
            unavailable.setdefault(cell.unavailable, []).append(cell.label)
    for reason, labels in unavailable.items():
        print(f"n/a for every client in {', '.join(labels)}: {reason}")
    user = "root, clients without any capability" if os.geteuid() == 0 else "non-root"
    print(
        f"\n{len(results)} scenarios x {len(clients)} clients in {elapsed:.1f} s ({user}; "
        f"{ssl.OPENSSL_VERSION}; "
        + ", ".join(f"{c} {v}" for c, v in versions.items())
        + f"; {trust_text([args.trust])}).\n'!' marks a verdict outside the scenario's "
        "expected set; n/a: the scenario cannot reach that client in this trust mode."
    )
    cached = [f"{c} {v}" for c, pin, v in clients if pin is not None]
    if cached:
        # Not the machine's own: installed into the cache at the pinned versions.
        print(f"from the cache (pinned, not on this machine): {', '.join(cached)}")
    if args.report:
        write_report(Path(args.report), results, versions, elapsed, args.trust)
    return 0


def _colour() -> bool:
    from ..grid import colour_wanted

    return colour_wanted(sys.stdout)


def write_report(
    path: Path, cells: list[Cell], versions: dict[str, str], elapsed: float, trust: str = "env"
) -> None:
    """Write the survey's cells to ``path``: JSON for ``.json``, a self-contained page for
    ``.html``, else a Markdown table."""
    if path.suffix == ".html":
        from ..htmlreport import write_survey_html

        write_survey_html(path, cells, versions, elapsed, trust)
    elif path.suffix == ".json":
        path.write_text(json.dumps(to_json(cells, versions, elapsed, trust), indent=2) + "\n")
    else:
        path.write_text(to_markdown(cells, versions))
    print(f"report written to {path}")
