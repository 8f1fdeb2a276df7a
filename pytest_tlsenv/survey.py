"""The survey: every scenario against a set of clients, from Python.

:func:`survey` runs the cells (each scenario, store faults in both placements) in parallel
threads and returns one :class:`Cell` per (scenario, placement), in catalogue order; it parses
nothing and prints nothing (``python -m pytest_tlsenv survey`` is its command line).
:func:`available` finds the clients to survey; :func:`to_json`, :func:`to_markdown` and
:func:`to_text` render the cells.

A cell whose scenario cannot be built here (a fallback scenario, or ``trust="system"``, where
mount namespaces are unavailable) is not an error: it is :attr:`Cell.unavailable`, with the
reason, and every client's verdict is ``n/a``.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import ssl
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._checks import check_timeout
from .clients import get_preset, make_client, pinned, presets
from .errors import ClientUnavailableError, NotApplicableError
from .grid import Cell as GridCell
from .grid import blocks
from .grid import to_markdown as grid_markdown
from .grid import to_text as grid_text
from .journal import Journal, recover
from .namespace import SystemPathsUnavailableError
from .outcome import Outcome, Verdict
from .pki import PKI
from .scenarios import CATALOGUE, resolve
from .tlsenv import Settings, TLSEnv

__all__ = [
    "CACHE_PINS",
    "SURVEY_TIMEOUT",
    "Cell",
    "available",
    "cells_of",
    "columns",
    "run_timeout",
    "survey",
    "to_json",
    "to_markdown",
    "to_text",
]

#: The survey's per-run timeout when the caller gives none (a HUNG cell costs this much),
#: raised per client to its preset's ``min_timeout`` (java 20 s, go 10 s).
SURVEY_TIMEOUT = 5.0


@dataclass
class Cell:
    """One scenario in one placement, and what each client did there."""

    scenario: str
    placement: str
    expected: frozenset[Verdict]
    verdicts: dict[str, Outcome | None]  # None: not applicable to that client in this mode
    #: Why the scenario could not be built here (every verdict is then None), else None.
    unavailable: str | None = None
    #: The store as ``ls -l`` lines (owners, modes), taken while it existed (for the reports).
    store: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        sc = CATALOGUE[self.scenario]
        return (
            self.scenario if self.placement == sc.placement else f"{self.scenario}@{self.placement}"
        )


def cells_of(names: Sequence[str]) -> list[tuple[str, str]]:
    """(scenario, placement) pairs: store faults in both placements, the rest as they are."""
    cells: list[tuple[str, str]] = []
    for name in names:
        sc = CATALOGUE[name]
        cells.append((name, sc.placement))
        if sc.faults and "store" in sc.groups and "reports" not in sc.groups:
            other = "shadow" if sc.placement == "decoy" else "decoy"
            cells.append((name, other))
    return cells


def columns(clients: Sequence[tuple[str, str | None]]) -> list[str]:
    """The grid's column per client: its preset name, or ``name@version`` when the preset
    appears more than once (``uv@0.2.28``, ``uv@0.2.29``: one column per version)."""
    counts: dict[str, int] = {}
    for name, _ in clients:
        counts[name] = counts.get(name, 0) + 1
    return [
        name if counts[name] == 1 or version is None else f"{name}@{version}"
        for name, version in clients
    ]


def _run_cell(
    name: str,
    placement: str,
    clients: Sequence[tuple[str, str | None]],
    pki: PKI,
    tmp: Path,
    settings: Settings,
    n: int,
    timeout: float | None,
) -> Cell:
    spec = resolve(name, placement=placement)
    outcomes: dict[str, Outcome | None] = {}
    try:
        env = TLSEnv.build(spec, pki=pki, root=tmp / f"s{n}", settings=settings)
    except SystemPathsUnavailableError as e:
        # The scenario needs the store at its real paths; the host's store is never used
        # instead, so no client can be judged here.
        return Cell(
            name, placement, spec.scenario.expected, dict.fromkeys(columns(clients)), str(e)
        )
    with env:
        for (client, version), column in zip(clients, columns(clients), strict=True):
            try:
                ready = make_client(env, client, version)
            except NotApplicableError:
                outcomes[column] = None  # never a run against a healthy store
                continue
            outcomes[column] = ready.run(timeout=run_timeout(client, timeout))
        expected = env.scenario.expected
        store = tuple(env.store.listing().splitlines())
    return Cell(name, placement, expected, outcomes, store=store)


#: What the survey installs into the cache for a preset the machine lacks: uv and the Python
#: libraries, at the versions of the grid the documentation shows, so a fresh machine's demo
#: has every column (each in its own environment, never in the interpreter running the survey).
CACHE_PINS: dict[str, str] = {
    "uv": "0.13.9",
    "requests": "2.34.2",
    "httpx": "0.29.0",
    "urllib3": "2.8.0",
    "aiohttp": "3.14.5",
}


def available(
    clients: Sequence[str] | None = None,
    *,
    uv_version: str = CACHE_PINS["uv"],
    pins: Mapping[str, str] | None = None,
) -> tuple[list[tuple[str, str | None, str]], list[str]]:
    """The clients to survey and the notes about those left out.

    Each client is (preset, pinned version or None, version shown); ``clients`` defaults to
    every preset. A preset of :data:`CACHE_PINS` (uv at ``uv_version``; ``pins`` overrides
    any) that is not on the machine is installed into the cache at that version and runs
    from there: its pinned version is not None. Any other preset that is not on the machine,
    or one whose install fails, is left out with a note saying why.
    """
    wanted = {**CACHE_PINS, "uv": uv_version, **(pins or {})}
    names = list(clients or sorted(presets()))
    shown: dict[str, tuple[str, str | None, str]] = {}
    notes: list[str] = []
    to_install: list[tuple[str, str]] = []  # (preset, package)
    for name in names:
        preset = get_preset(name)
        version = preset.detect()
        if version is not None:
            shown[name] = (name, None, version)
        elif preset.installable is not None and name in wanted:
            to_install.append((name, preset.installable[0]))
        elif preset.installable is not None and preset.installable[1] == "python":
            # A library runs in this interpreter: installing it is the fix, not the machine.
            notes.append(
                f"{name} is not installed in this Python ({sys.executable}): "
                f"pip install {preset.installable[0]}; skipped"
            )
        else:
            notes.append(f"{name} not found on this machine: skipped")
    # Installs are mostly waiting on the index: in parallel (each under its own lock), so a
    # fresh machine's demo pays about one install, not five in a row.
    package_of = dict(to_install)
    with concurrent.futures.ThreadPoolExecutor(
        max(1, min(4, len(to_install))), thread_name_prefix="survey-pin"
    ) as pool:
        installs = {
            name: pool.submit(pinned, package, wanted[name]) for name, package in to_install
        }
    for name, fut in installs.items():
        try:
            fut.result()
        except (ClientUnavailableError, RuntimeError) as e:
            hint = ""
            if get_preset(name).installable == (package_of[name], "python"):
                hint = f" (or pip install {package_of[name]} into this Python, {sys.executable})"
            notes.append(
                f"skipping {name}: not on this machine, and the cache install failed{hint}: {e}"
            )
            continue
        shown[name] = (name, wanted[name], wanted[name])
    return [shown[n] for n in names if n in shown], notes


def survey(
    clients: Sequence[str | tuple[str, str | None]],
    scenarios: Sequence[str] | None = None,
    *,
    trust: str = "env",
    timeout: float | None = None,
    progress: Callable[[int, int, Cell], None] | None = None,
    shard: tuple[int, int] | None = None,
) -> list[Cell]:
    """Run ``scenarios`` (default: the catalogue) against ``clients`` (preset names, or
    (preset, pinned version) pairs); one cell per scenario and placement, in catalogue order.

    ``trust`` is the mode every client runs in, ``timeout`` the per-run limit (default:
    :data:`SURVEY_TIMEOUT`, raised per client to its preset's ``min_timeout``, so a slow JVM
    start is not a HUNG verdict; a timeout given is used as is: see :func:`run_timeout`).
    ``progress`` is called as cells finish: (done, total, cell). Cells run in parallel
    threads in a private directory that is removed afterwards (and by the next session's
    recovery if this process is killed). An unknown scenario raises ``ConfigError``.
    ``shard`` ``(K, N)`` runs only the K-th of N deterministic slices of the cells
    (:mod:`pytest_tlsenv.shards`). A preset named twice with different versions gets one
    column per version (:func:`columns`).
    """
    pairs = [(c, None) if isinstance(c, str) else (c[0], c[1]) for c in clients]
    if timeout is not None:
        timeout = check_timeout(timeout)  # a bad one fails here, not in every cell
    names = list(CATALOGUE) if scenarios is None else list(scenarios)
    for name in names:
        resolve(name)  # an unknown name raises ConfigError before anything is built
    recover()
    cells = cells_of(names)
    if shard is not None:  # shards.select's slice (not imported: shards merges our reports)
        cells = cells[shard[0] - 1 :: shard[1]]
    tmp = Path(tempfile.mkdtemp(prefix="tlsenv-survey-"))
    journal = Journal()
    results: list[Cell] = []
    try:
        journal.write([tmp])  # killed, the next session removes it (and its keys)
        pki = PKI(tmp / "pki")
        settings = Settings(timeout=SURVEY_TIMEOUT if timeout is None else timeout, trust=trust)
        workers = max(2, (os.cpu_count() or 1) * 2)
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="survey") as pool:
            futures = [
                pool.submit(_run_cell, name, placement, pairs, pki, tmp, settings, i, timeout)
                for i, (name, placement) in enumerate(cells)
            ]
            for done, fut in enumerate(concurrent.futures.as_completed(futures), 1):
                cell = fut.result()
                results.append(cell)
                if progress is not None:
                    progress(done, len(cells), cell)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        journal.discard()
    order = {c: i for i, c in enumerate(cells)}
    results.sort(key=lambda c: order[(c.scenario, c.placement)])
    return results


def run_timeout(client: str, timeout: float | None = None) -> float:
    """The per-run timeout the survey gives preset ``client``: ``timeout`` when the caller
    gave one, else :data:`SURVEY_TIMEOUT` raised to the preset's ``min_timeout``."""
    if timeout is not None:
        return timeout
    return get_preset(client).timeout_for(SURVEY_TIMEOUT)


