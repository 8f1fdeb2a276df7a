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

from ..clients import get_preset, presets
from ..clients.catalogue import GO_MIN_TIMEOUT, JAVA_MIN_TIMEOUT
from ..errors import ClientUnavailableError, ConfigError
from ..report import trust_text
from ..selection import ClientRef, parse_clients, parse_scenarios
from ..session import check_writable_file
from ..survey import (
    SURVEY_TIMEOUT,
    Cell,
    available,
    cells_of,
    columns,
    survey,
    to_json,
    to_markdown,
    to_text,
)

__all__ = ["REPORT_SUFFIXES", "add_commands", "write_report"]

#: What ``--report`` writes, by the path's suffix.
REPORT_SUFFIXES = (".md", ".json", ".html")


def add_commands(sub: Any) -> None:
    """Add the ``survey`` subcommand to ``python -m pytest_tlsenv``."""
    p = sub.add_parser("survey", help="run the catalogue against the clients found here")
    p.add_argument(
        "--clients",
        nargs="+",
        metavar="CLIENT",
        help="presets to run, comma- or space-separated; -NAME leaves one out; NAME@VERSION "
        "pins a release (uv@0.2.28,uv@0.2.29: one column each) (default: all found): "
        f"{', '.join(sorted(presets()))}",
    )
    p.add_argument(
        "--scenarios",
        nargs="+",
        metavar="NAME",
        help="scenarios or groups, comma- or space-separated; -NAME leaves one out (e.g. "
        "store,-fifo; default: the catalogue; see `scenarios`)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"per-run timeout (s); default {SURVEY_TIMEOUT:g}, raised to a client's minimum "
        f"(java {JAVA_MIN_TIMEOUT:g}, go {GO_MIN_TIMEOUT:g}) so that a slow start on a loaded "
        "machine is not a HUNG verdict; a timeout given is used as is",
    )
    p.add_argument(
        "--report",
        metavar="PATH",
        help=f"also write the grid to PATH: {', '.join(REPORT_SUFFIXES)} (by its suffix; "
        ".html: one self-contained page: the grid, filters, each cell's details on click)",
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
    p.add_argument(
        "--shard",
        metavar="K/N",
        help="run only slice K of N of the cells (deterministic; merge the JSON reports with "
        "`report merge`)",
    )
    p.set_defaults(func=_survey, parser=p)


def _progress(done: int, total: int, cell: Cell) -> None:
    # On a terminal, one line rewritten in place.
    print(f"\r  {done}/{total} {cell.label:<40}", end="", file=sys.stderr)


def _progress_lines(done: int, total: int, cell: Cell) -> None:
    # In a log (CI), one line per finished scenario: no carriage returns, never silent.
    print(f"survey: {done}/{total} {cell.label}", file=sys.stderr, flush=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _selection(args: argparse.Namespace) -> tuple[list[ClientRef], list[str]]:
    """The clients (none: all found) and scenarios asked for; a ConfigError names the bad
    word. Checked before anything is installed or run."""
    refs: list[ClientRef] = []
    if args.clients:
        try:
            refs = parse_clients(args.clients, sorted(presets()))
        except ConfigError as e:
            raise ConfigError(f"--clients: {e}") from None
        if not refs:
            raise ConfigError("--clients: that selection leaves no client")
    try:
        names = parse_scenarios(args.scenarios or "")
    except ConfigError as e:
        raise ConfigError(f"--scenarios: {e}") from None
    if not names:
        raise ConfigError("--scenarios: that selection leaves no scenario")
    if args.report:
        path = Path(args.report)
        if path.suffix not in REPORT_SUFFIXES:
            raise ConfigError(
                f"--report {args.report}: unknown suffix {path.suffix!r}; use "
                f"{', '.join(REPORT_SUFFIXES)}"
            )
        # Found out now, not after the whole survey ran.
        check_writable_file(path, "--report")
    return refs, names


def _survey(args: argparse.Namespace) -> int:
    from .._checks import check_timeout
    from ..shards import parse_shard

    try:
        refs, names = _selection(args)
        shard = parse_shard(args.shard) if args.shard else None
        if args.timeout is not None:
            check_timeout(args.timeout, "--timeout")
    except ConfigError as e:
        print(f"survey: {e}", file=sys.stderr)
        return 2
    # A ref with a version is that release, pinned; the others are found on this machine.
    for ref in refs:
        if ref.version is not None and get_preset(ref.name).installable is None:
            args.parser.error(f"--clients {ref}: {ref.name} is not installable from the index")
    pins = [r for r in refs if r.version is not None]
    try:
        _install(pins)
    except (ConfigError, ClientUnavailableError) as e:
        args.parser.error(str(e).strip().splitlines()[0])
    plain = [r.name for r in refs if r.version is None]
    found, notes = (
        ([], []) if refs and not plain else available(plain or None, uv_version=args.uv_version)
    )
    by_name = {c: (c, v, shown) for c, v, shown in found}
    clients = [
        (r.name, r.version, r.version) if r.version is not None else by_name[r.name]
        for r in (refs or [ClientRef(c) for c in by_name])
        if r.version is not None or r.name in by_name
    ]
    for note in notes:
        print(f"survey: {note}", file=sys.stderr)
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
        progress=_progress if tty else _progress_lines,
        shard=shard,
    )
    if tty:
        print("\r" + " " * 50 + "\r", end="", file=sys.stderr)
    elapsed = time.perf_counter() - start
    names_ = columns([(c, v) for c, v, _ in clients])
    versions = {col: shown for col, (_, _, shown) in zip(names_, clients, strict=True)}
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
        f"\n{_plural(len(results), 'scenario')} x {_plural(len(clients), 'client')} in "
        f"{elapsed:.1f} s ({user}; "
        f"{ssl.OPENSSL_VERSION}; "
        + ", ".join(f"{c} {v}" for c, v in versions.items())
        + f"; {trust_text([args.trust])}).\n'!' marks a verdict outside the scenario's "
        "expected set; n/a: the scenario cannot reach that client in this trust mode."
    )
    cached = [f"{c} {v}" for c, pin, v in clients if pin is not None]
    if cached:
        # Not the machine's own: installed into the cache at the pinned versions.
        print(f"from the cache (pinned environments): {', '.join(cached)}")
    if args.report:
        shard_of = None
        if shard is not None:  # where each cell sits in the whole survey, for `report merge`
            shard_of = (args.shard, [f"{s}@{p}" for s, p in cells_of(names)])
        write_report(Path(args.report), results, versions, elapsed, args.trust, shard_of)
    return 0