# -- renderings -------------------------------------------------------------------------------


def _expected(cell: Cell, sep: str) -> str:
    return sep.join(sorted(v.value for v in cell.expected))


def to_text(
    cells: Sequence[Cell], clients: Sequence[str], *, colour: bool = False, width: int | None = None
) -> str:
    """The grid: scenario, expected set, one column per client; ``!`` marks a verdict outside
    the expected set, ``n/a`` a client the scenario cannot reach (or a scenario that cannot be
    built here). Columns beyond ``width`` go into further blocks."""
    rows = [[GridCell(h, "header") for h in ("scenario", "expected", *clients)]]
    for cell in cells:
        row = [GridCell(cell.label, "header"), GridCell(_expected(cell, "/"), "missing")]
        for client in clients:
            outcome = cell.verdicts[client]
            if outcome is None:
                row.append(GridCell("n/a", "missing"))
            elif outcome.verdict in cell.expected:
                row.append(GridCell(outcome.verdict.value, "expected"))
            else:
                row.append(GridCell(outcome.verdict.value + " !", "mismatch"))
        rows.append(row)
    return grid_text(blocks(rows, width=width, fixed=2), colour=colour, rule=True)


def to_markdown(cells: Sequence[Cell], versions: dict[str, str]) -> str:
    """The grid as a Markdown table; the header names each client's version."""
    clients = list(versions)
    rows = [["scenario", "expected", *(f"{c} {versions[c]}" for c in clients)]]
    for c in cells:
        verdicts = []
        for client in clients:
            o = c.verdicts[client]
            if o is None:
                verdicts.append("n/a")
            elif o.verdict not in c.expected:
                verdicts.append(f"**{o.verdict.value}** !")
            else:
                verdicts.append(o.verdict.value)
        rows.append([f"`{c.label}`", _expected(c, ", "), *verdicts])
    return grid_markdown(rows) + "\n"


def to_json(
    cells: Sequence[Cell], versions: dict[str, str], elapsed: float, trust: str
) -> dict[str, Any]:
    """The JSON report: the run's facts and every cell, reasons redacted."""

    def reason(cell: Cell, o: Outcome | None) -> str:
        if o is not None:
            # A client's reason may quote its stderr: no secret leaves in a report.
            return o.redactor().text(o.reason)
        return f"unavailable: {cell.unavailable}" if cell.unavailable else "not applicable"

    return {
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
                "reasons": {k: reason(c, o) for k, o in c.verdicts.items()},
            }
            for c in cells
        ],
    }