def _install(pins: list[Any]) -> None:
    """Install the pinned versions before the survey, in parallel as the cores allow, with a
    progress line per install (``[2/3] uv 0.2.29: ready``)."""
    import concurrent.futures

    from ..clients import pinned

    todo = []
    for ref in pins:
        preset = get_preset(ref.name)
        assert preset.installable is not None
        todo.append((ref, *preset.installable))
    workers = max(1, min(4, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="install") as pool:
        futures = {
            pool.submit(pinned, package, ref.version, exe): ref for ref, package, exe in todo
        }
        for done, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            ref = futures[fut]
            fut.result()
            print(f"[{done}/{len(todo)}] {ref.name} {ref.version}: ready", file=sys.stderr)


def _colour() -> bool:
    from ..grid import colour_wanted

    return colour_wanted(sys.stdout)


def write_report(
    path: Path,
    cells: list[Cell],
    versions: dict[str, str],
    elapsed: float,
    trust: str = "env",
    shard: tuple[str, list[str]] | None = None,
) -> None:
    """Write the survey's cells to ``path``: JSON for ``.json``, a self-contained page for
    ``.html``, else a Markdown table. A shard's JSON says which (``K/N``) and lists every cell
    of the whole survey (``scenario@placement``, in order), so ``report merge`` restores the
    order and sees gaps."""
    path.parent.mkdir(parents=True, exist_ok=True)  # checked creatable before the survey
    if path.suffix == ".html":
        from ..htmlreport import write_survey_html

        write_survey_html(path, cells, versions, elapsed, trust)
    elif path.suffix == ".json":
        data = to_json(cells, versions, elapsed, trust)
        if shard is not None:
            data["shard"], data["survey_cells"] = shard
        path.write_text(json.dumps(data, indent=2) + "\n")
    else:
        path.write_text(to_markdown(cells, versions))
    print(f"report written to {path}")
